// Package demo is the built-in simulated wallet (docs/reference.md, "The
// demo provider"), for trying
// caddy-idv out and for tests. Its QR code encodes the absolute URL of
// <prefix>/demo/wallet/{id}, a page with Approve and Decline buttons.
// Approving makes the wallet sign a result JWS (ES256, jti = the login id),
// and Poll checks it through the same jwsverify path real providers use.
//
// Everything the wallet knows lives in the shared store, so any instance can
// serve the wallet page, record the decision and answer polls. It is not an
// identity provider: anyone who can open the link can log in as the
// configured user. The module logs a warning at start.
package demo

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/providers/jwsverify"
	"github.com/caddy-idv/caddy-idv/store"
)

func init() {
	caddy.RegisterModule(Config{})
}

// Kind is the provider kind.
const Kind = "demo"

// issuer is the iss of the wallet's result tokens.
const issuer = "urn:caddy-idv:demo-wallet"

// DefaultLifetime is how long a demo login waits for a decision.
const DefaultLifetime = 3 * time.Minute

// resultLifetime is the exp of a result token after it is signed.
const resultLifetime = 2 * time.Minute

// Config configures the demo provider: `provider demo [<name>] { user <display name> }`.
type Config struct {
	providers.Common
	// User is the display name of the person the wallet logs in.
	// Default: "Demo User".
	User string `json:"user,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Config) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  providers.Namespace + "." + Kind,
		New: func() caddy.Module { return new(Config) },
	}
}

// UnmarshalCaddyfile reads `provider demo [<name>] { user <name...>; lifetime <d> }`.
func (c *Config) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return c.UnmarshalBlock(d, Kind, "user, lifetime", func(name string) (bool, error) {
		var err error
		switch name {
		case "user":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return true, d.ArgErr()
			}
			c.User = strings.Join(args, " ")
		case "lifetime":
			c.Lifetime, err = providers.DurationArg(d, Kind, 0)
		default:
			return false, nil
		}
		return true, err
	})
}

// Open implements providers.Config.
func (c *Config) Open(env providers.Env) (providers.Provider, error) {
	if err := c.ValidateCommon(); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if env.Store == nil || env.Now == nil {
		return nil, errors.New("demo: incomplete environment")
	}
	user := c.User
	if user == "" {
		user = "Demo User"
	}
	lifetime := c.LifetimeOr(DefaultLifetime)
	env = env.WithDefaults(c.CallTimeout())
	logger := env.Logger
	p := &provider{env: env, user: user, lifetime: lifetime, logger: logger}
	ctx, cancel := context.WithTimeout(context.Background(), c.CallTimeout())
	defer cancel()
	key, err := loadKey(ctx, env.Store)
	if err != nil {
		return nil, err
	}
	p.key = key
	p.validator = &jwsverify.Validator{
		Algorithm: jwt.SigningMethodES256.Alg(),
		Keys:      jwsverify.StaticKeys{kidOf(&key.PublicKey): &key.PublicKey},
		Issuer:    issuer,
		Store:     env.Store,
		Namespace: Kind,
		Now:       env.Now,
	}
	logger.Warn("the demo identity provider is enabled: anyone who opens a login's link can log in as its user; do not use it in production",
		zap.String("provider", env.Name))
	return p, nil
}

type provider struct {
	env       providers.Env
	user      string
	lifetime  time.Duration
	logger    *zap.Logger
	key       *ecdsa.PrivateKey
	validator *jwsverify.Validator
	nudge     atomic.Pointer[func(string)]
	host      providers.RouteHost // set by Routes: the wallet's pages
}

// Info implements providers.Provider.
func (p *provider) Info() providers.Info {
	return providers.Info{Kind: Kind, Label: "Demo wallet", Flow: "qr", FreeStart: true, DefaultClaims: []string{"name"}}
}

// PollInterval implements providers.Poller.
// PollInterval is only the fallback between two polls: an Approve or
// Decline nudges the login's poller at once (Announce), on this instance
// and, with a store that notifies (Redis), on the others. Only a decision
// on another instance sharing Caddy storage waits for it. Polling less
// often keeps thousands of pending demo logins from costing CPU.
func (p *provider) PollInterval() time.Duration { return 10 * time.Second }

// Announce implements providers.Announcer: the wallet tells the module of
// a decision as soon as it is recorded.
func (p *provider) Announce(nudge func(loginID string)) { p.nudge.Store(&nudge) }

func (p *provider) announce(id string) {
	if n := p.nudge.Load(); n != nil {
		(*n)(id)
	}
}

// record is what the wallet knows about a login.
type record struct {
	User      string    `json:"user"`
	Provider  string    `json:"provider"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// decision is what the person chose on the wallet page.
type decision struct {
	Approved bool   `json:"approved"`
	Result   string `json:"result,omitempty"` // the signed result JWS
	// SameDevice records that the answer came from the browser that
	// started the login, so that the page after it can send the person
	// back to that login (which may have ended by the time it loads).
	SameDevice bool `json:"same_device,omitempty"`
}

func loginKey(id string) string    { return "demo/login/" + id }
func decisionKey(id string) string { return "demo/decision/" + id }

// Start implements providers.Provider.
func (p *provider) Start(ctx context.Context, req providers.StartRequest) (*providers.Challenge, error) {
	if !providers.ValidID(req.ID) {
		return nil, errors.New("demo: start: bad login id")
	}
	now := p.env.Now()
	rec := record{User: p.user, Provider: p.env.Name, CreatedAt: now, ExpiresAt: now.Add(p.lifetime)}
	raw, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("demo: start: %w", err)
	}
	// The record outlives the login a little so that a late visit to the
	// wallet says "expired" rather than "unknown".
	if err := p.env.Store.Set(ctx, loginKey(req.ID), raw, p.lifetime+10*time.Minute); err != nil {
		return nil, fmt.Errorf("demo: start: %w", err)
	}
	link := req.BaseURL + "/demo/wallet/" + req.ID
	return &providers.Challenge{QRText: link, DeepLink: link, ExpiresAt: rec.ExpiresAt}, nil
}

// Poll implements providers.Provider.
func (p *provider) Poll(ctx context.Context, login providers.Login) (*providers.Result, error) {
	raw, err := p.env.Store.Get(ctx, decisionKey(login.ID))
	if errors.Is(err, store.ErrNotFound) {
		if !p.env.Now().Before(login.ExpiresAt) {
			return &providers.Result{State: providers.Expired, Message: "The login expired before it was approved."}, nil
		}
		return &providers.Result{State: providers.Pending}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("demo: poll: %w", err)
	}
	var dec decision
	if err := json.Unmarshal(raw, &dec); err != nil {
		return nil, fmt.Errorf("demo: poll: decode decision: %w", err)
	}
	if !dec.Approved {
		return &providers.Result{State: providers.Declined, Message: "The login was declined in the wallet."}, nil
	}
	claims, err := p.validator.Validate(ctx, dec.Result, login.ID)
	switch {
	case errors.Is(err, store.ErrUnavailable):
		// The store is down: the answer is still there; try again.
		return nil, fmt.Errorf("demo: poll: %w", err)
	case errors.Is(err, jwsverify.ErrReplay):
		// Another poller of this login consumed the answer first.
		return nil, providers.ErrConsumed
	}
	if err != nil {
		return nil, &providers.Reject{State: providers.Failed, Message: "The wallet's answer could not be verified.", Reason: err.Error()}
	}
	return identity(claims), nil
}

func identity(c jwt.MapClaims) *providers.Result {
	sub, _ := c["sub"].(string)
	name, _ := c["name"].(string)
	sameDevice, _ := c["same_device"].(bool)
	iat, _ := c.GetIssuedAt()
	// RFC 8176: the wallet holds a software key and saw the person press
	// Approve; a QR scanned on another device adds a second channel.
	amr := []string{"swk", "user"}
	if !sameDevice {
		amr = append(amr, "mca")
	}
	id := &providers.Identity{
		Subject: sub,
		Claims:  map[string]any{"name": name},
		ACR:     "urn:caddy-idv:demo",
		AMR:     amr,
	}
	if iat != nil {
		id.AuthTime = iat.Time
	}
	return &providers.Result{State: providers.Completed, Identity: id}
}

// sign makes the wallet's result token for a login.
func (p *provider) sign(id, user string, sameDevice bool) (string, error) {
	now := p.env.Now()
	sum := sha256.Sum256([]byte(user))
	claims := jwt.MapClaims{
		"iss":         issuer,
		"sub":         "demo-" + base64.RawURLEncoding.EncodeToString(sum[:12]),
		"name":        user,
		"jti":         id,
		"iat":         now.Unix(),
		"exp":         now.Add(resultLifetime).Unix(),
		"same_device": sameDevice,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["kid"] = kidOf(&p.key.PublicKey)
	return t.SignedString(p.key)
}

// loadKey returns the wallet's signing key, shared by every instance through
// the store and created once.
func loadKey(ctx context.Context, s store.Store) (*ecdsa.PrivateKey, error) {
	const k = "demo/key"
	raw, err := store.LoadOrCreate(ctx, s, k, func() ([]byte, error) {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		return x509.MarshalECPrivateKey(priv)
	})
	if err != nil {
		return nil, fmt.Errorf("demo: load key: %w", err)
	}
	priv, err := x509.ParseECPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("demo: decode key: %w", err)
	}
	return priv, nil
}

func kidOf(pub *ecdsa.PublicKey) string {
	raw, _ := pub.Bytes()
	sum := sha256.Sum256(raw)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

var (
	_ providers.Config      = (*Config)(nil)
	_ caddyfile.Unmarshaler = (*Config)(nil)
	_ providers.Provider    = (*provider)(nil)
	_ providers.Poller      = (*provider)(nil)
	_ providers.Router      = (*provider)(nil)
)
