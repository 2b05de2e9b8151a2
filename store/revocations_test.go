package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap/zaptest"

	"github.com/caddy-idv/caddy-idv/store"
)

const sid = "c2Vzc2lvbi1pZC0wMDAx_-"

func TestRevokeAtOnce(t *testing.T) {
	clock := newClock()
	r := store.NewRevocations(store.NewMemory(clock.Now), zaptest.NewLogger(t), clock.Now)
	if r.Revoked(sid) {
		t.Fatalf("Revoked before Revoke")
	}
	if err := r.Revoke(t.Context(), sid, clock.Now().Add(time.Hour)); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if !r.Revoked(sid) {
		t.Errorf("Revoked right after Revoke = false")
	}
	if r.Revoked(sid + "x") {
		t.Errorf("another session is revoked too")
	}
}

// TestRevocationsSharedStore checks that an instance on the same store learns
// of another's revocation at its next Sync.
func TestRevocationsSharedStore(t *testing.T) {
	for name, pair := range map[string]func(t *testing.T, now func() time.Time) (store.Store, store.Store){
		"Memory": func(t *testing.T, now func() time.Time) (store.Store, store.Store) {
			m := store.NewMemory(now)
			return m, m
		},
		"Caddy": func(t *testing.T, now func() time.Time) (store.Store, store.Store) {
			dir := t.TempDir()
			return store.NewCaddy(&certmagic.FileStorage{Path: dir}, zaptest.NewLogger(t), now),
				store.NewCaddy(&certmagic.FileStorage{Path: dir}, zaptest.NewLogger(t), now)
		},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			clock := newClock()
			s1, s2 := pair(t, clock.Now)
			r1 := store.NewRevocations(s1, zaptest.NewLogger(t), clock.Now)
			r2 := store.NewRevocations(s2, zaptest.NewLogger(t), clock.Now)
			if err := r1.Revoke(ctx, sid, clock.Now().Add(time.Hour)); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			if r2.Revoked(sid) {
				t.Fatalf("the other instance knew before Sync")
			}
			if err := r2.Sync(ctx); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			if !r2.Revoked(sid) {
				t.Errorf("the other instance does not see the revocation after Sync")
			}
			// A new instance starts from the store too.
			r3 := store.NewRevocations(s2, zaptest.NewLogger(t), clock.Now)
			if err := r3.Sync(ctx); err != nil || !r3.Revoked(sid) {
				t.Errorf("new instance after Sync: Revoked = %v, err %v; want true", r3.Revoked(sid), err)
			}
		})
	}
}

func TestRevocationsExpiry(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	m := store.NewMemory(clock.Now)
	r := store.NewRevocations(m, zaptest.NewLogger(t), clock.Now)
	if err := r.Revoke(ctx, sid, clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil || !r.Revoked(sid) {
		t.Fatalf("after Sync: Revoked = %v, err %v; want true", r.Revoked(sid), err)
	}
	clock.Advance(59 * time.Second)
	if !r.Revoked(sid) {
		t.Fatalf("Revoked before until = false")
	}
	clock.Advance(2 * time.Second)
	if r.Revoked(sid) {
		t.Errorf("Revoked after until = true")
	}
	if err := r.Sync(ctx); err != nil || r.Revoked(sid) {
		t.Errorf("after until and Sync: Revoked = %v, err %v; want false", r.Revoked(sid), err)
	}
	if keys, _ := m.List(ctx, "revoked/"); len(keys) != 0 {
		t.Errorf("store still lists %q after until", keys)
	}

	// A revocation that has already ended is nothing to do.
	if err := r.Revoke(ctx, "shortened", clock.Now().Add(-time.Second)); err != nil {
		t.Errorf("Revoke with until in the past: %v", err)
	}
	if r.Revoked("shortened") {
		t.Errorf("session whose revocation ended is revoked")
	}
}

// TestRevocationsExtended checks that when a session is revoked again with
// a later end, other instances keep refusing it past the first end.
func TestRevocationsExtended(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	m := store.NewMemory(clock.Now)
	r1 := store.NewRevocations(m, zaptest.NewLogger(t), clock.Now)
	r2 := store.NewRevocations(m, zaptest.NewLogger(t), clock.Now)
	if err := r1.Revoke(ctx, sid, clock.Now().Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := r2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r1.Revoke(ctx, sid, clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// r2 syncs every 5 seconds in production; a few of its syncs:
	for range 4 {
		clock.Advance(3 * time.Minute)
		if err := r2.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !r2.Revoked(sid) {
		t.Errorf("after the first end, the other instance no longer refuses the session")
	}
}

func TestRevokeInvalidSID(t *testing.T) {
	ctx := t.Context()
	m := store.NewMemory(nil)
	r := store.NewRevocations(m, zaptest.NewLogger(t), nil)
	until := time.Now().Add(time.Hour)
	for _, bad := range []string{
		"",
		"../keys/signing",
		"a/b",
		"a.b",
		"a b",
		"a=",
		"a+b",
		"a\x00b",
		"caf\u00e9",
		strings.Repeat("a", 129),
	} {
		if err := r.Revoke(ctx, bad, until); err == nil {
			t.Errorf("Revoke(%q) succeeded", bad)
		}
		if r.Revoked(bad) {
			t.Errorf("Revoked(%q) = true", bad)
		}
	}
	if keys, _ := m.List(ctx, "revoked/"); len(keys) != 0 {
		t.Errorf("invalid ids reached the store: %q", keys)
	}
	if err := r.Revoke(ctx, strings.Repeat("a", 128), until); err != nil {
		t.Errorf("Revoke of a 128-character id: %v", err)
	}
}

// flakyStore is a Memory store whose writes or lists can be made to fail,
// and that reports each List call.
type flakyStore struct {
	*store.Memory
	failSet, failList atomic.Bool
	lists             chan struct{}
}

func (f *flakyStore) SetIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if f.failSet.Load() {
		return false, errDown
	}
	return f.Memory.SetIfAbsent(ctx, key, value, ttl)
}

var errDown = fmt.Errorf("store down: %w", store.ErrUnavailable)

func (f *flakyStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if f.failSet.Load() {
		return errDown
	}
	return f.Memory.Set(ctx, key, value, ttl)
}

func (f *flakyStore) List(ctx context.Context, prefix string) ([]string, error) {
	if f.lists != nil {
		f.lists <- struct{}{}
	}
	if f.failList.Load() {
		return nil, errDown
	}
	return f.Memory.List(ctx, prefix)
}

// TestRevocationsStoreDown checks that revocations are kept when the store
// fails: a revocation that could not be written still holds here, also
// across Syncs, and a failed Sync keeps what was known.
func TestRevocationsStoreDown(t *testing.T) {
	ctx := t.Context()
	f := &flakyStore{Memory: store.NewMemory(nil)}
	r := store.NewRevocations(f, zaptest.NewLogger(t), nil)
	until := time.Now().Add(time.Hour)

	if err := r.Revoke(ctx, "synced", until); err != nil {
		t.Fatal(err)
	}
	f.failSet.Store(true)
	if err := r.Revoke(ctx, "unwritten", until); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Revoke with the store down = %v, want ErrUnavailable", err)
	}
	if !r.Revoked("unwritten") {
		t.Errorf("a revocation that could not be written does not hold here")
	}
	if err := r.Sync(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Sync that cannot write the unwritten revocation back = %v, want ErrUnavailable", err)
	}
	if !r.Revoked("unwritten") || !r.Revoked("synced") {
		t.Errorf("after Sync: unwritten %v, synced %v; want both revoked", r.Revoked("unwritten"), r.Revoked("synced"))
	}
	f.failList.Store(true)
	if err := r.Sync(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Sync with the store down = %v, want ErrUnavailable", err)
	}
	if !r.Revoked("synced") {
		t.Errorf("a failed Sync forgot a revocation")
	}
}

// TestRevocationsSurviveStoreLoss empties the store under an instance, as a
// Redis restarted without persistence does: the instance keeps refusing the
// sessions, and its next Sync writes the revocations back, so that a new
// instance reading the store refuses them too.
func TestRevocationsSurviveStoreLoss(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	m := store.NewMemory(clock.Now)
	r := store.NewRevocations(m, zaptest.NewLogger(t), clock.Now)
	for _, id := range []string{"one", "two", "shortened"} {
		if err := r.Revoke(ctx, id, clock.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Revoke(ctx, "shortened", clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"one", "two", "shortened"} {
		if err := m.Delete(ctx, "revoked/"+id); err != nil {
			t.Fatal(err)
		}
	}
	if !r.Revoked("one") || !r.Revoked("two") {
		t.Fatal("the instance forgot revocations the store lost")
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !r.Revoked("one") || !r.Revoked("two") {
		t.Fatal("after Sync, the instance accepts sessions whose revocations the store lost")
	}
	fresh := store.NewRevocations(m, zaptest.NewLogger(t), clock.Now)
	if err := fresh.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !fresh.Revoked("one") || !fresh.Revoked("two") || !fresh.Revoked("shortened") {
		t.Fatalf("a new instance after the write-back: one %v, two %v, shortened %v; want all revoked",
			fresh.Revoked("one"), fresh.Revoked("two"), fresh.Revoked("shortened"))
	}
	clock.Advance(30 * time.Minute)
	if err := fresh.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !fresh.Revoked("shortened") {
		t.Error("a second Revoke with an earlier end shortened the revocation")
	}
	clock.Advance(31 * time.Minute)
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if keys, _ := m.List(ctx, "revoked/"); len(keys) != 0 || r.Revoked("one") {
		t.Errorf("after their end, revocations were written back: %q", keys)
	}
}

// TestRevocationsWrittenAfterOutage checks that a revocation whose write
// failed reaches the store at the first Sync after the store is back.
func TestRevocationsWrittenAfterOutage(t *testing.T) {
	ctx := t.Context()
	f := &flakyStore{Memory: store.NewMemory(nil)}
	r := store.NewRevocations(f, zaptest.NewLogger(t), nil)
	f.failSet.Store(true)
	if err := r.Revoke(ctx, sid, time.Now().Add(time.Hour)); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Revoke with writes failing = %v, want ErrUnavailable", err)
	}
	if err := r.Sync(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Sync that cannot write back = %v, want ErrUnavailable", err)
	}
	if !r.Revoked(sid) {
		t.Fatal("the revocation does not hold here")
	}
	f.failSet.Store(false)
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	other := store.NewRevocations(f.Memory, zaptest.NewLogger(t), nil)
	if err := other.Sync(ctx); err != nil || !other.Revoked(sid) {
		t.Fatalf("another instance after the outage: Revoked = %v, %v; want true", other.Revoked(sid), err)
	}
}

// TestRevocationsRunSyncs checks that Run picks up another instance's
// revocation by syncing, and returns when its context is done.
func TestRevocationsRunSyncs(t *testing.T) {
	m := store.NewMemory(nil)
	f := &flakyStore{Memory: m, lists: make(chan struct{})}
	r1 := store.NewRevocations(m, zaptest.NewLogger(t), nil)
	r2 := store.NewRevocations(f, zaptest.NewLogger(t), nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		r2.Run(ctx, time.Millisecond)
		close(done)
	}()
	<-f.lists // the first Sync has started
	if err := r1.Revoke(t.Context(), sid, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// The next Sync starts after the revocation was written; once the one
	// after it starts, it has finished.
	<-f.lists
	<-f.lists
	if !r2.Revoked(sid) {
		t.Errorf("Run did not pick up the revocation")
	}
	cancel()
	for {
		select {
		case <-f.lists:
			continue
		case <-done:
		}
		break
	}
}

// notifyingStore is a Memory store with in-process publish/subscribe that
// delivers each message before Publish returns, standing in for Redis.
type notifyingStore struct {
	*store.Memory
	mu         sync.Mutex
	subs       map[int]func([]byte)
	next       int
	subscribed chan struct{}
}

func (n *notifyingStore) Publish(_ context.Context, channel string, msg []byte) error {
	if channel != store.RevokedChannel {
		return fmt.Errorf("unexpected channel %q", channel)
	}
	n.mu.Lock()
	var fns []func([]byte)
	for _, fn := range n.subs {
		fns = append(fns, fn)
	}
	n.mu.Unlock()
	for _, fn := range fns {
		fn(msg)
	}
	return nil
}

func (n *notifyingStore) Subscribe(ctx context.Context, channel string, fn func([]byte)) error {
	n.mu.Lock()
	id := n.next
	n.next++
	n.subs[id] = fn
	n.mu.Unlock()
	n.subscribed <- struct{}{}
	<-ctx.Done()
	n.mu.Lock()
	delete(n.subs, id)
	n.mu.Unlock()
	return ctx.Err()
}

var _ store.Notifier = (*notifyingStore)(nil)

// TestRevocationsNotified checks that on a Notifier store another instance
// learns of a revocation at once, without a Sync.
func TestRevocationsNotified(t *testing.T) {
	n := &notifyingStore{Memory: store.NewMemory(nil), subs: map[int]func([]byte){}, subscribed: make(chan struct{}, 1)}
	r1 := store.NewRevocations(n, zaptest.NewLogger(t), nil)
	r2 := store.NewRevocations(n, zaptest.NewLogger(t), nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		r2.Run(ctx, time.Hour)
		close(done)
	}()
	<-n.subscribed
	if err := r1.Revoke(t.Context(), sid, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !r2.Revoked(sid) {
		t.Errorf("the other instance did not learn of the revocation when it was published")
	}
	// Announcements of invalid ids are ignored.
	if err := n.Publish(t.Context(), store.RevokedChannel, []byte("../x")); err != nil {
		t.Fatal(err)
	}
	if r2.Revoked("../x") {
		t.Errorf("an invalid announced id was revoked")
	}
	cancel()
	<-done
	n.mu.Lock()
	left := len(n.subs)
	n.mu.Unlock()
	if left != 0 {
		t.Errorf("%d subscriptions left after Run returned", left)
	}
}

func TestRevokedDoesNotAllocate(t *testing.T) {
	r := store.NewRevocations(store.NewMemory(nil), nil, nil)
	if err := r.Revoke(t.Context(), sid, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	other := "bm90LXJldm9rZWQ"
	if n := testing.AllocsPerRun(1000, func() {
		if !r.Revoked(sid) || r.Revoked(other) {
			panic("wrong answer")
		}
	}); n != 0 {
		t.Errorf("Revoked allocates %v times per call, want 0", n)
	}
}

// BenchmarkRevoked measures the request-path check against sets of
// different sizes: its cost must not grow with the number of revocations.
func BenchmarkRevoked(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		r := store.NewRevocations(store.NewMemory(nil), nil, nil)
		ctx := b.Context()
		until := time.Now().Add(time.Hour)
		for i := range n {
			if err := r.Revoke(ctx, fmt.Sprintf("revoked-session-%08d", i), until); err != nil {
				b.Fatal(err)
			}
		}
		if err := r.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		hit, miss := fmt.Sprintf("revoked-session-%08d", n/2), "live-session-00000001"
		b.Run(fmt.Sprintf("n=%d/hit", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !r.Revoked(hit) {
					b.Fatal("not revoked")
				}
			}
		})
		b.Run(fmt.Sprintf("n=%d/miss", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r.Revoked(miss) {
					b.Fatal("revoked")
				}
			}
		})
		b.Run(fmt.Sprintf("n=%d/parallel", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if r.Revoked(miss) {
						b.Fatal("revoked")
					}
				}
			})
		})
	}
}
