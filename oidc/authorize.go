package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/token"
)

// authAfterParam is added to the authorize request that the login page
// returns to: the session must have logged in at or after this Unix time.
// It replaces prompt=login and an unmet max_age, so the login is not
// demanded again on return. A forged value can only make the request
// stricter, never looser.
const authAfterParam = "idv_auth_after"

// authzRequest is a parsed authorization request (OpenID Connect Core
// §3.1.2.1).
type authzRequest struct {
	ClientID      string
	RedirectURI   string
	ResponseType  string
	Scope         []string
	State         string
	Nonce         string
	Challenge     string
	ChallengeMeth string
	Prompt        []string
	MaxAge        int64 // -1: not set
	ACRValues     []string
	AuthAfter     int64 // 0: not set
	ResponseMode  string
	raw           url.Values
}

// authzError is an error of the authorization endpoint. Before the client
// and redirect_uri are established (redirect false) it is shown to the
// person; after, it is sent to the client (RFC 6749 §4.1.2.1).
type authzError struct {
	Code        string
	Description string
	redirect    bool
}

func (e *authzError) Error() string { return e.Code + ": " + e.Description }

// singleParams may appear at most once (RFC 6749 §3.1).
var singleParams = []string{
	"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge",
	"code_challenge_method", "prompt", "max_age", "acr_values", "response_mode", "request", "request_uri",
	"id_token_hint", "login_hint", "display", "ui_locales", "claims", authAfterParam,
}

// parseAuthorize parses and checks the parameters of an authorization
// request. It checks the client and redirect_uri against clients first, so
// the errors that must not redirect come before those that may. It does not
// look at the browser's session.
func parseAuthorize(v url.Values, clients map[string]*client) (*authzRequest, *client, *authzError) {
	page := func(d string) *authzError { return &authzError{Code: "invalid_request", Description: d} }
	for _, name := range []string{"client_id", "redirect_uri"} {
		if len(v[name]) > 1 {
			return nil, nil, page(name + " is repeated")
		}
	}
	req := &authzRequest{ClientID: v.Get("client_id"), RedirectURI: v.Get("redirect_uri"), MaxAge: -1, raw: v}
	c := clients[req.ClientID]
	if req.ClientID == "" || c == nil {
		return nil, nil, page("unknown client_id")
	}
	if req.RedirectURI == "" || !c.redirectAllowed(req.RedirectURI) {
		return nil, c, page("redirect_uri is not registered for this client")
	}
	// From here on, errors go back to the client's redirect_uri.
	bad := func(code, d string) (*authzRequest, *client, *authzError) {
		return req, c, &authzError{Code: code, Description: d, redirect: true}
	}
	req.State = v.Get("state")
	for name, vals := range v {
		if len(vals) > 1 && slices.Contains(singleParams, name) {
			return bad("invalid_request", name+" is repeated")
		}
		for _, val := range vals {
			if len(val) > maxParam {
				if name == "state" {
					req.State = ""
				}
				return bad("invalid_request", name+" is too long")
			}
		}
	}
	if v.Get("request") != "" {
		return bad("request_not_supported", "request objects are not supported")
	}
	if v.Get("request_uri") != "" {
		return bad("request_uri_not_supported", "request_uri is not supported")
	}
	req.ResponseType = v.Get("response_type")
	if req.ResponseType == "" {
		// RFC 6749 §4.1.2.1: a missing required parameter is
		// invalid_request; unsupported_response_type is for a value.
		return bad("invalid_request", "response_type is missing")
	}
	if req.ResponseType != "code" {
		return bad("unsupported_response_type", "only response_type=code is supported")
	}
	req.ResponseMode = v.Get("response_mode")
	if req.ResponseMode != "" && req.ResponseMode != "query" {
		return bad("invalid_request", "only response_mode=query is supported")
	}
	req.Scope = strings.Fields(v.Get("scope"))
	if !slices.Contains(req.Scope, scopeOpenID) {
		return bad("invalid_scope", "the scope must include openid")
	}
	req.Nonce = v.Get("nonce")
	req.Challenge = v.Get("code_challenge")
	req.ChallengeMeth = v.Get("code_challenge_method")
	switch {
	case req.Challenge == "" && req.ChallengeMeth != "":
		return bad("invalid_request", "code_challenge_method without code_challenge")
	case req.Challenge == "" && c.public():
		return bad("invalid_request", "PKCE (code_challenge with S256) is required for public clients")
	case req.Challenge != "" && req.ChallengeMeth != "S256":
		// An absent method means plain (RFC 7636 §4.3), which is refused.
		return bad("invalid_request", "code_challenge_method must be S256")
	case req.Challenge != "" && !validChallenge(req.Challenge):
		return bad("invalid_request", "code_challenge is not a base64url SHA-256")
	}
	req.Prompt = strings.Fields(v.Get("prompt"))
	for _, pr := range req.Prompt {
		switch pr {
		case "none", "login", "consent", "select_account":
		default:
			return bad("invalid_request", "unknown prompt value")
		}
	}
	if slices.Contains(req.Prompt, "none") && len(req.Prompt) > 1 {
		return bad("invalid_request", "prompt=none cannot be combined with other values")
	}
	if s := v.Get("max_age"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return bad("invalid_request", "max_age must be a non-negative integer")
		}
		req.MaxAge = n
	}
	if s := v.Get(authAfterParam); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return bad("invalid_request", authAfterParam+" must be a Unix time")
		}
		req.AuthAfter = n
	}
	req.ACRValues = strings.Fields(v.Get("acr_values"))
	return req, c, nil
}

// validChallenge: an S256 challenge is the base64url (no padding) of 32
// bytes: 43 characters (RFC 7636 §4.2).
func validChallenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-' || ch == '_') {
			return false
		}
	}
	return true
}

// serveAuthorize is the authorization endpoint (OpenID Connect Core
// §3.1.2). With a browser session that satisfies prompt, max_age and
// acr_values it issues a code; otherwise it sends the browser to the login
// page, which brings it back here.
func (p *Provider) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	v, err := readAuthorizeParams(w, r)
	if err != nil {
		p.host.RenderError(w, r, http.StatusBadRequest, "The sign-in request is malformed.")
		return
	}
	req, c, aerr := parseAuthorize(v, p.clients)
	if aerr != nil {
		if !aerr.redirect {
			p.host.RenderError(w, r, http.StatusBadRequest, "The application's sign-in request is invalid: "+aerr.Description+".")
			return
		}
		p.redirectError(w, r, req, aerr.Code, aerr.Description)
		return
	}
	now := p.now()
	sess := p.host.Session(r)
	wantProvider, acrOK := p.acrProvider(req, sess)
	fresh := sess != nil && acrOK && p.freshEnough(req, sess, now)
	if !fresh {
		if slices.Contains(req.Prompt, "none") {
			p.redirectError(w, r, req, "login_required", "the person must log in")
			return
		}
		p.redirectLogin(w, r, req, wantProvider, now)
		return
	}
	code, err := p.issueCode(r.Context(), req, c, sess, now)
	if err != nil {
		p.logger.Error("oidc: authorize: storing the code failed", zap.Error(err))
		p.redirectError(w, r, req, "temporarily_unavailable", "try again later")
		return
	}
	p.event(Event{Kind: EventCodeIssued, Endpoint: "authorize", ClientID: c.ID, Subject: p.subject(c, sess.Subject), SID: p.clientSID(c, sess.SID)})
	p.redirectResult(w, r, req.RedirectURI, url.Values{"code": {code}, "state": nonEmpty(req.State)})
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// readAuthorizeParams reads the query of a GET, or the form body of a POST
// (OpenID Connect Core §3.1.2.1), bounded.
func readAuthorizeParams(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if r.Method == http.MethodGet {
		if len(r.URL.RawQuery) > maxBody {
			return nil, errors.New("query too long")
		}
		return url.ParseQuery(r.URL.RawQuery)
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	return r.PostForm, nil
}

// acrProvider resolves acr_values: the provider to log in with (the first
// requested value a provider yields), and whether sess already satisfies
// the request (its acr is one of the values, or it came from the provider
// a value maps to). Values that no provider yields are voluntary (OpenID
// Connect Core §3.1.2.1) and satisfied by any session.
func (p *Provider) acrProvider(req *authzRequest, sess *token.Session) (provider string, ok bool) {
	if len(req.ACRValues) == 0 {
		return "", true
	}
	for _, acr := range req.ACRValues {
		prov, known := p.host.ProviderForACR(acr)
		if !known {
			continue
		}
		if provider == "" {
			provider = prov
		}
		if sess != nil && (sess.ACR == acr || sess.Provider == prov) {
			return prov, true
		}
	}
	return provider, provider == ""
}

// freshEnough checks prompt=login, max_age and the auth_after bound.
func (p *Provider) freshEnough(req *authzRequest, sess *token.Session, now time.Time) bool {
	at := sess.AuthTime
	if at.IsZero() {
		at = sess.IssuedAt
	}
	if slices.Contains(req.Prompt, "login") || slices.Contains(req.Prompt, "select_account") {
		return false
	}
	if req.MaxAge >= 0 && now.Sub(at) > time.Duration(req.MaxAge)*time.Second {
		return false
	}
	if req.AuthAfter > 0 && at.Unix() < req.AuthAfter {
		return false
	}
	return true
}

// redirectLogin sends the browser to the login page, which returns it to
// this same authorization request with prompt=login and max_age replaced by
// "logged in at or after now", so the fresh login satisfies it.
func (p *Provider) redirectLogin(w http.ResponseWriter, r *http.Request, req *authzRequest, provider string, now time.Time) {
	back := url.Values{}
	for k, vals := range req.raw {
		back[k] = vals
	}
	forced := slices.Contains(req.Prompt, "login") || slices.Contains(req.Prompt, "select_account") || req.MaxAge >= 0
	if forced {
		var keep []string
		for _, pr := range req.Prompt {
			if pr != "login" && pr != "select_account" {
				keep = append(keep, pr)
			}
		}
		back.Del("prompt")
		if len(keep) > 0 {
			back.Set("prompt", strings.Join(keep, " "))
		}
		back.Del("max_age")
		after := now.Unix()
		if req.AuthAfter > after {
			after = req.AuthAfter
		}
		back.Set(authAfterParam, strconv.FormatInt(after, 10))
	}
	returnTo := p.prefix + "/oidc/authorize?" + back.Encode()
	noStore(w)
	http.Redirect(w, r, p.host.LoginURL(returnTo, provider), http.StatusFound)
}

// redirectError sends an error to the client (RFC 6749 §4.1.2.1), with the
// issuer (RFC 9207).
func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, req *authzRequest, code, desc string) {
	p.event(Event{Kind: EventError, Endpoint: "authorize", ClientID: req.ClientID, Error: code})
	p.redirectResult(w, r, req.RedirectURI, url.Values{
		"error": {code}, "error_description": {desc}, "state": nonEmpty(req.State),
	})
}

// redirectResult redirects to a registered redirect URI, keeping its own
// query (RFC 6749 §3.1.2) and adding iss (RFC 9207 §2).
func (p *Provider) redirectResult(w http.ResponseWriter, r *http.Request, redirectURI string, params url.Values) {
	u, err := url.Parse(redirectURI)
	if err != nil { // registered URIs were checked by Validate
		p.host.RenderError(w, r, http.StatusInternalServerError, "The application's redirect URI is malformed.")
		return
	}
	q := u.Query()
	for k, vals := range params {
		for _, val := range vals {
			q.Add(k, val)
		}
	}
	q.Set("iss", p.issuer)
	u.RawQuery = q.Encode()
	noStore(w)
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusFound)
}

// issueCode stores a new authorization code bound to the request and the
// session, and returns it. Only the code's hash is a store key.
func (p *Provider) issueCode(ctx context.Context, req *authzRequest, c *client, sess *token.Session, now time.Time) (string, error) {
	g := grantFromSession(sess)
	g.ClientID = c.ID
	g.RedirectURI = req.RedirectURI
	g.Challenge = req.Challenge
	g.Nonce = req.Nonce
	for _, s := range knownScopes {
		if slices.Contains(req.Scope, s) {
			g.Scope = append(g.Scope, s)
		}
	}
	g.Expires = now.Add(CodeLifetime).Unix()
	g.Family = randomID()
	raw, err := json.Marshal(g)
	if err != nil {
		return "", fmt.Errorf("oidc: code: %w", err)
	}
	code := randomToken()
	if err := p.store.Set(ctx, hashKey("code", code), raw, CodeLifetime); err != nil {
		return "", fmt.Errorf("oidc: code: %w", err)
	}
	return code, nil
}
