package token

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Grant is what the OpenID Connect provider puts into the tokens it issues
// to one client for one session.
type Grant struct {
	Issuer   string
	ClientID string
	Subject  string // as the client sees it (pairwise where configured)
	// SID is the session id as the client sees it (its own for a pairwise
	// client).
	SID string
	// GrantID names the grant (the refresh token family) the tokens come
	// from, so that revoking the grant revokes its access tokens too
	// (RFC 7009 §2.1). Access tokens carry it as idv_grant.
	GrantID  string
	AuthTime int64
	ACR      string
	AMR      []string
	// Claims are the identity claims the granted scope releases.
	Claims map[string]any
}

func (g *Grant) base(now time.Time, lifetime time.Duration) jwt.MapClaims {
	c := jwt.MapClaims{}
	for name, v := range g.Claims {
		if !Reserved(name) {
			c[name] = v
		}
	}
	c["iss"] = g.Issuer
	c["sub"] = g.Subject
	c["iat"] = now.Unix()
	c["exp"] = now.Add(lifetime).Unix()
	c["sid"] = g.SID
	c["auth_time"] = g.AuthTime
	if g.ACR != "" {
		c["acr"] = g.ACR
	}
	if len(g.AMR) > 0 {
		c["amr"] = g.AMR
	}
	return c
}

// grantClaim carries Grant.GrantID in access tokens.
const grantClaim = "idv_grant"

// IssueAccess signs an OAuth 2.0 access token in the JWT profile of RFC
// 9068: typ at+jwt, always ES256 (the access token is for this issuer and
// for resource servers that read our JWKS, not for the client, so the
// client's ID token algorithm does not apply), aud the client and the
// issuer (so the issuer's own userinfo endpoint accepts it), client_id,
// scope, jti, and the grant it came from.
func (s *Service) IssueAccess(g Grant, scope string, lifetime time.Duration) (string, error) {
	c := g.base(s.now(), lifetime)
	c["aud"] = []string{g.ClientID, g.Issuer}
	c["client_id"] = g.ClientID
	c["scope"] = scope
	c["jti"] = NewID()
	if g.GrantID != "" {
		c[grantClaim] = g.GrantID
	}
	return s.sign(c, TypAccess)
}

// IssueID signs an OpenID Connect ID token (Core §2) with alg, the
// client's id_token_signed_response_alg (ES256 or RS256): aud and azp the
// client, at_hash of the access token issued with it (Core §3.1.3.6, with
// the hash of alg), and nonce when the authorization request had one.
func (s *Service) IssueID(g Grant, nonce, accessToken string, lifetime time.Duration, alg string) (string, error) {
	c := g.base(s.now(), lifetime)
	c["aud"] = g.ClientID
	c["azp"] = g.ClientID
	if accessToken != "" {
		h, err := algHash(alg)
		if err != nil {
			return "", err
		}
		c["at_hash"] = halfHash(h, accessToken)
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	return s.signWith(c, TypID, alg)
}

// algHash is the hash function of a JWS algorithm (RFC 7518 §3.1), which
// at_hash and c_hash use (OpenID Connect Core §3.1.3.6).
func algHash(alg string) (hash.Hash, error) {
	switch alg {
	case ES256, RS256:
		return sha256.New(), nil
	}
	return nil, fmt.Errorf("token: unsupported algorithm %q", alg)
}

// halfHash is the left half of h(v), base64url.
func halfHash(h hash.Hash, v string) string {
	h.Write([]byte(v))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// Access is a verified access token.
type Access struct {
	ClientID string
	Subject  string
	SID      string
	Scope    string
	// ID is its jti, GrantID the grant it came from ("" for tokens issued
	// before grants were named).
	ID       string
	GrantID  string
	IssuedAt time.Time
	Expiry   time.Time
	Claims   jwt.MapClaims
}

// VerifyAccess checks an access token this issuer signed (RFC 9068 §4):
// typ at+jwt, ES256, the signature, exp, iss, an aud that contains the
// issuer and the token's client_id, a sub, sid and jti, and that neither
// its session, nor the token itself (RFC 7009 revocation), nor its grant
// was revoked. It does not check that the client is still registered or
// what the scope allows: the caller does.
func (s *Service) VerifyAccess(ctx context.Context, raw, issuer string) (*Access, error) {
	c, err := s.parse(ctx, raw, check{typ: TypAccess})
	if err != nil {
		return nil, err
	}
	if iss, _ := c["iss"].(string); iss != issuer {
		return nil, fmt.Errorf("%w: wrong issuer", ErrInvalid)
	}
	a := &Access{Claims: c}
	a.ClientID, _ = c["client_id"].(string)
	a.Subject, _ = c["sub"].(string)
	a.SID, _ = c["sid"].(string)
	a.Scope, _ = c["scope"].(string)
	a.ID, _ = c["jti"].(string)
	a.GrantID, _ = c[grantClaim].(string)
	aud, err := c.GetAudience()
	if err != nil || !slices.Contains(aud, issuer) || a.ClientID == "" || !slices.Contains(aud, a.ClientID) {
		return nil, fmt.Errorf("%w: not an access token of this issuer", ErrInvalid)
	}
	if a.Subject == "" || a.SID == "" || a.ID == "" {
		return nil, fmt.Errorf("%w: no sub, sid or jti", ErrInvalid)
	}
	if exp, _ := c.GetExpirationTime(); exp != nil {
		a.Expiry = exp.Time
	}
	if iat, _ := c.GetIssuedAt(); iat != nil {
		a.IssuedAt = iat.Time
	}
	if s.revoked(a.SID) || s.revoked(a.ID) || a.GrantID != "" && s.revoked(a.GrantID) {
		return nil, ErrRevoked
	}
	return a, nil
}

// IDTokenHint is what a verified id_token_hint tells.
type IDTokenHint struct {
	ClientID string
	Subject  string
	SID      string
	Expiry   time.Time
}

// VerifyIDTokenHint checks an ID token this issuer signed, presented back
// as id_token_hint: typ JWT, ES256 or RS256, the signature, iss, exactly
// one aud equal to azp. Its time is not checked (OpenID Connect
// RP-Initiated Logout 1.0 §2: an expired ID token is a valid hint), nor
// whether the client is still registered or the session still alive: the
// caller decides.
func (s *Service) VerifyIDTokenHint(ctx context.Context, raw, issuer string) (*IDTokenHint, error) {
	c, err := s.parse(ctx, raw, check{typ: TypID, anyTime: true, algs: []string{ES256, RS256}})
	if err != nil {
		return nil, err
	}
	if iss, _ := c["iss"].(string); iss != issuer {
		return nil, fmt.Errorf("%w: wrong issuer", ErrInvalid)
	}
	aud, err := c.GetAudience()
	azp, _ := c["azp"].(string)
	if err != nil || len(aud) != 1 || azp != aud[0] {
		return nil, fmt.Errorf("%w: not an ID token", ErrInvalid)
	}
	h := &IDTokenHint{ClientID: azp}
	h.Subject, _ = c["sub"].(string)
	h.SID, _ = c["sid"].(string)
	if exp, _ := c.GetExpirationTime(); exp != nil {
		h.Expiry = exp.Time
	}
	return h, nil
}
