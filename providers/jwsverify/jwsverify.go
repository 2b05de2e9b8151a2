// Package jwsverify validates the signed results that identity providers
// return (the demo wallet's ES256 result, uqudo's RS256 result): one pinned
// algorithm, the key chosen by kid from a key set, exp/iat/nbf with a small
// leeway, jti equal to the provider session id, and each jti accepted once
// across every instance sharing the store.
//
// It does not check provider-specific claims (documents, face match); callers
// do that on the returned claims.
package jwsverify

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-idv/caddy-idv/store"
)

// Errors that callers branch on. Every error Validate returns wraps one of
// them, or a store error.
var (
	ErrMalformed = errors.New("jwsverify: malformed token")
	ErrAlgorithm = errors.New("jwsverify: algorithm not allowed")
	ErrKey       = errors.New("jwsverify: unknown key")
	ErrSignature = errors.New("jwsverify: bad signature")
	ErrExpired   = errors.New("jwsverify: expired")
	ErrClaims    = errors.New("jwsverify: claim check failed")
	ErrSession   = errors.New("jwsverify: jti is not the session id")
	ErrReplay    = errors.New("jwsverify: jti already used")
)

// DefaultLeeway is the clock skew tolerated on exp, nbf and iat.
const DefaultLeeway = 30 * time.Second

// maxSize bounds what is parsed; provider results with document data are a
// few KiB.
const maxSize = 256 << 10

// KeySet finds the verification key for a kid. Implementations that fetch
// keys remotely refetch on an unknown kid at a bounded rate.
type KeySet interface {
	Key(ctx context.Context, kid string) (crypto.PublicKey, error)
}

// StaticKeys is a fixed KeySet.
type StaticKeys map[string]crypto.PublicKey

// Key implements KeySet.
func (s StaticKeys) Key(_ context.Context, kid string) (crypto.PublicKey, error) {
	k, ok := s[kid]
	if !ok {
		return nil, ErrKey
	}
	return k, nil
}

// Validator checks provider result tokens.
type Validator struct {
	// Algorithm is the one accepted JWS alg, such as "ES256" or "RS256".
	Algorithm string
	Keys      KeySet
	// Issuer and Audience are checked when not empty.
	Issuer   string
	Audience string
	// Leeway defaults to DefaultLeeway.
	Leeway time.Duration
	// Store records consumed jtis under "jti/<Namespace>/...".
	Store     store.Store
	Namespace string
	Now       func() time.Time
}

// Validate verifies compact and returns its claims. sessionID is the provider
// session id the result must be about (its jti). On success the jti is
// consumed: a second Validate of a token with the same jti fails with
// ErrReplay, on any instance sharing the store.
func (v *Validator) Validate(ctx context.Context, compact, sessionID string) (jwt.MapClaims, error) {
	if v.Algorithm == "" || v.Keys == nil || v.Store == nil || v.Namespace == "" {
		return nil, errors.New("jwsverify: validator not configured")
	}
	if len(compact) > maxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(compact))
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	leeway := v.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{v.Algorithm}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
	}
	if v.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.Issuer))
	}
	if v.Audience != "" {
		opts = append(opts, jwt.WithAudience(v.Audience))
	}
	if alg, err := headerAlg(compact); err != nil {
		return nil, err
	} else if alg != v.Algorithm {
		return nil, fmt.Errorf("%w: %q", ErrAlgorithm, alg)
	}
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(opts...).ParseWithClaims(compact, claims, func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			// No header extension is understood here, so one marked
			// critical refuses the token (RFC 7515 §4.1.11).
			return nil, fmt.Errorf("%w: crit header", ErrMalformed)
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, fmt.Errorf("%w: no kid", ErrKey)
		}
		k, err := v.Keys.Key(ctx, kid)
		if err != nil {
			return nil, fmt.Errorf("%w: %q", ErrKey, kid)
		}
		return k, nil
	})
	if err != nil {
		return nil, classify(err)
	}
	jti, _ := claims["jti"].(string)
	if jti == "" || jti != sessionID {
		return nil, ErrSession
	}
	exp, _ := claims.GetExpirationTime()
	ttl := exp.Sub(now()) + leeway
	if ttl < time.Second {
		ttl = time.Second
	}
	first, err := store.Consume(ctx, v.Store, ConsumedKey(v.Namespace, jti), ttl)
	if err != nil {
		return nil, fmt.Errorf("jwsverify: consume jti: %w", err)
	}
	if !first {
		return nil, ErrReplay
	}
	return claims, nil
}

// ConsumedKey is the store key that marks jti as used in namespace. The jti
// is hashed: it comes from the provider and must not shape a file name.
func ConsumedKey(namespace, jti string) string {
	sum := sha256.Sum256([]byte(jti))
	return "jti/" + namespace + "/" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// headerAlg reads the alg of a compact JWS before anything else is parsed,
// so that an algorithm outside the pinned one is named as such.
func headerAlg(compact string) (string, error) {
	dot := strings.IndexByte(compact, '.')
	if dot <= 0 || strings.Count(compact, ".") != 2 {
		return "", fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	raw, err := base64.RawURLEncoding.DecodeString(compact[:dot])
	if err != nil {
		return "", fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return "", fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	return h.Alg, nil
}

func classify(err error) error {
	switch {
	case errors.Is(err, ErrKey), errors.Is(err, ErrMalformed):
		return err
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return fmt.Errorf("%w: %w", ErrSignature, err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return fmt.Errorf("%w: %w", ErrExpired, err)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	default:
		return fmt.Errorf("%w: %w", ErrClaims, err)
	}
}
