package uqudo

import (
	"context"
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/caddy-idv/caddy-idv/providers/jwsverify"
)

// jwksRefetchInterval bounds how often an unknown kid makes us fetch the
// JWKS again, so that a stream of forged kids cannot turn us into a load
// generator against uqudo (docs/providers/uqudo.md, "Result validation":
// refresh only on a miss).
const jwksRefetchInterval = 10 * time.Second

// maxJWKSSize bounds a JWKS response; uqudo publishes one RSA key.
const maxJWKSSize = 64 << 10

// minRSABits refuses keys too weak to trust, whatever the JWKS says.
const minRSABits = 2048

// errFetch marks a JWKS that could not be fetched: a transport problem, not
// a bad result, so the login stays pending.
var errFetch = errors.New("uqudo: fetch jwks")

// errThrottled marks an unknown kid met while a refetch is not yet allowed:
// uqudo may have rotated its key a moment ago, so the login waits for the
// next allowed refetch instead of failing.
var errThrottled = errors.New("uqudo: jwks refetch throttled")

// remoteKeys is a jwsverify.KeySet over a remote JWKS: cached in memory,
// fetched on first use and again on an unknown kid at most once per
// jwksRefetchInterval.
type remoteKeys struct {
	url    string
	client *http.Client
	now    func() time.Time

	mu        sync.Mutex
	keys      map[string]crypto.PublicKey
	fetchedAt time.Time
}

// Key implements jwsverify.KeySet. A fetch failure is returned wrapping
// errFetch; an unknown kid after a refresh wraps jwsverify.ErrKey.
func (r *remoteKeys) Key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	// One lock across the fetch: concurrent misses wait for one fetch
	// instead of each starting their own.
	r.mu.Lock()
	defer r.mu.Unlock()
	if k, ok := r.keys[kid]; ok {
		return k, nil
	}
	if !r.fetchedAt.IsZero() && r.now().Sub(r.fetchedAt) < jwksRefetchInterval {
		return nil, fmt.Errorf("%w: %w: kid %q not in the JWKS", errThrottled, jwsverify.ErrKey, kid)
	}
	keys, err := r.fetch(ctx)
	if err != nil {
		return nil, err
	}
	r.keys, r.fetchedAt = keys, r.now()
	if k, ok := r.keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: kid %q not in the JWKS", jwsverify.ErrKey, kid)
}

func (r *remoteKeys) fetch(ctx context.Context) (map[string]crypto.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errFetch, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errFetch, err)
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: status %d", errFetch, resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errFetch, err)
	}
	if len(raw) > maxJWKSSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", errFetch, maxJWKSSize)
	}
	keys, err := parseJWKS(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errFetch, err)
	}
	return keys, nil
}

// parseJWKS returns the RSA signing keys of a JWK Set (RFC 7517) by kid.
// Keys of other types, encryption keys, keys without kid and keys shorter
// than minRSABits are skipped rather than refused, so that one odd entry
// does not hide the good ones.
func parseJWKS(raw []byte) (map[string]crypto.PublicKey, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
			Alg string `json:"alg"`
			N   string `json:"n"`
			E   string `json:"e"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("decode jwks: %w", err)
	}
	out := map[string]crypto.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "RSA" || k.Kid == "" || k.Use == "enc" || (k.Alg != "" && k.Alg != "RS256") {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			continue
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < minRSABits || pub.E < 3 || pub.E%2 == 0 {
			continue
		}
		out[k.Kid] = pub
	}
	if len(out) == 0 {
		return nil, errors.New("jwks has no usable RSA key")
	}
	return out, nil
}

// drain reads a little of what is left of body and closes it, so the
// connection can be reused without reading an endless body.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	_ = body.Close()
}

var _ jwsverify.KeySet = (*remoteKeys)(nil)
