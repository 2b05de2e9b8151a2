package oidc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/store"
	"github.com/caddy-idv/caddy-idv/token"
)

// tokenResponse is a successful token response (RFC 6749 §5.1, OpenID
// Connect Core §3.1.3.3).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
}

// tokenError is an RFC 6749 §5.2 error with its HTTP status.
type tokenError struct {
	status      int
	code        string
	description string
	// retryAfter is sent as Retry-After with a 429.
	retryAfter time.Duration
}

func (e *tokenError) Error() string { return e.code + ": " + e.description }

func errInvalidRequest(d string) *tokenError {
	return &tokenError{http.StatusBadRequest, "invalid_request", d, 0}
}
func errInvalidGrant(d string) *tokenError {
	return &tokenError{http.StatusBadRequest, "invalid_grant", d, 0}
}

var errInvalidClient = &tokenError{http.StatusUnauthorized, "invalid_client", "client authentication failed", 0}

// clientAuth is how a client authenticated at the token, revocation or
// introspection endpoint.
type clientAuth struct {
	ClientID     string
	ClientSecret string
	// Method is client_secret_basic, client_secret_post or none.
	Method string
}

// tokenRequest is a parsed token request: the grant and how the client
// authenticated.
type tokenRequest struct {
	GrantType    string
	Code         string
	RedirectURI  string
	Verifier     string
	RefreshToken string
	Scope        string
	clientAuth
}

// checkForm refuses repeated and oversized parameters (RFC 6749 §3.2:
// "Request and response parameters MUST NOT be included more than once").
// Parameters named in long may be as long as a whole body (a JWT access
// token at the revocation and introspection endpoints); every other one is
// at most maxParam.
func checkForm(form url.Values, long ...string) *tokenError {
	for name, vals := range form {
		if len(vals) > 1 {
			return errInvalidRequest(name + " is repeated")
		}
		if len(vals[0]) > maxParam && !slices.Contains(long, name) {
			return errInvalidRequest(name + " is too long")
		}
	}
	return nil
}

// parseTokenRequest reads the form parameters and the client's credentials
// (RFC 6749 §2.3.1, §4.1.3, §6). It checks form, not the client or grant.
func parseTokenRequest(form url.Values, authorization string) (*tokenRequest, *tokenError) {
	if terr := checkForm(form); terr != nil {
		return nil, terr
	}
	t := &tokenRequest{
		GrantType:    form.Get("grant_type"),
		Code:         form.Get("code"),
		RedirectURI:  form.Get("redirect_uri"),
		Verifier:     form.Get("code_verifier"),
		RefreshToken: form.Get("refresh_token"),
		Scope:        form.Get("scope"),
	}
	if t.GrantType == "" {
		return nil, errInvalidRequest("grant_type is missing")
	}
	a, terr := parseClientAuth(form, authorization)
	if terr != nil {
		return nil, terr
	}
	t.clientAuth = *a
	return t, nil
}

// oneAuthorization is r's Authorization header; a request with several is
// refused, never judged by the first (RFC 6749 §2.3: one authentication
// method per request).
func oneAuthorization(r *http.Request) (string, *tokenError) {
	if len(r.Header.Values("Authorization")) > 1 {
		return "", errInvalidRequest("more than one Authorization header")
	}
	return r.Header.Get("Authorization"), nil
}

// parseClientAuth reads the client's credentials from the Authorization
// header (client_secret_basic) or the form (client_secret_post, or
// client_id alone for a public client), RFC 6749 §2.3.1; more than one
// method is refused (§2.3).
func parseClientAuth(form url.Values, authorization string) (*clientAuth, *tokenError) {
	t := &clientAuth{ClientID: form.Get("client_id"), ClientSecret: form.Get("client_secret")}
	if authorization != "" {
		scheme, cred, _ := strings.Cut(authorization, " ")
		if !strings.EqualFold(scheme, "Basic") {
			return nil, errInvalidClient
		}
		if t.ClientSecret != "" {
			return nil, errInvalidRequest("more than one client authentication method")
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if err != nil {
			return nil, errInvalidClient
		}
		id, secret, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, errInvalidClient
		}
		// Both parts are form-urlencoded before base64 (RFC 6749 §2.3.1).
		if id, err = url.QueryUnescape(id); err != nil {
			return nil, errInvalidClient
		}
		if secret, err = url.QueryUnescape(secret); err != nil {
			return nil, errInvalidClient
		}
		if t.ClientID != "" && t.ClientID != id {
			return nil, errInvalidRequest("client_id differs from the authenticated client")
		}
		t.ClientID, t.ClientSecret, t.Method = id, secret, "client_secret_basic"
	} else if t.ClientSecret != "" {
		t.Method = "client_secret_post"
	} else {
		t.Method = "none"
	}
	if t.ClientID == "" {
		return nil, errInvalidClient
	}
	return t, nil
}

// dummySecret is compared against when the client is unknown, so that an
// unknown client costs the same time as a wrong secret.
var dummySecret = sha256.Sum256([]byte("oidc: no such client"))

// authenticateRequest authenticates the client of r (see authenticate),
// within the limits on failed attempts per address and per client: past
// them the answer is 429 with Retry-After, before the secret is even
// looked at. A failure is logged with the client_id, the address and the
// endpoint, never the secret.
func (p *Provider) authenticateRequest(r *http.Request, t *clientAuth, endpoint string) (*client, *tokenError) {
	addr := p.clientAddress(r)
	known := ""
	if p.clients[t.ClientID] != nil {
		known = t.ClientID
	}
	if d := p.limiter.wait(known, addr); d > 0 {
		p.event(Event{Kind: EventRateLimited, Endpoint: endpoint, ClientID: clip(t.ClientID)})
		return nil, &tokenError{status: http.StatusTooManyRequests, code: "temporarily_unavailable",
			description: "too many failed client authentications; try again later", retryAfter: d}
	}
	c, terr := p.authenticate(t)
	if terr != nil {
		p.limiter.fail(known, addr)
		p.event(Event{Kind: EventClientAuthFailed, Endpoint: endpoint, ClientID: clip(t.ClientID)})
		p.logger.Warn("oidc: client authentication failed",
			zap.String("endpoint", endpoint),
			zap.String("client_id", clip(t.ClientID)),
			zap.Bool("registered", known != ""),
			zap.String("client_address", addr),
			zap.String("method", t.Method))
	}
	return c, terr
}

// clip shortens a client-supplied value for a log line.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// writeTokenError answers an RFC 6749 §5.2 error, with WWW-Authenticate for
// a failed client authentication (§5.2: 401 with the scheme the client
// used) and Retry-After for a 429 (RFC 9110 §10.2.3).
func (p *Provider) writeTokenError(w http.ResponseWriter, endpoint string, terr *tokenError) {
	p.event(Event{Kind: EventError, Endpoint: endpoint, Error: terr.code})
	switch terr.status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="`+p.issuer+`", error="invalid_client"`)
	case http.StatusTooManyRequests:
		secs := int64((terr.retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	}
	writeJSON(w, terr.status, oauthError{Code: terr.code, Description: terr.description})
}

// authenticate finds the client and checks its secret in constant time.
// A public client authenticates with its client_id alone; PKCE then binds
// the code to it (RFC 7636). A confidential client must send its secret;
// a secret sent by a public client is refused as a misconfiguration.
func (p *Provider) authenticate(t *clientAuth) (*client, *tokenError) {
	c := p.clients[t.ClientID]
	want := dummySecret
	if c != nil {
		want = c.secretHash
	}
	got := sha256.Sum256([]byte(t.ClientSecret))
	match := subtle.ConstantTimeCompare(got[:], want[:]) == 1
	switch {
	case c == nil:
		return nil, errInvalidClient
	case c.public():
		if t.Method != "none" {
			return nil, errInvalidClient
		}
		return c, nil
	case t.Method == "none" || !match:
		return nil, errInvalidClient
	}
	return c, nil
}

// serveToken is the token endpoint (RFC 6749 §3.2, OpenID Connect Core
// §3.1.3).
func (p *Provider) serveToken(w http.ResponseWriter, r *http.Request) {
	resp, terr := p.token(w, r)
	if terr != nil {
		p.writeTokenError(w, "token", terr)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// readForm reads a bounded application/x-www-form-urlencoded body.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, *tokenError) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return nil, errInvalidRequest("the body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		return nil, errInvalidRequest("the body cannot be read")
	}
	return r.PostForm, nil
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) (*tokenResponse, *tokenError) {
	form, terr := readForm(w, r)
	if terr != nil {
		return nil, terr
	}
	authorization, terr := oneAuthorization(r)
	if terr != nil {
		return nil, terr
	}
	t, terr := parseTokenRequest(form, authorization)
	if terr != nil {
		return nil, terr
	}
	c, terr := p.authenticateRequest(r, &t.clientAuth, "token")
	if terr != nil {
		return nil, terr
	}
	switch t.GrantType {
	case "authorization_code":
		return p.exchangeCode(r.Context(), c, t)
	case "refresh_token":
		return p.refresh(r.Context(), c, t)
	}
	return nil, &tokenError{http.StatusBadRequest, "unsupported_grant_type", "only authorization_code and refresh_token are supported", 0}
}

// usedMarker is stored, consume-once, when a code or refresh token is used.
// It names what the use issued, so that a second use can revoke it, and
// when the first use was, for the refresh reuse grace.
type usedMarker struct {
	SID    string `json:"sid"`
	Family string `json:"family"`
	// Used is when the first use was (Unix nanoseconds).
	Used int64 `json:"used,omitempty"`
}

// errUnavailable is the answer when the store fails: fail closed, and let
// the client try again.
var errUnavailable = &tokenError{http.StatusServiceUnavailable, "temporarily_unavailable", "try again later", 0}

// exchangeCode redeems an authorization code (RFC 6749 §4.1.3). The code is
// consumed with SetIfAbsent on a "used" marker, atomic across instances; a
// second use revokes what the first issued (RFC 6749 §4.1.2): the refresh
// token family and the access tokens of that grant. The person's session
// is not ended: anyone who saw the code can replay it, and must not be
// able to log the person out everywhere with it.
func (p *Provider) exchangeCode(ctx context.Context, c *client, t *tokenRequest) (*tokenResponse, *tokenError) {
	if t.Code == "" {
		return nil, errInvalidRequest("code is missing")
	}
	// OpenID Connect Core §3.1.3.1: redirect_uri is required when the
	// authorization request had one, which here it always has.
	if t.RedirectURI == "" {
		return nil, errInvalidRequest("redirect_uri is missing")
	}
	key := hashKey("code", t.Code)
	raw, err := p.store.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidGrant("the code is invalid or expired")
	}
	if err != nil {
		p.logger.Error("oidc: token: reading the code failed", zap.Error(err))
		return nil, errUnavailable
	}
	var g grant
	if err := json.Unmarshal(raw, &g); err != nil {
		return nil, errInvalidGrant("the code is invalid or expired")
	}
	now := p.now()
	if !now.Before(time.Unix(g.Expires, 0)) {
		return nil, errInvalidGrant("the code is invalid or expired")
	}
	// Binding checks come before consumption, so that a client that is
	// not the code's cannot burn it for its rightful owner.
	if g.ClientID != c.ID {
		return nil, errInvalidGrant("the code was issued to another client")
	}
	if t.RedirectURI != g.RedirectURI {
		return nil, errInvalidGrant("redirect_uri differs from the authorization request")
	}
	if terr := checkVerifier(g.Challenge, t.Verifier); terr != nil {
		return nil, terr
	}
	marker, _ := json.Marshal(usedMarker{SID: g.SID, Family: g.Family, Used: now.UnixNano()})
	fresh, err := p.store.SetIfAbsent(ctx, hashKey("code-used", t.Code), marker, 2*CodeLifetime)
	if err != nil {
		p.logger.Error("oidc: token: consuming the code failed", zap.Error(err))
		return nil, errUnavailable
	}
	if !fresh {
		p.logger.Warn("oidc: token: authorization code used twice; revoking the tokens issued from it",
			zap.String("client_id", c.ID))
		p.revokeFamily(ctx, g.Family)
		return nil, errInvalidGrant("the code was already used")
	}
	// The code's record stays until it expires, so that a second use finds
	// it and is detected as reuse, not as an unknown code.
	g.Expires = now.Add(RefreshLifetime).Unix() // from now on: the refresh family's end
	// The client is recorded for the session before the session's end is
	// checked: a logout on another instance either lists this client (and
	// ends its tokens, and tells it) or has marked the session ended
	// before this check reads it.
	if err := p.recordClient(ctx, c, &g, now); err != nil {
		p.logger.Error("oidc: token: recording the client of the session failed", zap.Error(err))
		return nil, errUnavailable
	}
	if p.revocations.Revoked(g.SID) {
		return nil, errInvalidGrant("the session has ended")
	}
	ended, err := p.sessionEnded(ctx, g.SID)
	if err != nil {
		p.logger.Error("oidc: token: reading the session's end failed", zap.Error(err))
		return nil, errUnavailable
	}
	if ended {
		return nil, errInvalidGrant("the session has ended")
	}
	return p.respond(ctx, c, &g, g.Scope, true, now)
}

// familyRevokedKey is the store key that ends a refresh token family.
func familyRevokedKey(family string) string { return "oidc/family-revoked/" + family }

// revokeFamily ends a refresh token family for as long as it could live,
// and the access tokens issued from it (they carry it as their grant). It
// ends nothing else: not the session, not the client's other grants, not
// other clients'. Failures are logged: the access tokens are refused on
// this instance in any case.
func (p *Provider) revokeFamily(ctx context.Context, family string) {
	if family == "" {
		return
	}
	now := p.now()
	if err := p.revocations.Revoke(ctx, family, now.Add(AccessTokenLifetime+token.Leeway+time.Minute)); err != nil {
		p.logger.Error("oidc: revoking the access tokens of a grant failed", zap.Error(err))
	}
	if err := p.store.Set(ctx, familyRevokedKey(family), []byte("1"), RefreshLifetime+AccessTokenLifetime); err != nil {
		p.logger.Error("oidc: revoking a refresh token family failed", zap.Error(err))
	}
}

// checkVerifier checks PKCE (RFC 7636 §4.6). A code issued with a challenge
// needs the verifier; a code without one must not get a verifier, which
// would mean the request lost its challenge on the way (a downgrade).
func checkVerifier(challenge, verifier string) *tokenError {
	if challenge == "" {
		if verifier != "" {
			return errInvalidGrant("code_verifier sent for a code issued without code_challenge")
		}
		return nil
	}
	if len(verifier) < 43 || len(verifier) > 128 {
		return errInvalidGrant("code_verifier is missing or malformed")
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) != 1 {
		return errInvalidGrant("code_verifier does not match the code_challenge")
	}
	return nil
}

// respond mints the tokens of a grant for scope (the grant's, or a narrower
// one a refresh asked for) and, when the grant has offline_access, a new
// refresh token of its family. The refresh token keeps the whole grant,
// whatever scope this response has (RFC 6749 §6: a narrower scope limits
// the new access token, not the refresh token).
func (p *Provider) respond(ctx context.Context, c *client, g *grant, scope []string, withNonce bool, now time.Time) (*tokenResponse, *tokenError) {
	out, err := p.mint(c, g, scope, withNonce)
	if err != nil {
		p.logger.Error("oidc: token: signing failed", zap.Error(err))
		return nil, &tokenError{http.StatusInternalServerError, "server_error", "the tokens could not be issued", 0}
	}
	resp := &tokenResponse{
		AccessToken: out.AccessToken,
		TokenType:   "Bearer",
		ExpiresIn:   out.ExpiresIn,
		IDToken:     out.IDToken,
		Scope:       strings.Join(scope, " "),
	}
	if g.has(scopeOffline) {
		rt, err := p.storeRefresh(ctx, g, now)
		if err != nil {
			p.logger.Error("oidc: token: storing the refresh token failed", zap.Error(err))
			return nil, errUnavailable
		}
		resp.RefreshToken = rt
	}
	// Only a code exchange asks for the nonce in the ID token.
	grantType := "refresh_token"
	if withNonce {
		grantType = "authorization_code"
	}
	p.event(Event{Kind: EventTokenIssued, Endpoint: "token", ClientID: c.ID, GrantType: grantType, Subject: p.subject(c, g.Subject), SID: p.clientSID(c, g.SID)})
	return resp, nil
}

// narrowScope applies a refresh request's scope, which may only drop scopes
// of the original grant (RFC 6749 §6). Scopes the provider does not know
// are ignored, as at the authorization endpoint (RFC 6749 §3.3), so that a
// client that sends its configured scope on every refresh keeps working.
// The result is in the grant's order.
func narrowScope(granted []string, requested string) ([]string, error) {
	if requested == "" {
		return granted, nil
	}
	asked := strings.Fields(requested)
	for _, s := range asked {
		if slices.Contains(knownScopes, s) && !slices.Contains(granted, s) {
			return nil, fmt.Errorf("scope %q was not granted", s)
		}
	}
	var out []string
	for _, s := range granted {
		if slices.Contains(asked, s) {
			out = append(out, s)
		}
	}
	if !slices.Contains(out, scopeOpenID) {
		return nil, errors.New("the scope must include openid")
	}
	return out, nil
}
