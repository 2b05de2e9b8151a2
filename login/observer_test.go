package login

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/providers"
)

type recObserver struct {
	mu       sync.Mutex
	calls    map[string]int // "op/result"
	finished []Finished
	seen     int
}

func (o *recObserver) ProviderCall(provider, op, result string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.calls == nil {
		o.calls = map[string]int{}
	}
	o.calls[op+"/"+result]++
}
func (o *recObserver) LoginFinished(f Finished) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.finished = append(o.finished, f)
}
func (o *recObserver) LoginSeen(*Pending, providers.State) { o.mu.Lock(); o.seen++; o.mu.Unlock() }

// An outcome is reported once across instances, with its identity and
// duration; the other instance only sees it. Provider calls are counted
// by operation and result.
func TestObserverReportsEachOutcomeOnce(t *testing.T) {
	h := newHarness()
	fp := &fakeProvider{}
	fp.answer = func(n int64) (*providers.Result, error) {
		if n >= 3 {
			return completed()
		}
		return pending()
	}
	oa, ob := &recObserver{}, &recObserver{}
	mk := func(o Observer) *Engine {
		e, err := New(Config{Store: h.st, Seal: plainSeal{}, Clock: h.clk, Observer: o, Issue: func(src *Source, id *providers.Identity) (string, time.Time, error) {
			return "token-of-" + id.Subject, h.clk.Now().Add(time.Hour), nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		return e
	}
	a, b := mk(oa), mk(ob)
	srcA, srcB := source(fp), source(fp)
	if _, err := a.Start(context.Background(), srcA, providers.StartRequest{ID: "login-observed-0001"}); err != nil {
		t.Fatal(err)
	}
	p := h.login("login-observed-0001")
	ca, cb := waitAsync(a, srcA, p, 30*time.Second), waitAsync(b, srcB, p, 30*time.Second)
	settle()
	for i := 0; i < 4; i++ {
		h.clk.Advance(2 * time.Second)
	}
	h.clk.Advance(RecheckEvery)
	for _, ch := range []<-chan *Status{ca, cb} {
		select {
		case st := <-ch:
			if st.State != providers.Completed {
				t.Fatalf("status %+v", st)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("waiter did not wake")
		}
	}
	oa.mu.Lock()
	ob.mu.Lock()
	defer oa.mu.Unlock()
	defer ob.mu.Unlock()
	all := append(append([]Finished{}, oa.finished...), ob.finished...)
	if len(all) != 1 {
		t.Fatalf("%d outcomes reported for one login on two instances; want 1", len(all))
	}
	f := all[0]
	if f.State != providers.Completed || f.Identity == nil || f.Identity.Subject != "alice" || f.Duration <= 0 || f.Pending.ID != p.ID {
		t.Fatalf("finished = %+v", f)
	}
	if oa.seen+ob.seen == 0 {
		t.Fatal("the instance that did not record the outcome was not told of it")
	}
	if oa.calls["start/ok"] != 1 || oa.calls["poll/ok"]+ob.calls["poll/ok"] != 3 {
		t.Fatalf("calls a=%v b=%v; want one start and three polls", oa.calls, ob.calls)
	}
}

func TestObserverFailureReasonAndTimeouts(t *testing.T) {
	h := newHarness()
	fp := &fakeProvider{}
	fp.answer = func(int64) (*providers.Result, error) { return nil, context.DeadlineExceeded }
	o := &recObserver{}
	e, err := New(Config{Store: h.st, Seal: plainSeal{}, Clock: h.clk, Observer: o, Issue: func(*Source, *providers.Identity) (string, time.Time, error) {
		return "", time.Time{}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	src := source(fp)
	ch := waitAsync(e, src, h.login("login-observed-0002"), 30*time.Second)
	settle()
	for i := 0; i < 20; i++ {
		h.clk.Advance(2 * time.Second)
	}
	if st := <-ch; st.State != providers.Failed {
		t.Fatalf("status %+v", st)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.finished) != 1 || o.finished[0].Reason != ReasonNotAnswering {
		t.Fatalf("finished = %+v", o.finished)
	}
	if o.calls["poll/timeout"] == 0 || o.calls["poll/ok"] != 0 {
		t.Fatalf("calls = %v", o.calls)
	}
}
