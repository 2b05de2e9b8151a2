package onekosmos

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caddy-idv/caddy-idv/store"
)

// LoadKeyPair returns the key pair kept under key in the shared store,
// creating it once. Every instance that shares the store gets the same key:
// the BlockID phone encrypts its answer to the public key registered when
// the session was created, and any instance may be the one that polls.
func LoadKeyPair(ctx context.Context, s store.Store, key string) (*KeyPair, error) {
	raw, err := s.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		kp, gerr := GenerateKey()
		if gerr != nil {
			return nil, gerr
		}
		if _, err := s.SetIfAbsent(ctx, key, []byte(kp.PrivateBase64()), 0); err != nil {
			return nil, fmt.Errorf("onekosmos: save key pair: %w", err)
		}
		// Whoever won the race, everyone uses the stored key.
		raw, err = s.Get(ctx, key)
	}
	if err != nil {
		return nil, fmt.Errorf("onekosmos: load key pair: %w", err)
	}
	kp, err := ParsePrivateKey(string(raw))
	if err != nil {
		return nil, fmt.Errorf("onekosmos: stored key pair %s: %w", key, err)
	}
	return kp, nil
}

// StoreName makes a provider name safe inside a store key.
func StoreName(name string) string {
	out := make([]byte, 0, len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			out = append(out, c)
		} else {
			out = append(out, '%', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&15])
		}
	}
	return string(out)
}

// Consume marks a one-time value as used and reports whether this call was
// the first, across every instance sharing the store.
func Consume(ctx context.Context, s store.Store, key string, ttl time.Duration) (bool, error) {
	first, err := s.SetIfAbsent(ctx, key, []byte{1}, ttl)
	if err != nil {
		return false, fmt.Errorf("onekosmos: consume: %w", err)
	}
	return first, nil
}
