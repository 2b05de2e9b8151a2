package oidc

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/token"
)

// RetryPolicy is how a back-channel logout delivery is retried. A relying
// party that answers 5xx or cannot be reached is tried again after First,
// then after twice as long each time up to Max, for at least Span in all.
// A 4xx answer is final (Back-Channel Logout 1.0 §2.8: the RP answers 400
// when it could not log out; sending the same again will not change that).
type RetryPolicy struct {
	// Timeout bounds each attempt.
	Timeout time.Duration
	// First is the delay before the first retry, Max the longest delay.
	First, Max time.Duration
	// Span is how long after the first attempt retries go on.
	Span time.Duration
}

// DefaultBackchannelRetry: a short timeout (an RP that hangs must not hold
// a delivery slot for long), retries after 1, 2, 4, 8, 15, 15… seconds, for
// a minute.
var DefaultBackchannelRetry = RetryPolicy{Timeout: 5 * time.Second, First: time.Second, Max: 15 * time.Second, Span: time.Minute}

func (r RetryPolicy) withDefaults() RetryPolicy {
	d := DefaultBackchannelRetry
	if r.Timeout <= 0 {
		r.Timeout = d.Timeout
	}
	if r.First <= 0 {
		r.First = d.First
	}
	if r.Max <= 0 {
		r.Max = d.Max
	}
	if r.Span <= 0 {
		r.Span = d.Span
	}
	return r
}

// delays are the pauses before each retry: they double from First up to
// Max, and stop once their sum reaches Span.
func (r RetryPolicy) delays() []time.Duration {
	var out []time.Duration
	var total time.Duration
	d := r.First
	for total < r.Span {
		out = append(out, d)
		total += d
		d = min(2*d, r.Max)
	}
	return out
}

// maxDeliveries bounds the deliveries in flight (each a goroutine that may
// wait for retries); past it new ones are dropped and logged, so a burst of
// logouts toward a dead relying party costs a fixed amount of memory.
const maxDeliveries = 1000

// logoutJob is one logout token to deliver.
type logoutJob struct {
	uri    string
	alg    string
	logout token.Logout
}

// backchannel delivers logout tokens (OpenID Connect Back-Channel Logout
// 1.0 §2.5) in the background.
type backchannel struct {
	client *http.Client
	policy RetryPolicy
	tokens *token.Service
	logger *zap.Logger

	ctx    context.Context
	cancel context.CancelFunc
	slots  chan struct{}

	mu     sync.Mutex // guards closed and wg.Add against close
	closed bool
	wg     sync.WaitGroup
}

func newBackchannel(c *http.Client, policy RetryPolicy, tokens *token.Service, logger *zap.Logger) *backchannel {
	policy = policy.withDefaults()
	var cl http.Client
	if c != nil {
		cl = *c
	} else {
		cl.Timeout = policy.Timeout
	}
	// A logout token is for the registered URI only: never follow a
	// redirect to somewhere else with it.
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	ctx, cancel := context.WithCancel(context.Background())
	return &backchannel{client: &cl, policy: policy, tokens: tokens, logger: logger,
		ctx: ctx, cancel: cancel, slots: make(chan struct{}, maxDeliveries)}
}

// send starts delivering j; it never blocks.
func (b *backchannel) send(j logoutJob) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	select {
	case b.slots <- struct{}{}:
	default:
		b.logger.Error("oidc: back-channel logout: too many deliveries in flight; this one is dropped",
			zap.String("client_id", j.logout.ClientID))
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer func() { <-b.slots }()
		b.deliver(j)
	}()
}

// deliver posts a logout token to j.uri until the relying party accepts it,
// refuses it (4xx), or the retries are used up. Each attempt carries a
// freshly signed token (a new jti and exp), so that a late retry is not
// refused as expired, and a retry is never a replay.
func (b *backchannel) deliver(j logoutJob) {
	delays := b.policy.delays()
	for attempt := 0; ; attempt++ {
		retry, err := b.attempt(j)
		if err == nil {
			b.logger.Info("oidc: back-channel logout delivered", zap.String("client_id", j.logout.ClientID), zap.Int("attempt", attempt+1))
			return
		}
		if !retry || attempt >= len(delays) {
			b.logger.Warn("oidc: back-channel logout failed", zap.String("client_id", j.logout.ClientID),
				zap.Int("attempts", attempt+1), zap.Bool("final_answer", !retry), zap.Error(err))
			return
		}
		t := time.NewTimer(delays[attempt])
		select {
		case <-b.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// attempt makes one delivery; retry tells whether a failure is worth
// another try.
func (b *backchannel) attempt(j logoutJob) (retry bool, err error) {
	raw, err := b.tokens.IssueLogout(j.logout, j.alg)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.policy.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.uri, strings.NewReader(url.Values{"logout_token": {raw}}.Encode()))
	if err != nil {
		return false, fmt.Errorf("oidc: back-channel logout: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.client.Do(req)
	if err != nil {
		return b.ctx.Err() == nil, fmt.Errorf("oidc: back-channel logout: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return true, fmt.Errorf("oidc: back-channel logout: status %d", resp.StatusCode)
	}
	return false, fmt.Errorf("oidc: back-channel logout: status %d", resp.StatusCode)
}

// close abandons the deliveries in flight and waits for them to stop.
func (b *backchannel) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
}
