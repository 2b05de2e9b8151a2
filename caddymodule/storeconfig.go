package caddymodule

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-idv/caddy-idv/store"
)

// validate refuses a store configuration that cannot work.
func (c *StoreConfig) validate() error {
	const want = "want `store redis <url>` or `store { encryption_key <key> }`"
	switch {
	case c.Type == "redis" && c.URL == "", c.Type == "" && c.URL != "", c.Type != "" && c.Type != "redis":
		return fmt.Errorf("idv: store: %s", want)
	case c.Type == "" && len(c.EncryptionKeys) == 0:
		return fmt.Errorf("idv: store: without redis it only takes encryption_key; %s", want)
	case c.MigratePlaintext && len(c.EncryptionKeys) == 0:
		return fmt.Errorf("idv: store: migrate_plaintext needs encryption_key")
	}
	for i, k := range c.EncryptionKeys {
		if (k.Value == "") == (k.File == "") {
			return fmt.Errorf("idv: store: encryption key %d: set either a value (encryption_key) or a file (encryption_key_file)", i+1)
		}
	}
	return nil
}

// keys resolves and decodes the encryption keys, naming the option of each
// error and never the key.
func (c *StoreConfig) keys() ([][]byte, error) {
	repl := caddy.NewReplacer()
	keys := make([][]byte, 0, len(c.EncryptionKeys))
	for i, k := range c.EncryptionKeys {
		var (
			key []byte
			err error
		)
		if k.File != "" {
			key, err = store.ReadKeyFile(repl.ReplaceKnown(k.File, ""))
			if err != nil {
				return nil, fmt.Errorf("idv: store encryption_key_file (key %d): %w", i+1, err)
			}
		} else if key, err = store.ParseKey(repl.ReplaceKnown(k.Value, "")); err != nil {
			return nil, fmt.Errorf("idv: store encryption_key (key %d, after placeholders): %w", i+1, err)
		}
		keys = append(keys, key)
	}
	return keys, nil
}
