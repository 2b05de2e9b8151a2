package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// Storage prefixes. Everything the module keeps lives under caddyPrefix, next
// to (never inside) what Caddy itself stores.
const (
	caddyPrefix = "idv/"
	// caddyLocks names the storage locks that [Caddy.Lock] hands out.
	caddyLocks = "idv/locks/"
	// caddyKeyLocks names the storage locks that guard single keys during
	// SetIfAbsent and Cleanup. Neither it nor caddyLocks is a prefix of
	// the other even with the slashes taken out, as FileStorage does to
	// lock names, so the two kinds never share a lock.
	caddyKeyLocks = "idv/keylocks/"
)

// listAttempts bounds the retries of a storage List that fails because an
// entry vanished while it was being walked (FileStorage does, when another
// writer's temporary file is renamed away).
const listAttempts = 3

// Caddy is a [Store] on Caddy's configured storage (certmagic.Storage), so
// that every instance sharing that storage — a shared volume for the file
// system storage, or any storage module — shares the module's state.
//
// Each value is kept under "idv/<key>" in a JSON envelope that also records
// its key and its absolute expiry; expired entries read as absent and are
// removed by [Caddy.Cleanup] (call it, or [Caddy.Run], from the module).
// Lock, and SetIfAbsent on storages other than the file system, rest on the
// storage's own locks and hold across processes as far as those do. On the
// file system storage SetIfAbsent rests on exclusive file creation instead,
// which holds even where FileStorage's locks do not (see fileEntries).
type Caddy struct {
	s      certmagic.Storage
	logger *zap.Logger
	now    func() time.Time

	// keys serialises this process's writers of one key before they take
	// the storage lock, so that contention inside the process never waits
	// on the storage's lock polling (one second for FileStorage).
	keys keyedMutex
	// locks does the same for the names given to Lock.
	locks keyedMutex
	// files is set when s is the file system storage; see fileEntries.
	files *fileEntries
}

// NewCaddy returns a store on s. logger may be nil; now is time.Now when nil.
func NewCaddy(s certmagic.Storage, logger *zap.Logger, now func() time.Time) *Caddy {
	if logger == nil {
		logger = zap.NewNop()
	}
	if now == nil {
		now = time.Now
	}
	c := &Caddy{s: s, logger: logger, now: now}
	if fsys, ok := s.(*certmagic.FileStorage); ok {
		c.files = &fileEntries{fs: fsys}
	}
	return c
}

// envelope is what Caddy writes to storage for each entry.
type envelope struct {
	// Key is the entry's own key. A stored file whose Key does not match
	// its name (a writer's temporary file, or anything else in the
	// directory) is not an entry.
	Key string `json:"key"`
	// Expires is the absolute expiry; zero means never.
	Expires time.Time `json:"expires,omitzero"`
	Value   []byte    `json:"value"`
	// Nonce makes the bytes of every write unique (see fileEntries.claim).
	Nonce string `json:"nonce"`
}

func (e *envelope) live(now time.Time) bool {
	return e.Expires.IsZero() || now.Before(e.Expires)
}

func storageKey(key string) string { return caddyPrefix + key }

// keyLockName is the storage lock that guards key. Hashing keeps the name
// short and made of characters that every storage accepts in lock names,
// and keeps keys that differ only in case apart (FileStorage lowercases).
func keyLockName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return caddyKeyLocks + hex.EncodeToString(sum[:16])
}

// storageError maps an error of the storage to one for callers: context
// errors stay as they are, everything else wraps ErrUnavailable. The
// exported method that called it adds the "store: <step>" prefix.
func storageError(step string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", step, err)
	}
	return fmt.Errorf("%s: %w: %w", step, ErrUnavailable, err)
}

// load reads the envelope of key. A missing entry is (nil, nil).
func (c *Caddy) load(ctx context.Context, key string) (*envelope, error) {
	e, _, err := c.loadRaw(ctx, key)
	return e, err
}

// loadRaw is load that also returns the bytes read.
func (c *Caddy) loadRaw(ctx context.Context, key string) (*envelope, []byte, error) {
	raw, err := c.s.Load(ctx, storageKey(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		// A key that is only the prefix of other keys names no entry.
		if info, serr := c.s.Stat(ctx, storageKey(key)); serr == nil && !info.IsTerminal {
			return nil, nil, nil
		}
		return nil, nil, storageError("load", err)
	}
	e, err := decodeEnvelope(key, raw)
	if err != nil {
		return nil, nil, fmt.Errorf("load: %w", err)
	}
	return e, raw, nil
}

func decodeEnvelope(key string, raw []byte) (*envelope, error) {
	var e envelope
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	if e.Key != key {
		return nil, errors.New("envelope belongs to another key")
	}
	if e.Value == nil {
		e.Value = []byte{}
	}
	return &e, nil
}

// encode makes the envelope of key as it is written to storage.
func (c *Caddy) encode(key string, value []byte, ttl time.Duration) ([]byte, error) {
	e := envelope{Key: key, Value: value, Nonce: newNonce()}
	if ttl > 0 {
		e.Expires = c.now().Add(ttl).UTC()
	}
	if e.Value == nil {
		e.Value = []byte{}
	}
	raw, err := json.Marshal(&e)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return raw, nil
}

func (c *Caddy) store(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	raw, err := c.encode(key, value, ttl)
	if err != nil {
		return err
	}
	if err := c.s.Store(ctx, storageKey(key), raw); err != nil {
		return storageError("write", err)
	}
	return nil
}

// Get returns the value of key, or ErrNotFound when it is missing or has
// expired. It leaves expired entries to Cleanup: deleting one here, outside
// the key's lock, could delete the value of a SetIfAbsent that just replaced
// it on another instance.
func (c *Caddy) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("store: get: %w", err)
	}
	e, err := c.load(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("store: get %q: %w", key, err)
	}
	if e == nil || !e.live(c.now()) {
		return nil, ErrNotFound
	}
	return e.Value, nil
}

// Set stores value under key. A ttl of 0 keeps it until deleted. Set does
// not take the storage lock: between instances, the last writer wins.
func (c *Caddy) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("store: set: %w", err)
	}
	if err := checkTTL(ttl); err != nil {
		return fmt.Errorf("store: set %q: %w", key, err)
	}
	unlock, err := c.keys.lock(ctx, key)
	if err != nil {
		return fmt.Errorf("store: set %q: %w", key, err)
	}
	defer unlock()
	if err := c.store(ctx, key, value, ttl); err != nil {
		return fmt.Errorf("store: set %q: %w", key, err)
	}
	return nil
}

// SetIfAbsent stores value under key unless a live value is there, and
// reports whether it did; of concurrent callers on every instance sharing the
// storage exactly one gets true. Callers in this process queue on an
// in-process lock of key first, so that they never wait on the storage's
// lock polling.
//
// On any storage, the read and the write happen under the storage lock of
// key, and are as exclusive as that lock is. On the file system storage, a
// missing key is created with an exclusive create, and an expired entry is
// claimed exclusively and removed before the key is created afresh, so that
// even a lock that FileStorage wrongly judged stale cannot let two callers
// win (see fileEntries).
func (c *Caddy) SetIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, fmt.Errorf("store: set if absent: %w", err)
	}
	if err := checkTTL(ttl); err != nil {
		return false, fmt.Errorf("store: set if absent %q: %w", key, err)
	}
	release, err := c.keys.lock(ctx, key)
	if err != nil {
		return false, fmt.Errorf("store: set if absent %q: %w", key, err)
	}
	defer release()
	var ok bool
	if c.files != nil {
		ok, err = c.setIfAbsentFile(ctx, key, value, ttl)
	} else {
		ok, err = c.setIfAbsentLocked(ctx, key, value, ttl)
	}
	if err != nil {
		return false, fmt.Errorf("store: set if absent %q: %w", key, err)
	}
	return ok, nil
}

// setIfAbsentLocked is SetIfAbsent on any storage: read, check and write
// under the storage lock of key. A live entry seen before taking the lock
// is answer enough: it stays live until it expires or is deleted.
func (c *Caddy) setIfAbsentLocked(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if e, err := c.load(ctx, key); err != nil || e != nil && e.live(c.now()) {
		return false, err
	}
	unlock, err := c.lockStorage(ctx, key)
	if err != nil {
		return false, err
	}
	defer unlock()
	e, err := c.load(ctx, key)
	if err != nil {
		// An entry that cannot be read may be live: refusing is the safe
		// answer for a one-time value.
		return false, err
	}
	if e != nil && e.live(c.now()) {
		return false, nil
	}
	if err := c.store(ctx, key, value, ttl); err != nil {
		return false, err
	}
	return true, nil
}

// setIfAbsentFile is SetIfAbsent on the file system storage. A live entry
// needs no lock to refuse and a missing one none to create exclusively; only
// retiring an expired entry queues on the storage lock, so that replacers on
// several instances take turns instead of failing each other's claims.
func (c *Caddy) setIfAbsentFile(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	e, err := c.load(ctx, key)
	if err != nil {
		return false, err
	}
	if e != nil && e.live(c.now()) {
		return false, nil
	}
	if e != nil {
		unlock, err := c.lockStorage(ctx, key)
		if err != nil {
			return false, err
		}
		defer unlock()
		if retired, err := c.retireExpiredFile(ctx, key); err != nil || !retired {
			return false, err
		}
	}
	raw, err := c.encode(key, value, ttl)
	if err != nil {
		return false, err
	}
	ok, err := c.files.create(storageKey(key), raw)
	if err != nil {
		return false, storageError("create", err)
	}
	return ok, nil
}

// retireExpiredFile removes the file of key if it holds an expired entry and
// this caller wins the claim to it, and reports whether key is free now.
// It reports false when key holds a live entry, or an expired one that
// another caller has claimed and will remove or replace.
func (c *Caddy) retireExpiredFile(ctx context.Context, key string) (bool, error) {
	e, raw, err := c.loadRaw(ctx, key)
	switch {
	case err != nil:
		return false, err
	case e == nil:
		return true, nil
	case e.live(c.now()):
		return false, nil
	}
	name := storageKey(key)
	claimed, err := c.files.claim(name, raw)
	if err != nil {
		return false, storageError("claim", err)
	}
	if !claimed {
		return false, nil
	}
	if err := c.files.remove(name); err != nil {
		return false, storageError("remove", err)
	}
	return true, nil
}

// lockStorage takes the storage lock of key; the caller holds the
// in-process one.
func (c *Caddy) lockStorage(ctx context.Context, key string) (unlock func(), err error) {
	name := keyLockName(key)
	if err := c.s.Lock(ctx, name); err != nil {
		return nil, storageError("lock", err)
	}
	return func() {
		// The caller's context may be done by now; the lock must still go.
		if err := c.s.Unlock(context.WithoutCancel(ctx), name); err != nil {
			c.logger.Warn("store: unlock key", zap.String("lock", name), zap.Error(err))
		}
	}, nil
}

// Delete removes key; deleting a missing key is not an error.
func (c *Caddy) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("store: delete: %w", err)
	}
	name := storageKey(key)
	// Storages delete a directory with everything under it; a key that is
	// only the prefix of other keys names no entry, so nothing goes.
	if info, err := c.s.Stat(ctx, name); errors.Is(err, fs.ErrNotExist) || err == nil && !info.IsTerminal {
		return nil
	}
	if err := c.s.Delete(ctx, name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: delete %q: %w", key, storageError("delete", err))
	}
	return nil
}

// List returns, sorted, the keys of the live entries under prefix (at any
// depth), which must end in "/". It reads every entry under prefix to learn
// its expiry.
func (c *Caddy) List(ctx context.Context, prefix string) ([]string, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	now := c.now()
	var keys []string
	err := c.walk(ctx, prefix, func(key string, e *envelope) error {
		if e.live(now) {
			keys = append(keys, key)
		}
		return nil
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("store: list %q: %w", prefix, err)
	}
	slices.Sort(keys)
	return keys, nil
}

// walk calls fn for every entry under prefix ("" for all of them), skipping
// directories, entries deleted meanwhile and files that are not entries.
// When leftover is not nil, it is called with the storage name of every
// file of fileEntries' own.
func (c *Caddy) walk(ctx context.Context, prefix string, fn func(key string, e *envelope) error, leftover func(name string)) error {
	names, err := c.listStorage(ctx, prefix)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		// FileStorage builds names with the OS separator.
		name = filepath.ToSlash(name)
		if leftover != nil && c.files != nil && isOwnFile(name) {
			leftover(name)
			continue
		}
		key, ok := strings.CutPrefix(name, caddyPrefix)
		if !ok || !strings.HasPrefix(key, prefix) || checkKey(key) != nil {
			continue
		}
		raw, err := c.s.Load(ctx, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			if info, serr := c.s.Stat(ctx, name); serr == nil && !info.IsTerminal {
				continue
			}
			return storageError(fmt.Sprintf("load %q", key), err)
		}
		e, err := decodeEnvelope(key, raw)
		if err != nil {
			c.logger.Debug("store: list: skipping a file that is not an entry",
				zap.String("key", key), zap.Error(err))
			continue
		}
		if err := fn(key, e); err != nil {
			return err
		}
	}
	return nil
}

// listStorage lists the storage names under prefix, recursively.
func (c *Caddy) listStorage(ctx context.Context, prefix string) ([]string, error) {
	dir := strings.TrimSuffix(caddyPrefix+prefix, "/")
	for attempt := 1; ; attempt++ {
		names, err := c.s.List(ctx, dir, true)
		if err == nil {
			return names, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, storageError("list", err)
		}
		// Either nothing was ever stored under prefix, or something under
		// it vanished during the walk; only the first means "empty".
		if !c.s.Exists(ctx, dir) {
			return nil, nil
		}
		if attempt == listAttempts {
			return nil, storageError("list", err)
		}
	}
}

// Lock takes the lock called name, shared by every instance on the same
// storage (the storage lock "idv/locks/<name>"), waiting until it is free or
// ctx is done. The returned function releases it; calling it again does
// nothing.
func (c *Caddy) Lock(ctx context.Context, name string) (unlock func(), err error) {
	if err := checkKey(name); err != nil {
		return nil, fmt.Errorf("store: lock: %w", err)
	}
	release, err := c.locks.lock(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("store: lock %q: %w", name, err)
	}
	storageName := caddyLocks + name
	if err := c.s.Lock(ctx, storageName); err != nil {
		release()
		return nil, fmt.Errorf("store: lock %q: %w", name, storageError("lock", err))
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if err := c.s.Unlock(context.WithoutCancel(ctx), storageName); err != nil {
				c.logger.Warn("store: unlock", zap.String("lock", name), zap.Error(err))
			}
			release()
		})
	}, nil
}

// Cleanup deletes the expired entries. Each one is deleted under its key's
// locks after reading it again, so a SetIfAbsent that replaces it meanwhile
// on any instance is never undone. A Set from another instance, which takes
// no storage lock, can still land between that second read and the delete
// and be lost; Set is used for values whose keys are not reused after they
// expire. On the file system storage Cleanup also removes the claims and
// temporary files of SetIfAbsent once they are old (see fileEntries). It
// stops at the first error of the storage or when ctx is done.
func (c *Caddy) Cleanup(ctx context.Context) error {
	now := c.now()
	var expired, leftovers []string
	err := c.walk(ctx, "", func(key string, e *envelope) error {
		if !e.live(now) {
			expired = append(expired, key)
		}
		return nil
	}, func(name string) { leftovers = append(leftovers, name) })
	if err != nil {
		return fmt.Errorf("store: cleanup: %w", err)
	}
	deleted := 0
	for _, key := range expired {
		ok, err := c.deleteExpired(ctx, key)
		if err != nil {
			return fmt.Errorf("store: cleanup %q: %w", key, err)
		}
		if ok {
			deleted++
		}
	}
	for _, name := range leftovers {
		// The file's time is the file system's, not c.now's.
		info, err := c.s.Stat(ctx, name)
		if err != nil || time.Since(info.Modified) < leftoverAge {
			continue
		}
		if err := c.s.Delete(ctx, name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store: cleanup: %w", storageError("delete leftover", err))
		}
		deleted++
	}
	if deleted > 0 {
		c.logger.Debug("store: cleanup", zap.Int("deleted", deleted))
	}
	return nil
}

// leftoverAge is the age after which a claim or temporary file of
// SetIfAbsent has served its purpose: the operations that make and use them
// take milliseconds. A claim whose entry a stopped process never removed
// keeps that key refused until then.
const leftoverAge = time.Hour

// deleteExpired deletes key if it is still expired, under its locks.
func (c *Caddy) deleteExpired(ctx context.Context, key string) (bool, error) {
	release, err := c.keys.lock(ctx, key)
	if err != nil {
		return false, err
	}
	defer release()
	unlock, err := c.lockStorage(ctx, key)
	if err != nil {
		return false, err
	}
	defer unlock()
	if c.files != nil {
		return c.retireExpiredFile(ctx, key)
	}
	e, err := c.load(ctx, key)
	if err != nil || e == nil || e.live(c.now()) {
		return false, err
	}
	if err := c.s.Delete(ctx, storageKey(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, storageError("delete", err)
	}
	return true, nil
}

// Run calls Cleanup at once and then every every (which must be positive),
// until ctx is done; it returns then. Errors are logged, not returned: the
// next run retries.
func (c *Caddy) Run(ctx context.Context, every time.Duration) {
	repeat(ctx, every, func() {
		if err := c.Cleanup(ctx); err != nil && ctx.Err() == nil {
			c.logger.Warn("store: cleanup of expired entries failed", zap.Error(err))
		}
	})
}

// repeat calls fn at once and then every every, until ctx is done.
func repeat(ctx context.Context, every time.Duration, fn func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		fn()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

var _ Store = (*Caddy)(nil)
