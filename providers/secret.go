package providers

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	"github.com/caddy-idv/caddy-idv/store"
)

// SubjectSecretKey is the store key of the secret that keys the subjects
// providers derive from national identifiers and document numbers.
const SubjectSecretKey = "keys/subject"

// LoadSecret returns 32 random bytes kept under key in the shared store,
// created once, so that keyed hashes agree across every instance.
func LoadSecret(ctx context.Context, s store.Store, key string) ([]byte, error) {
	raw, err := store.LoadOrCreate(ctx, s, key, func() ([]byte, error) {
		fresh := make([]byte, 32)
		_, err := rand.Read(fresh)
		return fresh, err
	})
	if err != nil {
		return nil, fmt.Errorf("providers: load secret: %w", err)
	}
	if len(raw) < 32 {
		return nil, fmt.Errorf("providers: stored secret %s is too short", key)
	}
	return raw, nil
}

// KeyedSubject derives a stable, opaque subject from identifying values
// (a personal code, a document number) with HMAC-SHA256 under a secret
// from LoadSecret. A plain hash would not do: national identifiers have so
// few possible values that anyone could recover them by trying them all.
func KeyedSubject(secret []byte, prefix string, parts ...string) string {
	m := hmac.New(sha256.New, secret)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0}) // keeps ("ab","c") apart from ("a","bc")
	}
	return prefix + base64.RawURLEncoding.EncodeToString(m.Sum(nil))[:22]
}
