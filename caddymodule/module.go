// Package caddymodule is the Caddy glue of caddy-idv: the `idv` HTTP handler
// (JSON module http.handlers.idv), its Caddyfile directive, the gate in front
// of protected routes, and the module's own endpoints under its prefix.
package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/login"
	"github.com/caddy-idv/caddy-idv/oidc"
	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/store"
	redisstore "github.com/caddy-idv/caddy-idv/store/redis"
	"github.com/caddy-idv/caddy-idv/templates"
	"github.com/caddy-idv/caddy-idv/token"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults of the Caddyfile options (docs/reference.md, "Caddyfile").
const (
	DefaultPrefix   = "/.idv"
	DefaultCookie   = "idv_session"
	DefaultLifetime = 8 * time.Hour
)

// Handler is the `idv` handler: it lets requests with a valid session token
// through, sends others to the login page, and serves the login API under
// Prefix.
type Handler struct {
	// ProvidersRaw are the identity providers a person can log in with, each
	// a module in the http.handlers.idv.providers namespace with its kind as
	// "kind". At least one is required.
	ProvidersRaw []json.RawMessage `json:"providers,omitempty" caddy:"namespace=http.handlers.idv.providers inline_key=kind"`
	// Prefix is where the module serves its own pages and API.
	// Default: "/.idv".
	Prefix string `json:"prefix,omitempty"`
	// Site is the public origin of the site, such as
	// "https://app.example.com". When set, it is the origin used for the
	// session cookie's Secure flag and default name, QR codes and links,
	// redirects, the Origin check of POST requests and the session
	// token's iss and aud defaults: set it when Caddy sits behind a proxy
	// or load balancer that terminates TLS or rewrites the Host. Default:
	// the scheme of the connection and the Host that Caddy matched.
	Site string `json:"site,omitempty"`
	// Session configures the session token and its cookie.
	Session *SessionConfig `json:"session,omitempty"`
	// Limit configures the rate limits on starting logins.
	Limit *LimitConfig `json:"limit,omitempty"`
	// Require lists claim rules that must all hold for a request to pass;
	// a valid session that fails one gets 403.
	Require []Requirement `json:"require,omitempty"`
	// Headers are request headers set from session claims for the upstream.
	// Each is first deleted from the incoming request in every spelling.
	Headers []HeaderRule `json:"headers,omitempty"`
	// OIDC, when set, makes the module an OpenID Connect provider.
	OIDC *OIDCConfig `json:"oidc,omitempty"`
	// TrustIssuers make the gate also accept bearer JWTs from other OpenID
	// Connect issuers.
	TrustIssuers []TrustIssuer `json:"trust_issuers,omitempty"`
	// Store, when set, keeps the state instances share somewhere other than
	// Caddy's configured storage. Default: Caddy's storage.
	Store *StoreConfig `json:"store,omitempty"`
	// Templates is a directory whose login.html, error.html, wallet.html or
	// layout.html replace the embedded ones, and whose locales/<tag>.json
	// add and replace messages. Default: the embedded templates.
	Templates string `json:"templates,omitempty"`
	// Languages are the languages the pages are offered in, as BCP 47 tags;
	// the first is the default, for people whose browser asks for none of
	// them. Default: en, et, lt, lv, ru, ar.
	Languages []string `json:"languages,omitempty"`
	// SiteName is the name of the site the pages show in their header and
	// title, so that a person knows who asks them to log in. Accepts
	// placeholders, also the request's. Default: the site's host.
	SiteName string `json:"site_name,omitempty"`
	// Logo is the site's logo in the header: a path on this site, or an
	// absolute URL with the `site` origin (the pages load nothing from
	// other origins). Accepts global placeholders such as {env.LOGO}.
	Logo string `json:"logo,omitempty"`
	// Accent is a CSS colour (#rgb, #rrggbb, rgb(), hsl() or a name) for
	// links, buttons and focus rings; it is adjusted where needed to keep
	// WCAG AA contrast. Accepts global placeholders.
	Accent string `json:"accent,omitempty"`

	sc        SessionConfig // Session with defaults applied
	public    string        // Site, checked and normalised; "" when not set
	logo      string        // Logo with its global placeholders replaced
	providers []*provider
	byName    map[string]*provider
	store     store.Store
	tokens    *token.Service
	sessions  *token.Sessions
	revoked   *store.Revocations
	sealer    *sealer
	// pendingAAD binds pending cookies to this handler: its session
	// audience, the same on every instance with the same configuration.
	pendingAAD string
	limiter    *limiter
	pages      *templates.Set
	static     http.Handler
	routes     map[string]http.Handler // provider routes by path, e.g. "/demo/"
	trusted    []*trustedIssuer
	oidc       *oidc.Provider
	// audit is the audit log (audit.go); auditKey keys subjects that would
	// show an identifier in it.
	audit    *zap.Logger
	auditKey []byte
	pending  *pendingGauge
	health   *healthCache
	// closeStore releases the store's connections at Cleanup.
	closeStore func() error
	// redisAddrs are the addresses of `store redis` (no password), for
	// the error when it cannot be reached at start.
	redisAddrs []string
	logger     *zap.Logger
	now        func() time.Time
	engine     *login.Engine
	held       *holds
	identities *limiter // per_identity, keyed by identityKey
	// identityHeaders are the names of the `header` rules, deleted from
	// every request (made once, not per request).
	identityHeaders []string
	// bodyTimeout overrides bodyTimeout (tests).
	bodyTimeout time.Duration
	cancel      context.CancelFunc
	wg          *sync.WaitGroup
}

// StoreConfig is `store redis <url>`, or `store` with only
// encryption options for Caddy's storage.
type StoreConfig struct {
	// Type is "redis", or empty for Caddy's configured storage.
	Type string `json:"type,omitempty"`
	// URL is the Redis URL (redis://, rediss://, Sentinel and Cluster forms:
	// see store/redis/README.md). Placeholders such as {env.REDIS_URL} work,
	// so the password need not be in the configuration.
	URL string `json:"url,omitempty"`
	// EncryptionKeys, when set, encrypt the secrets the module keeps in the
	// store (signing keys, sealing keys, hashing secrets, key pairs): the
	// first key encrypts, each one decrypts what it encrypted, so a key
	// being replaced stays listed after the new one (store/README.md).
	EncryptionKeys []EncryptionKey `json:"encryption_keys,omitempty"`
	// MigratePlaintext encrypts, on first use, secrets found stored
	// unencrypted; without it they are refused.
	MigratePlaintext bool `json:"migrate_plaintext,omitempty"`
}

// EncryptionKey is a store encryption key: 32 random bytes in base64 or
// hex, given as Value (placeholders such as {env.IDV_STORE_KEY} are
// resolved) or read from File. Exactly one of the two is set.
type EncryptionKey struct {
	Value string `json:"value,omitempty"`
	File  string `json:"file,omitempty"`
}

// SessionConfig configures the session token (docs/reference.md, "Caddyfile",
// `session`).
type SessionConfig struct {
	// Cookie is the session cookie's name. Default: "__Host-idv_session"
	// on https sites without Domain, else "idv_session".
	Cookie string `json:"cookie,omitempty"`
	// Lifetime is the absolute lifetime of a session. Default: 8h.
	Lifetime caddy.Duration `json:"lifetime,omitempty"`
	// Idle, when set, ends a session that was not used for this long
	// (a sliding timeout: browser sessions are re-issued as they are used).
	Idle caddy.Duration `json:"idle,omitempty"`
	// Domain, when set, shares the session cookie across subdomains.
	Domain string `json:"domain,omitempty"`
	// SameSite is "lax", "strict" or "none". Default: "lax".
	SameSite string `json:"same_site,omitempty"`
	// Audience is the session token's aud. Default: Domain if set, else
	// Site if set, else a name derived from the handler's prefix, cookie
	// name and providers (never from a request header).
	Audience string `json:"audience,omitempty"`
}

// LimitConfig configures the rate limits on POST <prefix>/sessions.
type LimitConfig struct {
	// PerAddress limits logins started per client address.
	// Default: 10 per 1m.
	PerAddress *Rate `json:"per_address,omitempty"`
	// Total limits logins started by everyone. Default: 600 per 1m.
	Total *Rate `json:"total,omitempty"`
	// PerIdentity limits logins started for one person with a form
	// provider (the same phone number and personal code), whatever the
	// address: each start prompts that person's phone. Default: 3 per 10m.
	PerIdentity *Rate `json:"per_identity,omitempty"`
	// HeldPerAddress is how many long-polls one client address (an IPv6
	// /64) may hold at once; more are answered at once instead of held.
	// Default: 256.
	HeldPerAddress int `json:"held_per_address,omitempty"`
}

// Rate is N events per Window.
type Rate struct {
	N      int            `json:"n"`
	Window caddy.Duration `json:"window"`
	// Ban, when set, is how long a key that went past N stays refused
	// (per_address and per_identity); without it, until its window ends.
	Ban caddy.Duration `json:"ban,omitempty"`
}

// Requirement is `require <claim> <value...>`: the claim must equal one of
// the values, or, for an array claim, contain one of them.
type Requirement struct {
	Claim  string   `json:"claim"`
	Values []string `json:"values"`
	// Issuer, when set, makes the rule apply to bearer tokens of that
	// trusted issuer (trust_issuer) instead of this site's own sessions.
	Issuer string `json:"issuer,omitempty"`
}

// HeaderRule is `header <Header-Name> <claim>`.
type HeaderRule struct {
	Header string `json:"header"`
	Claim  string `json:"claim"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.idv",
		New: func() caddy.Module { return new(Handler) },
	}
}

func (h *Handler) sessionConfig() SessionConfig {
	var s SessionConfig
	if h.Session != nil {
		s = *h.Session
	}
	if s.Cookie == "" {
		s.Cookie = DefaultCookie
	}
	if s.Lifetime <= 0 {
		s.Lifetime = caddy.Duration(DefaultLifetime)
	}
	if s.SameSite == "" {
		s.SameSite = "lax"
	}
	return s
}

// Provision loads the providers, the store, the signing keys and the
// templates, and starts the background refreshes that Cleanup stops.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.logger.Info("provisioning", zap.String("version", Version))
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("idv: registering metrics: %w", err)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.Prefix == "" {
		h.Prefix = DefaultPrefix
	}
	h.Prefix = strings.TrimSuffix(h.Prefix, "/")
	if h.store == nil {
		if err := h.openStore(ctx); err != nil {
			return err
		}
	}
	mods, err := ctx.LoadModule(h, "ProvidersRaw")
	if err != nil {
		return fmt.Errorf("idv: loading providers: %w", err)
	}
	configs := make([]providers.Config, 0, len(mods.([]any)))
	for _, m := range mods.([]any) {
		c, ok := m.(providers.Config)
		if !ok {
			return fmt.Errorf("idv: module %T is not a provider", m)
		}
		configs = append(configs, c)
	}
	if err := h.setup(ctx, configs); err != nil {
		if h.redisAddrs != nil && errors.Is(err, store.ErrUnavailable) {
			// Provisioning needs the store (keys, revocations), so a Redis
			// that does not answer at start stops it: say which one.
			return fmt.Errorf("idv: store redis %s cannot be reached: %w", strings.Join(h.redisAddrs, ","), err)
		}
		return err
	}
	return nil
}

// templatesDir resolves the placeholders of `templates <dir>` and checks that
// it names a directory. (Without a placeholder the Caddyfile already checked
// it, with its line; JSON configurations and placeholders are checked here.)
func (h *Handler) templatesDir() (string, error) {
	if h.Templates == "" {
		return "", nil
	}
	dir := caddy.NewReplacer().ReplaceKnown(h.Templates, "")
	what := fmt.Sprintf("%q", h.Templates)
	if dir != h.Templates {
		what = fmt.Sprintf("%q (%q once its placeholders are replaced)", h.Templates, dir)
	}
	if dir == "" {
		return "", fmt.Errorf("idv: templates %s: is empty", what)
	}
	if err := checkDir(dir); err != nil {
		return "", fmt.Errorf("idv: templates %s: %v", what, err)
	}
	return dir, nil
}

// checkDir says why dir is not a directory that can be read, or nil.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("no such directory")
	case err != nil:
		return err
	case !fi.IsDir():
		return errors.New("not a directory")
	}
	return nil
}

// openStore opens the shared store: Redis when configured, else Caddy's
// storage, sealing the module's secrets there when encryption keys are
// given. Without keys it warns when the store is shared by nature (Redis,
// a storage module other than the file system), since whoever reads the
// store could then mint sessions.
func (h *Handler) openStore(ctx caddy.Context) error {
	cfg := h.Store
	if cfg == nil {
		cfg = &StoreConfig{}
	}
	var s store.Store
	shared := ""
	if cfg.Type == "redis" {
		url := caddy.NewReplacer().ReplaceKnown(cfg.URL, "")
		rs, err := redisstore.New(ctx, url, redisstore.Options{Logger: h.logger.Named("store"), Now: h.now})
		if err != nil {
			return fmt.Errorf("idv: store redis: %w", err)
		}
		s, h.closeStore, shared = rs, rs.Close, "redis"
		h.redisAddrs = rs.Addresses()
	} else {
		storage := ctx.Storage()
		if _, ok := storage.(*certmagic.FileStorage); !ok {
			shared = fmt.Sprintf("%T", storage)
		}
		s = store.NewCaddy(storage, h.logger, h.now)
	}
	if len(cfg.EncryptionKeys) == 0 {
		if shared != "" {
			h.logger.Warn("idv: the store keeps signing keys and other secrets unencrypted: whoever can read it can mint sessions; set `encryption_key` in the `store` option",
				zap.String("store", shared))
		}
		h.store = store.Unencrypted(s)
		return nil
	}
	keys, err := cfg.keys()
	if err == nil {
		s, err = store.Sealed(s, store.SealOptions{Keys: keys, MigratePlaintext: cfg.MigratePlaintext, Logger: h.logger.Named("store")})
	}
	if err != nil {
		if h.closeStore != nil {
			_ = h.closeStore()
			h.closeStore = nil
		}
		return err
	}
	h.store = s
	return nil
}

// setup does the work of Provision that does not need a caddy.Context, so
// that tests and benchmarks can build a Handler on an in-memory store.
func (h *Handler) setup(parent context.Context, configs []providers.Config) error {
	if h.logger == nil {
		h.logger = zap.NewNop()
	}
	h.audit = h.logger.Named("audit")
	h.pending, h.health = new(pendingGauge), new(healthCache)
	if h.now == nil {
		h.now = time.Now
	}
	if h.Prefix == "" {
		h.Prefix = DefaultPrefix
	}
	if err := h.validateOptions(); err != nil {
		return err
	}
	if len(configs) == 0 {
		return fmt.Errorf("idv: at least one provider is required")
	}
	dir, err := h.templatesDir()
	if err != nil {
		return err
	}
	pages, err := templates.New(templates.Options{
		Dir:       dir,
		Languages: h.Languages,
		Accent:    caddy.NewReplacer().ReplaceKnown(h.Accent, ""),
	})
	if err != nil {
		return fmt.Errorf("idv: templates: %w", err)
	}
	h.pages = pages
	h.static = http.StripPrefix(h.Prefix+"/static/", pages.Static())

	h.sc = h.sessionConfig()
	sc := h.sc
	h.wg = new(sync.WaitGroup)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	initCtx, initCancel := context.WithTimeout(parent, 30*time.Second)
	defer initCancel()

	keys := token.NewKeyring(h.store, time.Duration(sc.Lifetime), h.now)
	if err := keys.Load(initCtx); err != nil {
		return fmt.Errorf("idv: signing keys: %w", err)
	}
	h.revoked = store.NewRevocations(h.store, h.logger, h.now)
	if err := h.revoked.Sync(initCtx); err != nil {
		return fmt.Errorf("idv: revocations: %w", err)
	}
	h.tokens = token.NewService(keys, h.revoked.Revoked, h.now, token.DefaultCacheSize)
	if h.auditKey, err = providers.LoadSecret(initCtx, h.store, providers.SubjectSecretKey); err != nil {
		return fmt.Errorf("idv: audit subject key: %w", err)
	}
	h.pendingAAD = h.site().SessionAudience()
	h.sealer, err = newSealer(initCtx, h.store)
	if err != nil {
		return err
	}
	h.limiter = newLimiter(h.limitConfig(), h.now)
	h.identityHeaders = nil
	for _, hr := range h.Headers {
		h.identityHeaders = append(h.identityHeaders, hr.Header)
	}
	h.held = &holds{perAddress: maxHeldPerAddress}
	if h.Limit != nil && h.Limit.HeldPerAddress > 0 {
		h.held.perAddress = h.Limit.HeldPerAddress
	}
	lc := h.limitConfig()
	h.identities = newLimiter(LimitConfig{PerAddress: lc.PerIdentity, Total: &Rate{N: math.MaxInt32, Window: lc.PerIdentity.Window}}, h.now)
	h.engine, err = login.New(login.Config{
		Store:    h.store,
		Seal:     engineSealer{h.sealer},
		Clock:    engineClock{h.now},
		Logger:   h.logger.Named("login"),
		Observer: observer{h},
		Issue: func(src *login.Source, id *providers.Identity) (string, time.Time, error) {
			return h.mint(h.byName[src.Name], id)
		},
	})
	if err != nil {
		return fmt.Errorf("idv: %w", err)
	}

	for _, ti := range h.TrustIssuers {
		h.trusted = append(h.trusted, &trustedIssuer{cfg: ti, client: newIssuerClient(), now: h.now})
	}
	h.byName = make(map[string]*provider)
	h.routes = make(map[string]http.Handler)
	for _, c := range configs {
		if err := h.openProvider(c); err != nil {
			return err
		}
	}
	h.sessions = h.tokens.Sessions(h.site(), time.Duration(sc.Lifetime), time.Duration(sc.Idle))
	h.sessions.UseRefs(sessionRefs{store: h.store, seal: h.sealer, now: h.now})
	if h.OIDC != nil {
		if err := h.openOIDC(); err != nil {
			return err
		}
	}
	h.background(ctx, keys)
	return nil
}

func (h *Handler) background(ctx context.Context, keys *token.Keyring) {
	h.wg.Add(2)
	go func() {
		defer h.wg.Done()
		h.revoked.Run(ctx, revocationSync)
	}()
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := keys.Refresh(ctx); err != nil {
					h.logger.Warn("refreshing signing keys", zap.Error(err))
				}
				h.limiter.sweep()
				h.identities.sweep()
				h.pending.sweep(h.now(), false)
			}
		}
	}()
	if c, ok := store.Unwrap(h.store).(*store.Caddy); ok {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			c.Run(ctx, 10*time.Minute)
		}()
	}
}

// revocationSync is how often the revocation set is re-read from the store,
// so another instance's logout is honoured within 10 s (docs/reference.md,
// "Endpoints", POST /logout).
const revocationSync = 5 * time.Second

// Cleanup stops the background work and releases provider resources.
func (h *Handler) Cleanup() error {
	if h.engine != nil {
		h.engine.Close()
	}
	if h.pending != nil {
		h.pending.sweep(time.Time{}, true)
	}
	if h.cancel != nil {
		h.cancel()
	}
	if h.wg != nil {
		h.wg.Wait()
	}
	if h.oidc != nil {
		_ = h.oidc.Close() // stops back-channel logout deliveries
	}
	if h.closeStore != nil {
		if err := h.closeStore(); err != nil {
			h.logger.Warn("closing the store", zap.Error(err))
		}
	}
	for _, p := range h.providers {
		if c, ok := p.impl.(providers.Closer); ok {
			if err := c.Close(); err != nil {
				h.logger.Warn("closing provider", zap.String("provider", p.name), zap.Error(err))
			}
		}
	}
	return nil
}

// Validate refuses a configuration that cannot work, naming the option.
func (h *Handler) Validate() error {
	if len(h.providers) == 0 {
		return fmt.Errorf("idv: at least one provider is required")
	}
	return h.validateOptions()
}

func (h *Handler) validateOptions() error {
	prefix := h.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	if h.Site != "" {
		origin, err := token.ParseOrigin(caddy.NewReplacer().ReplaceKnown(h.Site, ""))
		if err != nil {
			return fmt.Errorf("idv: site: %w", err)
		}
		h.public = origin
	}
	if err := h.validateSession(); err != nil {
		return err
	}
	if err := h.validateBranding(); err != nil {
		return err
	}
	lc := h.limitConfig()
	for name, r := range map[string]*Rate{"per_address": lc.PerAddress, "total": lc.Total, "per_identity": lc.PerIdentity} {
		if r.N <= 0 || r.Window <= 0 {
			return fmt.Errorf("idv: limit %s: needs a positive count and window", name)
		}
		if r.Ban != 0 && (name == "total" || r.Ban < r.Window) {
			return fmt.Errorf("idv: limit %s: a ban time is for per_address and per_identity, and no shorter than the window", name)
		}
	}
	if h.OIDC != nil {
		if err := h.OIDC.validate(); err != nil {
			return fmt.Errorf("idv: %w", err)
		}
	}
	if h.Store != nil {
		if err := h.Store.validate(); err != nil {
			return err
		}
	}
	for _, ti := range h.TrustIssuers {
		if err := checkIssuerURL(ti.Issuer); err != nil || ti.Audience == "" {
			return fmt.Errorf("idv: trust_issuer %q %q: needs an https issuer URL and an audience", ti.Issuer, ti.Audience)
		}
	}
	for _, req := range h.Require {
		if req.Claim == "" || len(req.Values) == 0 {
			return fmt.Errorf("idv: require: needs a claim and at least one value")
		}
		if req.Issuer != "" && !h.trusts(req.Issuer) {
			return fmt.Errorf("idv: require %s: issuer %q is not a trust_issuer of this handler", req.Claim, req.Issuer)
		}
	}
	for _, hr := range h.Headers {
		if !validHeaderName(hr.Header) || hr.Claim == "" {
			return fmt.Errorf("idv: header %q %q: needs a valid header name and a claim", hr.Header, hr.Claim)
		}
	}
	return nil
}

func (h *Handler) validateSession() error {
	sc := h.sessionConfig()
	if !validCookieName(sc.Cookie) {
		return fmt.Errorf("idv: session cookie %q: not a valid cookie name", sc.Cookie)
	}
	switch sc.SameSite {
	case "lax", "strict", "none":
	default:
		return fmt.Errorf("idv: session same_site %q: must be lax, strict or none", sc.SameSite)
	}
	if sc.Idle < 0 || sc.Lifetime < 0 {
		return fmt.Errorf("idv: session lifetime and idle must be positive")
	}
	if sc.Idle > 0 && sc.Idle > sc.Lifetime {
		return fmt.Errorf("idv: session idle (%s) is longer than lifetime (%s)", time.Duration(sc.Idle), time.Duration(sc.Lifetime))
	}
	if d := sc.Domain; d != "" && (strings.ContainsAny(d, "/:@ ") || strings.HasPrefix(d, ".")) {
		return fmt.Errorf("idv: session domain %q: must be a bare domain such as example.com", d)
	}
	return nil
}

func (h *Handler) trusts(issuer string) bool {
	for _, ti := range h.TrustIssuers {
		if ti.Issuer == issuer {
			return true
		}
	}
	return false
}

// site is what decides the iss and aud of this handler's session tokens:
// its configuration, never a request.
func (h *Handler) site() token.Site {
	s := token.Site{Origin: h.public, Prefix: h.Prefix, Cookie: h.sc.Cookie, Domain: h.sc.Domain, Audience: h.sc.Audience}
	if h.OIDC != nil {
		s.OIDCIssuer = h.OIDC.Issuer
	}
	for _, p := range h.providers {
		s.Providers = append(s.Providers, token.SiteProvider{Name: p.name, Kind: p.info.Kind})
	}
	return s
}

func checkPrefix(p string) error {
	if !strings.HasPrefix(p, "/") || p == "/" || strings.ContainsAny(p, "?#*{}%\\ ") || strings.Contains(p, "//") || strings.Contains(p, "..") {
		return fmt.Errorf("idv: prefix %q: must be a path such as /.idv", p)
	}
	return nil
}

func (h *Handler) limitConfig() LimitConfig {
	lc := LimitConfig{
		PerAddress:  &Rate{N: 10, Window: caddy.Duration(time.Minute)},
		Total:       &Rate{N: 600, Window: caddy.Duration(time.Minute)},
		PerIdentity: &Rate{N: 3, Window: caddy.Duration(10 * time.Minute)},
	}
	if h.Limit != nil {
		if h.Limit.PerIdentity != nil {
			lc.PerIdentity = h.Limit.PerIdentity
		}
		if h.Limit.PerAddress != nil {
			lc.PerAddress = h.Limit.PerAddress
		}
		if h.Limit.Total != nil {
			lc.Total = h.Limit.Total
		}
	}
	return lc
}

func validCookieName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
