package login

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/store"
)

// fakeClock runs timers only when the test advances it, in order, on the
// test's goroutine.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves time forward by d, running every timer that falls due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
		var due *fakeTimer
		for len(c.timers) > 0 {
			t := c.timers[0]
			if t.stopped {
				c.timers = c.timers[1:]
				continue
			}
			if t.at.After(end) {
				break
			}
			due = t
			c.timers = c.timers[1:]
			t.stopped = true
			if t.at.After(c.now) {
				c.now = t.at
			}
			break
		}
		if due == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		due.f()
	}
}

// fakeProvider answers polls from a script and counts them.
type fakeProvider struct {
	mu     sync.Mutex
	calls  atomic.Int64
	answer func(n int64) (*providers.Result, error)
	cancel atomic.Int64
}

func (p *fakeProvider) Info() providers.Info { return providers.Info{Kind: "fake", Flow: "qr"} }
func (p *fakeProvider) Start(context.Context, providers.StartRequest) (*providers.Challenge, error) {
	return &providers.Challenge{QRText: "x"}, nil
}
func (p *fakeProvider) Poll(ctx context.Context, l providers.Login) (*providers.Result, error) {
	n := p.calls.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.answer(n)
}
func (p *fakeProvider) Cancel(context.Context, providers.Login) error { p.cancel.Add(1); return nil }

func pending() (*providers.Result, error) { return &providers.Result{State: providers.Pending}, nil }

func completed() (*providers.Result, error) {
	return &providers.Result{State: providers.Completed, Identity: &providers.Identity{Subject: "alice"}}, nil
}

type plainSeal struct{}

func (plainSeal) Seal(p []byte, _ string) string   { return string(p) }
func (plainSeal) Open(s, _ string) ([]byte, error) { return []byte(s), nil }

type harness struct {
	clk    *fakeClock
	st     *store.Memory
	issued atomic.Int64
}

func newHarness() *harness {
	h := &harness{clk: newFakeClock()}
	h.st = store.NewMemory(h.clk.Now)
	return h
}

func (h *harness) engine(t *testing.T) *Engine {
	t.Helper()
	e, err := New(Config{Store: h.st, Seal: plainSeal{}, Clock: h.clk, Issue: func(src *Source, id *providers.Identity) (string, time.Time, error) {
		h.issued.Add(1)
		return "token-of-" + id.Subject, h.clk.Now().Add(time.Hour), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func source(p providers.Provider) *Source {
	s := &Source{Name: "fake", Provider: p, Interval: 2 * time.Second, CallTimeout: time.Second}
	s.Prepare()
	return s
}

func (h *harness) login(id string) *Pending {
	now := h.clk.Now()
	return &Pending{ID: id, Provider: "fake", Created: now, Expires: now.Add(3 * time.Minute)}
}

// waitAsync starts a long poll and returns its answer channel.
func waitAsync(e *Engine, src *Source, p *Pending, wait time.Duration) <-chan *Status {
	ch := make(chan *Status, 1)
	go func() {
		st, err := e.Wait(context.Background(), src, p, wait)
		if err != nil {
			st = &Status{State: "error", Message: err.Error()}
		}
		ch <- st
	}()
	return ch
}

// settle lets goroutines started by the test reach their select.
func settle() { time.Sleep(20 * time.Millisecond) }

func TestOnePollerPerLoginAcrossWaitersAndInstances(t *testing.T) {
	h := newHarness()
	fp := &fakeProvider{}
	var done atomic.Bool
	fp.answer = func(int64) (*providers.Result, error) {
		if done.Load() {
			return completed()
		}
		return pending()
	}
	a, b := h.engine(t), h.engine(t)
	srcA, srcB := source(fp), source(fp)
	p := h.login("login-0123456789abcdef")
	var chans []<-chan *Status
	for i := 0; i < 50; i++ {
		e, src := a, srcA
		if i%2 == 1 {
			e, src = b, srcB
		}
		chans = append(chans, waitAsync(e, src, p, 30*time.Second))
	}
	settle()
	for i := 0; i < 10; i++ { // 20 s of polling
		h.clk.Advance(2 * time.Second)
	}
	if n := fp.calls.Load(); n > 11 {
		t.Fatalf("%d provider calls in 20 s with 50 waiters on 2 instances; want at most one per 2 s interval", n)
	}
	done.Store(true)
	h.clk.Advance(2 * time.Second)
	h.clk.Advance(RecheckEvery)
	for i, ch := range chans {
		select {
		case st := <-ch:
			if st.State != providers.Completed || st.Token != "token-of-alice" {
				t.Fatalf("waiter %d: %+v", i, st)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("waiter %d did not wake", i)
		}
	}
	if n := h.issued.Load(); n != 1 {
		t.Fatalf("%d sessions issued for one login", n)
	}
}

func TestLostConsumeRaceWaitsForTheWinner(t *testing.T) {
	h := newHarness()
	a, b := h.engine(t), h.engine(t)
	p := h.login("login-0123456789abcdef")
	// b's provider lost the consume-once race: it says so.
	loser := &fakeProvider{answer: func(int64) (*providers.Result, error) { return nil, providers.ErrConsumed }}
	st, err := b.Wait(context.Background(), source(loser), p, 0)
	if err != nil || st.State != providers.Pending {
		t.Fatalf("after a lost race: %+v %v", st, err)
	}
	// a's provider won it.
	winner := &fakeProvider{answer: func(int64) (*providers.Result, error) { return completed() }}
	ch := waitAsync(b, source(loser), p, 10*time.Second)
	settle()
	if st, err := a.Wait(context.Background(), source(winner), p, 0); err != nil || st.State != providers.Completed {
		t.Fatalf("winner: %+v %v", st, err)
	}
	h.clk.Advance(RecheckEvery)
	select {
	case st := <-ch:
		if st.State != providers.Completed {
			t.Fatalf("the loser's waiter got %+v, want the winner's completed", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the loser's waiter did not see the winner's record")
	}
}

type retryAfterErr struct{ d time.Duration }

func (e retryAfterErr) Error() string             { return "status 429" }
func (e retryAfterErr) RetryAfter() time.Duration { return e.d }

func TestFailingProviderNoticeThenGiveUp(t *testing.T) {
	h := newHarness()
	e := h.engine(t)
	fp := &fakeProvider{answer: func(int64) (*providers.Result, error) { return nil, errors.New("status 503") }}
	src := source(fp)
	p := h.login("login-0123456789abcdef")
	st, _ := e.Wait(context.Background(), src, p, 0)
	if st.State != providers.Pending || st.Notice != NoticeSlow {
		t.Fatalf("after a 503: %+v", st)
	}
	ch := waitAsync(e, src, p, 60*time.Second)
	settle()
	for i := 0; i < 40 && len(ch) == 0; i++ {
		h.clk.Advance(time.Second)
		settle()
	}
	select {
	case st := <-ch:
		if st.State != providers.Failed || st.Message != MsgNotAnswering {
			t.Fatalf("after 40 s of 503: %+v", st)
		}
	default:
		t.Fatal("the login did not give up")
	}
	// Backoff: far fewer calls than one per interval.
	if n := fp.calls.Load(); n > 10 {
		t.Errorf("%d calls to a failing provider in 30 s", n)
	}
}

func TestBackoffHonoursRetryAfter(t *testing.T) {
	if d := backoff(2*time.Second, 1, retryAfterErr{20 * time.Second}); d != 20*time.Second {
		t.Fatalf("Retry-After 20s: %v", d)
	}
	for n := 1; n < 10; n++ {
		d := backoff(2*time.Second, n, errors.New("x"))
		if d < time.Second || d > maxBackoff*12/10 {
			t.Fatalf("failure %d: %v", n, d)
		}
	}
}

func TestExpiryCancelsAtProvider(t *testing.T) {
	h := newHarness()
	e := h.engine(t)
	fp := &fakeProvider{answer: func(int64) (*providers.Result, error) { return pending() }}
	src := source(fp)
	p := h.login("login-0123456789abcdef")
	var st *Status
	ch := waitAsync(e, src, p, 30*time.Second)
	settle()
	for i := 0; i < 100; i++ {
		h.clk.Advance(3 * time.Second)
		settle()
		select {
		case st = <-ch:
		default:
			continue
		}
		if st.State != providers.Pending {
			break
		}
		ch = waitAsync(e, src, p, 30*time.Second) // the page polls again
		settle()
	}
	if st == nil || st.State != providers.Expired || fp.cancel.Load() != 1 {
		t.Fatalf("after expiry: %+v, %d cancels", st, fp.cancel.Load())
	}
}

func TestNudgePollsAtOnce(t *testing.T) {
	h := newHarness()
	e := h.engine(t)
	var approved atomic.Bool
	fp := &fakeProvider{answer: func(int64) (*providers.Result, error) {
		if approved.Load() {
			return completed()
		}
		return pending()
	}}
	src := source(fp)
	p := h.login("login-0123456789abcdef")
	ch := waitAsync(e, src, p, 30*time.Second)
	settle()
	approved.Store(true)
	e.Nudge(p.ID)
	h.clk.Advance(0)
	select {
	case st := <-ch:
		if st.State != providers.Completed {
			t.Fatalf("%+v", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a nudge did not make the poller ask at once")
	}
}

func TestDeliverOnce(t *testing.T) {
	h := newHarness()
	e := h.engine(t)
	p := h.login("login-0123456789abcdef")
	var firsts atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, err := e.Deliver(context.Background(), p); err == nil && ok {
				firsts.Add(1)
			}
		}()
	}
	wg.Wait()
	if firsts.Load() != 1 {
		t.Fatalf("delivered %d times", firsts.Load())
	}
}

func TestIdleFlightStopsAndAnotherInstanceTakesOver(t *testing.T) {
	h := newHarness()
	a, b := h.engine(t), h.engine(t)
	fp := &fakeProvider{answer: func(int64) (*providers.Result, error) { return pending() }}
	p := h.login("login-0123456789abcdef")
	if _, err := a.Wait(context.Background(), source(fp), p, 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		h.clk.Advance(2 * time.Second)
	}
	if a.Flights() != 0 {
		t.Fatalf("a's flight lingers with no waiter")
	}
	before := fp.calls.Load()
	if _, err := b.Wait(context.Background(), source(fp), p, 0); err != nil {
		t.Fatal(err)
	}
	if fp.calls.Load() != before+1 {
		t.Fatalf("b did not take over the released lease: %d calls", fp.calls.Load()-before)
	}
}

func TestWaitersWithoutWaitDoNotBlock(t *testing.T) {
	h := newHarness()
	e := h.engine(t)
	fp := &fakeProvider{answer: func(int64) (*providers.Result, error) { return pending() }}
	src := source(fp)
	for i := 0; i < 100; i++ {
		p := h.login(fmt.Sprintf("login-%016d", i))
		if st, err := e.Wait(context.Background(), src, p, 0); err != nil || st.State != providers.Pending {
			t.Fatalf("%+v %v", st, err)
		}
	}
	if e.Flights() != 100 {
		t.Fatalf("%d flights", e.Flights())
	}
}

// flakyStore fails writes of outcome records while down is set.
type flakyStore struct {
	*store.Memory
	down atomic.Bool
}

func (s *flakyStore) SetIfAbsent(ctx context.Context, key string, v []byte, ttl time.Duration) (bool, error) {
	if s.down.Load() && len(key) > 6 && key[:6] == "login/" {
		return false, store.ErrUnavailable
	}
	return s.Memory.SetIfAbsent(ctx, key, v, ttl)
}

// TestOutcomeSavedAfterAStoreOutage: a provider answer that is consumed
// when it is read (a one-time result) but whose outcome cannot be recorded
// because the store is down is recorded when the store is back; the
// provider is not asked again (it would answer "already consumed", and the
// login would wait forever).
func TestOutcomeSavedAfterAStoreOutage(t *testing.T) {
	h := newHarness()
	fs := &flakyStore{Memory: h.st}
	e, err := New(Config{Store: fs, Seal: plainSeal{}, Clock: h.clk, Issue: func(src *Source, id *providers.Identity) (string, time.Time, error) {
		return "tok", h.clk.Now().Add(time.Hour), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	var calls atomic.Int64
	fp := &fakeProvider{answer: func(n int64) (*providers.Result, error) {
		if calls.Add(1) > 1 {
			return nil, providers.ErrConsumed
		}
		return completed()
	}}
	src := source(fp)
	p := h.login("login-0123456789abcdef")
	fs.down.Store(true)
	if st, _ := e.Wait(context.Background(), src, p, 0); st.State != providers.Pending {
		t.Fatalf("with the store down: %+v", st)
	}
	ch := waitAsync(e, src, p, 30*time.Second)
	settle()
	fs.down.Store(false)
	h.clk.Advance(time.Second)
	select {
	case st := <-ch:
		if st.State != providers.Completed {
			t.Fatalf("after the store came back: %+v", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the outcome was never recorded")
	}
	if calls.Load() != 1 {
		t.Fatalf("the provider was asked %d times for a one-time result", calls.Load())
	}
}

// TestRejectEndsTheLogin: a provider's *providers.Reject ends the login
// in its state with its message, at once (no retries, no give-up wait).
func TestRejectEndsTheLogin(t *testing.T) {
	h := newHarness()
	e := h.engine(t)
	fp := &fakeProvider{answer: func(int64) (*providers.Result, error) {
		return nil, &providers.Reject{State: providers.Expired, Message: "Too late.", Reason: "answer after expiry"}
	}}
	st, err := e.Wait(context.Background(), source(fp), h.login("login-0123456789abcdef"), 0)
	if err != nil || st.State != providers.Expired || st.Message != "Too late." {
		t.Fatalf("%+v %v", st, err)
	}
	if fp.calls.Load() != 1 {
		t.Fatalf("%d calls", fp.calls.Load())
	}
}
