package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// serveUserinfo is the UserInfo endpoint (OpenID Connect Core §5.3): the
// claims that the access token's scope releases, with the same sub as the
// ID token. The access token comes in the Authorization header (RFC 6750
// §2.1) or, for POST, the form body (§2.2), never the query.
func (p *Provider) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	raw, ok := bearer(w, r)
	_, inForm := r.PostForm["access_token"]
	if n := len(r.Header.Values("Authorization")); n > 1 || n == 1 && inForm {
		// One access token, one way (RFC 6750 §2 and §3.1 invalid_request).
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+p.issuer+`", error="invalid_request"`)
		writeJSON(w, http.StatusBadRequest, oauthError{Code: "invalid_request", Description: "the access token was sent more than once"})
		return
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+p.issuer+`"`)
		writeJSON(w, http.StatusUnauthorized, oauthError{Code: "invalid_request", Description: "no access token"})
		return
	}
	claims, err := p.verifyAccessToken(r.Context(), raw)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+p.issuer+`", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, oauthError{Code: "invalid_token", Description: "the access token is invalid, expired or revoked"})
		return
	}
	out := map[string]any{}
	for name, v := range claims {
		switch name {
		case "iss", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "sid", "auth_time", "acr", "amr":
			continue
		}
		out[name] = v
	}
	writeJSON(w, http.StatusOK, out)
}

func bearer(w http.ResponseWriter, r *http.Request) (string, bool) {
	form := r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
	if form {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			return "", false
		}
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return "", false
		}
		tok = strings.TrimSpace(tok)
		return tok, tok != ""
	}
	if form {
		if vals := r.PostForm["access_token"]; len(vals) == 1 && vals[0] != "" {
			return vals[0], true
		}
	}
	return "", false
}

// verifyAccessToken checks an access token for the userinfo endpoint:
// token/'s access-token verifier (typ at+jwt, signature, exp, iss, aud,
// session not revoked), then a client that is still registered and a scope
// with openid. ID tokens and session tokens never pass: their typ differs.
func (p *Provider) verifyAccessToken(ctx context.Context, raw string) (map[string]any, error) {
	a, err := p.tokens.VerifyAccess(ctx, raw, p.issuer)
	if err != nil {
		return nil, err
	}
	if p.clients[a.ClientID] == nil {
		return nil, fmt.Errorf("oidc: userinfo: client %q is not registered", a.ClientID)
	}
	if !slices.Contains(strings.Fields(a.Scope), scopeOpenID) {
		return nil, errors.New("oidc: userinfo: no openid scope")
	}
	return a.Claims, nil
}
