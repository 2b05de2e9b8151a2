package onekosmos

import (
	"context"
	"fmt"

	"github.com/caddy-idv/caddy-idv/store"
)

// LoadKeyPair returns the key pair kept under key in the shared store,
// creating it once. Every instance that shares the store gets the same key:
// the BlockID phone encrypts its answer to the public key registered when
// the session was created, and any instance may be the one that polls.
func LoadKeyPair(ctx context.Context, s store.Store, key string) (*KeyPair, error) {
	raw, err := store.LoadOrCreate(ctx, s, key, func() ([]byte, error) {
		kp, err := GenerateKey()
		if err != nil {
			return nil, err
		}
		return []byte(kp.PrivateBase64()), nil
	})
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
