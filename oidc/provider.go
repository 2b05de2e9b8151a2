package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/store"
	"github.com/caddy-idv/caddy-idv/token"
)

// Lifetimes.
const (
	// CodeLifetime is how long an authorization code may be exchanged
	// (RFC 6749 §4.1.2 recommends at most ten minutes; a browser redirect
	// takes seconds).
	CodeLifetime = 60 * time.Second
	// IDTokenLifetime and AccessTokenLifetime are the exp of issued tokens.
	IDTokenLifetime     = 10 * time.Minute
	AccessTokenLifetime = 10 * time.Minute
	// RefreshLifetime is the absolute lifetime of a refresh token family,
	// counted from the code exchange; rotation does not extend it.
	RefreshLifetime = 30 * 24 * time.Hour
)

// Limits on what the endpoints read.
const (
	maxBody  = 16 << 10
	maxParam = 2048
)

// Options are what the idv handler gives the provider.
type Options struct {
	// Tokens signs ID and access tokens with the session tokens' key ring.
	Tokens *token.Service
	// Store holds codes, refresh tokens and their used markers.
	Store store.Store
	// Revocations revokes and checks session ids (sid).
	Revocations *store.Revocations
	// Host gives the browser's session, the login page and logout.
	Host Host
	// Prefix is the module's path prefix, default "/.idv".
	Prefix string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger logs without personal data or tokens; a no-op when nil.
	Logger *zap.Logger
	// Events, when set, is told of codes and tokens issued, refresh token
	// reuse, failed client authentications and error answers (metrics
	// and the audit log). It is called on the request's goroutine and
	// must not block.
	Events func(Event)
	// PairwiseSecret keys pairwise subjects and sids. When empty and a
	// client uses pairwise subjects, New reads (or creates) one in Store,
	// so that every instance sharing the store computes the same subjects.
	PairwiseSecret []byte
	// SessionLifetime is the longest a caddy-idv session token lives; a
	// session ended without its token in hand (end_session with only an
	// id_token_hint) is revoked this long. Default 24 hours.
	SessionLifetime time.Duration
	// HTTPClient delivers back-channel logout tokens. It must not follow
	// redirects to other hosts (New makes a copy that follows none).
	// Default: a client with BackchannelRetry.Timeout.
	HTTPClient *http.Client
	// BackchannelRetry is how back-channel logout deliveries are retried;
	// zero fields take the defaults of DefaultBackchannelRetry.
	BackchannelRetry RetryPolicy
	// ClientAddress is the address a request came from, for the limits on
	// failed client authentication and their log; default the host of
	// RemoteAddr. The module gives Caddy's client IP (trusted_proxies).
	ClientAddress func(*http.Request) string
}

// Provider serves the OpenID Connect endpoints. It is safe for concurrent
// use.
type Provider struct {
	issuer    string
	origin    string // scheme://host of the issuer
	prefix    string
	discovery string // path of the discovery document
	asMeta    string // path of the RFC 8414 metadata

	clients map[string]*client

	tokens          *token.Service
	store           store.Store
	revocations     *store.Revocations
	host            Host
	now             func() time.Time
	logger          *zap.Logger
	events          func(Event)
	pairwise        []byte
	grace           time.Duration
	sessionLifetime time.Duration
	clientAddress   func(*http.Request) string
	limiter         *authLimiter
	backchannel     *backchannel
	recorded        memo

	discoveryBody []byte
	discoveryETag string
}

type client struct {
	Client
	secretHash [32]byte
	redirects  map[string]bool
	logouts    map[string]bool
}

func (c *client) public() bool { return c.Secret == "" }

// idTokenAlg is the algorithm of the client's ID and logout tokens.
func (c *client) idTokenAlg() string {
	if c.IDTokenAlg == "" {
		return token.RS256
	}
	return c.IDTokenAlg
}

// pairwiseKey is where a generated pairwise secret lives in the store.
const pairwiseKey = "oidc/pairwise-secret"

// DefaultSessionLifetime is Options.SessionLifetime when not set.
const DefaultSessionLifetime = 24 * time.Hour

// New validates cfg and returns a provider. Close stops its background
// work (back-channel logout deliveries).
func New(cfg Config, opts Options) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Tokens == nil || opts.Store == nil || opts.Revocations == nil || opts.Host == nil {
		return nil, errors.New("oidc: new: Tokens, Store, Revocations and Host are required")
	}
	if opts.Prefix == "" {
		opts.Prefix = "/.idv"
	}
	if !strings.HasPrefix(opts.Prefix, "/") || strings.HasSuffix(opts.Prefix, "/") {
		return nil, fmt.Errorf("oidc: new: prefix %q must start and not end with /", opts.Prefix)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.SessionLifetime <= 0 {
		opts.SessionLifetime = DefaultSessionLifetime
	}
	if opts.ClientAddress == nil {
		opts.ClientAddress = remoteHost
	}
	grace := cfg.RefreshReuseGrace
	switch {
	case grace == 0:
		grace = DefaultRefreshReuseGrace
	case grace < 0:
		grace = 0
	}
	u, _ := url.Parse(cfg.Issuer) // checked by Validate
	issuerPath := strings.TrimSuffix(u.EscapedPath(), "/")
	p := &Provider{
		issuer: cfg.Issuer,
		origin: u.Scheme + "://" + u.Host,
		prefix: opts.Prefix,
		// OpenID Connect Discovery §4.1 appends the well-known path to
		// the issuer; RFC 8414 §3.1 inserts it before the issuer's path.
		discovery:       issuerPath + "/.well-known/openid-configuration",
		asMeta:          "/.well-known/oauth-authorization-server" + issuerPath,
		clients:         make(map[string]*client, len(cfg.Clients)),
		tokens:          opts.Tokens,
		store:           opts.Store,
		revocations:     opts.Revocations,
		host:            opts.Host,
		now:             opts.Now,
		logger:          opts.Logger,
		events:          opts.Events,
		pairwise:        opts.PairwiseSecret,
		grace:           grace,
		sessionLifetime: opts.SessionLifetime,
		clientAddress:   opts.ClientAddress,
		limiter:         newAuthLimiter(opts.Now),
	}
	needPairwise := false
	for _, c := range cfg.Clients {
		cl := &client{Client: c, redirects: map[string]bool{}, logouts: map[string]bool{}}
		cl.secretHash = sha256.Sum256([]byte(c.Secret))
		for _, r := range c.RedirectURIs {
			cl.redirects[r] = true
		}
		for _, r := range c.PostLogoutRedirectURIs {
			cl.logouts[r] = true
		}
		needPairwise = needPairwise || c.Subject == SubjectPairwise
		p.clients[c.ID] = cl
	}
	if needPairwise && len(p.pairwise) == 0 {
		secret, err := loadPairwiseSecret(context.Background(), opts.Store)
		if err != nil {
			return nil, err
		}
		p.pairwise = secret
	}
	if err := p.buildDiscovery(needPairwise); err != nil {
		return nil, err
	}
	p.backchannel = newBackchannel(opts.HTTPClient, opts.BackchannelRetry, opts.Tokens, opts.Logger)
	return p, nil
}

// Close stops the provider's background work: back-channel logout
// deliveries still being retried are abandoned. The module calls it at
// Cleanup.
func (p *Provider) Close() error {
	p.backchannel.close()
	return nil
}

// remoteHost is the host part of r.RemoteAddr.
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func loadPairwiseSecret(ctx context.Context, s store.Store) ([]byte, error) {
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh)
	if _, err := s.SetIfAbsent(ctx, pairwiseKey, []byte(hex.EncodeToString(fresh)), 0); err != nil {
		return nil, fmt.Errorf("oidc: pairwise secret: %w", err)
	}
	raw, err := s.Get(ctx, pairwiseKey)
	if err != nil {
		return nil, fmt.Errorf("oidc: pairwise secret: %w", err)
	}
	secret, err := hex.DecodeString(string(raw))
	if err != nil || len(secret) < 16 {
		return nil, errors.New("oidc: pairwise secret: the stored secret is malformed")
	}
	return secret, nil
}

// Issuer returns the issuer URL.
func (p *Provider) Issuer() string { return p.issuer }

// DiscoveryPath returns the path of the discovery document, which lies
// outside Prefix when the issuer's path does.
func (p *Provider) DiscoveryPath() string { return p.discovery }

// Handles reports whether path (the request's full path) is one the provider
// serves: the discovery document, the RFC 8414 metadata and everything
// under Prefix+"/oidc/". The module serves these before its gate, so that
// relying parties reach them without a session.
func (p *Provider) Handles(path string) bool {
	return path == p.discovery || path == p.asMeta || strings.HasPrefix(path, p.prefix+"/oidc/")
}

// endpoint is the absolute URL of the endpoint named name.
func (p *Provider) endpoint(name string) string {
	return p.origin + p.prefix + "/oidc/" + name
}

// ServeHTTP serves the provider's endpoints. r.URL.Path is the full path;
// a path with Prefix already stripped ("/oidc/token") is accepted too.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if path == p.discovery || path == p.asMeta {
		p.only(w, r, p.serveDiscovery, http.MethodGet, http.MethodHead)
		return
	}
	rel := strings.TrimPrefix(path, p.prefix)
	switch rel {
	case "/oidc/authorize":
		p.only(w, r, p.serveAuthorize, http.MethodGet, http.MethodPost)
	case "/oidc/token":
		p.only(w, r, p.serveToken, http.MethodPost)
	case "/oidc/userinfo":
		p.only(w, r, p.serveUserinfo, http.MethodGet, http.MethodPost)
	case "/oidc/jwks":
		p.only(w, r, p.serveJWKS, http.MethodGet, http.MethodHead)
	case "/oidc/logout":
		p.only(w, r, p.serveLogout, http.MethodGet, http.MethodPost)
	case "/oidc/revoke":
		p.only(w, r, p.serveRevoke, http.MethodPost)
	case "/oidc/introspect":
		p.only(w, r, p.serveIntrospect, http.MethodPost)
	default:
		writeJSON(w, http.StatusNotFound, oauthError{Code: "not_found", Description: "there is nothing here"})
	}
}

// corsEndpoints may be called by single-page applications from any origin.
// They never read cookies, so answering every origin discloses nothing a
// server-side client could not read anyway.
func corsAllowed(path string) bool {
	return !strings.HasSuffix(path, "/authorize") && !strings.HasSuffix(path, "/logout")
}

func (p *Provider) only(w http.ResponseWriter, r *http.Request, fn http.HandlerFunc, methods ...string) {
	if corsAllowed(r.URL.Path) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", strings.Join(methods, ", "))
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	for _, m := range methods {
		if r.Method == m {
			fn(w, r)
			return
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeJSON(w, http.StatusMethodNotAllowed, oauthError{Code: "invalid_request", Description: "method not allowed"})
}

// randomToken is 256 random bits, base64url: codes and refresh tokens.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails on supported platforms (Go 1.24+ panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// randomID is 128 random bits, base64url: jti and refresh family ids.
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashKey is the store key for a secret value: the raw value never becomes a
// key, so a store listing or a key-named file discloses no usable code or
// token.
func hashKey(kind, secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "oidc/" + kind + "/" + hex.EncodeToString(sum[:])
}
