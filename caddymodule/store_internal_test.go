package caddymodule

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStoreKeys checks that encryption keys are resolved from placeholders
// and files in the order given, and that each mistake names the option and
// never shows the key.
func TestStoreKeys(t *testing.T) {
	key := "0123456789abcdefghijklmnopqrstuv"
	b64 := base64.StdEncoding.EncodeToString([]byte(key))
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte(b64+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("IDV_TEST_STORE_KEY", b64)
	t.Setenv("IDV_TEST_WEAK_KEY", "hunter2-hunter2")
	cfg := &StoreConfig{EncryptionKeys: []EncryptionKey{{File: file}, {Value: "{env.IDV_TEST_STORE_KEY}"}}}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	keys, err := cfg.keys()
	if err != nil || len(keys) != 2 || string(keys[0]) != key || string(keys[1]) != key {
		t.Fatalf("keys = %q, %v", keys, err)
	}
	for name, c := range map[string]struct {
		k    EncryptionKey
		want string
	}{
		"weak":     {EncryptionKey{Value: "{env.IDV_TEST_WEAK_KEY}"}, "encryption_key (key 1"},
		"unset":    {EncryptionKey{Value: "{env.IDV_TEST_UNSET_KEY}"}, "is empty"},
		"no file":  {EncryptionKey{File: filepath.Join(t.TempDir(), "missing")}, "encryption_key_file (key 1)"},
		"too long": {EncryptionKey{Value: base64.StdEncoding.EncodeToString([]byte(key + "x"))}, "decodes to 33 bytes"},
	} {
		_, err := (&StoreConfig{EncryptionKeys: []EncryptionKey{c.k}}).keys()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), key) {
			t.Errorf("%s: the error shows the key: %v", name, err)
		}
	}
	for name, c := range map[string]*StoreConfig{
		"url without redis":   {URL: "redis://h"},
		"redis without url":   {Type: "redis"},
		"other type":          {Type: "memcached", URL: "h"},
		"nothing":             {},
		"migrate without key": {Type: "redis", URL: "redis://h", MigratePlaintext: true},
		"key and file":        {EncryptionKeys: []EncryptionKey{{Value: b64, File: file}}},
		"neither":             {EncryptionKeys: []EncryptionKey{{}}},
	} {
		if err := c.validate(); err == nil {
			t.Errorf("%s: validate accepted it", name)
		}
	}
}
