package caddymodule_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
	"github.com/caddy-idv/caddy-idv/store"
)

// sealedPrefix starts every secret the store keeps encrypted.
const sealedPrefix = "idv-sealed:1:"

// storeSecrets are the secrets a login with the demo provider makes the
// module keep in the store.
var storeSecrets = []string{"keys/signing", "keys/seal", "demo/key"}

func storeKeyEnv(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return "IDV_STORE_KEY=" + base64.StdEncoding.EncodeToString(k)
}

// withStore puts a store option into the idv block of site.
func withStore(site, option string) string {
	return strings.Replace(site, "idv {", "idv {\n\t\t"+option, 1)
}

// fileSecret returns the value the file system storage at dir holds under
// the store key k.
func fileSecret(t *testing.T, dir, k string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "idv", filepath.FromSlash(k)))
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Value []byte `json:"value"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatalf("%s: %v", k, err)
	}
	return env.Value
}

// TestStoreEncryptedAtRest logs in through instances whose store encrypts
// its secrets, on the file system storage and on Redis, and reads the
// secrets behind the module's back: each is sealed. An instance on Redis
// without a key warns at start.
func TestStoreEncryptedAtRest(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		inst := e2e.Start(t, withStore(site, "store {\n\t\t\tencryption_key {env.IDV_STORE_KEY}\n\t\t}"),
			e2e.Options{Storage: dir, Env: []string{storeKeyEnv(t)}})
		if _, st := login(t, inst, e2e.NewBrowser(), nil, "/"); st.State != "completed" {
			t.Fatalf("login: %+v", st)
		}
		for _, k := range storeSecrets {
			if v := fileSecret(t, dir, k); !bytes.HasPrefix(v, []byte(sealedPrefix)) {
				t.Errorf("%s is stored unencrypted", k)
			}
		}
		if strings.Contains(inst.Logs(), "unencrypted") {
			t.Error("an instance with an encryption key warns about unencrypted secrets")
		}
	})
	t.Run("redis", func(t *testing.T) {
		srv := e2e.StartRedis(t)
		inst := e2e.Start(t, withStore(site, "store redis {env.IDV_REDIS_URL} {\n\t\t\tencryption_key {env.IDV_STORE_KEY}\n\t\t}"),
			e2e.Options{Env: []string{storeKeyEnv(t), "IDV_REDIS_URL=" + srv.URL()}})
		if _, st := login(t, inst, e2e.NewBrowser(), nil, "/"); st.State != "completed" {
			t.Fatalf("login: %+v", st)
		}
		c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		defer c.Close()
		for _, k := range storeSecrets {
			raw, err := c.Get(context.Background(), "idv:"+k).Bytes()
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			if _, v, _ := bytes.Cut(raw, []byte("\n")); !bytes.HasPrefix(v, []byte(sealedPrefix)) {
				t.Errorf("%s is stored unencrypted in Redis", k)
			}
		}
		plain := e2e.Start(t, withStore(site, "store redis {env.IDV_REDIS_URL}"),
			e2e.Options{Env: []string{"IDV_REDIS_URL=" + e2e.StartRedis(t).URL()}})
		if n := strings.Count(plain.Logs(), "keeps signing keys and other secrets unencrypted"); n != 1 {
			t.Errorf("an instance on Redis without a key warned %d times, want once:\n%s", n, plain.Logs())
		}
	})
}

// TestStoreEncryptionMigrates turns encryption on for a store that an
// instance wrote unencrypted: started once with migrate_plaintext, the
// instance encrypts the secrets in place and keeps them, so a session made
// before still works; started again without it, it still does.
func TestStoreEncryptionMigrates(t *testing.T) {
	dir := t.TempDir()
	first := e2e.Start(t, site, e2e.Options{Storage: dir})
	br := e2e.NewBrowser()
	if _, st := login(t, first, br, nil, "/"); st.State != "completed" {
		t.Fatalf("login: %+v", st)
	}
	signing := fileSecret(t, dir, "keys/signing")
	if bytes.HasPrefix(signing, []byte(sealedPrefix)) {
		t.Fatal("written encrypted without a key")
	}
	first.Stop()

	key := storeKeyEnv(t)
	for _, option := range []string{
		"store {\n\t\t\tencryption_key {env.IDV_STORE_KEY}\n\t\t\tmigrate_plaintext\n\t\t}",
		"store {\n\t\t\tencryption_key {env.IDV_STORE_KEY}\n\t\t}",
	} {
		inst := e2e.Start(t, withStore(site, option), e2e.Options{Storage: dir, Port: first.Port, Env: []string{key}})
		if code, _, body := br.Do(t, http.MethodGet, inst.URL+"/", nil, nil); code != http.StatusOK {
			t.Fatalf("a session made before encryption, with %q: %d %s", option, code, body)
		}
		for _, k := range storeSecrets {
			if v := fileSecret(t, dir, k); !bytes.HasPrefix(v, []byte(sealedPrefix)) {
				t.Errorf("%s is still unencrypted after the start with %q", k, option)
			}
		}
		inst.Stop()
	}
}

// TestStoreKeyRotation follows the rotation procedure of store/README.md:
// the new key is put first and the old one after it, one start seals every
// secret again with the new key, and the old key can then go; a session
// made before keeps working throughout.
func TestStoreKeyRotation(t *testing.T) {
	dir := t.TempDir()
	oldKey, newKey := storeKeyEnv(t), storeKeyEnv(t)
	env := []string{"IDV_OLD_KEY=" + strings.TrimPrefix(oldKey, "IDV_STORE_KEY="), "IDV_NEW_KEY=" + strings.TrimPrefix(newKey, "IDV_STORE_KEY=")}
	first := e2e.Start(t, withStore(site, "store {\n\t\t\tencryption_key {env.IDV_OLD_KEY}\n\t\t}"), e2e.Options{Storage: dir, Env: env})
	br := e2e.NewBrowser()
	if _, st := login(t, first, br, nil, "/"); st.State != "completed" {
		t.Fatalf("login: %+v", st)
	}
	first.Stop()

	newRaw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(newKey, "IDV_STORE_KEY="))
	if err != nil {
		t.Fatal(err)
	}
	newID, _ := hex.DecodeString(store.KeyID(newRaw))
	for _, option := range []string{
		"store {\n\t\t\tencryption_key {env.IDV_NEW_KEY} {env.IDV_OLD_KEY}\n\t\t}",
		"store {\n\t\t\tencryption_key {env.IDV_NEW_KEY}\n\t\t}",
	} {
		inst := e2e.Start(t, withStore(site, option), e2e.Options{Storage: dir, Port: first.Port, Env: env})
		if code, _, body := br.Do(t, http.MethodGet, inst.URL+"/", nil, nil); code != http.StatusOK {
			t.Fatalf("a session made with the old key, with %q: %d %s", option, code, body)
		}
		for _, k := range storeSecrets {
			if v := fileSecret(t, dir, k); !bytes.HasPrefix(v, append([]byte(sealedPrefix), newID...)) {
				t.Errorf("%s is not sealed with the new key after the start with %q", k, option)
			}
		}
		inst.Stop()
	}
}
