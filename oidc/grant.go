package oidc

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-idv/caddy-idv/token"
)

// grant is what an authorization code or a refresh token stands for: the
// client, the granted scope and the caddy-idv session it came from. It is
// stored (under a hashed key) as JSON.
type grant struct {
	ClientID    string   `json:"client_id"`
	RedirectURI string   `json:"redirect_uri,omitempty"`
	Challenge   string   `json:"code_challenge,omitempty"`
	Nonce       string   `json:"nonce,omitempty"`
	Scope       []string `json:"scope"`
	// The session: its sid, caddy-idv subject, login time and method.
	SID      string   `json:"sid"`
	Subject  string   `json:"sub"`
	AuthTime int64    `json:"auth_time"`
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	// Claims are the session's identity claims (no reserved ones), released
	// by scope when tokens are minted.
	Claims map[string]json.RawMessage `json:"claims,omitempty"`
	// Expires is when the code, or the refresh token family, ends (Unix).
	Expires int64 `json:"exp"`
	// Family is the refresh token family, fixed when the code is issued.
	Family string `json:"family,omitempty"`
}

func (g *grant) has(scope string) bool { return slices.Contains(g.Scope, scope) }

// grantFromSession captures what the tokens need from a verified session.
func grantFromSession(s *token.Session) *grant {
	g := &grant{SID: s.SID, Subject: s.Subject, ACR: s.ACR, AMR: s.AMR, Claims: map[string]json.RawMessage{}}
	at := s.AuthTime
	if at.IsZero() {
		at = s.IssuedAt
	}
	g.AuthTime = at.Unix()
	for name, v := range s.Claims {
		if token.Reserved(name) {
			continue
		}
		raw, err := json.Marshal(v)
		if err != nil {
			continue
		}
		g.Claims[name] = raw
	}
	return g
}

// subject is the sub that client c sees: the caddy-idv subject, or for a
// pairwise client HMAC-SHA256(secret, sector || sub) where the sector is the
// client id (OpenID Connect Core §8.1: every client is its own sector, so
// two clients can never correlate a person by sub).
func (p *Provider) subject(c *client, sub string) string {
	if c.Subject != SubjectPairwise {
		return sub
	}
	m := hmac.New(sha256.New, p.pairwise)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(c.ID)))
	m.Write(n[:])
	m.Write([]byte(c.ID))
	m.Write([]byte(sub))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// scopeClaims adds the claims that the granted scope releases (OpenID
// Connect Core §5.4): email and email_verified with email; every other
// identity claim of the session with profile.
func scopeClaims(dst jwt.MapClaims, g *grant) {
	profile, email := g.has(scopeProfile), g.has(scopeEmail)
	for name, raw := range g.Claims {
		isEmail := slices.Contains(emailClaims, name)
		if isEmail && !email || !isEmail && !profile || token.Reserved(name) {
			continue
		}
		dst[name] = raw
	}
}

// issued is what one token response carries.
type issued struct {
	IDToken     string
	AccessToken string
	ExpiresIn   int
}

// mint signs an access token and an ID token for g, as client c sees them.
func (p *Provider) mint(c *client, g *grant, withNonce bool) (*issued, error) {
	now := p.now()
	sub := p.subject(c, g.Subject)
	scope := strings.Join(g.Scope, " ")

	at := jwt.MapClaims{
		"iss":       p.issuer,
		"sub":       sub,
		"aud":       []string{c.ID, p.issuer},
		"client_id": c.ID,
		"scope":     scope,
		"iat":       now.Unix(),
		"exp":       now.Add(AccessTokenLifetime).Unix(),
		"jti":       randomID(),
		"sid":       g.SID,
		"auth_time": g.AuthTime,
	}
	if g.ACR != "" {
		at["acr"] = g.ACR
	}
	if len(g.AMR) > 0 {
		at["amr"] = g.AMR
	}
	scopeClaims(at, g)
	var accessToken string
	var err error
	if ts, ok := any(p.tokens).(typedSigner); ok {
		accessToken, err = ts.SignTyped(at, "at+jwt")
	} else {
		accessToken, err = p.tokens.Sign(at)
	}
	if err != nil {
		return nil, fmt.Errorf("oidc: access token: %w", err)
	}

	id := jwt.MapClaims{
		"iss":       p.issuer,
		"sub":       sub,
		"aud":       c.ID,
		"azp":       c.ID,
		"iat":       now.Unix(),
		"exp":       now.Add(IDTokenLifetime).Unix(),
		"auth_time": g.AuthTime,
		"sid":       g.SID,
		"at_hash":   atHash(accessToken),
	}
	if withNonce && g.Nonce != "" {
		id["nonce"] = g.Nonce
	}
	if g.ACR != "" {
		id["acr"] = g.ACR
	}
	if len(g.AMR) > 0 {
		id["amr"] = g.AMR
	}
	scopeClaims(id, g)
	idToken, err := p.tokens.Sign(id)
	if err != nil {
		return nil, fmt.Errorf("oidc: id token: %w", err)
	}
	return &issued{IDToken: idToken, AccessToken: accessToken, ExpiresIn: int(AccessTokenLifetime / time.Second)}, nil
}

// atHash is the left half of the SHA-256 of the access token, base64url
// (OpenID Connect Core §3.1.3.6, for ES256).
func atHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}
