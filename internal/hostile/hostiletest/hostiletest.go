// Package hostiletest runs a provider's calls to its service against every
// hostile mode of internal/hostile, for the providers' TestHostileGateway
// tests: each call must come back within the provider's call timeout and
// a bounded amount of memory, with an error or a failed login, never a
// panic, never a started or completed one.
package hostiletest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/hostile"
	"github.com/caddy-idv/caddy-idv/providers"
)

// Timeout is the call timeout the tests give the providers: short, so that
// the modes a client can only leave by its timeout end soon.
const Timeout = 2 * time.Second

// Slack is the time a call may take beyond Timeout on a loaded machine.
const Slack = 3 * time.Second

// MaxAlloc bounds the memory one call may allocate (the client and the
// fake together) while a hostile mode sends up to hostile.HugeSize bytes:
// half of it, so that a client that reads a huge answer whole fails. The
// race detector doubles the bound, as it does the allocations of a read.
const MaxAlloc = 32 << 20

func maxAlloc() uint64 {
	if raceEnabled {
		return 2 * MaxAlloc
	}
	return MaxAlloc
}

// Call is one call a provider makes to its service.
type Call struct {
	// Name is "<operation>/<request>", such as "poll/status".
	Name string
	// Side marks a call whose answer decides nothing about a login (a
	// deletion at the service): only its time and memory are judged.
	Side bool
	// Prepare makes a fresh fake and provider (with Timeout as the call
	// timeout), brings a login to where this call is the next the
	// provider makes, with the person's approval given so that the real
	// answer would complete it, makes the call's route answer in mode m,
	// and returns the provider operation that makes the call.
	Prepare func(t *testing.T, m hostile.Mode) func(context.Context) Outcome
}

// Outcome is what a provider operation returned.
type Outcome struct {
	Challenge *providers.Challenge
	Result    *providers.Result
	Err       error
}

func (o Outcome) String() string {
	switch {
	case o.Challenge != nil:
		return "started"
	case o.Result != nil:
		return fmt.Sprintf("%s (%q)", o.Result.State, o.Result.Message)
	case o.Err != nil:
		return "error: " + o.Err.Error()
	}
	return "nothing"
}

// Started is the outcome of Start.
func Started(ch *providers.Challenge, err error) Outcome { return Outcome{Challenge: ch, Err: err} }

// Polled is the outcome of Poll, with a *providers.Reject turned into the
// result it ends the login with.
func Polled(res *providers.Result, err error) Outcome {
	res, err = providers.ResultOf(res, err)
	return Outcome{Result: res, Err: err}
}

// guards says what each mode's cases guard against; it names them.
var guards = map[hostile.Mode]string{
	hostile.Huge:                 "huge answer is cut off at the size limit",
	hostile.Endless:              "endless answer is cut off at the size limit",
	hostile.Truncated:            "answer cut off mid-body is an error",
	hostile.MalformedNotJSON:     "answer that is not JSON is refused",
	hostile.MalformedTypes:       "fields of the wrong JSON types are refused",
	hostile.MalformedNull:        "null answer is refused",
	hostile.MalformedDeep:        "deeply nested answer is refused without exhausting the stack",
	hostile.MalformedContentType: "HTML error page is refused",
	hostile.MalformedUTF8:        "invalid UTF-8 is refused",
	hostile.Slow:                 "trickling answer is abandoned at the call timeout",
	hostile.Hang:                 "answer that never comes is abandoned at the call timeout",
}

// Run runs every call in every mode, as subtests named
// "<call>/<what the case guards against>". The modes a client leaves only
// by its timeout run at the same time, after the others, which run one by
// one so that their memory can be measured.
func Run(t *testing.T, calls []Call) {
	t.Helper()
	var stalls []func()
	for _, c := range calls {
		for _, m := range hostile.Modes {
			name := c.Name + "/" + guards[m]
			if m.Stalls() {
				stalls = append(stalls, func() { t.Run(name, func(t *testing.T) { one(t, c, m, false) }) })
				continue
			}
			t.Run(name, func(t *testing.T) { one(t, c, m, true) })
		}
	}
	// Subtests may run from several goroutines at once; these wait only
	// for their client's timeout.
	var wg sync.WaitGroup
	for _, run := range stalls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run()
		}()
	}
	wg.Wait()
}

func one(t *testing.T, c Call, m hostile.Mode, measure bool) {
	op := c.Prepare(t, m)
	type ended struct {
		out   Outcome
		panic any
		stack []byte
	}
	done := make(chan ended, 1)
	var before, after runtime.MemStats
	if measure {
		runtime.ReadMemStats(&before)
	}
	start := time.Now()
	go func() {
		var e ended
		defer func() {
			if p := recover(); p != nil {
				e.panic, e.stack = p, debug.Stack()
			}
			done <- e
		}()
		e.out = op(context.Background())
	}()
	var e ended
	select {
	case e = <-done:
	case <-time.After(Timeout + Slack):
		t.Fatalf("%s: still running after %s (call timeout %s)", m, Timeout+Slack, Timeout)
	}
	took := time.Since(start)
	if measure {
		runtime.ReadMemStats(&after)
	}
	if e.panic != nil {
		t.Fatalf("%s: panicked: %v\n%s", m, e.panic, e.stack)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; measure {
		t.Logf("%s: returned after %s, %d KiB allocated: %v", m, took.Round(time.Millisecond), alloc>>10, e.out)
		if alloc > maxAlloc() {
			t.Errorf("%s: allocated %d MiB (at most %d MiB): an unbounded read?", m, alloc>>20, maxAlloc()>>20)
		}
	} else {
		t.Logf("%s: returned after %s: %v", m, took.Round(time.Millisecond), e.out)
	}
	if m.Stalls() && took < Timeout/2 {
		// Not a failure of the client, but of the test: the hostile route
		// was not the one called.
		t.Errorf("%s: returned after %s, before the mode could stall it", m, took.Round(time.Millisecond))
	}
	if c.Side {
		return
	}
	if why := judge(e.out); why != "" {
		t.Errorf("%s: %s (after %s)", m, why, took.Round(time.Millisecond))
	}
}

// judge says what is wrong with an outcome of a hostile answer, or "".
func judge(o Outcome) string {
	switch {
	case o.Challenge != nil:
		return fmt.Sprintf("started a login: %+v", *o.Challenge)
	case o.Result != nil && o.Result.State != providers.Failed:
		return fmt.Sprintf("state %s, want failed or an error", o.Result.State)
	case o.Result != nil && o.Result.Message == "":
		return "failed without a message for the person"
	case o.Result != nil:
		return ""
	case o.Err == nil:
		return "neither a result nor an error"
	case errors.Is(o.Err, providers.ErrConsumed):
		return "reported the answer as consumed by another poller: " + o.Err.Error()
	case providers.IsInputError(o.Err):
		return "blamed the person's input: " + o.Err.Error()
	}
	return ""
}
