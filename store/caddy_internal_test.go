package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// noLocking is a file system storage whose lock excludes nobody, the worst
// case of FileStorage deleting a live lock it took for a stale one.
type noLocking struct{ *certmagic.FileStorage }

func (noLocking) Lock(context.Context, string) error   { return nil }
func (noLocking) Unlock(context.Context, string) error { return nil }

// TestCaddyFileWithoutLock checks that on the file system storage
// SetIfAbsent has one winner per key even when the storage lock fails, for
// missing keys and for expired ones, twice over.
func TestCaddyFileWithoutLock(t *testing.T) {
	const keys, callers = 300, 2
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	dir := t.TempDir()
	newInstance := func() *Caddy {
		fsys := &certmagic.FileStorage{Path: dir}
		c := NewCaddy(noLocking{fsys}, nil, func() time.Time { return *clock.Load() })
		c.files = &fileEntries{fs: fsys}
		return c
	}
	instances := []*Caddy{newInstance(), newInstance()}
	ctx := t.Context()
	key := func(k int) string { return fmt.Sprintf("jti/x/%d", k) }

	for round, expired := range []bool{false, true, true} {
		if expired {
			later := clock.Load().Add(2 * time.Hour)
			clock.Store(&later)
		}
		start := make(chan struct{})
		var wins [keys]atomic.Int32
		var failed atomic.Value
		var wg sync.WaitGroup
		for k := range keys {
			for _, c := range instances {
				for range callers {
					wg.Go(func() {
						<-start
						ok, err := c.SetIfAbsent(ctx, key(k), []byte("v"), time.Hour)
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
		close(start)
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			t.Fatalf("round %d: SetIfAbsent: %v", round, err)
		}
		for k := range keys {
			if n := wins[k].Load(); n != 1 {
				t.Errorf("round %d (expired %v): %s: %d winners, want 1", round, expired, key(k), n)
			}
		}
	}
}
