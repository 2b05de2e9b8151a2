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
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/store"
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
}

func (e *tokenError) Error() string { return e.code + ": " + e.description }

func errInvalidRequest(d string) *tokenError {
	return &tokenError{http.StatusBadRequest, "invalid_request", d}
}
func errInvalidGrant(d string) *tokenError {
	return &tokenError{http.StatusBadRequest, "invalid_grant", d}
}

var errInvalidClient = &tokenError{http.StatusUnauthorized, "invalid_client", "client authentication failed"}

// tokenRequest is a parsed token request: the grant and how the client
// authenticated.
type tokenRequest struct {
	GrantType    string
	Code         string
	RedirectURI  string
	Verifier     string
	RefreshToken string
	Scope        string

	ClientID     string
	ClientSecret string
	// Method is client_secret_basic, client_secret_post or none.
	Method string
}

// parseTokenRequest reads the form parameters and the client's credentials
// (RFC 6749 §2.3.1, §4.1.3, §6). It checks form, not the client or grant.
func parseTokenRequest(form url.Values, authorization string) (*tokenRequest, *tokenError) {
	for name, vals := range form {
		if len(vals) > 1 {
			return nil, errInvalidRequest(name + " is repeated")
		}
		if len(vals[0]) > maxParam {
			return nil, errInvalidRequest(name + " is too long")
		}
	}
	t := &tokenRequest{
		GrantType:    form.Get("grant_type"),
		Code:         form.Get("code"),
		RedirectURI:  form.Get("redirect_uri"),
		Verifier:     form.Get("code_verifier"),
		RefreshToken: form.Get("refresh_token"),
		Scope:        form.Get("scope"),
		ClientID:     form.Get("client_id"),
		ClientSecret: form.Get("client_secret"),
	}
	if t.GrantType == "" {
		return nil, errInvalidRequest("grant_type is missing")
	}
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

// authenticate finds the client and checks its secret in constant time.
// A public client authenticates with its client_id alone; PKCE then binds
// the code to it (RFC 7636). A confidential client must send its secret;
// a secret sent by a public client is refused as a misconfiguration.
func (p *Provider) authenticate(t *tokenRequest) (*client, *tokenError) {
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
		if terr.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+p.issuer+`", error="invalid_client"`)
		}
		writeJSON(w, terr.status, oauthError{Code: terr.code, Description: terr.description})
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) (*tokenResponse, *tokenError) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return nil, errInvalidRequest("the body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		return nil, errInvalidRequest("the body cannot be read")
	}
	t, terr := parseTokenRequest(r.PostForm, r.Header.Get("Authorization"))
	if terr != nil {
		return nil, terr
	}
	c, terr := p.authenticate(t)
	if terr != nil {
		return nil, terr
	}
	switch t.GrantType {
	case "authorization_code":
		return p.exchangeCode(r.Context(), c, t)
	case "refresh_token":
		return p.refresh(r.Context(), c, t)
	}
	return nil, &tokenError{http.StatusBadRequest, "unsupported_grant_type", "only authorization_code and refresh_token are supported"}
}

// usedMarker is stored, consume-once, when a code or refresh token is used.
// It names what the use issued, so that a second use can revoke it.
type usedMarker struct {
	SID     string `json:"sid"`
	Family  string `json:"family"`
	Expires int64  `json:"exp"`
}

// exchangeCode redeems an authorization code (RFC 6749 §4.1.3). The code is
// consumed with SetIfAbsent on a "used" marker, atomic across instances; a
// second use revokes what the first issued (RFC 6749 §4.1.2): the refresh
// token family and the session id carried by its access and ID tokens.
func (p *Provider) exchangeCode(ctx context.Context, c *client, t *tokenRequest) (*tokenResponse, *tokenError) {
	if t.Code == "" {
		return nil, errInvalidRequest("code is missing")
	}
	key := hashKey("code", t.Code)
	raw, err := p.store.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidGrant("the code is invalid or expired")
	}
	if err != nil {
		p.logger.Error("oidc: token: reading the code failed", zap.Error(err))
		return nil, &tokenError{http.StatusServiceUnavailable, "temporarily_unavailable", "try again later"}
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
	until := p.revokeUntil(now)
	marker, _ := json.Marshal(usedMarker{SID: g.SID, Family: g.Family, Expires: until.Unix()})
	fresh, err := p.store.SetIfAbsent(ctx, hashKey("code-used", t.Code), marker, 2*CodeLifetime)
	if err != nil {
		p.logger.Error("oidc: token: consuming the code failed", zap.Error(err))
		return nil, &tokenError{http.StatusServiceUnavailable, "temporarily_unavailable", "try again later"}
	}
	if !fresh {
		p.logger.Warn("oidc: token: authorization code used twice; revoking the tokens issued from it",
			zap.String("client_id", c.ID))
		p.revokeGrant(ctx, g.SID, g.Family, until)
		return nil, errInvalidGrant("the code was already used")
	}
	// The code's record stays until it expires, so that a second use finds
	// it and is detected as reuse, not as an unknown code.
	if p.revocations.Revoked(g.SID) {
		return nil, errInvalidGrant("the session has ended")
	}
	g.Expires = now.Add(RefreshLifetime).Unix() // from now on: the refresh family's end
	return p.respond(ctx, c, &g, true, now)
}

// revokeUntil is how long a revocation must last to outlive every token a
// grant can yield: its refresh family.
func (p *Provider) revokeUntil(now time.Time) time.Time {
	return now.Add(RefreshLifetime + AccessTokenLifetime)
}

// revokeGrant revokes a refresh family and a session id. Failures are
// logged: the session is revoked on this instance in any case.
func (p *Provider) revokeGrant(ctx context.Context, sid, family string, until time.Time) {
	if family != "" {
		if err := p.store.Set(ctx, "oidc/family-revoked/"+family, []byte("1"), until.Sub(p.now())); err != nil {
			p.logger.Error("oidc: revoking a refresh token family failed", zap.Error(err))
		}
	}
	if sid != "" {
		if err := p.revocations.Revoke(ctx, sid, until); err != nil {
			p.logger.Error("oidc: revoking a session failed", zap.Error(err))
		}
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

// respond mints the tokens of a grant and, with offline_access, a new
// refresh token of its family.
func (p *Provider) respond(ctx context.Context, c *client, g *grant, withNonce bool, now time.Time) (*tokenResponse, *tokenError) {
	out, err := p.mint(c, g, withNonce)
	if err != nil {
		p.logger.Error("oidc: token: signing failed", zap.Error(err))
		return nil, &tokenError{http.StatusInternalServerError, "server_error", "the tokens could not be issued"}
	}
	resp := &tokenResponse{
		AccessToken: out.AccessToken,
		TokenType:   "Bearer",
		ExpiresIn:   out.ExpiresIn,
		IDToken:     out.IDToken,
		Scope:       strings.Join(g.Scope, " "),
	}
	if g.has(scopeOffline) {
		rt, err := p.storeRefresh(ctx, g, now)
		if err != nil {
			p.logger.Error("oidc: token: storing the refresh token failed", zap.Error(err))
			return nil, &tokenError{http.StatusServiceUnavailable, "temporarily_unavailable", "try again later"}
		}
		resp.RefreshToken = rt
	}
	return resp, nil
}

// narrowScope applies a refresh request's scope, which may only drop scopes
// of the original grant (RFC 6749 §6).
func narrowScope(granted []string, requested string) ([]string, error) {
	if requested == "" {
		return granted, nil
	}
	var out []string
	for _, s := range strings.Fields(requested) {
		if !slices.Contains(granted, s) {
			return nil, fmt.Errorf("scope %q was not granted", s)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if !slices.Contains(out, scopeOpenID) {
		return nil, errors.New("the scope must include openid")
	}
	return out, nil
}
