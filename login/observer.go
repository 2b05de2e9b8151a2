package login

import (
	"context"
	"errors"
	"time"

	"github.com/caddy-idv/caddy-idv/providers"
)

// Observer is told what the engine does, for metrics and an audit log. The
// engine stays free of any metrics library: the idv handler implements it.
// Its methods are called from flights and requests and must not block.
type Observer interface {
	// ProviderCall is one call to a provider: op is OpStart, OpPoll or
	// OpCancel; result is ResultOK, ResultError or ResultTimeout.
	ProviderCall(provider, op, result string, d time.Duration)
	// LoginFinished is a login's outcome, reported once per login across
	// every instance sharing the store: by the instance whose record won.
	LoginFinished(Finished)
	// LoginSeen is an outcome this instance learned of without recording
	// it (another instance or an earlier flight did), so that per-instance
	// bookkeeping such as a pending-logins gauge can let go of the login.
	LoginSeen(p *Pending, state providers.State)
}

// Operations and results of Observer.ProviderCall.
const (
	OpStart  = "start"
	OpPoll   = "poll"
	OpCancel = "cancel"

	ResultOK      = "ok"
	ResultError   = "error"
	ResultTimeout = "timeout"
)

// Reasons of a failed login (Finished.Reason): short codes for logs and
// metrics, never the provider's own words, which may name the person.
const (
	ReasonNoIdentity   = "no_identity"
	ReasonIssue        = "issue_failed"
	ReasonNotAnswering = "provider_not_answering"
	ReasonProvider     = "provider_failed"
	ReasonUnknownState = "unknown_state"
)

// Finished is a login's recorded outcome.
type Finished struct {
	Pending *Pending
	State   providers.State
	// Reason says why a failed login failed (Reason* constants).
	Reason string
	// Identity is the verified identity of a completed login; Token is its
	// session token. An observer must not log either as such.
	Identity *providers.Identity
	Token    string
	// Duration is from the login's start to its outcome.
	Duration time.Duration
}

type nopObserver struct{}

func (nopObserver) ProviderCall(string, string, string, time.Duration) {}
func (nopObserver) LoginFinished(Finished)                             {}
func (nopObserver) LoginSeen(*Pending, providers.State)                {}

// callResult classifies a provider call's error. A refusal of the person's
// input and a lost consume-once race are answers of a working provider.
func callResult(err error) string {
	var ie *providers.InputError
	switch {
	case err == nil, errors.As(err, &ie), errors.Is(err, providers.ErrConsumed):
		return ResultOK
	case errors.Is(err, context.DeadlineExceeded):
		return ResultTimeout
	}
	return ResultError
}
