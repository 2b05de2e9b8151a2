// Package login is the login state machine of caddy-idv: it starts a login
// at a provider, polls the provider until the person has acted, records the
// outcome once, and lets the browser that started the login pick up its
// session once. It has no *http.Request inside; the idv handler
// (caddymodule) turns HTTP requests into calls of an Engine and answers
// into HTTP.
//
// # One poller per login, cluster-wide
//
// Any number of waiters may ask for one login at once: several long-polls of
// one tab (a retried request), several tabs, several instances behind a
// load balancer. On each instance the waiters of a login share one flight,
// and of all the instances' flights only the one that holds the login's
// lease calls the provider. The lease is a store key ("lease/<id>") set if
// absent with a time to live and renewed while its holder polls, so at most
// one provider call is made per poll interval per login, whatever the
// number of tabs and instances. When the holder stops (its last waiter
// left, or the instance died), the lease expires and another waiting
// instance takes it.
//
// Waiters never call the provider themselves. They wake when the outcome is
// recorded: at once on the instance that recorded it; on other instances
// through the store's publish/subscribe (Redis) or, without it (Caddy
// storage), because each flight re-reads the record at most every
// RecheckEvery. A held long-poll costs its request and a small waiter
// record: no goroutine or timer of its own (one timer per instance watches
// every waiter's deadline) and no periodic work.
//
// # The one-time markers
//
// Three values are written once, with set-if-absent, in the shared store:
//
//   - the provider's result is consumed ("jti/..." in the provider
//     packages): a signed result is turned into a session once, so a
//     replayed result is refused. With the lease only one instance polls,
//     but a lease can expire while its holder is stalled; an instance that
//     then loses the consume-once race to another poller of the same login
//     is not refused: the provider answers providers.ErrConsumed and the
//     flight waits for the winner's record instead of recording a failure.
//   - the outcome is recorded ("login/<id>", sealed): the first final
//     state wins and every waiter, on every instance, reports that one, so
//     two pollers can never give one login two outcomes.
//   - the session is delivered ("delivered/<id>"): the session cookie of a
//     completed login is handed to the browser that started it once, even
//     when several of its requests ask at the same moment.
//
// # Providers that fail
//
// Every provider call has a timeout. Errors (network, 429, 5xx: the
// provider packages return them as errors, not as states) are retried with
// exponential backoff and jitter, honouring a Retry-After the error carries.
// While a provider keeps failing the status carries a notice for the page;
// a login whose provider has not answered successfully for the source's
// GiveUp ends as failed. A per-source cap on calls per second is shared by
// all logins of that source.
package login
