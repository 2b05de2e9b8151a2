package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-idv/caddy-idv/token"
)

// publicKeyer is a key ring that looks a verification key up by kid,
// reloading from the store for a kid created by another instance.
// *token.Keyring will satisfy it once it exports PublicKey; until then the
// provider reads the keys from the ring's published JWK Set.
type publicKeyer interface {
	PublicKey(ctx context.Context, kid string) (*ecdsa.PublicKey, error)
}

// typedSigner is a token service that can set the JWS typ header, for
// access tokens (typ "at+jwt", RFC 9068 §2.1). Without it, access tokens are
// signed with typ "JWT" and told apart from ID and session tokens by their
// claims alone (client_id, scope and an aud that contains the issuer).
type typedSigner interface {
	SignTyped(claims jwt.Claims, typ string) (string, error)
}

// keySource finds our own verification keys.
type keySource struct {
	ring  *token.Keyring
	ringK publicKeyer // nil when the ring has no PublicKey method

	mu   sync.Mutex
	etag string
	keys map[string]*ecdsa.PublicKey
}

func newKeySource(ring *token.Keyring) *keySource {
	ks := &keySource{ring: ring}
	if pk, ok := any(ring).(publicKeyer); ok {
		ks.ringK = pk
	}
	return ks
}

func (ks *keySource) publicKey(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	if ks.ringK != nil {
		return ks.ringK.PublicKey(ctx, kid)
	}
	body, etag := ks.ring.JWKS()
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if etag != ks.etag || ks.keys == nil {
		keys, err := parseJWKS(body)
		if err != nil {
			return nil, err
		}
		ks.keys, ks.etag = keys, etag
	}
	if k, ok := ks.keys[kid]; ok {
		return k, nil
	}
	return nil, token.ErrUnknownKey
}

func parseJWKS(body []byte) (map[string]*ecdsa.PublicKey, error) {
	var set struct {
		Keys []struct {
			Kty, Crv, X, Y, KID string
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("oidc: jwks: %w", err)
	}
	keys := make(map[string]*ecdsa.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.Kty != "EC" || k.Crv != "P-256" {
			continue
		}
		x, errX := base64.RawURLEncoding.DecodeString(k.X)
		y, errY := base64.RawURLEncoding.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			continue
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), slices.Concat([]byte{4}, x, y))
		if err != nil {
			continue
		}
		keys[k.KID] = pub
	}
	return keys, nil
}

// maxTokenSize bounds what is parsed at all.
const maxTokenSize = 16 << 10

var errToken = errors.New("oidc: token invalid")

// parseOwn verifies a JWT that this provider signed: ES256 only, a kid of
// our key ring, the signature and iss. With checkTime it also requires exp
// and checks exp, nbf and iat with token.Leeway; without it (id_token_hint,
// OpenID Connect RP-Initiated Logout §2) it does not look at time at all.
// It does not check aud or typ: callers do, for the kind of token they
// expect.
func (p *Provider) parseOwn(ctx context.Context, raw string, checkTime bool) (jwt.MapClaims, *jwt.Token, error) {
	if raw == "" || len(raw) > maxTokenSize {
		return nil, nil, fmt.Errorf("%w: empty or too large", errToken)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithJSONNumber(),
		jwt.WithIssuer(p.issuer),
	}
	if checkTime {
		opts = append(opts, jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(token.Leeway),
			jwt.WithTimeFunc(func() time.Time { return p.now() }))
	} else {
		opts = append(opts, jwt.WithoutClaimsValidation())
	}
	claims := jwt.MapClaims{}
	t, err := jwt.NewParser(opts...).ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid")
		}
		return p.keys.publicKey(ctx, kid)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errToken, err)
	}
	if !checkTime {
		// WithoutClaimsValidation skips iss too.
		if iss, _ := claims["iss"].(string); iss != p.issuer {
			return nil, nil, fmt.Errorf("%w: wrong issuer", errToken)
		}
	}
	return claims, t, nil
}
