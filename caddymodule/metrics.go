package caddymodule

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the module's Prometheus collectors (docs/metrics.md). They are
// the one piece of global state of the package, on purpose: Caddy gives
// every configuration load a registry of its own, and a collector may be
// registered in several registries, so one set of collectors shared by
// every idv handler of every load keeps counting across reloads, while
// each registry gets it once (registerMetrics). Labels never hold personal
// data: provider names, states, operations, results, client ids and OAuth
// error codes, all from the configuration or a fixed set.
var metrics = struct {
	loginsStarted    *prometheus.CounterVec
	loginsFinished   *prometheus.CounterVec
	loginDuration    *prometheus.HistogramVec
	pendingLogins    *prometheus.GaugeVec
	providerRequests *prometheus.CounterVec
	providerDuration *prometheus.HistogramVec
	tokenChecks      *prometheus.CounterVec
	rateLimited      *prometheus.CounterVec
	logouts          prometheus.Counter
	oidcTokens       *prometheus.CounterVec
	oidcErrors       *prometheus.CounterVec
	heldPolls        prometheus.Gauge
}{
	loginsStarted: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "caddy", Subsystem: "idv", Name: "logins_started_total",
		Help: "Logins started at a provider."}, []string{"provider"}),
	loginsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "caddy", Subsystem: "idv", Name: "logins_finished_total",
		Help: "Logins that reached an outcome (completed, declined, expired, failed), counted once across instances."}, []string{"provider", "state"}),
	loginDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "caddy", Subsystem: "idv", Name: "login_duration_seconds",
		Help:    "Time from a login's start to its outcome.",
		Buckets: []float64{5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600}}, []string{"provider", "state"}),
	pendingLogins: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "caddy", Subsystem: "idv", Name: "pending_logins",
		Help: "Logins started on this instance whose outcome this instance has not seen and that have not expired."}, []string{"provider"}),
	providerRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "caddy", Subsystem: "idv", Name: "provider_requests_total",
		Help: "Calls to identity providers by operation (start, poll, cancel) and result (ok, error, timeout)."}, []string{"provider", "operation", "result"}),
	providerDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "caddy", Subsystem: "idv", Name: "provider_request_duration_seconds",
		Help: "Duration of calls to identity providers.", Buckets: prometheus.DefBuckets}, []string{"provider", "operation"}),
	tokenChecks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "caddy", Subsystem: "idv", Name: "token_checks_total",
		Help: "Session tokens checked by the gate, by result (ok, expired, revoked, invalid, wrong_audience)."}, []string{"result"}),
	rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "caddy", Subsystem: "idv", Name: "rate_limited_total",
		Help: "Requests refused by a rate limit (per_address, total, per_identity, oidc_client_auth), and long-polls answered at once instead of held (long_poll)."}, []string{"limit"}),
	logouts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "caddy", Subsystem: "idv", Name: "logouts_total",
		Help: "Sessions ended by a logout (POST logout or the OpenID Connect end_session endpoint)."}),
	oidcTokens: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "caddy", Subsystem: "idv", Name: "oidc_tokens_issued_total",
		Help: "Token responses of the OpenID Connect token endpoint."}, []string{"client_id", "grant_type"}),
	oidcErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "caddy", Subsystem: "idv", Name: "oidc_errors_total",
		Help: "Error answers of the OpenID Connect endpoints, by OAuth error code."}, []string{"endpoint", "error"}),
	heldPolls: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "caddy", Subsystem: "idv", Name: "long_polls_held",
		Help: "Login status long-polls this instance holds open now."}),
}

func allCollectors() []prometheus.Collector {
	m := &metrics
	return []prometheus.Collector{m.loginsStarted, m.loginsFinished, m.loginDuration, m.pendingLogins, m.providerRequests,
		m.providerDuration, m.tokenChecks, m.rateLimited, m.logouts, m.oidcTokens, m.oidcErrors, m.heldPolls}
}

// registerMetrics registers the collectors in reg once: a second idv
// handler of the same configuration finds them there already.
func registerMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range allCollectors() {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) || are.ExistingCollector != c {
				return err
			}
		}
	}
	return nil
}

// pendingGauge counts, for caddy_idv_pending_logins, the logins this
// handler started and has not seen end. Per instance by design: an
// outcome recorded on another instance is seen here only if a browser
// polls here, so a login is also let go of when it expires (sweep); after
// a restart the count starts from zero. Summed over instances it is the
// number of logins in progress.
type pendingGauge struct {
	mu sync.Mutex
	m  map[string]pendingEntry
}

type pendingEntry struct {
	provider string
	expires  time.Time
}

func (g *pendingGauge) add(id, provider string, expires time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[string]pendingEntry{}
	}
	if _, ok := g.m[id]; ok {
		return
	}
	g.m[id] = pendingEntry{provider, expires}
	metrics.pendingLogins.WithLabelValues(provider).Inc()
}

func (g *pendingGauge) done(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.m[id]; ok {
		delete(g.m, id)
		metrics.pendingLogins.WithLabelValues(e.provider).Dec()
	}
}

// sweep lets go of logins expired before now; closing (Cleanup) passes
// the zero time to let go of every one, so a reload does not leave them
// counted twice.
func (g *pendingGauge) sweep(now time.Time, all bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, e := range g.m {
		if all || now.After(e.expires) {
			delete(g.m, id)
			metrics.pendingLogins.WithLabelValues(e.provider).Dec()
		}
	}
}
