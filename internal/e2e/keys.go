package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-idv/caddy-idv/store"
)

// SigningKey is an instance's newest session signing key, read from its
// file storage as an attacker who can read the store would (the storage
// must not be encrypted): tokens it signs are valid by signature, so a test
// can check every other rule with them.
type SigningKey struct {
	KID     string
	Private *ecdsa.PrivateKey
}

// StealSigningKey reads the newest ES256 session signing key from the file
// storage directory an instance ran with.
func StealSigningKey(t testing.TB, storage string) *SigningKey {
	t.Helper()
	st := store.NewCaddy(&certmagic.FileStorage{Path: storage}, nil, nil)
	raw, err := st.Get(context.Background(), "keys/signing")
	if err != nil {
		t.Fatal(err)
	}
	var keys []struct {
		KID     string    `json:"kid"`
		DER     []byte    `json:"der"`
		Created time.Time `json:"created"`
	}
	if err := json.Unmarshal(raw, &keys); err != nil || len(keys) == 0 {
		t.Fatalf("stored keys: %v", err)
	}
	newest := keys[0]
	for _, k := range keys {
		if k.Created.After(newest.Created) {
			newest = k
		}
	}
	priv, err := x509.ParseECPrivateKey(newest.DER)
	if err != nil {
		t.Fatal(err)
	}
	return &SigningKey{KID: newest.KID, Private: priv}
}

// Sign signs claims with the key as ES256, with the given typ header ("":
// none).
func (k *SigningKey) Sign(t testing.TB, c jwt.MapClaims, typ string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = k.KID
	if typ != "" {
		tok.Header["typ"] = typ
	} else {
		delete(tok.Header, "typ")
	}
	raw, err := tok.SignedString(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
