package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// serveUserinfo is the UserInfo endpoint (OpenID Connect Core §5.3): the
// claims that the access token's scope releases, with the same sub as the
// ID token. The access token comes in the Authorization header (RFC 6750
// §2.1) or, for POST, the form body (§2.2), never the query.
func (p *Provider) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	raw, ok := bearer(w, r)
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
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return "", false
		}
		tok = strings.TrimSpace(tok)
		return tok, tok != ""
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			return "", false
		}
		if vals := r.PostForm["access_token"]; len(vals) == 1 && vals[0] != "" {
			return vals[0], true
		}
	}
	return "", false
}

// verifyAccessToken checks an access token that this provider issued
// (RFC 9068 §4): ES256 with our keys, iss, exp, typ at+jwt, an aud that
// contains the issuer, client_id and scope with openid, a registered client,
// and a session that was not revoked. It refuses ID tokens and session
// tokens, which lack typ at+jwt, client_id and scope.
func (p *Provider) verifyAccessToken(ctx context.Context, raw string) (jwt.MapClaims, error) {
	claims, t, err := p.parseOwn(ctx, raw, true)
	if err != nil {
		return nil, err
	}
	typ, _ := t.Header["typ"].(string)
	_, typed := any(p.tokens).(typedSigner)
	if !strings.EqualFold(typ, "at+jwt") && (typed || typ != "JWT") {
		return nil, fmt.Errorf("%w: typ %q is not at+jwt", errToken, typ)
	}
	aud, err := claims.GetAudience()
	if err != nil || !slices.Contains(aud, p.issuer) {
		return nil, fmt.Errorf("%w: not for the userinfo endpoint", errToken)
	}
	cid, _ := claims["client_id"].(string)
	if p.clients[cid] == nil || !slices.Contains(aud, cid) {
		return nil, fmt.Errorf("%w: unknown client", errToken)
	}
	scope, _ := claims["scope"].(string)
	if !slices.Contains(strings.Fields(scope), scopeOpenID) {
		return nil, fmt.Errorf("%w: no openid scope", errToken)
	}
	sid, _ := claims["sid"].(string)
	sub, _ := claims["sub"].(string)
	if sid == "" || sub == "" {
		return nil, fmt.Errorf("%w: no sub or sid", errToken)
	}
	if p.revocations.Revoked(sid) {
		return nil, errors.New("oidc: userinfo: session revoked")
	}
	return claims, nil
}
