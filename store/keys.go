package store

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrInvalidKey is returned for a key, list prefix or lock name that an
// implementation refuses because it could escape its namespace once mapped to
// a file name (see [CheckKey]).
var ErrInvalidKey = errors.New("store: invalid key")

// maxKeyLen keeps every key well inside the path length limits of file
// systems, while leaving room for base64url ids of a few hundred bytes.
const maxKeyLen = 1024

// CheckKey reports whether key may be used with a [Store]: a non-empty
// slash-separated path of printable ASCII, at most 1024 bytes long, that does
// not start with "/", has no empty, "." or ".." segments and contains no
// backslash. Implementations map keys to file names, so these are the rules
// that keep a key inside the store's own directory and make every key name
// exactly one file. The returned error wraps [ErrInvalidKey].
//
// CheckKey does not make raw user input safe to use as a key: callers encode
// such input (base64url) before putting it into a key.
func CheckKey(key string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// CheckPrefix reports whether prefix may be passed to [Store.List]: a key as
// [CheckKey] accepts it followed by a single "/". The returned error wraps
// [ErrInvalidKey].
func CheckPrefix(prefix string) error {
	if err := checkPrefix(prefix); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// checkKey is CheckKey without the package prefix, for the methods that add
// their own.
func checkKey(key string) error {
	if err := checkPath(key); err != nil {
		return fmt.Errorf("key %q %s: %w", key, err, ErrInvalidKey)
	}
	return nil
}

func checkPrefix(prefix string) error {
	p, ok := strings.CutSuffix(prefix, "/")
	if !ok {
		return fmt.Errorf("prefix %q does not end in \"/\": %w", prefix, ErrInvalidKey)
	}
	if err := checkPath(p); err != nil {
		return fmt.Errorf("prefix %q %s: %w", prefix, err, ErrInvalidKey)
	}
	return nil
}

// checkPath returns why key is not acceptable, or nil.
func checkPath(key string) error {
	switch {
	case key == "":
		return errors.New("is empty")
	case len(key) > maxKeyLen:
		return errors.New("is too long")
	case key[0] == '/':
		return errors.New("starts with \"/\"")
	}
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c == '\\':
			return errors.New("contains a backslash")
		case c < 0x20 || c >= 0x7f:
			// Control characters and NUL end or garble file names; bytes
			// outside ASCII can normalise to other names on some file systems.
			return errors.New("contains a control or non-ASCII character")
		}
	}
	// Empty and dot segments would let two different keys name the same
	// file ("a//b" and "a/./b" are "a/b"), and ".." would leave the directory.
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return errors.New("has an empty segment")
		case ".", "..":
			return errors.New("has a dot segment")
		}
	}
	if strings.Contains(key, "..") {
		return errors.New("contains \"..\"")
	}
	return nil
}

// checkTTL refuses negative lifetimes, which have no meaning for Set.
func checkTTL(ttl time.Duration) error {
	if ttl < 0 {
		return fmt.Errorf("negative ttl %v", ttl)
	}
	return nil
}
