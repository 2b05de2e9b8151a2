package caddymodule

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/caddy-idv/caddy-idv/store"
)

// sealKey is the store key of the AES-256 key that seals pending cookies and
// login records, shared by every instance so that any of them can answer a
// status poll (docs/reference.md, "Several instances").
const sealKey = "keys/seal"

// sealer encrypts and authenticates small values with AES-256-GCM. The
// additional data binds a sealed value to its purpose (a cookie name, a
// store key), so one cannot be replayed as the other.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(ctx context.Context, s store.Store) (*sealer, error) {
	key, err := store.LoadOrCreate(ctx, s, sealKey, func() ([]byte, error) {
		key := make([]byte, 32)
		_, err := rand.Read(key)
		return key, err
	})
	if err != nil {
		return nil, fmt.Errorf("idv: seal key: %w", err)
	}
	if len(key) != 32 {
		return nil, errors.New("idv: seal key: stored key has the wrong size")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("idv: seal key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("idv: seal key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(plain []byte, purpose string) string {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("idv: crypto/rand failed: " + err.Error()) // rand.Read never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(purpose)))
}

var errUnseal = errors.New("idv: sealed value is invalid")

func (s *sealer) open(sealed, purpose string) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return nil, errUnseal
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(purpose))
	if err != nil {
		return nil, errUnseal
	}
	return plain, nil
}
