// Package providers defines what an identity-verification provider is to the
// idv module: a tiny base interface that starts and polls a login, and
// optional capabilities discovered by type assertion, because the flows differ
// (a QR code to scan, a link to open, a phone number that yields a control
// code). Each kind lives in its own sub-package, registers itself as the Caddy
// module "http.handlers.idv.providers.<kind>", and is tested against a fake of
// its service.
package providers

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/store"
)

// Namespace is the Caddy module namespace of provider kinds.
const Namespace = "http.handlers.idv.providers"

// State is the state of a login, as reported to the browser.
type State string

// The login states (docs/reference.md, "Endpoints").
const (
	Pending   State = "pending"
	Completed State = "completed"
	Expired   State = "expired"
	Declined  State = "declined"
	Failed    State = "failed"
)

// Final reports whether no later poll can change s.
func (s State) Final() bool { return s != Pending }

// Config is a provider's configuration, loaded as a Caddy module. Open checks
// it and returns the provider; the implementation type stays unexported.
type Config interface {
	caddy.Module
	// Settings returns the options every kind shares.
	Settings() *Common
	// Open returns a provider ready to start logins. It may talk to the
	// provider's service only when it must; a provider that is down at start
	// must not stop Caddy from starting.
	Open(env Env) (Provider, error)
}

// Env is what the module gives a provider: shared state, a logger that must
// never receive personal data, an HTTP client whose per-call timeout is the
// provider's `timeout`, and a clock that tests control.
type Env struct {
	Name string
	// Prefix is the path under which the module serves its own endpoints
	// (default "/.idv").
	Prefix string
	Store  store.Store
	Logger *zap.Logger
	HTTP   *http.Client
	Now    func() time.Time
}

// WithDefaults fills what a caller (a test) left out: a no-op logger, an
// HTTP client bounded by timeout, and the system clock. The module always
// sets every field; Store has no default.
func (e Env) WithDefaults(timeout time.Duration) Env {
	if e.Logger == nil {
		e.Logger = zap.NewNop()
	}
	if e.HTTP == nil {
		e.HTTP = &http.Client{Timeout: timeout}
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	return e
}

// Pages renders one of the module's templates as a full HTML response.
type Pages interface {
	Render(w http.ResponseWriter, r *http.Request, status int, name string, data any)
}

// Provider starts logins and reports their state.
type Provider interface {
	// Info describes the provider for the login page and the token.
	Info() Info
	// Start creates a session at the provider for the login req.ID.
	// An input that the person must correct is returned as an *InputError.
	Start(ctx context.Context, req StartRequest) (*Challenge, error)
	// Poll asks the provider for the state of login, once; the module's
	// login engine calls it at most once per poll interval per login,
	// cluster-wide, and never for a login that has an outcome. A Completed
	// result carries an Identity that has passed every check of the
	// provider's protocol, including single use of its one-time values.
	//
	// The error rule: a Result (with a State and a Message for the person)
	// is the provider's answer about the login, and is final unless it is
	// Pending. An error means the provider did not answer (network error,
	// timeout, 429, 5xx, a key set that cannot be fetched): the engine
	// retries with backoff, shows the person a notice, and fails the login
	// only after the source's give_up. Return ErrConsumed when the answer
	// was a one-time result another poller of the same login already
	// consumed, a *Reject when the answer is refused (the login ends and the
	// reason is logged), and wrap store.ErrUnavailable when the store is
	// down.
	// An error may implement RetryAfter() time.Duration to ask for a wait.
	Poll(ctx context.Context, login Login) (*Result, error)
}

// Info describes a provider.
type Info struct {
	Kind  string
	Label string // what the person sees on the choice button
	// Flow is "qr" (show a QR code and a link) or "form" (ask the person for
	// the fields of Form first, then show a control code).
	Flow string
	// FreeStart says that starting a session at the provider costs nothing
	// (a QR login), so the page may start one as soon as it loads; a
	// provider that is paid per session (document verification) or that
	// prompts the person (Mobile-ID) waits until the person chooses it.
	FreeStart bool
	// DefaultClaims are the identity claims put into tokens when the
	// operator lists none. National identifiers are never among them.
	DefaultClaims []string
}

// StartRequest is a login the module wants started.
type StartRequest struct {
	// ID is the module's login id: random, URL-safe, unique.
	ID string
	// BaseURL is the absolute URL of the module's prefix on the site the
	// person is using (from the configuration and the matched Host, never
	// from X-Forwarded-* headers), for building links such as the demo
	// wallet's.
	BaseURL string
	// Input holds the person's answers to Form, for "form" providers.
	Input map[string]string
}

// Challenge is what the person needs to act, and what the module must keep
// for later polls.
type Challenge struct {
	QRText      string
	DeepLink    string
	ControlCode string
	ExpiresAt   time.Time
	// State is opaque provider state (its session id, a token); the module
	// seals it into the pending cookie and hands it back in Login.State.
	// It must not hold personal data beyond what polling needs.
	State []byte
}

// Login is a login in progress, as the module gives it back to Poll.
type Login struct {
	ID        string
	State     []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Result is the outcome of one poll.
type Result struct {
	State State
	// Message explains a declined, expired or failed login to the person.
	// It never holds personal data or provider secrets.
	Message string
	// Identity is set when State is Completed.
	Identity *Identity
}

// Identity is a verified person, normalised to OpenID Connect claim names.
type Identity struct {
	Subject  string
	Claims   map[string]any
	ACR      string
	AMR      []string // RFC 8176 values
	AuthTime time.Time
}

// FormProvider is a provider that needs the person to type something before
// it can start (Mobile-ID: phone number and personal code).
type FormProvider interface {
	Form() []Field
}

// Field is one input of a FormProvider's form.
type Field struct {
	Name         string // key in StartRequest.Input and in the POST /sessions body
	Label        string
	Type         string // HTML input type
	Autocomplete string
	Pattern      string // HTML pattern; the provider validates again in Start
	Hint         string
}

// Canceler is a provider that can end a session at the service when the
// module gives up on a login (expired, superseded).
type Canceler interface {
	Cancel(ctx context.Context, login Login) error
}

// RouteHost is what the module gives a provider's own pages: only the
// providers that serve pages (Router) need it, so it is not part of Env.
type RouteHost struct {
	// Pages renders the module's (operator-overridable) HTML templates.
	Pages Pages
	// SameBrowser reports whether r comes from the browser that started the
	// login id (it holds that login's pending cookie).
	SameBrowser func(r *http.Request, id string) bool
}

// Router is a provider that serves HTTP endpoints of its own under the
// module's prefix (the demo wallet). Path is relative to the prefix, such as
// "/demo/", and so is r.URL.Path when the handler runs. The module has
// already refused cross-origin POSTs.
type Router interface {
	Routes(host RouteHost) (path string, h http.Handler)
}

// Poller is a provider that wants a specific interval between polls during a
// long poll. The default is PollInterval.
type Poller interface {
	PollInterval() time.Duration
}

// PollInterval is the default interval between two polls of one login.
const PollInterval = 2 * time.Second

// Closer is a provider that holds resources (goroutines, connections) to
// release when the configuration is unloaded.
type Closer interface {
	Close() error
}

// InputError is a problem with what the person typed; its message is shown to
// them as it is.
type InputError struct {
	Field   string
	Message string
}

func (e *InputError) Error() string { return e.Message }

// ValidID reports whether id looks like a login id the module made: 16 to
// 64 URL-safe base64 characters. Provider endpoints check ids with it
// before they use them in store keys.
func ValidID(id string) bool {
	if len(id) < 16 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// IsInputError reports whether err is (or wraps) an *InputError.
func IsInputError(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}

// ErrConsumed is what Poll returns when the provider's one-time result was
// already consumed by another poller of the same login (another instance
// whose lease had lapsed). It is not a failure of the login: the module
// waits for the other poller's recorded outcome.
var ErrConsumed = errors.New("providers: result already consumed by another poller")

// Announcer is a provider that learns of a login's outcome by itself (the
// demo wallet's Approve arrives as a request to this module) and tells the
// module at once, so that the login's poller need not wait for its next
// interval.
type Announcer interface {
	Announce(nudge func(loginID string))
}

// Reject is how a provider refuses an answer about a login (a signature
// that does not verify, a result of another session, a document of the
// wrong kind): Poll returns it as its error. The login ends in State with
// Message for the person; Reason goes to the operator's log, so it must
// hold no personal data. It is the one way to reject, so that the module
// logs every rejection the same way.
type Reject struct {
	State   State // Failed, Expired or Declined
	Message string
	Reason  string
}

func (r *Reject) Error() string { return "providers: answer rejected: " + r.Reason }

// ResultOf is Poll's answer with a *Reject turned into the Result it ends
// the login with, for callers (tests, tools) that look at states only.
func ResultOf(res *Result, err error) (*Result, error) {
	var r *Reject
	if errors.As(err, &r) {
		return &Result{State: r.State, Message: r.Message}, nil
	}
	return res, err
}
