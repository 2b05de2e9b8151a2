// Package storetest is the conformance suite that every [store.Store]
// implementation passes. It tests behaviour only, through the interface, so
// that the Caddy storage, in-memory and Redis implementations are held to
// the same contract.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/store"
)

// Factory returns a new, empty store for one test. The store must read the
// time from clock.Now, or move its own clock along through clock.OnAdvance,
// so that the suite can test expiry without sleeping.
type Factory func(t *testing.T, clock *Clock) store.Store

// Run runs the conformance suite against the stores that newStore makes, each
// case in its own subtest with a fresh store and clock.
func Run(t *testing.T, newStore Factory) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s store.Store, clock *Clock)
	}{
		{"GetMissing", testGetMissing},
		{"SetGet", testSetGet},
		{"Overwrite", testOverwrite},
		{"Expiry", testExpiry},
		{"NoExpiry", testNoExpiry},
		{"SetIfAbsent", testSetIfAbsent},
		{"SetIfAbsentAfterExpiry", testSetIfAbsentAfterExpiry},
		{"SetIfAbsentConcurrent", testSetIfAbsentConcurrent},
		{"Delete", testDelete},
		{"List", testList},
		{"LockExclusive", testLockExclusive},
		{"LockCancel", testLockCancel},
		{"InvalidKeys", testInvalidKeys},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := NewClock(time.Date(2030, time.January, 2, 3, 4, 5, 0, time.UTC))
			c.fn(t, newStore(t, clock), clock)
		})
	}
}

func mustSet(t *testing.T, s store.Store, key, value string, ttl time.Duration) {
	t.Helper()
	if err := s.Set(t.Context(), key, []byte(value), ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func wantValue(t *testing.T, s store.Store, key, want string) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v, want %q", key, err, want)
	}
	if string(got) != want {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func wantNotFound(t *testing.T, s store.Store, key string) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
}

func setIfAbsent(t *testing.T, s store.Store, key, value string, ttl time.Duration) bool {
	t.Helper()
	ok, err := s.SetIfAbsent(t.Context(), key, []byte(value), ttl)
	if err != nil {
		t.Fatalf("SetIfAbsent(%q): %v", key, err)
	}
	return ok
}

func testGetMissing(t *testing.T, s store.Store, _ *Clock) {
	wantNotFound(t, s, "suite/missing")
	wantNotFound(t, s, "suite/deeper/missing")
}

func testSetGet(t *testing.T, s store.Store, _ *Clock) {
	ctx := t.Context()
	mustSet(t, s, "keys/signing", "v1", 0)
	wantValue(t, s, "keys/signing", "v1")

	// Every byte value survives, and neither the caller's slice nor the
	// returned one aliases what the store keeps.
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	in := slices.Clone(all)
	if err := s.Set(ctx, "suite/binary", in, 0); err != nil {
		t.Fatalf("Set: %v", err)
	}
	in[0] = 'x'
	got, err := s.Get(ctx, "suite/binary")
	if err != nil || !bytes.Equal(got, all) {
		t.Fatalf("Get(binary) = %v, %v; want the 256 byte values", got, err)
	}
	got[1] = 'x'
	if got, _ := s.Get(ctx, "suite/binary"); !bytes.Equal(got, all) {
		t.Fatalf("changing a returned value changed the stored one")
	}

	// An empty value is a value, not an absence.
	mustSet(t, s, "suite/empty", "", 0)
	if got, err := s.Get(ctx, "suite/empty"); err != nil || len(got) != 0 {
		t.Fatalf("Get(empty) = %q, %v; want empty value", got, err)
	}
	if setIfAbsent(t, s, "suite/empty", "x", 0) {
		t.Fatalf("SetIfAbsent over an empty value = true")
	}
}

func testOverwrite(t *testing.T, s store.Store, clock *Clock) {
	mustSet(t, s, "suite/k", "first", 0)
	mustSet(t, s, "suite/k", "second", 0)
	wantValue(t, s, "suite/k", "second")

	// Overwriting replaces the lifetime too, in both directions.
	mustSet(t, s, "suite/ttl", "short", time.Minute)
	mustSet(t, s, "suite/ttl", "forever", 0)
	mustSet(t, s, "suite/forever", "forever", 0)
	mustSet(t, s, "suite/forever", "short", time.Minute)
	clock.Advance(2 * time.Minute)
	wantValue(t, s, "suite/ttl", "forever")
	wantNotFound(t, s, "suite/forever")
}

func testExpiry(t *testing.T, s store.Store, clock *Clock) {
	mustSet(t, s, "suite/exp/a", "a", time.Minute)
	clock.Advance(59 * time.Second)
	wantValue(t, s, "suite/exp/a", "a")
	clock.Advance(2 * time.Second)
	wantNotFound(t, s, "suite/exp/a")
	keys, err := s.List(t.Context(), "suite/exp/")
	if err != nil || len(keys) != 0 {
		t.Fatalf("List after expiry = %q, %v; want none", keys, err)
	}
}

func testNoExpiry(t *testing.T, s store.Store, clock *Clock) {
	mustSet(t, s, "suite/forever", "v", 0)
	clock.Advance(10 * 365 * 24 * time.Hour)
	wantValue(t, s, "suite/forever", "v")
	if setIfAbsent(t, s, "suite/forever", "w", 0) {
		t.Fatalf("SetIfAbsent over a value without expiry = true")
	}
}

func testSetIfAbsent(t *testing.T, s store.Store, _ *Clock) {
	if !setIfAbsent(t, s, "jti/demo/1", "first", time.Minute) {
		t.Fatalf("first SetIfAbsent = false")
	}
	if setIfAbsent(t, s, "jti/demo/1", "second", time.Minute) {
		t.Fatalf("second SetIfAbsent = true")
	}
	wantValue(t, s, "jti/demo/1", "first")

	// A value written by Set counts as present.
	mustSet(t, s, "jti/demo/2", "set", 0)
	if setIfAbsent(t, s, "jti/demo/2", "x", 0) {
		t.Fatalf("SetIfAbsent over Set = true")
	}
	wantValue(t, s, "jti/demo/2", "set")
}

func testSetIfAbsentAfterExpiry(t *testing.T, s store.Store, clock *Clock) {
	if !setIfAbsent(t, s, "jti/demo/x", "first", time.Minute) {
		t.Fatalf("first SetIfAbsent = false")
	}
	clock.Advance(30 * time.Second)
	if setIfAbsent(t, s, "jti/demo/x", "early", time.Minute) {
		t.Fatalf("SetIfAbsent before expiry = true")
	}
	clock.Advance(31 * time.Second)
	if !setIfAbsent(t, s, "jti/demo/x", "second", time.Minute) {
		t.Fatalf("SetIfAbsent after expiry = false")
	}
	wantValue(t, s, "jti/demo/x", "second")
	// The new value has a lifetime of its own.
	clock.Advance(59 * time.Second)
	wantValue(t, s, "jti/demo/x", "second")
}

// testSetIfAbsentConcurrent is "consume once": of many simultaneous callers
// with the same key exactly one may win, and its value is the one stored.
func testSetIfAbsentConcurrent(t *testing.T, s store.Store, _ *Clock) {
	const keys, callers = 200, 50
	ctx := t.Context()
	start := make(chan struct{})
	var wins [keys]atomic.Int32
	var winner [keys]atomic.Int32
	var failed atomic.Value
	var wg sync.WaitGroup
	for k := range keys {
		for c := range callers {
			wg.Go(func() {
				<-start
				key := fmt.Sprintf("jti/race/%d", k)
				ok, err := s.SetIfAbsent(ctx, key, fmt.Appendf(nil, "caller-%d", c), time.Hour)
				if err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
				if ok {
					wins[k].Add(1)
					winner[k].Store(int32(c))
				}
			})
		}
	}
	close(start)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("SetIfAbsent: %v", err)
	}
	for k := range keys {
		key := fmt.Sprintf("jti/race/%d", k)
		if n := wins[k].Load(); n != 1 {
			t.Errorf("%s: %d callers got true, want exactly 1", key, n)
			continue
		}
		wantValue(t, s, key, fmt.Sprintf("caller-%d", winner[k].Load()))
	}
}

func testDelete(t *testing.T, s store.Store, _ *Clock) {
	ctx := t.Context()
	if err := s.Delete(ctx, "suite/never"); err != nil {
		t.Fatalf("Delete(missing): %v", err)
	}
	mustSet(t, s, "suite/k", "v", 0)
	mustSet(t, s, "suite/other", "v", 0)
	for range 2 {
		if err := s.Delete(ctx, "suite/k"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		wantNotFound(t, s, "suite/k")
	}
	wantValue(t, s, "suite/other", "v")
	if !setIfAbsent(t, s, "suite/k", "again", 0) {
		t.Fatalf("SetIfAbsent after Delete = false")
	}

	// Deleting a key deletes that key only, not the keys it is a prefix of.
	mustSet(t, s, "suite/dir/a", "v", 0)
	_ = s.Delete(ctx, "suite/dir")
	wantValue(t, s, "suite/dir/a", "v")
}

func testList(t *testing.T, s store.Store, clock *Clock) {
	ctx := t.Context()
	list := func(prefix string, want ...string) {
		t.Helper()
		got, err := s.List(ctx, prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		slices.Sort(got)
		if len(got) != len(want) || !slices.Equal(got, want) {
			t.Fatalf("List(%q) = %q, want %q", prefix, got, want)
		}
	}
	list("revoked/")
	mustSet(t, s, "revoked/a", "1", 0)
	mustSet(t, s, "revoked/b", "1", time.Hour)
	mustSet(t, s, "revoked/c", "1", time.Minute)
	mustSet(t, s, "revoked/sub/d", "1", 0)
	mustSet(t, s, "revokedX/e", "1", 0)
	mustSet(t, s, "other/revoked/f", "1", 0)
	list("revoked/", "revoked/a", "revoked/b", "revoked/c", "revoked/sub/d")

	clock.Advance(2 * time.Minute)
	list("revoked/", "revoked/a", "revoked/b", "revoked/sub/d")
	list("revoked/sub/", "revoked/sub/d")
	list("revokedX/", "revokedX/e")
	list("nothing/")

	if err := s.Delete(ctx, "revoked/a"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	list("revoked/", "revoked/b", "revoked/sub/d")
}

func testLockExclusive(t *testing.T, s store.Store, _ *Clock) {
	const workers, rounds = 8, 10
	ctx := t.Context()
	var inside, total atomic.Int32
	var failed atomic.Value
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				unlock, err := s.Lock(ctx, "suite-lock")
				if err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
				if n := inside.Add(1); n != 1 {
					failed.CompareAndSwap(nil, fmt.Errorf("%d holders at once", n))
				}
				total.Add(1)
				inside.Add(-1)
				unlock()
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if n := total.Load(); n != workers*rounds {
		t.Fatalf("%d critical sections ran, want %d", n, workers*rounds)
	}

	// A waiter gets the lock when the holder lets it go.
	unlock, err := s.Lock(ctx, "suite-lock")
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	acquired := make(chan func())
	go func() {
		wait, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		unlock, err := s.Lock(wait, "suite-lock")
		if err != nil {
			failed.CompareAndSwap(nil, err)
			close(acquired)
			return
		}
		acquired <- unlock
	}()
	// Other names are independent.
	other, err := s.Lock(ctx, "suite-other")
	if err != nil {
		t.Fatalf("Lock(other name) while the first is held: %v", err)
	}
	other()
	unlock()
	second, ok := <-acquired
	if !ok {
		t.Fatalf("waiting Lock: %v", failed.Load())
	}

	// Releasing twice must not release the next holder's lock.
	unlock()
	busy, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if u, err := s.Lock(busy, "suite-lock"); err == nil {
		u()
		t.Fatalf("Lock succeeded while held, after the previous holder unlocked twice")
	}
	second()
}

func testLockCancel(t *testing.T, s store.Store, _ *Clock) {
	ctx := t.Context()
	unlock, err := s.Lock(ctx, "suite-lock")
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}

	// Cancelled while waiting.
	wait, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		u, err := s.Lock(wait, "suite-lock")
		if err == nil {
			u()
		}
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock with cancelled context = %v, want context.Canceled", err)
	}

	// Past its deadline while waiting.
	wait, cancel = context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if u, err := s.Lock(wait, "suite-lock"); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			u()
		}
		t.Fatalf("Lock past deadline = %v, want context.DeadlineExceeded", err)
	}

	// The abandoned waits left nothing behind.
	unlock()
	wait, cancel = context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	unlock, err = s.Lock(wait, "suite-lock")
	if err != nil {
		t.Fatalf("Lock after cancelled waiters: %v", err)
	}
	unlock()
}

func testInvalidKeys(t *testing.T, s store.Store, _ *Clock) {
	ctx := t.Context()
	bad := []string{
		"",
		"/abs",
		"..",
		"../up",
		"a/../b",
		"a/..",
		"a..b",
		`a\b`,
		"a\x00b",
		"a\nb",
		"a\tb",
		"a\x7fb",
		"a//b",
		"a/./b",
		"trailing/",
		"caf\u00e9",
		strings.Repeat("k", 2000),
	}
	for _, key := range bad {
		t.Run(fmt.Sprintf("%q", key[:min(len(key), 20)]), func(t *testing.T) {
			wantInvalid := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, store.ErrInvalidKey) {
					t.Errorf("%s(%q) = %v, want ErrInvalidKey", op, key, err)
				}
			}
			_, err := s.Get(ctx, key)
			wantInvalid("Get", err)
			wantInvalid("Set", s.Set(ctx, key, []byte("v"), 0))
			_, err = s.SetIfAbsent(ctx, key, []byte("v"), 0)
			wantInvalid("SetIfAbsent", err)
			wantInvalid("Delete", s.Delete(ctx, key))
			unlock, err := s.Lock(ctx, key)
			if err == nil {
				unlock()
			}
			wantInvalid("Lock", err)
			if strings.HasSuffix(key, "/") {
				return
			}
			_, err = s.List(ctx, key+"/")
			wantInvalid("List", err)
		})
	}
	for _, prefix := range []string{"", "/", "revoked", "/revoked/", "../", "a/../", "a//"} {
		if _, err := s.List(ctx, prefix); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("List(%q) = %v, want ErrInvalidKey", prefix, err)
		}
	}

	// What callers do put into keys is accepted.
	for _, key := range []string{
		"revoked/AbC-_09",
		"jti/demo/x.y",
		"keys/signing",
		"oidc/codes/a~b@c=d+e",
		"a",
	} {
		mustSet(t, s, key, "v", 0)
		wantValue(t, s, key, "v")
	}
}
