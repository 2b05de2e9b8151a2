package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors that callers branch on.
var (
	// ErrInvalid is any token that fails a check; the wrapped error says which.
	ErrInvalid = errors.New("token: invalid")
	// ErrRevoked is a well-formed token whose session was ended.
	ErrRevoked = errors.New("token: session revoked")
	// ErrUnknownKey is a token signed with a key this ring does not know.
	ErrUnknownKey = errors.New("token: unknown signing key")
)

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = 30 * time.Second

// reserved claims are set by the module; identity claims never override them.
var reserved = map[string]bool{
	"iss": true, "sub": true, "aud": true, "iat": true, "nbf": true, "exp": true, "jti": true,
	"sid": true, "auth_time": true, "acr": true, "amr": true, "idv": true, "nonce": true,
	"azp": true, "at_hash": true, "c_hash": true, "scope": true, "client_id": true, "typ": true,
}

// Reserved reports whether claim is set by the module itself.
func Reserved(claim string) bool { return reserved[claim] }

// Service signs tokens with the key ring and verifies session tokens, caching
// verified tokens so that a protected request costs a map lookup instead of
// an ECDSA verification.
type Service struct {
	keys    *Keyring
	revoked func(sid string) bool
	now     func() time.Time
	cache   *cache
}

// NewService returns a token service. revoked reports whether a session id
// has been revoked; it is called on every verification, cached or not, and
// must be cheap (an in-memory set).
func NewService(keys *Keyring, revoked func(sid string) bool, now func() time.Time, cacheSize int) *Service {
	if now == nil {
		now = time.Now
	}
	if revoked == nil {
		revoked = func(string) bool { return false }
	}
	return &Service{keys: keys, revoked: revoked, now: now, cache: newCache(cacheSize)}
}

// Keys returns the key ring.
func (s *Service) Keys() *Keyring { return s.keys }

// Sign signs claims with the current ES256 key and sets the kid header.
func (s *Service) Sign(claims jwt.Claims) (string, error) {
	return s.SignTyped(claims, "")
}

// SignTyped is Sign with a typ header, such as "at+jwt" for OAuth 2.0
// access tokens (RFC 9068 §2.1), so that one kind of token cannot be
// passed off as another. An empty typ keeps "JWT".
func (s *Service) SignTyped(claims jwt.Claims, typ string) (string, error) {
	k, err := s.keys.signer()
	if err != nil {
		return "", err
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["kid"] = k.kid
	if typ != "" {
		t.Header["typ"] = typ
	}
	raw, err := t.SignedString(k.private)
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	return raw, nil
}

// Expect is what a site requires of a session token.
type Expect struct {
	// Audience is the site's session audience; the token's aud must contain it.
	Audience string
	// Issuer, when set, is the only accepted iss.
	Issuer string
	// IssuerDomain, when set instead, accepts an iss that is an origin on this
	// domain or one of its subdomains (sessions shared across subdomains,
	// where each site issues with its own origin).
	IssuerDomain string
}

func (e Expect) issuerOK(iss string) bool {
	if e.Issuer != "" {
		return iss == e.Issuer
	}
	host := iss
	if i := strings.Index(host, "://"); i >= 0 {
		host = host[i+3:]
	} else {
		return false
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	d := e.IssuerDomain
	return d != "" && (host == d || strings.HasSuffix(host, "."+d))
}

// Session is a verified session token.
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
	// Claims are all claims of the token, as decoded from JSON.
	Claims map[string]any
	// Values are the claims as strings, computed once per token for Caddy
	// placeholders and headers: arrays are joined with commas, objects are
	// JSON.
	Values map[string]string
}

// Verify checks a session token: ES256 only, a known kid, signature, exp and
// nbf (with Leeway), iss and aud as expected, a jti and sid, and that the
// session is not revoked. A token that verified before is answered from the
// cache until its exp; the revocation and aud/iss checks are repeated on
// every call.
func (s *Service) Verify(ctx context.Context, raw string, want Expect) (*Session, error) {
	now := s.now()
	if sess := s.cache.get(raw); sess != nil {
		if !now.Before(sess.Expiry.Add(Leeway)) {
			s.cache.remove(raw)
			return nil, fmt.Errorf("%w: expired", ErrInvalid)
		}
		return s.checkSession(sess, want)
	}
	sess, err := s.parse(ctx, raw, now)
	if err != nil {
		return nil, err
	}
	if _, err := s.checkSession(sess, want); err != nil {
		return nil, err
	}
	s.cache.put(raw, sess, now)
	return sess, nil
}

func (s *Service) checkSession(sess *Session, want Expect) (*Session, error) {
	if !want.issuerOK(sess.Issuer) {
		return nil, fmt.Errorf("%w: wrong issuer", ErrInvalid)
	}
	audOK := false
	for _, a := range sess.Audience {
		if a == want.Audience {
			audOK = true
			break
		}
	}
	if !audOK {
		return nil, fmt.Errorf("%w: wrong audience", ErrInvalid)
	}
	if s.revoked(sess.SID) {
		return nil, ErrRevoked
	}
	return sess, nil
}

// Forget drops raw from the verification cache (after logout).
func (s *Service) Forget(raw string) { s.cache.remove(raw) }

// maxTokenSize bounds what is parsed at all; session tokens are far smaller.
const maxTokenSize = 16 << 10

func (s *Service) parse(ctx context.Context, raw string, now time.Time) (*Session, error) {
	if len(raw) > maxTokenSize {
		return nil, fmt.Errorf("%w: too large", ErrInvalid)
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithJSONNumber(),
	)
	claims := jwt.MapClaims{}
	_, err := p.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid")
		}
		return s.keys.publicKey(ctx, kid)
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return sessionFromClaims(raw, claims)
}

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
	if sess.Subject == "" || sess.ID == "" || sess.SID == "" || sess.Issuer == "" {
		return nil, fmt.Errorf("%w: missing sub, jti, sid or iss", ErrInvalid)
	}
	if amr, ok := c["amr"].([]any); ok {
		for _, v := range amr {
			if s, ok := v.(string); ok {
				sess.AMR = append(sess.AMR, s)
			}
		}
	}
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
	sess.Values = make(map[string]string, len(c))
	for name, v := range c {
		sess.Values[name] = Stringify(v)
	}
	return sess, nil
}

// Stringify renders a claim value for a header or placeholder.
func Stringify(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			parts = append(parts, Stringify(e))
		}
		return strings.Join(parts, ",")
	case []string:
		return strings.Join(v, ",")
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(b)
	}
}

// External wraps the verified claims of a token from another issuer (a
// trust_issuer) as a Session, for require rules, headers and placeholders.
// The caller has checked signature, iss, aud and exp.
func External(raw string, claims map[string]any, expiry time.Time) (*Session, error) {
	sess := &Session{Raw: raw, Claims: claims, Expiry: expiry}
	sess.Issuer, _ = claims["iss"].(string)
	sess.Subject, _ = claims["sub"].(string)
	sess.SID, _ = claims["sid"].(string)
	sess.ACR, _ = claims["acr"].(string)
	if sess.Subject == "" || sess.Issuer == "" {
		return nil, fmt.Errorf("%w: missing sub or iss", ErrInvalid)
	}
	sess.Values = make(map[string]string, len(claims))
	for name, v := range claims {
		sess.Values[name] = Stringify(v)
	}
	return sess, nil
}
