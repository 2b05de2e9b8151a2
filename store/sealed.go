package store

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"
)

// KeySize is the size of a store encryption key: AES-256.
const KeySize = 32

// sealMagic starts every sealed value. A plaintext secret of the module
// never starts with it: they are random bytes, DER, JSON, hex or base64.
const sealMagic = "idv-sealed:1:"

// keyIDSize is the size of the key id that follows sealMagic.
const keyIDSize = 8

// sealAD prefixes the additional data of every sealed value, which goes on
// with the value's store key: a sealed value copied under another key does
// not open.
const sealAD = "caddy-idv store secret\x00"

// migrateLocks names the locks that serialise the sealing of a plaintext
// secret found in the store.
const migrateLocks = "sealing/"

var (
	// ErrPlaintextSecret is returned by the Get of a [Sealed] store for a
	// secret that the store holds unencrypted, written before encryption
	// was turned on, unless plaintext migration is on.
	ErrPlaintextSecret = errors.New("store: the secret is stored unencrypted (it was written before encryption_key was set); start once with migrate_plaintext to encrypt it in place")
	// ErrUnknownKey is returned for a sealed secret whose key id names
	// none of the keys given.
	ErrUnknownKey = errors.New("store: the secret was encrypted with a key that is not among the encryption keys; add that key (after the new one) to encryption_key")
	// ErrNoKey is returned by the Get of an [Unencrypted] store for a
	// secret that the store holds encrypted.
	ErrNoKey = errors.New("store: the secret is stored encrypted, but no encryption key is set; set encryption_key as on the instances that wrote it")
	// ErrTampered is returned for a sealed secret that does not open with
	// the key its id names.
	ErrTampered = errors.New("store: the encrypted secret does not open: it was changed, or copied from another store key")
)

// IsSecret reports whether the module keeps a secret under key, one that
// would let whoever reads it mint sessions or tokens, forge sealed cookies
// or recover hashed identities. These are every key under "keys/" (signing
// keys "keys/signing", the pending-cookie sealing key "keys/seal", the
// subject-hashing secret "keys/subject"), the OpenID Connect pairwise
// subject secret "oidc/pairwise-secret", the demo wallet's signing key
// "demo/key" and the providers' key pairs "<kind>/<name>/keypair". A new
// secret belongs under "keys/".
func IsSecret(key string) bool {
	return strings.HasPrefix(key, "keys/") ||
		key == "oidc/pairwise-secret" ||
		key == "demo/key" ||
		strings.HasSuffix(key, "/keypair")
}

// ParseKey decodes a store encryption key: 32 bytes, hex (64 digits) or
// base64 (standard or URL alphabet, padded or not). Nothing is derived from
// a key of another length, such as a passphrase: the errors say what is
// wrong without quoting the key.
func ParseKey(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, errors.New("is empty")
	}
	var key []byte
	if len(text) == 2*KeySize {
		if b, err := hex.DecodeString(text); err == nil {
			key = b
		}
	}
	if key == nil {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(text); err == nil {
				key = b
				break
			}
		}
	}
	if key == nil {
		return nil, fmt.Errorf("is neither base64 nor hex; want %d random bytes, for example from `openssl rand -base64 %d`", KeySize, KeySize)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("decodes to %d bytes; want %d random bytes, for example from `openssl rand -base64 %d`", len(key), KeySize, KeySize)
	}
	if bytes.Count(key, key[:1]) == len(key) {
		return nil, errors.New("is one byte repeated, not random")
	}
	return key, nil
}

// maxKeyFile bounds what ReadKeyFile reads: a key file holds one encoded
// key and perhaps a newline.
const maxKeyFile = 1024

// ReadKeyFile reads a store encryption key from the file at path, encoded
// as ParseKey accepts it (surrounding white space ignored). Errors name the
// path, never what the file holds.
func ReadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%s: longer than a key file (%d bytes at most)", path, maxKeyFile)
	}
	key, err := ParseKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: the key %w", path, err)
	}
	return key, nil
}

// KeyID is the id under which a sealed value names the key that sealed it:
// 8 bytes of a hash of the key, shown in hex. It tells keys apart and says
// nothing about them.
func KeyID(key []byte) string {
	id := keyID(key)
	return hex.EncodeToString(id[:])
}

func keyID(key []byte) [keyIDSize]byte {
	sum := sha256.Sum256(append([]byte("caddy-idv store key id\x00"), key...))
	return [keyIDSize]byte(sum[:keyIDSize])
}

// SealOptions configures [Sealed].
type SealOptions struct {
	// Keys are AES-256 keys of KeySize bytes (see ParseKey). The first
	// seals every write; each of them opens what it sealed, and a secret
	// read that another key sealed is sealed again with the first, so a
	// key being replaced stays in the list, after the new one, until every
	// secret has been read once.
	Keys [][]byte
	// IsSecret picks the store keys whose values are sealed.
	// Default: IsSecret.
	IsSecret func(key string) bool
	// MigratePlaintext makes Get seal a secret it finds unencrypted in
	// place, instead of refusing it with ErrPlaintextSecret. Anyone who
	// can write to the store could plant a secret of their own while it
	// is on, so it is meant for the first start after encryption is
	// turned on.
	MigratePlaintext bool
	// Logger receives a line per secret sealed in place. Default: none.
	Logger *zap.Logger
}

// Sealed returns a store that keeps the values of inner's secret keys (see
// SealOptions.IsSecret) sealed with AES-256-GCM: each value is stored as
// sealMagic, the id of the key that sealed it (KeyID), a random 12-byte
// nonce and the ciphertext, with the store key bound as additional data.
// Secrets are taken to have no lifetime: one sealed again in place (after
// migration or rotation) is written without one.
// Other keys, List, Delete and Lock go to inner unchanged, and so do
// Publish and Subscribe: the result is a [Notifier] when inner is one.
// [Unwrap] returns inner.
func Sealed(inner Store, opts SealOptions) (Store, error) {
	if len(opts.Keys) == 0 {
		return nil, errors.New("store: sealed: no encryption key")
	}
	s := &sealed{
		inner:    inner,
		isSecret: opts.IsSecret,
		migrate:  opts.MigratePlaintext,
		logger:   opts.Logger,
		byID:     make(map[[keyIDSize]byte]cipher.AEAD, len(opts.Keys)),
	}
	if s.isSecret == nil {
		s.isSecret = IsSecret
	}
	if s.logger == nil {
		s.logger = zap.NewNop()
	}
	for i, key := range opts.Keys {
		if len(key) != KeySize {
			return nil, fmt.Errorf("store: sealed: key %d has %d bytes, want %d", i+1, len(key), KeySize)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("store: sealed: key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("store: sealed: key %d: %w", i+1, err)
		}
		id := keyID(key)
		if _, dup := s.byID[id]; dup {
			return nil, fmt.Errorf("store: sealed: key %d is given twice", i+1)
		}
		s.byID[id] = aead
		if i == 0 {
			s.sealID, s.sealWith = id, aead
		}
	}
	return s.withNotifier(), nil
}

// Unencrypted returns a store that keeps every value as inner does, as a
// deployment without encryption keys does, but refuses a secret that it
// finds encrypted with ErrNoKey rather than hand the sealed bytes to a
// caller that would fail to parse them. Like [Sealed], it is a [Notifier]
// when inner is one, and [Unwrap] returns inner.
func Unencrypted(inner Store) Store {
	s := &sealed{inner: inner, isSecret: IsSecret, logger: zap.NewNop()}
	return s.withNotifier()
}

func (s *sealed) withNotifier() Store {
	if n, ok := s.inner.(Notifier); ok {
		return &sealedNotifier{sealed: s, Notifier: n}
	}
	return s
}

// Unwrap returns the store that s wraps, through any number of wrappers
// such as [Sealed], or s itself.
func Unwrap(s Store) Store {
	for {
		w, ok := s.(interface{ Unwrap() Store })
		if !ok {
			return s
		}
		s = w.Unwrap()
	}
}

type sealed struct {
	inner    Store
	isSecret func(string) bool
	migrate  bool
	logger   *zap.Logger
	// sealID and sealWith are the first key's; without keys (Unencrypted)
	// sealWith is nil and values are kept as they are.
	sealID   [keyIDSize]byte
	sealWith cipher.AEAD
	byID     map[[keyIDSize]byte]cipher.AEAD
}

type sealedNotifier struct {
	*sealed
	Notifier
}

func (s *sealed) Unwrap() Store { return s.inner }

func additionalData(key string) []byte { return []byte(sealAD + key) }

// seal encrypts value for key with the first key.
func (s *sealed) seal(key string, value []byte) []byte {
	n := s.sealWith.NonceSize()
	out := make([]byte, 0, len(sealMagic)+keyIDSize+n+len(value)+s.sealWith.Overhead())
	out = append(out, sealMagic...)
	out = append(out, s.sealID[:]...)
	nonce := make([]byte, n)
	// crypto/rand.Read does not fail (it panics on broken systems).
	_, _ = rand.Read(nonce)
	out = append(out, nonce...)
	return s.sealWith.Seal(out, nonce, value, additionalData(key))
}

// open decrypts what seal made for key.
func (s *sealed) open(key string, raw []byte) ([]byte, error) {
	rest := raw[len(sealMagic):]
	if len(rest) < keyIDSize {
		return nil, ErrTampered
	}
	aead, ok := s.byID[[keyIDSize]byte(rest[:keyIDSize])]
	if !ok {
		return nil, fmt.Errorf("%w (key id %s)", ErrUnknownKey, hex.EncodeToString(rest[:keyIDSize]))
	}
	rest = rest[keyIDSize:]
	n := aead.NonceSize()
	if len(rest) < n+aead.Overhead() {
		return nil, ErrTampered
	}
	plain, err := aead.Open(nil, rest[:n], rest[n:], additionalData(key))
	if err != nil {
		return nil, ErrTampered
	}
	return plain, nil
}

func isSealed(raw []byte) bool { return bytes.HasPrefix(raw, []byte(sealMagic)) }

// Get returns the value of key, opened when key is a secret.
func (s *sealed) Get(ctx context.Context, key string) ([]byte, error) {
	raw, err := s.inner.Get(ctx, key)
	if err != nil || !s.isSecret(key) {
		return raw, err
	}
	if s.sealWith == nil {
		if isSealed(raw) {
			return nil, fmt.Errorf("store: get %q: %w", key, ErrNoKey)
		}
		return raw, nil
	}
	if !isSealed(raw) {
		if !s.migrate {
			return nil, fmt.Errorf("store: get %q: %w", key, ErrPlaintextSecret)
		}
		return s.sealInPlace(ctx, key)
	}
	plain, err := s.open(key, raw)
	if err != nil {
		return nil, fmt.Errorf("store: get %q: %w", key, err)
	}
	if !s.sealedWithFirst(raw) {
		// Sealed with a key being replaced: seal it again with the new
		// one, so that the old key can go (see README.md, rotation).
		return s.sealInPlace(ctx, key)
	}
	return plain, nil
}

// sealedWithFirst reports whether the sealed value raw names the first key.
func (s *sealed) sealedWithFirst(raw []byte) bool {
	return bytes.Equal(raw[len(sealMagic):len(sealMagic)+keyIDSize], s.sealID[:])
}

// sealInPlace seals the secret under key with the first key, when it is
// stored unencrypted or sealed with another key, and returns it. Under a
// lock, so that instances starting together seal it once, it reads the
// value again: another instance may have sealed or replaced it meanwhile.
// Every writer of a secret reads it first, and a read that finds it in
// need of sealing waits here too, so none can write a newer value between
// the read below and the write. The secret is written without a lifetime,
// as the module keeps every secret.
func (s *sealed) sealInPlace(ctx context.Context, key string) ([]byte, error) {
	unlock, err := s.inner.Lock(ctx, migrateLocks+key)
	if err != nil {
		return nil, fmt.Errorf("store: get %q: sealing in place: %w", key, err)
	}
	defer unlock()
	raw, err := s.inner.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	plain, what := raw, "encrypted a secret that was stored unencrypted"
	if isSealed(raw) {
		if plain, err = s.open(key, raw); err != nil {
			return nil, fmt.Errorf("store: get %q: %w", key, err)
		}
		if s.sealedWithFirst(raw) {
			return plain, nil
		}
		what = "encrypted a secret again with the first encryption key"
	}
	if err := s.inner.Set(ctx, key, s.seal(key, plain), 0); err != nil {
		return nil, fmt.Errorf("store: get %q: sealing in place: %w", key, err)
	}
	s.logger.Info("store: "+what, zap.String("key", key))
	return plain, nil
}

// Set stores value under key, sealed when key is a secret.
func (s *sealed) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if s.sealWith != nil && s.isSecret(key) {
		value = s.seal(key, value)
	}
	return s.inner.Set(ctx, key, value, ttl)
}

// SetIfAbsent stores value under key, sealed when key is a secret, unless
// a live value is there.
func (s *sealed) SetIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if s.sealWith != nil && s.isSecret(key) {
		value = s.seal(key, value)
	}
	return s.inner.SetIfAbsent(ctx, key, value, ttl)
}

func (s *sealed) Delete(ctx context.Context, key string) error { return s.inner.Delete(ctx, key) }

func (s *sealed) List(ctx context.Context, prefix string) ([]string, error) {
	return s.inner.List(ctx, prefix)
}

func (s *sealed) Lock(ctx context.Context, name string) (func(), error) {
	return s.inner.Lock(ctx, name)
}

var (
	_ Store    = (*sealed)(nil)
	_ Notifier = (*sealedNotifier)(nil)
)
