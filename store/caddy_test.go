package store_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap/zaptest"

	"github.com/caddy-idv/caddy-idv/store"
	"github.com/caddy-idv/caddy-idv/store/storetest"
)

func TestCaddy(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock *storetest.Clock) store.Store {
		return store.NewCaddy(&certmagic.FileStorage{Path: t.TempDir()}, zaptest.NewLogger(t), clock.Now)
	})
}

// opaqueStorage hides that a storage is the file system one, so that Caddy
// uses only certmagic.Storage, as it does with any other storage module.
type opaqueStorage struct{ certmagic.Storage }

func TestCaddyOtherStorage(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock *storetest.Clock) store.Store {
		return store.NewCaddy(opaqueStorage{&certmagic.FileStorage{Path: t.TempDir()}}, zaptest.NewLogger(t), clock.Now)
	})
}

// TestCaddyTwoInstances runs two stores on one directory, as two Caddy
// instances on a shared volume would: SetIfAbsent must have exactly one
// winner per key across both, so that a one-time value is consumed once,
// both for keys never used and for keys whose earlier value has expired.
func TestCaddyTwoInstances(t *testing.T) {
	// Replacing expired values queues on FileStorage's lock, which polls
	// once a second, so that case is smaller to stay quick.
	t.Run("Missing", func(t *testing.T) { testTwoInstances(t, false, 1000, 2) })
	t.Run("Expired", func(t *testing.T) { testTwoInstances(t, true, 300, 2) })
}

func testTwoInstances(t *testing.T, expired bool, keys, callersPerInstance int) {
	dir := t.TempDir()
	clock := newClock()
	instances := []*store.Caddy{
		store.NewCaddy(&certmagic.FileStorage{Path: dir}, zaptest.NewLogger(t), clock.Now),
		store.NewCaddy(&certmagic.FileStorage{Path: dir}, zaptest.NewLogger(t), clock.Now),
	}
	ctx := t.Context()
	key := func(k int) string { return fmt.Sprintf("jti/demo/%d", k) }
	if expired {
		for k := range keys {
			if err := instances[k%2].Set(ctx, key(k), []byte("old"), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(2 * time.Minute)
	}
	start := make(chan struct{})
	wins := make([]atomic.Int32, keys)
	var failed atomic.Value
	var wg sync.WaitGroup
	for k := range keys {
		for _, s := range instances {
			for range callersPerInstance {
				wg.Go(func() {
					<-start
					ok, err := s.SetIfAbsent(ctx, key(k), []byte("used"), time.Hour)
					if err != nil {
						failed.CompareAndSwap(nil, err)
					}
					if ok {
						wins[k].Add(1)
					}
				})
			}
		}
	}
	began := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d keys, %d callers each on 2 instances: %v", keys, 2*callersPerInstance, time.Since(began))
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("SetIfAbsent: %v", err)
	}
	for k := range keys {
		if n := wins[k].Load(); n != 1 {
			t.Errorf("%s: %d winners, want 1", key(k), n)
		}
	}
}

// observedStorage is a FileStorage that reports the locks taken and the
// keys deleted.
type observedStorage struct {
	*certmagic.FileStorage
	mu      sync.Mutex
	locks   []string
	deleted chan string
}

func (o *observedStorage) Lock(ctx context.Context, name string) error {
	o.mu.Lock()
	o.locks = append(o.locks, name)
	o.mu.Unlock()
	return o.FileStorage.Lock(ctx, name)
}

func (o *observedStorage) Delete(ctx context.Context, key string) error {
	err := o.FileStorage.Delete(ctx, key)
	if o.deleted != nil {
		o.deleted <- key
	}
	return err
}

func TestCaddyLayout(t *testing.T) {
	ctx := t.Context()
	fsys := &observedStorage{FileStorage: &certmagic.FileStorage{Path: t.TempDir()}}
	s := store.NewCaddy(fsys, zaptest.NewLogger(t), nil)

	if err := s.Set(ctx, "keys/signing", []byte("k"), 0); err != nil {
		t.Fatal(err)
	}
	if !fsys.Exists(ctx, "idv/keys/signing") {
		t.Errorf("Set(keys/signing) did not write idv/keys/signing")
	}
	unlock, err := s.Lock(ctx, "signing-key")
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if _, err := s.SetIfAbsent(ctx, "jti/demo/a", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	fsys.mu.Lock()
	locks := slices.Clone(fsys.locks)
	fsys.mu.Unlock()
	if len(locks) != 2 || locks[0] != "idv/locks/signing-key" || !strings.HasPrefix(locks[1], "idv/keylocks/") {
		t.Errorf("storage locks taken = %q, want idv/locks/signing-key and one idv/keylocks/...", locks)
	}

	// Files under idv/ that are not entries (a writer's temporary file, a
	// stray copy) are not listed.
	if err := fsys.Store(ctx, "idv/revoked/123456", []byte("partial")); err != nil {
		t.Fatal(err)
	}
	raw, err := fsys.Load(ctx, "idv/keys/signing")
	if err != nil {
		t.Fatal(err)
	}
	if err := fsys.Store(ctx, "idv/revoked/copy", raw); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "revoked/real", []byte("1"), time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx, "revoked/")
	if err != nil || !slices.Equal(got, []string{"revoked/real"}) {
		t.Errorf("List = %q, %v; want only revoked/real", got, err)
	}
}

func TestCaddyCleanup(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	fsys := &certmagic.FileStorage{Path: t.TempDir()}
	s := store.NewCaddy(fsys, zaptest.NewLogger(t), clock.Now)

	if err := s.Cleanup(ctx); err != nil {
		t.Fatalf("Cleanup of an empty storage: %v", err)
	}
	for key, ttl := range map[string]time.Duration{
		"jti/demo/old":    time.Minute,
		"revoked/old":     time.Minute,
		"jti/demo/young":  time.Hour,
		"keys/signing":    0,
		"oidc/codes/old2": time.Second,
	} {
		if err := s.Set(ctx, key, []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
	}
	if err := fsys.Store(ctx, "idv/foreign", []byte("not an entry")); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	if err := s.Cleanup(ctx); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	for key, want := range map[string]bool{
		"idv/jti/demo/old":    false,
		"idv/revoked/old":     false,
		"idv/oidc/codes/old2": false,
		"idv/jti/demo/young":  true,
		"idv/keys/signing":    true,
		"idv/foreign":         true,
	} {
		if got := fsys.Exists(ctx, key); got != want {
			t.Errorf("after Cleanup, %s exists = %v, want %v", key, got, want)
		}
	}

	// The claims by which entries were retired go once they are old.
	claims := func() []string {
		var found []string
		err := filepath.WalkDir(fsys.Path, func(path string, d fs.DirEntry, err error) error {
			if err == nil && strings.Contains(d.Name(), "..idv-claim-") {
				found = append(found, path)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	found := claims()
	if len(found) != 3 {
		t.Fatalf("%d claims after retiring 3 entries, want 3: %q", len(found), found)
	}
	if err := s.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(claims()); n != 3 {
		t.Fatalf("fresh claims removed: %d left, want 3", n)
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, path := range found {
		if err := os.Chtimes(path, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if left := claims(); len(left) != 0 {
		t.Errorf("old claims not removed: %q", left)
	}
}

// TestCaddyRun checks that Run cleans up and that it returns once its
// context is done.
func TestCaddyRun(t *testing.T) {
	clock := newClock()
	fsys := &observedStorage{FileStorage: &certmagic.FileStorage{Path: t.TempDir()}, deleted: make(chan string, 1)}
	s := store.NewCaddy(fsys, zaptest.NewLogger(t), clock.Now)
	if err := s.Set(t.Context(), "jti/demo/x", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		s.Run(ctx, time.Hour)
		close(done)
	}()
	select {
	case key := <-fsys.deleted:
		if key != "idv/jti/demo/x" {
			t.Errorf("Run deleted %q, want idv/jti/demo/x", key)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not clean up")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not return after its context was cancelled")
	}
}

// brokenStorage fails every operation, as an unreachable storage does.
type brokenStorage struct{}

var errBroken = errors.New("storage unreachable")

func (brokenStorage) Lock(context.Context, string) error           { return errBroken }
func (brokenStorage) Unlock(context.Context, string) error         { return errBroken }
func (brokenStorage) Store(context.Context, string, []byte) error  { return errBroken }
func (brokenStorage) Load(context.Context, string) ([]byte, error) { return nil, errBroken }
func (brokenStorage) Delete(context.Context, string) error         { return errBroken }
func (brokenStorage) Exists(context.Context, string) bool          { return false }
func (brokenStorage) List(context.Context, string, bool) ([]string, error) {
	return nil, errBroken
}
func (brokenStorage) Stat(context.Context, string) (certmagic.KeyInfo, error) {
	return certmagic.KeyInfo{}, errBroken
}

func TestCaddyUnavailable(t *testing.T) {
	ctx := t.Context()
	s := store.NewCaddy(brokenStorage{}, zaptest.NewLogger(t), nil)
	_, getErr := s.Get(ctx, "k")
	_, siaErr := s.SetIfAbsent(ctx, "k", nil, 0)
	_, listErr := s.List(ctx, "k/")
	_, lockErr := s.Lock(ctx, "k")
	for op, err := range map[string]error{
		"Get":         getErr,
		"Set":         s.Set(ctx, "k", nil, 0),
		"SetIfAbsent": siaErr,
		"Delete":      s.Delete(ctx, "k"),
		"List":        listErr,
		"Lock":        lockErr,
		"Cleanup":     s.Cleanup(ctx),
	} {
		if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, errBroken) {
			t.Errorf("%s = %v, want ErrUnavailable wrapping the cause", op, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "store: ") {
			t.Errorf("%s error %q lacks the package prefix", op, err)
		}
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s = %v, looks like not found", op, err)
		}
	}
}
