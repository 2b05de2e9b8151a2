package token

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Session is a verified session: one of this site's session tokens, or a
// token of a trusted issuer (External).
type Session struct {
	Raw      string
	Issuer   string
	Subject  string
	Audience []string
	ID       string // jti
	SID      string
	Provider string // idv
	ACR      string
	AMR      []string
	IssuedAt time.Time
	Expiry   time.Time
	AuthTime time.Time
	// External is true for a token of a trusted issuer: its Subject is
	// issuer-qualified and its Provider is the issuer, never a claim of
	// the token (see External).
	External bool
	// Claims are all claims of the token, as decoded from JSON.
	Claims map[string]any
	// Values are the claims as strings, computed once per token for Caddy
	// placeholders and headers: arrays are joined with commas, objects are
	// JSON.
	Values map[string]string

	placeholders func(string) (any, bool)
}

// Placeholders resolves Caddy's authentication placeholders from the
// session, as basic_auth and forward_auth set them: {http.auth.user.id} is
// the subject, {http.auth.user.<claim>} any other claim. The function is
// made once per session, so a request that uses it allocates nothing.
func (s *Session) Placeholders() func(string) (any, bool) {
	if s.placeholders == nil {
		s.placeholders = s.placeholder
	}
	return s.placeholders
}

func (s *Session) placeholder(key string) (any, bool) {
	const prefix = "http.auth.user."
	if len(key) <= len(prefix) || key[:len(prefix)] != prefix {
		return nil, false
	}
	claim := key[len(prefix):]
	if claim == "id" {
		return s.Subject, true
	}
	v, ok := s.Values[claim]
	return v, ok
}

// Login is what a completed login puts into a session token.
type Login struct {
	Subject  string
	Provider string // the provider's name, the idv claim
	ACR      string
	AMR      []string
	AuthTime time.Time
	// Claims are the identity claims the operator allowed for the
	// provider; reserved claim names are dropped.
	Claims map[string]any
}

// Sessions issues, renews and verifies the session tokens of one site. It
// is the only code that decides what a session token says.
type Sessions struct {
	svc       *Service
	site      Site
	iss, aud  string
	providers map[string]bool
	lifetime  time.Duration
	idle      time.Duration
	refs      Refs
}

// Sessions returns the session issuer and verifier of site. lifetime is the
// absolute lifetime of a session, idle (0 for none) the sliding idle
// timeout.
func (s *Service) Sessions(site Site, lifetime, idle time.Duration) *Sessions {
	ps := make(map[string]bool, len(site.Providers))
	for _, p := range site.Providers {
		ps[p.Name] = true
	}
	return &Sessions{svc: s, site: site, iss: site.SessionIssuer(), aud: site.SessionAudience(),
		providers: ps, lifetime: lifetime, idle: idle}
}

// Audience is the aud of this site's session tokens.
func (ss *Sessions) Audience() string { return ss.aud }

// Issuer is the iss of this site's session tokens.
func (ss *Sessions) Issuer() string { return ss.iss }

// NewID is 128 random bits, URL-safe: login ids, jti and sid values.
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (Go 1.24+ crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// expiry is the exp of a token issued at now for a login at authTime: the
// absolute lifetime, shortened to the idle timeout when one is set.
func (ss *Sessions) expiry(now, authTime time.Time) time.Time {
	exp := authTime.Add(ss.lifetime)
	if ss.idle > 0 {
		if idle := now.Add(ss.idle); idle.Before(exp) {
			exp = idle
		}
	}
	return exp
}

// Issue signs a new session for a completed login: a new jti and sid, the
// provider's name in idv, and only l's identity claims that are not
// reserved.
func (ss *Sessions) Issue(l Login) (raw string, exp time.Time, err error) {
	if l.Subject == "" || !ss.providers[l.Provider] {
		return "", time.Time{}, fmt.Errorf("token: session: no subject, or provider %q is not offered here", l.Provider)
	}
	now := ss.svc.now()
	authTime := l.AuthTime
	if authTime.IsZero() || authTime.After(now) {
		authTime = now
	}
	exp = ss.expiry(now, authTime)
	claims := jwt.MapClaims{}
	for name, v := range l.Claims {
		if !Reserved(name) {
			claims[name] = v
		}
	}
	claims["iss"] = ss.iss
	claims["sub"] = l.Subject
	claims["aud"] = ss.aud
	claims["iat"] = now.Unix()
	claims["nbf"] = now.Unix()
	claims["exp"] = exp.Unix()
	claims["jti"] = NewID()
	claims["sid"] = NewID()
	claims["auth_time"] = authTime.Unix()
	claims["idv"] = l.Provider
	if l.ACR != "" {
		claims["acr"] = l.ACR
	}
	if len(l.AMR) > 0 {
		claims["amr"] = l.AMR
	}
	raw, err = ss.svc.sign(claims, TypSession)
	return raw, exp, err
}

// Renew re-issues a session whose idle timeout is more than half used,
// keeping its sid, auth_time and claims, so an active session lives until
// its absolute lifetime and an idle one ends after the idle timeout. It
// returns "" when no renewal is due (no idle timeout, enough time left, or
// the absolute lifetime reached).
func (ss *Sessions) Renew(sess *Session) (raw string, exp time.Time, err error) {
	if ss.idle <= 0 || sess.External {
		return "", time.Time{}, nil
	}
	now := ss.svc.now()
	if sess.Expiry.Sub(now) > ss.idle/2 {
		return "", time.Time{}, nil
	}
	exp = ss.expiry(now, sess.AuthTime)
	if !exp.After(sess.Expiry) {
		return "", time.Time{}, nil
	}
	claims := jwt.MapClaims{}
	for k, v := range sess.Claims {
		claims[k] = v
	}
	claims["iat"] = now.Unix()
	claims["nbf"] = now.Unix()
	claims["exp"] = exp.Unix()
	claims["jti"] = NewID()
	raw, err = ss.svc.sign(claims, TypSession)
	return raw, exp, err
}

// Verify checks a session token of this site: the signature (see parse),
// typ idv-session+jwt, an iss this site accepts, its audience, a provider it
// offers, a sub, jti and sid, and that the session was not revoked. A token
// that verified before is answered from the cache until its exp; every
// check but the signature is repeated on each call.
func (ss *Sessions) Verify(ctx context.Context, raw string) (*Session, error) {
	s := ss.svc
	now := s.now()
	if sess := s.cache.get(raw); sess != nil {
		if !now.Before(sess.Expiry.Add(Leeway)) {
			s.cache.remove(raw)
			return nil, ErrExpired
		}
		return ss.accept(sess)
	}
	claims, err := s.parse(ctx, raw, check{typ: TypSession})
	if err != nil {
		return nil, err
	}
	sess, err := sessionFromClaims(raw, claims)
	if err != nil {
		return nil, err
	}
	if _, err := ss.accept(sess); err != nil {
		return nil, err
	}
	s.cache.put(raw, sess, now)
	return sess, nil
}

// ErrExpired is a session token past its expiry.
var ErrExpired = fmt.Errorf("%w: expired", ErrInvalid)

// ErrWrongAudience is a valid session token of another site.
var ErrWrongAudience = fmt.Errorf("%w: wrong audience", ErrInvalid)

func (ss *Sessions) accept(sess *Session) (*Session, error) {
	if !ss.site.issuerOK(sess.Issuer) {
		return nil, fmt.Errorf("%w: wrong issuer", ErrInvalid)
	}
	audOK := false
	for _, a := range sess.Audience {
		if a == ss.aud {
			audOK = true
			break
		}
	}
	if !audOK {
		return nil, ErrWrongAudience
	}
	if !ss.providers[sess.Provider] {
		return nil, fmt.Errorf("%w: provider %q is not offered here", ErrWrongAudience, sess.Provider)
	}
	if ss.svc.revoked(sess.SID) {
		return nil, ErrRevoked
	}
	return sess, nil
}

// Forget drops raw from the verification cache (after logout).
func (ss *Sessions) Forget(raw string) { ss.svc.cache.remove(raw) }

func sessionFromClaims(raw string, c jwt.MapClaims) (*Session, error) {
	sess := &Session{Raw: raw, Claims: c}
	sess.Issuer, _ = c["iss"].(string)
	sess.Subject, _ = c["sub"].(string)
	sess.ID, _ = c["jti"].(string)
	sess.SID, _ = c["sid"].(string)
	sess.Provider, _ = c["idv"].(string)
	sess.ACR, _ = c["acr"].(string)
	aud, err := c.GetAudience()
	if err != nil {
		return nil, fmt.Errorf("%w: aud: %w", ErrInvalid, err)
	}
	sess.Audience = aud
	if sess.Subject == "" || sess.ID == "" || sess.SID == "" || sess.Issuer == "" || sess.Provider == "" {
		return nil, fmt.Errorf("%w: missing sub, jti, sid, iss or idv", ErrInvalid)
	}
	sess.AMR = stringList(c["amr"])
	exp, _ := c.GetExpirationTime()
	sess.Expiry = exp.Time
	if iat, _ := c.GetIssuedAt(); iat != nil {
		sess.IssuedAt = iat.Time
	}
	if at, ok := c["auth_time"].(json.Number); ok {
		if n, err := at.Int64(); err == nil {
			sess.AuthTime = time.Unix(n, 0)
		}
	}
	sess.Values = values(c)
	sess.placeholders = sess.placeholder
	return sess, nil
}

func stringList(v any) []string {
	arr, _ := v.([]any)
	var out []string
	for _, e := range arr {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func values(c map[string]any) map[string]string {
	out := make(map[string]string, len(c))
	for name, v := range c {
		out[name] = Stringify(v)
	}
	return out
}

// External wraps the verified claims of a token from a trusted issuer as a
// Session, kept apart from this site's own sessions: its subject (the
// {http.auth.user.id} placeholder, the sub claim and any header set from
// sub) is "<issuer>#<sub>", so a foreign sub can never equal a local one; its
// idv (Provider) is the issuer URL, set here and never read from the token;
// acr and amr are the issuer's. The caller has checked signature, iss, aud
// and exp.
func External(raw, issuer string, claims map[string]any, expiry time.Time) (*Session, error) {
	sub, _ := claims["sub"].(string)
	if sub == "" || issuer == "" {
		return nil, fmt.Errorf("%w: missing sub or iss", ErrInvalid)
	}
	qualified := issuer + "#" + sub
	c := make(map[string]any, len(claims)+1)
	for k, v := range claims {
		c[k] = v
	}
	c["sub"] = qualified
	c["idv"] = issuer
	sess := &Session{Raw: raw, Issuer: issuer, Subject: qualified, Provider: issuer, Expiry: expiry, External: true, Claims: c}
	sess.SID, _ = c["sid"].(string)
	sess.ACR, _ = c["acr"].(string)
	sess.AMR = stringList(c["amr"])
	sess.Values = values(c)
	sess.placeholders = sess.placeholder
	return sess, nil
}
