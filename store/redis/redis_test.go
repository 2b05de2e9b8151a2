package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/caddy-idv/caddy-idv/store"
	redisstore "github.com/caddy-idv/caddy-idv/store/redis"
	"github.com/caddy-idv/caddy-idv/store/storetest"
)

// prefixes gives each store of a test run a key prefix of its own, so that
// tests sharing one server never see each other's keys or messages.
var prefixes atomic.Int64

func newPrefix() string { return fmt.Sprintf("test%d:", prefixes.Add(1)) }

// newStore returns a store on rawURL that is closed when tb ends.
func newStore(tb testing.TB, rawURL string, opts redisstore.Options) *redisstore.Store {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(tb)
	}
	s, err := redisstore.New(context.Background(), rawURL, opts)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// twoInstances returns two stores on srv with the same prefix, as two
// caddy-idv instances sharing one Redis would have.
func twoInstances(t *testing.T, srv *redisServer) (prefix string, a, b *redisstore.Store) {
	prefix = newPrefix()
	a = newStore(t, srv.url(), redisstore.Options{Prefix: prefix})
	b = newStore(t, srv.url(), redisstore.Options{Prefix: prefix})
	return prefix, a, b
}

// waitFor polls cond every few milliseconds until it holds, and fails t when
// it does not within limit. It returns how long that took.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// waitSubscribers waits until channel has n subscribers on srv, as Redis
// counts them.
func waitSubscribers(t *testing.T, srv *redisServer, channel string, n int64) {
	t.Helper()
	c := srv.client()
	waitFor(t, 15*time.Second, fmt.Sprintf("%d subscribers on %s", n, channel), func() bool {
		m, err := c.PubSubNumSub(context.Background(), channel).Result()
		return err == nil && m[channel] == n
	})
}

func TestConformance(t *testing.T) {
	srv := startRedis(t)
	storetest.Run(t, func(t *testing.T, clock *storetest.Clock) store.Store {
		return newStore(t, srv.url(), redisstore.Options{Now: clock.Now, Prefix: newPrefix()})
	})
}

// TestPrefix checks that the entries live under the prefix in Redis, that
// another prefix sees none of them, and that a prefix with SCAN MATCH
// wildcards in it lists nothing beyond its own keys.
func TestPrefix(t *testing.T) {
	srv := startRedis(t)
	ctx := t.Context()
	star := newStore(t, srv.url(), redisstore.Options{Prefix: "p*:"})
	other := newStore(t, srv.url(), redisstore.Options{Prefix: "px:"})
	if err := star.Set(ctx, "revoked/a", []byte("1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := other.Set(ctx, "revoked/b", []byte("1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if n, err := srv.client().Exists(ctx, "p*:revoked/a").Result(); err != nil || n != 1 {
		t.Fatalf("key p*:revoked/a in Redis: %d, %v", n, err)
	}
	if ttl, err := srv.client().PTTL(ctx, "p*:revoked/a").Result(); err != nil || ttl <= time.Hour {
		t.Fatalf("Redis TTL = %v, %v; want the lifetime plus a margin", ttl, err)
	}
	keys, err := star.List(ctx, "revoked/")
	if err != nil || len(keys) != 1 || keys[0] != "revoked/a" {
		t.Fatalf("List = %q, %v; want only revoked/a", keys, err)
	}
	if _, err := other.Get(ctx, "revoked/a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another prefix reads the entry: %v", err)
	}
}

// TestTwoInstancesSetIfAbsent is consume-once across instances: 1,000 keys,
// each tried at once by several callers on each of two stores sharing one
// Redis, must have exactly one winner each.
func TestTwoInstancesSetIfAbsent(t *testing.T) {
	srv := startRedis(t)
	_, a, b := twoInstances(t, srv)
	const keys, callersPerInstance = 1000, 3
	ctx := t.Context()
	var wins [keys]atomic.Int32
	var failed atomic.Value
	start := make(chan struct{})
	var wg sync.WaitGroup
	for k := range keys {
		for _, s := range []*redisstore.Store{a, b} {
			for range callersPerInstance {
				wg.Go(func() {
					<-start
					ok, err := s.SetIfAbsent(ctx, fmt.Sprintf("jti/demo/%d", k), []byte("x"), time.Hour)
					if err != nil {
						failed.CompareAndSwap(nil, err)
					} else if ok {
						wins[k].Add(1)
					}
				})
			}
		}
	}
	close(start)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("SetIfAbsent: %v", err)
	}
	for k := range keys {
		if n := wins[k].Load(); n != 1 {
			t.Errorf("key %d: %d winners, want 1", k, n)
		}
	}
}

// subscribe runs s.Subscribe on channel in the background until the test
// ends, and returns the messages it receives.
func subscribe(t *testing.T, s *redisstore.Store, channel string) <-chan string {
	ctx, cancel := context.WithCancel(context.Background())
	msgs := make(chan string, 100)
	done := make(chan error, 1)
	go func() { done <- s.Subscribe(ctx, channel, func(m []byte) { msgs <- string(m) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Subscribe returned %v, want context.Canceled", err)
		}
	})
	return msgs
}

func receive(t *testing.T, msgs <-chan string, want string) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case got := <-msgs:
		if got != want {
			t.Fatalf("received %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%q not received within 5 s", want)
	}
	return time.Since(start)
}

func TestPublishSubscribe(t *testing.T) {
	srv := startRedis(t)
	prefix, a, b := twoInstances(t, srv)
	msgs := subscribe(t, b, "events")
	waitSubscribers(t, srv, prefix+"events", 1)
	for i := range 3 {
		msg := fmt.Sprintf("message %d \x00\xff", i)
		sent := time.Now()
		if err := a.Publish(t.Context(), "events", []byte(msg)); err != nil {
			t.Fatal(err)
		}
		receive(t, msgs, msg)
		t.Logf("delivered in %v", time.Since(sent))
	}
	// Another channel, and another prefix, are not delivered.
	if err := a.Publish(t.Context(), "other", []byte("x")); err != nil {
		t.Fatal(err)
	}
	otherPrefix := newStore(t, srv.url(), redisstore.Options{Prefix: newPrefix()})
	if err := otherPrefix.Publish(t.Context(), "events", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(t.Context(), "events", []byte("last")); err != nil {
		t.Fatal(err)
	}
	receive(t, msgs, "last")
}

// TestSubscribeLeavesNoGoroutine checks that a Subscribe that returns has
// stopped go-redis's goroutines too.
func TestSubscribeLeavesNoGoroutine(t *testing.T) {
	srv := startRedis(t)
	prefix, _, b := twoInstances(t, srv)
	// Warm the pool up, so that its own goroutines are counted before.
	if err := b.Publish(t.Context(), "x", []byte("x")); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	for range 5 {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- b.Subscribe(ctx, "leak", func([]byte) {}) }()
		waitSubscribers(t, srv, prefix+"leak", 1)
		cancel()
		<-done
	}
	waitFor(t, 5*time.Second, "goroutines back to their number before", func() bool {
		return runtime.NumGoroutine() <= before
	})
}

func TestLockTwoInstances(t *testing.T) {
	srv := startRedis(t)
	_, a, b := twoInstances(t, srv)
	ctx := t.Context()
	unlock, err := a.Lock(ctx, "keys/signing")
	if err != nil {
		t.Fatal(err)
	}
	busy, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if u, err := b.Lock(busy, "keys/signing"); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			u()
		}
		t.Fatalf("Lock on the other instance while held = %v, want DeadlineExceeded", err)
	}
	got := make(chan func(), 1)
	go func() {
		u, err := b.Lock(ctx, "keys/signing")
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- u
	}()
	select {
	case <-got:
		t.Fatal("the other instance took the lock while it was held")
	case <-time.After(100 * time.Millisecond):
	}
	unlock()
	select {
	case u, ok := <-got:
		if !ok {
			t.FailNow()
		}
		u()
	case <-time.After(5 * time.Second):
		t.Fatal("the other instance did not get the lock after its release")
	}
}

// TestLockLease checks that a holder keeps its lock past the lease by
// renewing it, and that the lock of a holder that stops (here: its store is
// closed, as when the process dies) is free once the lease has run out.
func TestLockLease(t *testing.T) {
	srv := startRedis(t)
	_, a, b := twoInstances(t, srv)
	redisstore.SetLease(a, 300*time.Millisecond)
	ctx := t.Context()
	if _, err := a.Lock(ctx, "lease"); err != nil {
		t.Fatal(err)
	}
	busy, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if u, err := b.Lock(busy, "lease"); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			u()
		}
		t.Fatalf("Lock after three leases of a renewing holder = %v, want DeadlineExceeded", err)
	}
	a.Close()
	start := time.Now()
	wait, cancel2 := context.WithTimeout(ctx, 5*time.Second)
	defer cancel2()
	u, err := b.Lock(wait, "lease")
	if err != nil {
		t.Fatalf("Lock after the holder stopped: %v", err)
	}
	u()
	t.Logf("lock of a stopped holder free after %v", time.Since(start))
}

// TestRedisRestart stops Redis under two instances: every call fails quickly
// with ErrUnavailable; when Redis is back on the same address, calls succeed
// and the subscription receives again, without anything being restarted.
func TestRedisRestart(t *testing.T) {
	srv := startRedis(t)
	prefix, a, b := twoInstances(t, srv)
	ctx := t.Context()
	msgs := subscribe(t, b, "events")
	waitSubscribers(t, srv, prefix+"events", 1)
	if err := a.Publish(ctx, "events", []byte("before")); err != nil {
		t.Fatal(err)
	}
	receive(t, msgs, "before")
	if err := a.Set(ctx, "keys/k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}

	srv.stop()
	calls := []struct {
		name string
		fn   func() error
	}{
		{"Get", func() error { _, err := a.Get(ctx, "keys/k"); return err }},
		{"Set", func() error { return a.Set(ctx, "keys/k", []byte("v"), time.Minute) }},
		{"SetIfAbsent", func() error { _, err := b.SetIfAbsent(ctx, "jti/x", []byte("v"), time.Minute); return err }},
		{"Delete", func() error { return a.Delete(ctx, "keys/k") }},
		{"List", func() error { _, err := b.List(ctx, "keys/"); return err }},
		{"Lock", func() error {
			u, err := a.Lock(ctx, "l")
			if err == nil {
				u()
			}
			return err
		}},
		{"Publish", func() error { return a.Publish(ctx, "events", []byte("lost")) }},
		{"Subscribe", func() error {
			return a.Subscribe(ctx, "events", func([]byte) { t.Error("message while Redis is down") })
		}},
	}
	for _, c := range calls {
		for range 2 {
			start := time.Now()
			err := c.fn()
			took := time.Since(start)
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("%s with Redis down = %v, want ErrUnavailable", c.name, err)
			}
			if took > 3*time.Second {
				t.Errorf("%s with Redis down took %v", c.name, took)
			}
			t.Logf("%s with Redis down: %v after %v", c.name, err, took.Round(time.Millisecond))
		}
	}

	srv.start()
	took := waitFor(t, 15*time.Second, "Get after Redis is back", func() bool {
		_, err := a.Get(ctx, "keys/k")
		// Redis kept nothing (no persistence): the entry is gone.
		return errors.Is(err, store.ErrNotFound)
	})
	t.Logf("calls succeed again %v after Redis is back", took.Round(time.Millisecond))
	for _, s := range []*redisstore.Store{a, b} {
		waitFor(t, 15*time.Second, "SetIfAbsent after Redis is back", func() bool {
			_, err := s.SetIfAbsent(ctx, "jti/after", []byte("v"), time.Minute)
			return err == nil
		})
	}
	took = waitFor(t, 15*time.Second, "subscribed again", func() bool {
		m, err := srv.client().PubSubNumSub(ctx, prefix+"events").Result()
		return err == nil && m[prefix+"events"] == 1
	})
	t.Logf("subscribed again %v after Redis is back", took.Round(time.Millisecond))
	if err := a.Publish(ctx, "events", []byte("after")); err != nil {
		t.Fatal(err)
	}
	receive(t, msgs, "after")
}

// TestStartWithRedisDown checks that a store made while Redis is down is
// made, fails its calls with ErrUnavailable, and works once Redis is up.
func TestStartWithRedisDown(t *testing.T) {
	srv := startRedis(t)
	srv.stop()
	s := newStore(t, srv.url(), redisstore.Options{Prefix: newPrefix()})
	if _, err := s.Get(t.Context(), "keys/k"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Get before Redis is up = %v, want ErrUnavailable", err)
	}
	srv.start()
	waitFor(t, 15*time.Second, "Set once Redis is up", func() bool {
		return s.Set(t.Context(), "keys/k", []byte("v"), 0) == nil
	})
}

// TestRevocations runs store.Revocations on two instances over Redis: a
// Revoke on one is known to the other at once, through pub/sub (the periodic
// sync is an hour away).
func TestRevocations(t *testing.T) {
	srv := startRedis(t)
	prefix, a, b := twoInstances(t, srv)
	r1 := store.NewRevocations(a, zaptest.NewLogger(t), nil)
	r2 := store.NewRevocations(b, zaptest.NewLogger(t), nil)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { r1.Run(ctx, time.Hour) })
	wg.Go(func() { r2.Run(ctx, time.Hour) })
	waitSubscribers(t, srv, prefix+store.RevokedChannel, 2)

	for i, pair := range [][2]*store.Revocations{{r1, r2}, {r2, r1}} {
		sid := fmt.Sprintf("sid-%d", i)
		start := time.Now()
		if err := pair[0].Revoke(ctx, sid, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 2*time.Second, "the other instance knows the revocation", func() bool {
			return pair[1].Revoked(sid)
		})
		t.Logf("revocation known to the other instance %v after Revoke was called",
			time.Since(start).Round(time.Microsecond))
	}
}

// TestClose checks that Close ends a running Subscribe and that calls made
// afterwards fail with ErrUnavailable.
func TestClose(t *testing.T) {
	srv := startRedis(t)
	prefix := newPrefix()
	s := newStore(t, srv.url(), redisstore.Options{Prefix: prefix})
	done := make(chan error, 1)
	go func() { done <- s.Subscribe(t.Context(), "events", func([]byte) {}) }()
	waitSubscribers(t, srv, prefix+"events", 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Subscribe returned nil after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe still running after Close")
	}
	if _, err := s.Lock(t.Context(), "l"); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Lock after Close = %v, want ErrUnavailable", err)
	}
	if _, err := s.Get(t.Context(), "k"); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Get after Close = %v, want ErrUnavailable", err)
	}
}

// TestRevocationsSurviveRedisRestart restarts Redis without persistence
// (the test server has none) under an instance that had revoked a session:
// the instance keeps refusing it, and once its Sync has written the
// revocation back, an instance that starts afresh on Redis refuses it too.
func TestRevocationsSurviveRedisRestart(t *testing.T) {
	srv := startRedis(t)
	prefix := newPrefix()
	a := newStore(t, srv.url(), redisstore.Options{Prefix: prefix})
	r := store.NewRevocations(a, zaptest.NewLogger(t), nil)
	ctx := t.Context()
	const sid = "c2Vzc2lvbi1pZC0wMDAx_-"
	if err := r.Revoke(ctx, sid, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	srv.stop()
	srv.start()
	if n, err := srv.client().DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("Redis after the restart holds %d keys (%v), want none", n, err)
	}
	if !r.Revoked(sid) {
		t.Fatal("the instance accepts the session again after Redis lost the revocation")
	}
	waitFor(t, 15*time.Second, "a Sync after Redis is back", func() bool { return r.Sync(ctx) == nil })
	if !r.Revoked(sid) {
		t.Fatal("the instance accepts the session after its Sync")
	}
	fresh := store.NewRevocations(newStore(t, srv.url(), redisstore.Options{Prefix: prefix}), zaptest.NewLogger(t), nil)
	if err := fresh.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !fresh.Revoked(sid) {
		t.Fatal("a new instance reading Redis accepts the revoked session")
	}
}
