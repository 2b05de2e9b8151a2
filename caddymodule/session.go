package caddymodule

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/token"
)

// randomID is 128 random bits, URL-safe: login ids, jti and sid values.
func randomID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("idv: crypto/rand failed: " + err.Error()) // never on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// mint issues a session token for a verified identity (docs/reference.md,
// "Tokens"): a new
// jti and sid, the provider's name in idv, and only the identity claims the
// operator allowed for that provider.
func (h *Handler) mint(r *http.Request, p *provider, id *providers.Identity) (string, time.Time, error) {
	now := h.now()
	e := h.expect(r)
	iss := siteOrigin(r)
	if h.OIDC != nil {
		iss = h.OIDC.Issuer
	}
	authTime := id.AuthTime
	if authTime.IsZero() || authTime.After(now) {
		authTime = now
	}
	exp := h.expiry(now, authTime)
	claims := jwt.MapClaims{}
	for name, v := range id.Claims {
		if p.claims[name] && !token.Reserved(name) {
			claims[name] = v
		}
	}
	claims["iss"] = iss
	claims["sub"] = id.Subject
	claims["aud"] = e.Audience
	claims["iat"] = now.Unix()
	claims["nbf"] = now.Unix()
	claims["exp"] = exp.Unix()
	claims["jti"] = randomID()
	claims["sid"] = randomID()
	claims["auth_time"] = authTime.Unix()
	claims["idv"] = p.name
	if id.ACR != "" {
		claims["acr"] = id.ACR
	}
	if len(id.AMR) > 0 {
		claims["amr"] = id.AMR
	}
	raw, err := h.tokens.Sign(claims)
	return raw, exp, err
}

// expiry is the exp of a token issued at now for a login at authTime: the
// absolute lifetime, shortened to the idle timeout when one is set.
func (h *Handler) expiry(now, authTime time.Time) time.Time {
	exp := authTime.Add(time.Duration(h.sc.Lifetime))
	if h.sc.Idle > 0 {
		if idle := now.Add(time.Duration(h.sc.Idle)); idle.Before(exp) {
			exp = idle
		}
	}
	return exp
}

// slide re-issues a browser session whose idle timeout is more than half
// used, keeping its sid and auth_time, so an active session lives until its
// absolute lifetime and an idle one ends after `idle`.
func (h *Handler) slide(w http.ResponseWriter, r *http.Request, sess *token.Session) {
	if h.sc.Idle <= 0 {
		return
	}
	now := h.now()
	if sess.Expiry.Sub(now) > time.Duration(h.sc.Idle)/2 {
		return
	}
	exp := h.expiry(now, sess.AuthTime)
	if !exp.After(sess.Expiry) {
		return
	}
	claims := jwt.MapClaims{}
	for k, v := range sess.Claims {
		claims[k] = v
	}
	claims["iat"] = now.Unix()
	claims["nbf"] = now.Unix()
	claims["exp"] = exp.Unix()
	claims["jti"] = randomID()
	raw, err := h.tokens.Sign(claims)
	if err != nil {
		h.logger.Warn("re-issuing session", zap.Error(err))
		return
	}
	h.setSessionCookie(w, r, raw, exp)
}

func (h *Handler) sameSite() http.SameSite {
	switch h.sc.SameSite {
	case "strict":
		return http.SameSiteStrictMode
	case "none":
		return http.SameSiteNoneMode
	}
	return http.SameSiteLaxMode
}

// setSessionCookie sets the session cookie: HttpOnly, SameSite as
// configured, and Secure whenever the site is served over https.
func (h *Handler) setSessionCookie(w http.ResponseWriter, r *http.Request, raw string, exp time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name:     h.sc.Cookie,
		Value:    raw,
		Path:     "/",
		Domain:   h.sc.Domain,
		Expires:  exp,
		MaxAge:   int(exp.Sub(h.now()).Seconds()),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: h.sameSite(),
	})
}

func (h *Handler) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name:     h.sc.Cookie,
		Value:    "",
		Path:     "/",
		Domain:   h.sc.Domain,
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: h.sameSite(),
	})
}
