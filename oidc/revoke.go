package oidc

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/token"
)

// looksLikeJWT tells our access tokens (JWS compact serialisation) from
// refresh tokens (43 base64url characters, no dots).
func looksLikeJWT(s string) bool { return strings.Count(s, ".") == 2 }

// readTokenParam reads the form of a revocation or introspection request
// and authenticates its client as the token endpoint does.
func (p *Provider) readTokenParam(w http.ResponseWriter, r *http.Request, endpoint string) (*client, string, *tokenError) {
	form, terr := readForm(w, r)
	if terr != nil {
		return nil, "", terr
	}
	if terr := checkForm(form, "token"); terr != nil {
		return nil, "", terr
	}
	authorization, terr := oneAuthorization(r)
	if terr != nil {
		return nil, "", terr
	}
	a, terr := parseClientAuth(form, authorization)
	if terr != nil {
		return nil, "", terr
	}
	c, terr := p.authenticateRequest(r, a, endpoint)
	if terr != nil {
		return nil, "", terr
	}
	tok := form.Get("token")
	if tok == "" {
		return nil, "", errInvalidRequest("token is missing")
	}
	return c, tok, nil
}

// serveRevoke is the revocation endpoint (RFC 7009). The client
// authenticates as at the token endpoint. A refresh token ends its whole
// family and the access tokens issued from it (§2.1: "SHOULD also
// invalidate all access tokens based on the same authorization grant"); an
// access token ends itself, on every instance, until it would have expired.
// A token of another client is refused (§2.1); an unknown, expired or
// already revoked one is answered 200 like a revoked one (§2.2). token_type_hint
// is not needed: the two kinds are told apart by their form.
func (p *Provider) serveRevoke(w http.ResponseWriter, r *http.Request) {
	c, raw, terr := p.readTokenParam(w, r, "revocation")
	if terr != nil {
		p.writeTokenError(w, "revocation", terr)
		return
	}
	ctx := r.Context()
	if looksLikeJWT(raw) {
		a, err := p.tokens.VerifyAccess(ctx, raw, p.issuer)
		if err == nil {
			if a.ClientID != c.ID {
				p.writeTokenError(w, "revocation", &tokenError{http.StatusBadRequest, "unauthorized_client", "the token was issued to another client", 0})
				return
			}
			if err := p.revocations.Revoke(ctx, a.ID, a.Expiry.Add(token.Leeway+time.Minute)); err != nil {
				p.logger.Error("oidc: revoke: recording the revocation failed", zap.Error(err))
				p.writeTokenError(w, "revocation", errUnavailable)
				return
			}
		}
	} else {
		g, terr := p.liveRefresh(ctx, c, raw, p.now())
		switch {
		case terr == nil:
			p.revokeFamily(ctx, g.Family)
		case terr == errOtherClient:
			p.writeTokenError(w, "revocation", &tokenError{http.StatusBadRequest, "unauthorized_client", "the token was issued to another client", 0})
			return
		case terr.status == http.StatusServiceUnavailable:
			p.writeTokenError(w, "revocation", terr)
			return
		}
	}
	noStore(w)
	w.WriteHeader(http.StatusOK)
}

// introspection is an RFC 7662 §2.2 answer.
type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Aud       any    `json:"aud,omitempty"`
	Iss       string `json:"iss,omitempty"`
	Jti       string `json:"jti,omitempty"`
}

var inactive = introspection{Active: false}

// serveIntrospect is the introspection endpoint (RFC 7662), so that a
// resource server learns whether an access token is still good: revoked
// (RFC 7009, a logout, a reused refresh token) or expired, it is
// {"active":false}. Callers authenticate as at the token endpoint and must
// be confidential clients (§2.1: the endpoint MUST require authorization; a
// public client's id is no secret). Any such client may introspect an
// access token of this issuer, which is what a resource server does; a
// refresh token only its own client may see.
func (p *Provider) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	c, raw, terr := p.readTokenParam(w, r, "introspection")
	if terr != nil {
		p.writeTokenError(w, "introspection", terr)
		return
	}
	if c.public() {
		p.writeTokenError(w, "introspection", &tokenError{http.StatusUnauthorized, "invalid_client", "public clients cannot introspect tokens", 0})
		return
	}
	out, err := p.introspect(r.Context(), c, raw)
	if err != nil {
		p.logger.Error("oidc: introspect: the store failed", zap.Error(err))
		p.writeTokenError(w, "introspection", errUnavailable)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

var errStoreFailed = errors.New("oidc: store failed")

func (p *Provider) introspect(ctx context.Context, c *client, raw string) (introspection, error) {
	if looksLikeJWT(raw) {
		a, err := p.tokens.VerifyAccess(ctx, raw, p.issuer)
		if err != nil || p.clients[a.ClientID] == nil {
			return inactive, nil
		}
		aud, _ := a.Claims.GetAudience()
		return introspection{Active: true, Scope: a.Scope, ClientID: a.ClientID, TokenType: "Bearer",
			Exp: a.Expiry.Unix(), Iat: a.IssuedAt.Unix(), Sub: a.Subject, Aud: []string(aud), Iss: p.issuer, Jti: a.ID}, nil
	}
	now := p.now()
	g, terr := p.liveRefresh(ctx, c, raw, now)
	if terr != nil {
		if terr.status == http.StatusServiceUnavailable {
			return inactive, errStoreFailed
		}
		return inactive, nil
	}
	// A rotated refresh token stays active only within the reuse grace.
	first, used, err := p.firstUse(ctx, hashKey("refresh-used", raw))
	if err != nil {
		return inactive, errStoreFailed
	}
	if used && (p.grace <= 0 || now.Sub(first) > p.grace) {
		return inactive, nil
	}
	return introspection{Active: true, Scope: strings.Join(g.Scope, " "), ClientID: g.ClientID, TokenType: "refresh_token",
		Exp: g.Expires, Sub: p.subject(c, g.Subject), Iss: p.issuer}, nil
}
