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
	"events": true, grantClaim: true,
}

// Reserved reports whether claim is set by the module itself.
func Reserved(claim string) bool { return reserved[claim] }

// Service signs and verifies every kind of token with one key ring. Session
// tokens that verified are cached, so that a protected request costs a map
// lookup instead of an ECDSA verification.
type Service struct {
	keys    *Keyring
	revoked func(sid string) bool
	now     func() time.Time
	cache   *cache // verified tokens, by their bytes
	refs    *cache // verified sessions, by the reference naming them
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
	return &Service{keys: keys, revoked: revoked, now: now, cache: newCache(cacheSize), refs: newCache(cacheSize)}
}

// Keys returns the key ring.
func (s *Service) Keys() *Keyring { return s.keys }

// Revoked reports whether the session sid was ended.
func (s *Service) Revoked(sid string) bool { return s.revoked(sid) }

// sign signs claims with the current ES256 key, with the kid and typ
// headers: session and access tokens. Only the named issuers of each kind
// call it.
func (s *Service) sign(claims jwt.MapClaims, typ string) (string, error) {
	return s.signWith(claims, typ, ES256)
}

// signWith signs with the current key of alg (ES256 or RS256): ID and
// logout tokens, in the algorithm their client registered.
func (s *Service) signWith(claims jwt.MapClaims, typ, alg string) (string, error) {
	var method jwt.SigningMethod
	switch alg {
	case ES256:
		method = jwt.SigningMethodES256
	case RS256:
		method = jwt.SigningMethodRS256
	default:
		return "", fmt.Errorf("token: sign: unsupported algorithm %q", alg)
	}
	k, err := s.keys.signer(alg)
	if err != nil {
		return "", err
	}
	t := jwt.NewWithClaims(method, claims)
	t.Header["kid"] = k.kid
	t.Header["typ"] = typ
	raw, err := t.SignedString(k.private)
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	return raw, nil
}

// maxTokenSize bounds what is parsed at all; our tokens are far smaller.
const maxTokenSize = 16 << 10

// check is what parse requires of a token besides the signature.
type check struct {
	// typ is the only typ header accepted (compared without regard to
	// case, as RFC 7515 §4.1.9 recommends for media types).
	typ string
	// anyTime skips exp, nbf and iat: only for id_token_hint, which may be
	// expired (OpenID Connect RP-Initiated Logout 1.0 §2).
	anyTime bool
	// algs are the accepted algorithms; ES256 alone when empty.
	algs []string
}

// parse verifies a JWT signed by this ring: an algorithm of c.algs (ES256
// unless the kind allows RS256 too; never none, never a symmetric algorithm
// keyed with a public key), a known kid whose key is of that very
// algorithm, the signature, the typ of the expected kind, and unless
// c.anyTime exp (required), nbf and iat with Leeway. It does not check iss
// or aud: each kind's verifier does.
func (s *Service) parse(ctx context.Context, raw string, c check) (jwt.MapClaims, error) {
	if raw == "" || len(raw) > maxTokenSize {
		return nil, fmt.Errorf("%w: empty or too large", ErrInvalid)
	}
	accepted := c.algs
	if len(accepted) == 0 {
		accepted = []string{ES256}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(accepted),
		jwt.WithJSONNumber(),
	}
	if c.anyTime {
		opts = append(opts, jwt.WithoutClaimsValidation())
	} else {
		now := s.now()
		opts = append(opts, jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(Leeway),
			jwt.WithTimeFunc(func() time.Time { return now }))
	}
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(opts...).ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, c.typ) {
			return nil, fmt.Errorf("typ %q is not %q", typ, c.typ)
		}
		if _, ok := t.Header["crit"]; ok {
			// We use no header extension, so we understand none: a token
			// that says one is critical is refused (RFC 7515 §4.1.11).
			return nil, errors.New("crit header")
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid")
		}
		k, err := s.keys.publicKey(ctx, kid)
		if err != nil {
			return nil, err
		}
		// A key signs with one algorithm only (RFC 7517 §4.4 "alg").
		if t.Method.Alg() != k.alg {
			return nil, fmt.Errorf("alg %s with a %s key", t.Method.Alg(), k.alg)
		}
		return k.public, nil
	})
	if errors.Is(err, jwt.ErrTokenExpired) {
		return nil, fmt.Errorf("%w: %w", ErrExpired, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return claims, nil
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
