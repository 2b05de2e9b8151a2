package login

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/store"
)

// maxBackoff bounds the wait between two calls to a failing provider.
const maxBackoff = 15 * time.Second

// flight is one login on this instance while anyone here waits for it. Its
// steps run one at a time, from timers: there is no goroutine per flight.
type flight struct {
	e   *Engine
	src *Source
	p   Pending

	mu         sync.Mutex
	waiters    int
	idleSince  time.Time
	done       chan struct{} // closed when rec is set, or the flight stops
	doneClosed bool
	rec        *Record
	notice     string
	timer      Timer
	running    bool // a step is running
	again      bool // run another step at once when this one ends
	stopped    bool
	leased     bool
	renewedAt  time.Time
	lastOK     time.Time // the last good answer of the provider, or the start
	failures   int
	// unsaved is an outcome this flight holds but could not record yet
	// (the store was down). The provider's one-time result behind it is
	// already consumed, so it is saved again, never polled for again.
	unsaved *unsavedOutcome
}

type unsavedOutcome struct {
	rec    *Record
	reason string
	id     *providers.Identity
}

func newFlight(e *Engine, src *Source, p *Pending) *flight {
	now := e.clock.Now()
	return &flight{e: e, src: src, p: *p, done: make(chan struct{}), lastOK: now, idleSince: now}
}

func (f *flight) status() (*Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rec != nil {
		return statusOf(f.rec), nil
	}
	return &Status{State: providers.Pending, Notice: f.notice}, nil
}

// kick runs a step after d, unless one is due sooner.
func (f *flight) kick(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped || f.rec != nil {
		return
	}
	if f.running {
		if d == 0 {
			f.again = true
		}
		return
	}
	f.scheduleLocked(d)
}

func (f *flight) scheduleLocked(d time.Duration) {
	if f.timer != nil {
		f.timer.Stop()
	}
	f.timer = f.e.clock.AfterFunc(d, f.step)
}

// step does one round of the login's work and schedules the next.
func (f *flight) step() {
	f.mu.Lock()
	if f.stopped || f.rec != nil {
		f.mu.Unlock()
		return
	}
	if f.running {
		f.again = true
		f.mu.Unlock()
		return
	}
	if f.waiters == 0 && f.e.clock.Now().Sub(f.idleSince) > linger {
		f.mu.Unlock()
		f.stop()
		return
	}
	f.running = true
	if f.timer != nil {
		f.timer.Stop()
		f.timer = nil
	}
	f.mu.Unlock()

	next := f.work()
	if next > 0 {
		// Never sleep past the login's end: it expires on time.
		next = min(next, max(f.p.Expires.Add(expiryGrace).Sub(f.e.clock.Now())+time.Millisecond, 0))
	}

	f.mu.Lock()
	f.running = false
	if f.again {
		f.again, next = false, 0
	}
	if next >= 0 && !f.stopped && f.rec == nil {
		f.scheduleLocked(next)
	}
	f.mu.Unlock()
}

// work is one step: the recorded outcome if there is one, else (holding
// the lease) one provider call. It returns the delay until the next step,
// or -1 when the login is over.
func (f *flight) work() time.Duration {
	e, ctx := f.e, f.e.ctx
	now := e.clock.Now()
	f.mu.Lock()
	leased, unsaved := f.leased, f.unsaved
	f.mu.Unlock()
	if unsaved != nil {
		return f.recordWhy(unsaved.rec, unsaved.reason, unsaved.id)
	}
	// The lease holder is the one that records the outcome, so it need not
	// look for one: saveRecord tells it if another poller (whose lease had
	// lapsed) recorded first. Everyone else looks on every step.
	if !leased {
		rec, err := e.loadRecord(ctx, f.p.ID)
		if err != nil {
			e.logger.Warn("login: reading the outcome", zap.String("login", f.p.ID), zap.Error(err))
			return time.Second
		}
		if rec != nil {
			e.observer.LoginSeen(&f.p, rec.State)
			f.finish(rec, false)
			return -1
		}
	}
	if now.After(f.p.Expires.Add(expiryGrace)) {
		f.cancelAtProvider()
		return f.record(&Record{State: providers.Expired, Message: msgExpired})
	}
	if !f.holdLease(ctx, now) {
		// Another instance polls; its record wakes us through the store's
		// notifications, or we find it when we look again.
		if e.notifier != nil {
			return max(f.src.Interval, RecheckEvery)
		}
		return RecheckEvery
	}
	if ok, wait := f.src.bucket.take(now); !ok {
		return wait
	}
	pctx, cancel := context.WithTimeout(ctx, f.src.CallTimeout)
	res, err := f.src.Provider.Poll(pctx, providers.Login{ID: f.p.ID, State: f.p.State, CreatedAt: f.p.Created, ExpiresAt: f.p.Expires})
	cancel()
	e.observer.ProviderCall(f.src.Name, OpPoll, callResult(err), e.clock.Now().Sub(now))
	now = e.clock.Now()
	if err != nil {
		return f.failed(now, err)
	}
	f.mu.Lock()
	f.lastOK, f.failures, f.notice = now, 0, ""
	f.mu.Unlock()
	switch res.State {
	case providers.Pending:
		return f.src.Interval
	case providers.Completed:
		if res.Identity == nil || res.Identity.Subject == "" {
			return f.recordWhy(&Record{State: providers.Failed, Message: msgNoIdentity}, ReasonNoIdentity, nil)
		}
		token, exp, err := e.issue(f.src, res.Identity)
		if err != nil {
			// The identity is consumed at the provider: the login cannot be
			// retried, so it fails rather than waits.
			e.logger.Error("login: issuing the session", zap.String("provider", f.src.Name), zap.String("login", f.p.ID), zap.Error(err))
			return f.recordWhy(&Record{State: providers.Failed, Message: msgFailed}, ReasonIssue, nil)
		}
		return f.recordWhy(&Record{State: providers.Completed, Token: token, Expires: exp}, "", res.Identity)
	case providers.Expired, providers.Declined, providers.Failed:
		msg := res.Message
		if msg == "" {
			msg = map[providers.State]string{providers.Expired: msgExpired, providers.Declined: msgDeclined}[res.State]
		}
		if msg == "" {
			msg = msgFailed
		}
		return f.recordWhy(&Record{State: res.State, Message: msg}, ReasonProvider, nil)
	}
	return f.recordWhy(&Record{State: providers.Failed, Message: msgUnknown}, ReasonUnknownState, nil)
}

// failed handles a provider call that did not answer: a lost consume-once
// race waits for the winner's record; a store outage is retried; anything
// else counts towards giving up, with backoff in between.
func (f *flight) failed(now time.Time, err error) time.Duration {
	e := f.e
	var rej *providers.Reject
	if errors.As(err, &rej) {
		// The provider answered, and refused the answer: the login ends.
		e.logger.Warn("login: answer rejected", zap.String("provider", f.src.Name), zap.String("login", f.p.ID), zap.String("reason", rej.Reason))
		f.mu.Lock()
		f.lastOK, f.failures, f.notice = now, 0, ""
		f.mu.Unlock()
		return f.recordWhy(&Record{State: rej.State, Message: rej.Message}, "rejected", nil)
	}
	switch {
	case errors.Is(err, providers.ErrConsumed):
		f.dropLease()
		return RecheckEvery
	case errors.Is(err, store.ErrUnavailable):
		e.logger.Warn("login: store unavailable while polling", zap.String("provider", f.src.Name), zap.String("login", f.p.ID), zap.Error(err))
		return time.Second
	}
	f.mu.Lock()
	f.failures++
	n, since := f.failures, now.Sub(f.lastOK)
	f.notice = NoticeSlow
	f.mu.Unlock()
	if since >= f.src.GiveUp {
		e.logger.Warn("login: the provider is not answering; giving up", zap.String("provider", f.src.Name),
			zap.String("login", f.p.ID), zap.Duration("since", since), zap.Error(err))
		return f.recordWhy(&Record{State: providers.Failed, Message: MsgNotAnswering}, ReasonNotAnswering, nil)
	}
	e.logger.Warn("login: polling the provider", zap.String("provider", f.src.Name), zap.String("login", f.p.ID), zap.Int("failures", n), zap.Error(err))
	return min(backoff(f.src.Interval, n, err), f.src.GiveUp-since)
}

// RetryAfter is implemented by provider errors that carry the service's
// Retry-After.
type RetryAfter interface {
	RetryAfter() time.Duration
}

// backoff is the wait after the n-th failure in a row: the interval,
// doubled each time up to maxBackoff, with ±20% jitter, and at least what
// the provider asked for.
func backoff(interval time.Duration, n int, err error) time.Duration {
	d := interval
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	var ra RetryAfter
	if errors.As(err, &ra) && ra.RetryAfter() > d {
		d = min(ra.RetryAfter(), 2*maxBackoff)
	}
	return d
}

// record saves the outcome (or learns the one another poller saved) and
// ends the flight.
func (f *flight) record(rec *Record) time.Duration {
	return f.recordWhy(rec, "", nil)
}

// recordWhy is record, telling the observer of the outcome when this
// flight's record is the one that won: so each login is reported once,
// however many instances poll it. reason is for failures only.
func (f *flight) recordWhy(rec *Record, reason string, id *providers.Identity) time.Duration {
	won, err := f.e.saveRecord(f.e.ctx, &f.p, rec)
	if err != nil {
		f.e.logger.Error("login: recording the outcome", zap.String("login", f.p.ID), zap.Error(err))
		f.mu.Lock()
		f.unsaved = &unsavedOutcome{rec: rec, reason: reason, id: id}
		f.mu.Unlock()
		return time.Second
	}
	if won == rec {
		if rec.State != providers.Failed {
			reason = ""
		}
		f.e.observer.LoginFinished(Finished{Pending: &f.p, State: rec.State, Reason: reason, Identity: id,
			Token: rec.Token, Duration: f.e.clock.Now().Sub(f.p.Created)})
	} else {
		f.e.observer.LoginSeen(&f.p, won.State)
	}
	f.finish(won, true)
	return -1
}

func (f *flight) finish(rec *Record, announce bool) {
	f.mu.Lock()
	if f.rec != nil || f.stopped {
		f.mu.Unlock()
		return
	}
	f.rec = rec
	f.endAndUnlock()
	if announce {
		f.e.announce(f.p.ID)
	}
}

// stop ends the flight without an outcome (no one waits any more, or the
// engine closes); another instance's waiter can then take the lease.
func (f *flight) stop() {
	f.mu.Lock()
	if f.stopped || f.rec != nil {
		f.mu.Unlock()
		return
	}
	if f.waiters > 0 && !f.e.isClosed() {
		f.mu.Unlock()
		return
	}
	f.stopped = true
	f.endAndUnlock()
}

// endAndUnlock wakes the waiters, stops the timer, forgets the flight and
// gives its lease back; the caller holds f.mu and has set rec or stopped.
func (f *flight) endAndUnlock() {
	f.closeDoneLocked()
	if f.timer != nil {
		f.timer.Stop()
	}
	leased := f.leased
	f.leased = false
	f.mu.Unlock()
	f.e.forget(f)
	if leased {
		f.release()
	}
}

func (f *flight) closeDoneLocked() {
	if !f.doneClosed {
		f.doneClosed = true
		close(f.done)
	}
}

// leaseTTL is how long a lease lives unless renewed. It outlives a poll
// that takes its whole call timeout by two intervals, and is at least
// 30 s, so that renewing it (a store write) is rare: an instance that dies
// holding a lease delays its login's polling by at most this long.
func (f *flight) leaseTTL() time.Duration {
	return max(3*f.src.Interval, f.src.CallTimeout+2*f.src.Interval, 30*time.Second)
}

// holdLease takes or renews the login's lease: set-if-absent with a time
// to live, renewed while held, at half its life. Renewal reads the value
// first; the lease could change hands between the read and the write only
// if it had expired, which a holder renewing at half its life never lets
// happen unless it stalls for as long.
func (f *flight) holdLease(ctx context.Context, now time.Time) bool {
	s, key, ttl := f.e.store, leaseKey(f.p.ID), f.leaseTTL()
	f.mu.Lock()
	leased, renewed := f.leased, f.renewedAt
	f.mu.Unlock()
	if leased {
		if now.Sub(renewed) < ttl/2 {
			return true
		}
		v, err := s.Get(ctx, key)
		switch {
		case err == nil && string(v) == f.e.instance:
			if err := s.Set(ctx, key, []byte(f.e.instance), ttl); err != nil {
				return true // keep polling; the next renewal tries again
			}
			f.setLease(true, now)
			return true
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return true
		case err == nil:
			f.setLease(false, time.Time{})
			return false
		}
	}
	ok, err := s.SetIfAbsent(ctx, key, []byte(f.e.instance), ttl)
	if err != nil {
		f.e.logger.Warn("login: taking the lease", zap.String("login", f.p.ID), zap.Error(err))
		return false
	}
	if ok {
		f.setLease(true, now)
	}
	return ok
}

func (f *flight) setLease(held bool, at time.Time) {
	f.mu.Lock()
	f.leased, f.renewedAt = held, at
	f.mu.Unlock()
}

func (f *flight) dropLease() {
	f.mu.Lock()
	leased := f.leased
	f.leased = false
	f.mu.Unlock()
	if leased {
		f.release()
	}
}

// release gives the lease back, if it is still ours.
func (f *flight) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	key := leaseKey(f.p.ID)
	if v, err := f.e.store.Get(ctx, key); err == nil && string(v) == f.e.instance {
		_ = f.e.store.Delete(ctx, key)
	}
}

func (f *flight) cancelAtProvider() {
	c, ok := f.src.Provider.(providers.Canceler)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(f.e.ctx, f.src.CallTimeout)
	defer cancel()
	began := f.e.clock.Now()
	err := c.Cancel(ctx, providers.Login{ID: f.p.ID, State: f.p.State, CreatedAt: f.p.Created, ExpiresAt: f.p.Expires})
	f.e.observer.ProviderCall(f.src.Name, OpCancel, callResult(err), f.e.clock.Now().Sub(began))
	if err != nil {
		f.e.logger.Warn("login: cancelling at the provider", zap.String("provider", f.src.Name), zap.String("login", f.p.ID), zap.Error(err))
	}
}
