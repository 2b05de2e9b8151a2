package login

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/store"
)

// Defaults of a Source.
const (
	// DefaultGiveUp ends a login whose provider has not answered
	// successfully for this long.
	DefaultGiveUp = 30 * time.Second
	// RecheckEvery is how often a flight that does not hold the lease
	// re-reads the record when the store cannot notify (Caddy storage),
	// and tries to take over the lease.
	RecheckEvery = 250 * time.Millisecond
	// expiryGrace lets a provider that has the last word on expiry answer
	// a little after our own clock says the login is over.
	expiryGrace = 5 * time.Second
	// linger keeps a flight polling for a while after its last waiter
	// left, for a page that polls with short requests.
	linger = 5 * time.Second
	// channel is the publish/subscribe channel of outcomes and nudges.
	channel = "idv/login"
)

// Messages for the person.
const (
	msgExpired    = "The login expired. Start again."
	msgDeclined   = "The login was declined."
	msgFailed     = "The login failed. Start again."
	msgNoIdentity = "The identity provider's answer had no identity."
	msgUnknown    = "The identity provider answered in a way that is not understood."
	// MsgNotAnswering ends a login whose provider gave up answering.
	MsgNotAnswering = "The identity provider is not answering. Try again later."
	// NoticeSlow is the notice of a pending login whose provider is
	// failing or slow.
	NoticeSlow = "The identity provider is slow to answer; still trying."
)

// IssueFunc turns a verified identity into a session token.
type IssueFunc func(src *Source, id *providers.Identity) (token string, expires time.Time, err error)

// Config is what an Engine needs.
type Config struct {
	Store store.Store
	Seal  Sealer
	Issue IssueFunc
	// Clock defaults to RealClock.
	Clock  Clock
	Logger *zap.Logger
	// Observer, when set, is told of provider calls and outcomes.
	Observer Observer
}

// Source is a provider as the engine drives it.
type Source struct {
	Name     string
	Provider providers.Provider
	// Interval is the time between two polls of one login.
	Interval time.Duration
	// CallTimeout bounds one provider call.
	CallTimeout time.Duration
	// GiveUp ends a login whose provider has not answered successfully
	// for this long. Default: DefaultGiveUp.
	GiveUp time.Duration
	// PerSecond caps the calls to this provider per second, over all of
	// its logins on this instance; 0 is no cap.
	PerSecond float64

	bucket *bucket
}

// Pending is a login in progress, as the browser that started it holds it
// (sealed in its pending cookie).
type Pending struct {
	ID       string    `json:"id"`
	Provider string    `json:"p"`
	RD       string    `json:"rd"`
	Created  time.Time `json:"c"`
	Expires  time.Time `json:"e"`
	State    []byte    `json:"s,omitempty"`
	// Client is the address of the browser that started the login, for
	// the audit log of its outcome (which may be recorded elsewhere).
	Client string `json:"ip,omitempty"`
}

// Status is what a waiter learns of a login.
type Status struct {
	State providers.State
	// Message explains a final state other than completed.
	Message string
	// Notice is shown while a pending login's provider is failing.
	Notice string
	// Token and Expires are the session of a completed login.
	Token   string
	Expires time.Time
}

// Engine runs logins. It is safe for concurrent use.
type Engine struct {
	store    store.Store
	notifier store.Notifier
	seal     Sealer
	issue    IssueFunc
	clock    Clock
	logger   *zap.Logger
	observer Observer
	instance string // this engine's lease value

	deadlines *deadlines

	mu      sync.Mutex
	flights map[string]*flight
	closed  bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns an engine. With a store that can notify (Redis), it listens
// for outcomes and nudges of other instances until Close.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil || cfg.Seal == nil || cfg.Issue == nil {
		return nil, errors.New("login: new: Store, Seal and Issue are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{
		store: cfg.Store, seal: cfg.Seal, issue: cfg.Issue, clock: cfg.Clock, logger: cfg.Logger, observer: cfg.Observer,
		instance:  base64.RawURLEncoding.EncodeToString(b),
		deadlines: &deadlines{clock: cfg.Clock},
		flights:   map[string]*flight{},
		ctx:       ctx, cancel: cancel,
	}
	if n, ok := cfg.Store.(store.Notifier); ok {
		e.notifier = n
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			if err := n.Subscribe(ctx, channel, e.onMessage); err != nil && ctx.Err() == nil {
				e.logger.Warn("login: listening for other instances' outcomes", zap.Error(err))
			}
		}()
	}
	return e, nil
}

// Prepare fills a source's defaults; call it once per source.
func (s *Source) Prepare() {
	if s.Interval <= 0 {
		s.Interval = providers.PollInterval
	}
	if s.CallTimeout <= 0 {
		s.CallTimeout = providers.DefaultTimeout
	}
	if s.GiveUp <= 0 {
		s.GiveUp = DefaultGiveUp
	}
	s.bucket = newBucket(s.PerSecond)
}

// Start asks the provider to start login req, within the source's call
// timeout.
func (e *Engine) Start(ctx context.Context, src *Source, req providers.StartRequest) (*providers.Challenge, error) {
	ctx, cancel := context.WithTimeout(ctx, src.CallTimeout)
	defer cancel()
	began := e.clock.Now()
	ch, err := src.Provider.Start(ctx, req)
	e.observer.ProviderCall(src.Name, OpStart, callResult(err), e.clock.Now().Sub(began))
	return ch, err
}

// Wait reports the state of login p. With wait > 0 a pending login is
// waited for until it changes or wait has passed (or ctx ends). The
// provider is never called from here: the login's flight does that.
func (e *Engine) Wait(ctx context.Context, src *Source, p *Pending, wait time.Duration) (*Status, error) {
	if rec, err := e.loadRecord(ctx, p.ID); rec != nil || err != nil {
		if rec != nil {
			e.observer.LoginSeen(p, rec.State)
		}
		return statusOf(rec), err
	}
	f, fresh, err := e.join(src, p)
	if err != nil {
		return nil, err
	}
	defer e.leave(f)
	if fresh {
		// The first waiter does the first step itself, so that a short
		// poll reports what the provider says now.
		f.step()
	}
	if wait > 0 {
		timeout, forget := e.deadlines.add(e.clock.Now().Add(wait))
		select {
		case <-f.done:
		case <-ctx.Done():
		case <-timeout:
		}
		forget()
	}
	return f.status()
}

// Deliver reports whether this is the first time the session of completed
// login id is handed out.
func (e *Engine) Deliver(ctx context.Context, p *Pending) (bool, error) {
	ttl := max(p.Expires.Sub(e.clock.Now())+RecordGrace, RecordGrace)
	return e.store.SetIfAbsent(ctx, deliveredKey(p.ID), []byte{1}, ttl)
}

// Nudge makes the login's poller ask the provider now rather than at its
// next interval: a provider that learns of an outcome by itself (the demo
// wallet) calls it. Other instances are told through the store when it can
// notify.
func (e *Engine) Nudge(id string) {
	e.nudgeLocal(id)
	if e.notifier != nil {
		ctx, cancel := context.WithTimeout(e.ctx, 2*time.Second)
		defer cancel()
		if err := e.notifier.Publish(ctx, channel, []byte("n:"+id)); err != nil {
			e.logger.Debug("login: publishing a nudge", zap.Error(err))
		}
	}
}

func (e *Engine) nudgeLocal(id string) {
	e.mu.Lock()
	f := e.flights[id]
	e.mu.Unlock()
	if f != nil {
		f.kick(0)
	}
}

// onMessage handles another instance's outcome ("d:<id>") or nudge
// ("n:<id>").
func (e *Engine) onMessage(msg []byte) {
	kind, id, ok := strings.Cut(string(msg), ":")
	if !ok || !providers.ValidID(id) {
		return
	}
	switch kind {
	case "d", "n":
		e.nudgeLocal(id)
	}
}

func (e *Engine) announce(id string) {
	if e.notifier == nil {
		return
	}
	ctx, cancel := context.WithTimeout(e.ctx, 2*time.Second)
	defer cancel()
	if err := e.notifier.Publish(ctx, channel, []byte("d:"+id)); err != nil {
		e.logger.Debug("login: publishing an outcome", zap.Error(err))
	}
}

// Close stops every flight and releases their leases.
func (e *Engine) Close() {
	e.mu.Lock()
	e.closed = true
	fs := make([]*flight, 0, len(e.flights))
	for _, f := range e.flights {
		fs = append(fs, f)
	}
	e.mu.Unlock()
	for _, f := range fs {
		f.stop()
	}
	e.cancel()
	e.wg.Wait()
}

// Flights is the number of logins with a flight on this instance.
func (e *Engine) Flights() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.flights)
}

func (e *Engine) join(src *Source, p *Pending) (*flight, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, false, errors.New("login: engine closed")
	}
	f := e.flights[p.ID]
	if f != nil {
		f.mu.Lock()
		over := f.stopped
		f.mu.Unlock()
		if over {
			f = nil
		}
	}
	fresh := f == nil
	if fresh {
		if src == nil || src.bucket == nil {
			return nil, false, fmt.Errorf("login: source %q not prepared", p.Provider)
		}
		f = newFlight(e, src, p)
		e.flights[p.ID] = f
	}
	f.mu.Lock()
	f.waiters++
	f.mu.Unlock()
	return f, fresh, nil
}

func (e *Engine) leave(f *flight) {
	f.mu.Lock()
	f.waiters--
	if f.waiters == 0 {
		f.idleSince = e.clock.Now()
	}
	f.mu.Unlock()
}

func (e *Engine) forget(f *flight) {
	e.mu.Lock()
	if e.flights[f.p.ID] == f {
		delete(e.flights, f.p.ID)
	}
	e.mu.Unlock()
}

func statusOf(rec *Record) *Status {
	if rec == nil {
		return nil
	}
	return &Status{State: rec.State, Message: rec.Message, Token: rec.Token, Expires: rec.Expires}
}

func (e *Engine) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}
