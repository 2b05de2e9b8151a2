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

// scopeClaims returns the claims that the granted scope releases (OpenID
// Connect Core §5.4): email and email_verified with email; every other
// identity claim of the session with profile.
func scopeClaims(g *grant) map[string]any {
	profile, email := g.has(scopeProfile), g.has(scopeEmail)
	out := map[string]any{}
	for name, raw := range g.Claims {
		isEmail := slices.Contains(emailClaims, name)
		if isEmail && !email || !isEmail && !profile || token.Reserved(name) {
			continue
		}
		out[name] = raw
	}
	return out
}

// clientSID is the sid that client c sees for session sid: the session's
// own for a public-subject client; for a pairwise client
// HMAC-SHA256(secret, "sid" || client_id || sid), cut to 128 bits, stable
// within the session and different for every client, so that sid cannot
// join what pairwise subjects keep apart (OpenID Connect Core §8.1,
// Front-/Back-Channel Logout: sid identifies the session at the OP only as
// seen by that RP).
func (p *Provider) clientSID(c *client, sid string) string {
	if c.Subject != SubjectPairwise {
		return sid
	}
	m := hmac.New(sha256.New, p.pairwise)
	var n [8]byte
	m.Write([]byte("sid"))
	binary.BigEndian.PutUint64(n[:], uint64(len(c.ID)))
	m.Write(n[:])
	m.Write([]byte(c.ID))
	m.Write([]byte(sid))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// issued is what one token response carries.
type issued struct {
	IDToken     string
	AccessToken string
	ExpiresIn   int
}

// mint has token/ sign an access token and an ID token for g with scope,
// as client c sees them: its subject and sid, and its ID token algorithm.
func (p *Provider) mint(c *client, g *grant, scope []string, withNonce bool) (*issued, error) {
	view := *g
	view.Scope = scope
	tg := token.Grant{
		Issuer:   p.issuer,
		ClientID: c.ID,
		Subject:  p.subject(c, g.Subject),
		SID:      p.clientSID(c, g.SID),
		GrantID:  g.Family,
		AuthTime: g.AuthTime,
		ACR:      g.ACR,
		AMR:      g.AMR,
		Claims:   scopeClaims(&view),
	}
	accessToken, err := p.tokens.IssueAccess(tg, strings.Join(scope, " "), AccessTokenLifetime)
	if err != nil {
		return nil, fmt.Errorf("oidc: access token: %w", err)
	}
	nonce := ""
	if withNonce {
		nonce = g.Nonce
	}
	idToken, err := p.tokens.IssueID(tg, nonce, accessToken, IDTokenLifetime, c.idTokenAlg())
	if err != nil {
		return nil, fmt.Errorf("oidc: id token: %w", err)
	}
	return &issued{IDToken: idToken, AccessToken: accessToken, ExpiresIn: int(AccessTokenLifetime / time.Second)}, nil
}
