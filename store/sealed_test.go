package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-idv/caddy-idv/store"
	"github.com/caddy-idv/caddy-idv/store/storetest"
)

func newKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, store.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSealed(t *testing.T, inner store.Store, opts store.SealOptions) store.Store {
	t.Helper()
	s, err := store.Sealed(inner, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSealedConformance runs the conformance suite with every value sealed,
// on memory and on the file system storage.
func TestSealedConformance(t *testing.T) {
	all := func(string) bool { return true }
	t.Run("Memory", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T, clock *storetest.Clock) store.Store {
			return mustSealed(t, store.NewMemory(clock.Now), store.SealOptions{Keys: [][]byte{newKey(t)}, IsSecret: all})
		})
	})
	t.Run("Caddy", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T, clock *storetest.Clock) store.Store {
			inner := store.NewCaddy(&certmagic.FileStorage{Path: t.TempDir()}, nil, clock.Now)
			return mustSealed(t, inner, store.SealOptions{Keys: [][]byte{newKey(t)}, IsSecret: all})
		})
	})
}

// TestIsSecret lists the store keys under which the module keeps secrets
// (token, caddymodule, providers, oidc and the 1Kosmos-family providers
// name them) and keys that hold no secret.
func TestIsSecret(t *testing.T) {
	for _, k := range []string{
		"keys/signing", "keys/seal", "keys/subject", "oidc/pairwise-secret", "demo/key",
		"blockid/main/keypair", "onekosmos_idv/kyc%20desk/keypair",
	} {
		if !store.IsSecret(k) {
			t.Errorf("IsSecret(%q) = false", k)
		}
	}
	for _, k := range []string{
		"revoked/abc", "login/abc", "jti/demo/abc", "demo/login/abc", "demo/decision/abc",
		"oidc/code/0a1b", "oidc/refresh/0a1b", "oidc/family-revoked/abc", "blockid/main/answer/abc",
		"blockid/main/consumed/abc", "keys", "demo/keys",
	} {
		if store.IsSecret(k) {
			t.Errorf("IsSecret(%q) = true", k)
		}
	}
}

// TestSealedAtRest checks that a secret written through the sealed store is
// not in the clear behind it: not in what the inner store returns, and not
// in any file of the file system storage.
func TestSealedAtRest(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	inner := store.NewCaddy(&certmagic.FileStorage{Path: dir}, nil, nil)
	s := mustSealed(t, inner, store.SealOptions{Keys: [][]byte{newKey(t)}})
	secret := []byte("a signing key that must stay secret")
	if err := s.Set(ctx, "keys/signing", secret, 0); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.SetIfAbsent(ctx, "oidc/pairwise-secret", secret, 0); err != nil || !ok {
		t.Fatalf("SetIfAbsent = %v, %v", ok, err)
	}
	if err := s.Set(ctx, "revoked/abc", []byte("not secret"), time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"keys/signing", "oidc/pairwise-secret"} {
		got, err := s.Get(ctx, k)
		if err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("Get(%q) through the sealed store = %q, %v", k, got, err)
		}
		raw, err := inner.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, secret[:8]) || !bytes.HasPrefix(raw, []byte("idv-sealed:1:")) {
			t.Errorf("%s in the inner store: %q, want it sealed", k, raw)
		}
	}
	if raw, err := inner.Get(ctx, "revoked/abc"); err != nil || string(raw) != "not secret" {
		t.Errorf("a key that is no secret is stored as %q, %v; want it unchanged", raw, err)
	}
	b64 := []byte(base64.StdEncoding.EncodeToString(secret)[:12])
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, secret[:8]) || bytes.Contains(data, b64) {
			t.Errorf("%s holds the secret in the clear", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSealedRefuses checks that a changed sealed value, a value sealed with
// a key not given, and a sealed value copied under another key name each
// fail with a clear error, never with the value or ErrNotFound.
func TestSealedRefuses(t *testing.T) {
	ctx := t.Context()
	m := store.NewMemory(nil)
	key := newKey(t)
	s := mustSealed(t, m, store.SealOptions{Keys: [][]byte{key}})
	secret := []byte("0123456789abcdef0123456789abcdef")
	if err := s.Set(ctx, "keys/seal", secret, 0); err != nil {
		t.Fatal(err)
	}
	raw, err := m.Get(ctx, "keys/seal")
	if err != nil {
		t.Fatal(err)
	}

	// Every byte after the key id matters: the nonce, the ciphertext and
	// the tag.
	for _, i := range []int{len("idv-sealed:1:") + 8, len("idv-sealed:1:") + 8 + 12, len(raw) - 1} {
		bad := bytes.Clone(raw)
		bad[i] ^= 1
		if err := m.Set(ctx, "keys/seal", bad, 0); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, "keys/seal"); !errors.Is(err, store.ErrTampered) {
			t.Errorf("byte %d changed: Get = %q, %v; want ErrTampered", i, got, err)
		}
	}
	for _, bad := range [][]byte{raw[:len(raw)-1], raw[:len("idv-sealed:1:")+3], raw[:len("idv-sealed:1:")+8+5]} {
		if err := m.Set(ctx, "keys/seal", bad, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "keys/seal"); !errors.Is(err, store.ErrTampered) {
			t.Errorf("cut to %d bytes: Get = %v; want ErrTampered", len(bad), err)
		}
	}

	// Copied under another key: the key name is bound.
	if err := m.Set(ctx, "keys/subject", raw, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "keys/subject"); !errors.Is(err, store.ErrTampered) || !strings.Contains(err.Error(), "keys/subject") {
		t.Errorf("sealed value under another key: %v; want ErrTampered naming the key", err)
	}

	// Another key: the error names the key id, which says nothing of the key.
	if err := m.Set(ctx, "keys/seal", raw, 0); err != nil {
		t.Fatal(err)
	}
	other := mustSealed(t, m, store.SealOptions{Keys: [][]byte{newKey(t)}})
	_, err = other.Get(ctx, "keys/seal")
	if !errors.Is(err, store.ErrUnknownKey) || !strings.Contains(err.Error(), store.KeyID(key)) {
		t.Errorf("opened with the wrong key: %v; want ErrUnknownKey naming key id %s", err, store.KeyID(key))
	}
	if strings.Contains(err.Error(), hex.EncodeToString(key)) {
		t.Errorf("the error shows the key")
	}
}

// TestSealedRotation: with the new key first and the old one after it,
// secrets sealed with the old key still open, are sealed again with the new
// key when read, and every write is sealed with the new one; once all were
// read, the old key can go.
func TestSealedRotation(t *testing.T) {
	ctx := t.Context()
	m := store.NewMemory(nil)
	oldKey, newK := newKey(t), newKey(t)
	newID, _ := hex.DecodeString(store.KeyID(newK))
	sealedWithNew := func(k string) bool {
		raw, _ := m.Get(ctx, k)
		return bytes.HasPrefix(raw, append([]byte("idv-sealed:1:"), newID...))
	}
	before := mustSealed(t, m, store.SealOptions{Keys: [][]byte{oldKey}})
	for _, k := range []string{"keys/signing", "keys/subject", "keys/seal"} {
		if err := before.Set(ctx, k, []byte("value of "+k), 0); err != nil {
			t.Fatal(err)
		}
	}
	core, logs := observer.New(zapcore.InfoLevel)
	during := mustSealed(t, m, store.SealOptions{Keys: [][]byte{newK, oldKey}, Logger: zap.New(core)})
	for _, k := range []string{"keys/signing", "keys/subject"} {
		if got, err := during.Get(ctx, k); err != nil || string(got) != "value of "+k {
			t.Fatalf("Get(%q) with the old key second = %q, %v", k, got, err)
		}
		if !sealedWithNew(k) {
			t.Errorf("%s, read with the new key first, is still sealed with the old one", k)
		}
	}
	if n := logs.FilterMessageSnippet("again with the first").Len(); n != 2 {
		t.Errorf("%d secrets logged as sealed again, want 2", n)
	}
	if err := during.Set(ctx, "keys/signing", []byte("rotated"), 0); err != nil {
		t.Fatal(err)
	}
	if !sealedWithNew("keys/signing") {
		t.Errorf("a write during the rotation is not sealed with the new key")
	}
	after := mustSealed(t, m, store.SealOptions{Keys: [][]byte{newK}})
	for k, want := range map[string]string{"keys/signing": "rotated", "keys/subject": "value of keys/subject"} {
		if got, err := after.Get(ctx, k); err != nil || string(got) != want {
			t.Errorf("Get(%q) with the new key only = %q, %v", k, got, err)
		}
	}
	// keys/seal was never read during the rotation: the old key is still
	// needed for it, and the error says which.
	if _, err := after.Get(ctx, "keys/seal"); !errors.Is(err, store.ErrUnknownKey) || !strings.Contains(err.Error(), store.KeyID(oldKey)) {
		t.Errorf("a secret not read during the rotation, with the old key gone = %v; want ErrUnknownKey naming %s", err, store.KeyID(oldKey))
	}
}

// TestSealedPlaintext: a secret written before encryption was turned on is
// refused, or, with MigratePlaintext, sealed in place on its first read,
// once however many instances read it at the same time.
func TestSealedPlaintext(t *testing.T) {
	ctx := t.Context()
	m := store.NewMemory(nil)
	if err := m.Set(ctx, "keys/subject", []byte("plain secret"), 0); err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	strict := mustSealed(t, m, store.SealOptions{Keys: [][]byte{key}})
	if got, err := strict.Get(ctx, "keys/subject"); !errors.Is(err, store.ErrPlaintextSecret) || !strings.Contains(err.Error(), "migrate_plaintext") {
		t.Fatalf("plaintext secret = %q, %v; want ErrPlaintextSecret naming migrate_plaintext", got, err)
	}

	core, logs := observer.New(zapcore.InfoLevel)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			s := mustSealed(t, m, store.SealOptions{Keys: [][]byte{key}, MigratePlaintext: true, Logger: zap.New(core)})
			if got, err := s.Get(ctx, "keys/subject"); err != nil || string(got) != "plain secret" {
				t.Errorf("Get with migration = %q, %v", got, err)
			}
		})
	}
	wg.Wait()
	if raw, _ := m.Get(ctx, "keys/subject"); !bytes.HasPrefix(raw, []byte("idv-sealed:1:")) {
		t.Fatalf("after migration the secret is stored as %q", raw)
	}
	if n := logs.FilterMessageSnippet("encrypted a secret").Len(); n != 1 {
		t.Errorf("the migration was logged %d times, want once", n)
	}
	if got, err := strict.Get(ctx, "keys/subject"); err != nil || string(got) != "plain secret" {
		t.Errorf("after migration, without it = %q, %v", got, err)
	}
}

func TestSealedNotifier(t *testing.T) {
	key := newKey(t)
	n := &notifyingStore{Memory: store.NewMemory(nil), subs: map[int]func([]byte){}, subscribed: make(chan struct{}, 1)}
	s := mustSealed(t, n, store.SealOptions{Keys: [][]byte{key}})
	if _, ok := s.(store.Notifier); !ok {
		t.Error("sealing a Notifier store hides Publish and Subscribe")
	}
	if store.Unwrap(s) != store.Store(n) {
		t.Error("Unwrap does not return the inner store")
	}
	m := store.NewMemory(nil)
	plain := mustSealed(t, m, store.SealOptions{Keys: [][]byte{key}})
	if _, ok := plain.(store.Notifier); ok {
		t.Error("sealing a store without publish/subscribe makes it a Notifier")
	}
	if store.Unwrap(m) != store.Store(m) {
		t.Error("Unwrap of a store that wraps nothing")
	}
	if _, err := store.Sealed(m, store.SealOptions{}); err == nil {
		t.Error("Sealed without keys succeeded")
	}
	if _, err := store.Sealed(m, store.SealOptions{Keys: [][]byte{key, key}}); err == nil {
		t.Error("Sealed with one key twice succeeded")
	}
	if _, err := store.Sealed(m, store.SealOptions{Keys: [][]byte{key[:16]}}); err == nil {
		t.Error("Sealed with a 16-byte key succeeded")
	}
}

func TestParseKey(t *testing.T) {
	key := []byte("0123456789abcdefghijklmnopqrstuv")
	for _, text := range []string{
		hex.EncodeToString(key), strings.ToUpper(hex.EncodeToString(key)),
		base64.StdEncoding.EncodeToString(key), base64.RawStdEncoding.EncodeToString(key),
		base64.URLEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key),
		" " + base64.StdEncoding.EncodeToString(key) + "\n",
	} {
		got, err := store.ParseKey(text)
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("ParseKey(%q) = %x, %v", text, got, err)
		}
	}
	for name, text := range map[string]string{
		"empty":            "",
		"passphrase":       "correct horse battery staple",
		"31 bytes":         base64.StdEncoding.EncodeToString(key[:31]),
		"33 bytes":         base64.StdEncoding.EncodeToString(append(key, 'w')),
		"16 hex":           hex.EncodeToString(key[:16]),
		"zeros":            base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"placeholder left": "{env.IDV_STORE_KEY}",
	} {
		_, err := store.ParseKey(text)
		if err == nil {
			t.Errorf("%s: ParseKey accepted it", name)
			continue
		}
		if text != "" && strings.Contains(err.Error(), strings.TrimSpace(text)) {
			t.Errorf("%s: the error quotes the key: %v", name, err)
		}
	}
}

// TestSealedNotFound checks that a secret that is not there reads as
// ErrNotFound, unchanged.
func TestSealedNotFound(t *testing.T) {
	s := mustSealed(t, store.NewMemory(nil), store.SealOptions{Keys: [][]byte{newKey(t)}})
	if _, err := s.Get(context.Background(), "keys/signing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing secret = %v, want ErrNotFound", err)
	}
}

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	key := newKey(t)
	good := filepath.Join(dir, "key")
	if err := os.WriteFile(good, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := store.ReadKeyFile(good); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("ReadKeyFile = %x, %v", got, err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("hunter2hunter2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := store.ReadKeyFile(short); err == nil || !strings.Contains(err.Error(), short) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("ReadKeyFile of a short key = %v; want an error naming the file, not its content", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("A"), 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := store.ReadKeyFile(big); err == nil {
		t.Error("ReadKeyFile of a 4 KiB file succeeded")
	}
	if _, err := store.ReadKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadKeyFile of a missing file = %v", err)
	}
}

// TestUnencrypted checks that a store without keys keeps values as they are
// and refuses a secret that instances with a key wrote encrypted.
func TestUnencrypted(t *testing.T) {
	ctx := t.Context()
	m := store.NewMemory(nil)
	plain := store.Unencrypted(m)
	if err := plain.Set(ctx, "keys/subject", []byte("plain"), 0); err != nil {
		t.Fatal(err)
	}
	if raw, _ := m.Get(ctx, "keys/subject"); string(raw) != "plain" {
		t.Fatalf("stored as %q", raw)
	}
	if got, err := plain.Get(ctx, "keys/subject"); err != nil || string(got) != "plain" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if err := mustSealed(t, m, store.SealOptions{Keys: [][]byte{newKey(t)}}).Set(ctx, "keys/seal", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Get(ctx, "keys/seal"); !errors.Is(err, store.ErrNoKey) || !strings.Contains(err.Error(), "encryption_key") {
		t.Errorf("encrypted secret without a key = %v; want ErrNoKey naming encryption_key", err)
	}
	if store.Unwrap(plain) != store.Store(m) {
		t.Error("Unwrap")
	}
}
