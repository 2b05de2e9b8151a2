// Package token mints and checks caddy-idv's signed tokens: the session token
// (docs/reference.md, "Tokens") and, for the OIDC provider, ID, access and
// logout tokens. It is the only place that touches the signing keys.
//
// The key ring holds key pairs of two algorithms, kept in the shared store so
// that they survive restarts and reloads and every instance that shares the
// store signs and verifies with the same keys:
//
//   - ES256 (ECDSA P-256) signs session tokens, access tokens and, for
//     clients that ask for it, ID and logout tokens. Small and fast to
//     verify, which matters for the gate, where every request checks one.
//   - RS256 (RSA 2048, RSASSA-PKCS1-v1_5 with SHA-256) signs ID and logout
//     tokens by default: OpenID Connect Core §15.1 requires providers to
//     support it, and relying parties that assume it are common.
//
// A signing key of each algorithm is used for RotateEvery, then retired: it
// no longer signs but stays published (and accepted) until the last token it
// signed has expired.
package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/caddy-idv/caddy-idv/store"
)

// Signing algorithms (RFC 7518 §3.1).
const (
	ES256 = "ES256"
	RS256 = "RS256"
)

// keysKey is where the ES256 keys live in the store; rsaKeysKey the RS256
// ones. They are apart so that a ring written before RS256 existed loads
// unchanged (and gains an RSA key beside it), and so that an instance of an
// older version sharing the store never reads a key it cannot parse.
const (
	keysKey    = "keys/signing"
	rsaKeysKey = "keys/signing-rs256"
)

// rsaBits is the RSA modulus size: 2048 bits, the size RFC 7518 §3.3
// requires at least.
const rsaBits = 2048

// RotateEvery is how long one key signs before a new one takes over.
const RotateEvery = 7 * 24 * time.Hour

// refreshEvery bounds how stale an instance's view of the key ring may be.
const refreshEvery = time.Minute

// unknownKidBackoff bounds how often an unknown kid may trigger a reload, so
// that tokens with random kids cannot hammer the store.
const unknownKidBackoff = 10 * time.Second

// algs are the algorithms of the ring, each with its own list of keys in
// the store.
var algs = []struct {
	alg, storeKey string
}{{ES256, keysKey}, {RS256, rsaKeysKey}}

type storedKey struct {
	KID     string    `json:"kid"`
	DER     []byte    `json:"der"` // ES256: SEC 1 EC private key; RS256: PKCS #1 RSA private key
	Created time.Time `json:"created"`
	Retire  time.Time `json:"retire"` // stops signing
	Expire  time.Time `json:"expire"` // stops being published and accepted
}

type ring struct {
	signing map[string]*key // by algorithm
	byKID   map[string]*key
	jwks    []byte
	etag    string
	loaded  time.Time
}

// complete reports whether the ring has a signing key of every algorithm.
func (r *ring) complete() bool {
	for _, a := range algs {
		if r.signing[a.alg] == nil {
			return false
		}
	}
	return true
}

type key struct {
	kid     string
	alg     string
	private crypto.Signer
	public  crypto.PublicKey
	retire  time.Time
	expire  time.Time
}

// Keyring holds the signing keys, loaded from and created in the store.
type Keyring struct {
	store store.Store
	now   func() time.Time
	// maxLifetime is the longest lifetime of any token signed with these
	// keys; a retired key is published this long after it stopped signing.
	maxLifetime time.Duration

	mu         sync.RWMutex
	cur        *ring
	lastReload time.Time // for the unknown-kid backoff
}

// NewKeyring returns a key ring on s. maxLifetime is the longest lifetime of
// any token the ring will sign.
func NewKeyring(s store.Store, maxLifetime time.Duration, now func() time.Time) *Keyring {
	if now == nil {
		now = time.Now
	}
	return &Keyring{store: s, now: now, maxLifetime: maxLifetime}
}

// Load reads the key ring from the store, creating or rotating the signing
// key of each algorithm when needed (under the store's lock, so instances
// never race to create two). A ring that has no key of an algorithm yet (one
// stored before RS256 was added) gains one; its other keys stay as they are,
// so no token already issued is invalidated. The module calls it at
// provision time and then Refresh in the background.
func (k *Keyring) Load(ctx context.Context) error {
	r, err := k.read(ctx)
	if err == nil && r.complete() {
		k.set(r)
		return nil
	}
	if err != nil {
		return err
	}
	unlock, err := k.store.Lock(ctx, "keys")
	if err != nil {
		return fmt.Errorf("token: lock key ring: %w", err)
	}
	defer unlock()
	// Another instance may have rotated while we waited for the lock.
	now := k.now()
	stored := make(map[string][]storedKey, len(algs))
	for _, a := range algs {
		list, err := k.readStored(ctx, a.storeKey)
		if err != nil {
			return err
		}
		if current(list, now) == nil {
			nk, err := newStoredKey(a.alg, now, k.maxLifetime)
			if err != nil {
				return err
			}
			list = append(prune(list, now), nk)
			raw, err := json.Marshal(list)
			if err != nil {
				return fmt.Errorf("token: encode key ring: %w", err)
			}
			if err := k.store.Set(ctx, a.storeKey, raw, 0); err != nil {
				return fmt.Errorf("token: save key ring: %w", err)
			}
		}
		stored[a.alg] = list
	}
	r, err = build(stored, now)
	if err != nil {
		return err
	}
	k.set(r)
	return nil
}

// Refresh reloads the ring when the cached view is older than a minute or
// a signing key has retired. Errors leave the cached ring in place.
func (k *Keyring) Refresh(ctx context.Context) error {
	k.mu.RLock()
	r := k.cur
	k.mu.RUnlock()
	now := k.now()
	if r != nil && now.Sub(r.loaded) < refreshEvery && r.complete() {
		fresh := true
		for _, s := range r.signing {
			fresh = fresh && now.Before(s.retire)
		}
		if fresh {
			return nil
		}
	}
	return k.Load(ctx)
}

func (k *Keyring) set(r *ring) {
	k.mu.Lock()
	k.cur = r
	k.mu.Unlock()
}

// readStored reads the keys of one algorithm; none stored is an empty list.
func (k *Keyring) readStored(ctx context.Context, storeKey string) ([]storedKey, error) {
	raw, err := k.store.Get(ctx, storeKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("token: read key ring: %w", err)
	}
	var stored []storedKey
	if err := json.Unmarshal(raw, &stored); err != nil {
		return nil, fmt.Errorf("token: decode key ring: %w", err)
	}
	return stored, nil
}

func (k *Keyring) read(ctx context.Context) (*ring, error) {
	stored := make(map[string][]storedKey, len(algs))
	for _, a := range algs {
		list, err := k.readStored(ctx, a.storeKey)
		if err != nil {
			return nil, err
		}
		stored[a.alg] = list
	}
	return build(stored, k.now())
}

func current(stored []storedKey, now time.Time) *storedKey {
	var best *storedKey
	for i := range stored {
		s := &stored[i]
		if now.Before(s.Retire) && !now.Before(s.Created.Add(-time.Minute)) && (best == nil || s.Created.After(best.Created)) {
			best = s
		}
	}
	return best
}

func prune(stored []storedKey, now time.Time) []storedKey {
	out := stored[:0:0]
	for _, s := range stored {
		if now.Before(s.Expire) {
			out = append(out, s)
		}
	}
	return out
}

func newStoredKey(alg string, now time.Time, maxLifetime time.Duration) (storedKey, error) {
	var der []byte
	var pub crypto.PublicKey
	switch alg {
	case ES256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return storedKey{}, fmt.Errorf("token: generate key: %w", err)
		}
		if der, err = x509.MarshalECPrivateKey(priv); err != nil {
			return storedKey{}, fmt.Errorf("token: encode key: %w", err)
		}
		pub = &priv.PublicKey
	case RS256:
		priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
		if err != nil {
			return storedKey{}, fmt.Errorf("token: generate key: %w", err)
		}
		der, pub = x509.MarshalPKCS1PrivateKey(priv), &priv.PublicKey
	default:
		return storedKey{}, fmt.Errorf("token: unknown algorithm %q", alg)
	}
	retire := now.Add(RotateEvery)
	return storedKey{
		KID:     thumbprint(pub),
		DER:     der,
		Created: now,
		Retire:  retire,
		Expire:  retire.Add(maxLifetime + time.Hour),
	}, nil
}

// parseKey decodes a stored private key of alg, refusing any other kind or
// size.
func parseKey(alg string, s storedKey) (crypto.Signer, crypto.PublicKey, error) {
	switch alg {
	case ES256:
		priv, err := x509.ParseECPrivateKey(s.DER)
		if err != nil {
			return nil, nil, fmt.Errorf("token: decode key %s: %w", s.KID, err)
		}
		if priv.Curve != elliptic.P256() {
			return nil, nil, fmt.Errorf("token: key %s is not P-256", s.KID)
		}
		return priv, &priv.PublicKey, nil
	case RS256:
		priv, err := x509.ParsePKCS1PrivateKey(s.DER)
		if err != nil {
			return nil, nil, fmt.Errorf("token: decode key %s: %w", s.KID, err)
		}
		if priv.N.BitLen() < rsaBits {
			return nil, nil, fmt.Errorf("token: key %s is shorter than %d bits", s.KID, rsaBits)
		}
		return priv, &priv.PublicKey, nil
	}
	return nil, nil, fmt.Errorf("token: unknown algorithm %q", alg)
}

func build(stored map[string][]storedKey, now time.Time) (*ring, error) {
	r := &ring{signing: make(map[string]*key, len(algs)), byKID: make(map[string]*key), loaded: now}
	pub := []jwk{}
	for _, a := range algs {
		var signingCreated time.Time
		for _, s := range stored[a.alg] {
			if !now.Before(s.Expire) {
				continue
			}
			priv, pk, err := parseKey(a.alg, s)
			if err != nil {
				return nil, err
			}
			if _, dup := r.byKID[s.KID]; dup {
				return nil, fmt.Errorf("token: key %s is stored twice", s.KID)
			}
			kk := &key{kid: s.KID, alg: a.alg, private: priv, public: pk, retire: s.Retire, expire: s.Expire}
			r.byKID[s.KID] = kk
			pub = append(pub, publicJWK(kk))
			if now.Before(s.Retire) && (r.signing[a.alg] == nil || s.Created.After(signingCreated)) {
				r.signing[a.alg], signingCreated = kk, s.Created
			}
		}
	}
	jwks, err := json.Marshal(struct {
		Keys []jwk `json:"keys"`
	}{Keys: pub})
	if err != nil {
		return nil, fmt.Errorf("token: encode jwks: %w", err)
	}
	sum := sha256.Sum256(jwks)
	r.jwks = jwks
	r.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
	return r, nil
}

// Loaded reports whether signing keys are loaded (for a health check).
func (k *Keyring) Loaded() bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.cur != nil && len(k.cur.signing) > 0
}

// signer returns the current signing key of alg.
func (k *Keyring) signer(alg string) (*key, error) {
	k.mu.RLock()
	r := k.cur
	k.mu.RUnlock()
	if r == nil || r.signing[alg] == nil {
		return nil, fmt.Errorf("token: no %s signing key loaded", alg)
	}
	return r.signing[alg], nil
}

// publicKey returns the verification key for kid. On an unknown kid it
// reloads the ring from the store at most once per unknownKidBackoff, so a
// key created by another instance is found without waiting for Refresh.
func (k *Keyring) publicKey(ctx context.Context, kid string) (*key, error) {
	k.mu.RLock()
	r := k.cur
	k.mu.RUnlock()
	if r != nil {
		if kk, ok := r.byKID[kid]; ok && k.now().Before(kk.expire) {
			return kk, nil
		}
	}
	k.mu.Lock()
	now := k.now()
	if now.Sub(k.lastReload) < unknownKidBackoff {
		k.mu.Unlock()
		return nil, ErrUnknownKey
	}
	k.lastReload = now
	k.mu.Unlock()
	nr, err := k.read(ctx)
	if err != nil {
		return nil, ErrUnknownKey
	}
	if nr.complete() {
		k.set(nr)
	}
	if kk, ok := nr.byKID[kid]; ok && k.now().Before(kk.expire) {
		return kk, nil
	}
	return nil, ErrUnknownKey
}

// JWKS returns the public keys as a JWK Set and an ETag for it.
func (k *Keyring) JWKS() (body []byte, etag string) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.cur == nil {
		return []byte(`{"keys":[]}`), `"empty"`
	}
	return k.cur.jwks, k.cur.etag
}

// jwk is a public key as RFC 7517 §4 and RFC 7518 §6.2 (EC) and §6.3 (RSA)
// write it.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	KID string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

func publicJWK(k *key) jwk {
	switch pub := k.public.(type) {
	case *ecdsa.PublicKey:
		x, y := coords(pub)
		return jwk{Kty: "EC", Crv: "P-256", X: x, Y: y, KID: k.kid, Use: "sig", Alg: k.alg}
	case *rsa.PublicKey:
		n, e := rsaParams(pub)
		return jwk{Kty: "RSA", N: n, E: e, KID: k.kid, Use: "sig", Alg: k.alg}
	}
	return jwk{}
}

func rsaParams(pub *rsa.PublicKey) (n, e string) {
	return base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
}

func coords(pub *ecdsa.PublicKey) (x, y string) {
	raw, err := pub.Bytes() // 0x04 ‖ X ‖ Y
	if err != nil || len(raw) != 65 {
		return "", ""
	}
	return base64.RawURLEncoding.EncodeToString(raw[1:33]), base64.RawURLEncoding.EncodeToString(raw[33:])
}

// thumbprint is the RFC 7638 JWK thumbprint, used as the kid: SHA-256 of
// the required members in lexicographic order.
func thumbprint(pub crypto.PublicKey) string {
	var members string
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		x, y := coords(pub)
		members = `{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`
	case *rsa.PublicKey:
		n, e := rsaParams(pub)
		members = `{"e":"` + e + `","kty":"RSA","n":"` + n + `"}`
	}
	sum := sha256.Sum256([]byte(members))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
