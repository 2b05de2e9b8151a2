package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/caddy-idv/caddy-idv/store"
	"github.com/caddy-idv/caddy-idv/token"
)

// sessionRefs keeps the session tokens that browser cookies name
// (token.Refs) in the shared store, sealed: they hold the person's claims.
// The store key is a hash of the reference, so a listing of the store
// yields no usable cookie.
type sessionRefs struct {
	store store.Store
	seal  *sealer
	now   func() time.Time
}

func refKey(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return "session/" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func (s sessionRefs) Put(ctx context.Context, ref, raw string, expires time.Time) error {
	key := refKey(ref)
	ttl := expires.Sub(s.now()) + token.Leeway
	if ttl <= 0 {
		return errors.New("idv: session already expired")
	}
	return s.store.Set(ctx, key, []byte(s.seal.seal([]byte(raw), key)), ttl)
}

func (s sessionRefs) Get(ctx context.Context, ref string) (string, error) {
	key := refKey(ref)
	sealed, err := s.store.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%w: no such session", token.ErrInvalid)
	}
	if err != nil {
		return "", err
	}
	raw, err := s.seal.open(string(sealed), key)
	if err != nil {
		return "", fmt.Errorf("%w: %w", token.ErrInvalid, err)
	}
	return string(raw), nil
}

func (s sessionRefs) Delete(ctx context.Context, ref string) error {
	return s.store.Delete(ctx, refKey(ref))
}
