// Package token mints and checks caddy-idv's signed tokens: the session token
// (docs/reference.md, "Tokens") and, for the OIDC provider, ID and access
// tokens. It is the
// only place that touches the signing keys.
//
// Keys are ES256 (ECDSA P-256) key pairs kept in the shared store, so they
// survive restarts and reloads and every instance that shares the store signs
// and verifies with the same keys. A signing key is used for RotateEvery, then
// retired: it no longer signs but stays published (and accepted) until the
// last token it signed has expired.
package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/caddy-idv/caddy-idv/store"
)

// keysKey is where the key ring lives in the store.
const keysKey = "keys/signing"

// RotateEvery is how long one key signs before a new one takes over.
const RotateEvery = 7 * 24 * time.Hour

// refreshEvery bounds how stale an instance's view of the key ring may be.
const refreshEvery = time.Minute

// unknownKidBackoff bounds how often an unknown kid may trigger a reload, so
// that tokens with random kids cannot hammer the store.
const unknownKidBackoff = 10 * time.Second

type storedKey struct {
	KID     string    `json:"kid"`
	DER     []byte    `json:"der"` // SEC 1 EC private key
	Created time.Time `json:"created"`
	Retire  time.Time `json:"retire"` // stops signing
	Expire  time.Time `json:"expire"` // stops being published and accepted
}

type ring struct {
	signing *key
	byKID   map[string]*key
	jwks    []byte
	etag    string
	loaded  time.Time
}

type key struct {
	kid     string
	private *ecdsa.PrivateKey
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

// Load reads the key ring from the store, creating or rotating the signing key
// when needed (under the store's lock, so instances never race to create two).
// The module calls it at provision time and then Refresh in the background.
func (k *Keyring) Load(ctx context.Context) error {
	r, err := k.read(ctx)
	if err == nil && r.signing != nil {
		k.set(r)
		return nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	unlock, err := k.store.Lock(ctx, "keys")
	if err != nil {
		return fmt.Errorf("token: lock key ring: %w", err)
	}
	defer unlock()
	// Another instance may have rotated while we waited for the lock.
	stored, err := k.readStored(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	now := k.now()
	if sk := current(stored, now); sk == nil {
		nk, err := newStoredKey(now, k.maxLifetime)
		if err != nil {
			return err
		}
		stored = append(prune(stored, now), nk)
		raw, err := json.Marshal(stored)
		if err != nil {
			return fmt.Errorf("token: encode key ring: %w", err)
		}
		if err := k.store.Set(ctx, keysKey, raw, 0); err != nil {
			return fmt.Errorf("token: save key ring: %w", err)
		}
	}
	r, err = build(stored, now)
	if err != nil {
		return err
	}
	k.set(r)
	return nil
}

// Refresh reloads the ring when the cached view is older than a minute or
// the signing key has retired. Errors leave the cached ring in place.
func (k *Keyring) Refresh(ctx context.Context) error {
	k.mu.RLock()
	r := k.cur
	k.mu.RUnlock()
	now := k.now()
	if r != nil && now.Sub(r.loaded) < refreshEvery && r.signing != nil && now.Before(r.signing.retire) {
		return nil
	}
	return k.Load(ctx)
}

func (k *Keyring) set(r *ring) {
	k.mu.Lock()
	k.cur = r
	k.mu.Unlock()
}

func (k *Keyring) readStored(ctx context.Context) ([]storedKey, error) {
	raw, err := k.store.Get(ctx, keysKey)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("token: read key ring: %w", err)
	}
	var stored []storedKey
	if err := json.Unmarshal(raw, &stored); err != nil {
		return nil, fmt.Errorf("token: decode key ring: %w", err)
	}
	return stored, nil
}

func (k *Keyring) read(ctx context.Context) (*ring, error) {
	stored, err := k.readStored(ctx)
	if err != nil {
		return nil, err
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

func newStoredKey(now time.Time, maxLifetime time.Duration) (storedKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return storedKey{}, fmt.Errorf("token: generate key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		return storedKey{}, fmt.Errorf("token: encode key: %w", err)
	}
	retire := now.Add(RotateEvery)
	return storedKey{
		KID:     thumbprint(&priv.PublicKey),
		DER:     der,
		Created: now,
		Retire:  retire,
		Expire:  retire.Add(maxLifetime + time.Hour),
	}, nil
}

func build(stored []storedKey, now time.Time) (*ring, error) {
	r := &ring{byKID: make(map[string]*key), loaded: now}
	var pub []jwk
	var signingCreated time.Time
	for _, s := range stored {
		if !now.Before(s.Expire) {
			continue
		}
		priv, err := x509.ParseECPrivateKey(s.DER)
		if err != nil {
			return nil, fmt.Errorf("token: decode key %s: %w", s.KID, err)
		}
		if priv.Curve != elliptic.P256() {
			return nil, fmt.Errorf("token: key %s is not P-256", s.KID)
		}
		kk := &key{kid: s.KID, private: priv, retire: s.Retire, expire: s.Expire}
		r.byKID[s.KID] = kk
		pub = append(pub, publicJWK(s.KID, &priv.PublicKey))
		if now.Before(s.Retire) && (r.signing == nil || s.Created.After(signingCreated)) {
			r.signing, signingCreated = kk, s.Created
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

// signer returns the current signing key.
func (k *Keyring) signer() (*key, error) {
	k.mu.RLock()
	r := k.cur
	k.mu.RUnlock()
	if r == nil || r.signing == nil {
		return nil, errors.New("token: no signing key loaded")
	}
	return r.signing, nil
}

// publicKey returns the verification key for kid. On an unknown kid it
// reloads the ring from the store at most once per unknownKidBackoff, so a
// key created by another instance is found without waiting for Refresh.
func (k *Keyring) publicKey(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	k.mu.RLock()
	r := k.cur
	k.mu.RUnlock()
	if r != nil {
		if kk, ok := r.byKID[kid]; ok && k.now().Before(kk.expire) {
			return &kk.private.PublicKey, nil
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
	if nr.signing != nil {
		k.set(nr)
	}
	if kk, ok := nr.byKID[kid]; ok {
		return &kk.private.PublicKey, nil
	}
	return nil, ErrUnknownKey
}

// PublicKey returns the verification key for kid, for other token kinds
// signed with this ring (OIDC ID and access tokens). See publicKey.
func (k *Keyring) PublicKey(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	return k.publicKey(ctx, kid)
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

type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	KID string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

func publicJWK(kid string, pub *ecdsa.PublicKey) jwk {
	x, y := coords(pub)
	return jwk{Kty: "EC", Crv: "P-256", X: x, Y: y, KID: kid, Use: "sig", Alg: "ES256"}
}

func coords(pub *ecdsa.PublicKey) (x, y string) {
	raw, err := pub.Bytes() // 0x04 ‖ X ‖ Y
	if err != nil || len(raw) != 65 {
		return "", ""
	}
	return base64.RawURLEncoding.EncodeToString(raw[1:33]), base64.RawURLEncoding.EncodeToString(raw[33:])
}

// thumbprint is the RFC 7638 JWK thumbprint, used as the kid.
func thumbprint(pub *ecdsa.PublicKey) string {
	x, y := coords(pub)
	sum := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
