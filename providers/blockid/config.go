// Package blockid is the `blockid` provider kind: QR login with the 1Kosmos
// BlockID app through UWL 2.0 sessions. The protocol, with the steps B1–B9
// that comments cite, is described in docs/providers/blockid.md.
//
// Start creates a session with the relying party's secp256k1 public key and
// shows the session URL as the QR code; the app answers with the person's
// data encrypted to that key; Poll decrypts it and checks it against the
// person's account (see check in blockid.go). The answer is not signed, so
// the checks of docs/providers/blockid.md, "What makes an answer
// trustworthy", are what makes it trustworthy.
package blockid

import (
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/providers/onekosmos"
)

func init() {
	caddy.RegisterModule(Config{})
}

// Kind is the provider kind.
const Kind = "blockid"

// appID names us in the requestid header.
const appID = "com.caddy-idv.blockid"

// AuthTypes are the auth_type values the BlockID app understands.
var authTypes = []string{"none", "face", "pin", "fingerprint"}

// Config configures `provider blockid [<name>] { … }`.
type Config struct {
	providers.Common
	onekosmos.TenantOptions
	// Scopes are the data the app is asked to share (firstname, lastname,
	// …; see docs/providers/blockid.md, step B4). They are sent
	// comma-separated. Default:
	// none (the app sends the DID and user id).
	Scopes []string `json:"scopes,omitempty"`
	// AuthType is the factor the app asks for: none, face, pin or
	// fingerprint. Default: none.
	AuthType string `json:"auth_type,omitempty"`
	// Curve is the ECDH curve. Only secp256k1 (the default, used by every
	// public tenant) is supported.
	Curve string `json:"curve,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Config) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  providers.Namespace + "." + Kind,
		New: func() caddy.Module { return new(Config) },
	}
}

const known = "dns, community, license_key, scopes, auth_type, curve"

// UnmarshalCaddyfile reads the provider block.
func (c *Config) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	err := c.UnmarshalBlock(d, Kind, known, func(name string) (bool, error) {
		if ok, err := c.TenantOptions.UnmarshalOption(d); ok {
			return true, err
		}
		var err error
		switch name {
		case "scopes":
			if c.Scopes = d.RemainingArgs(); len(c.Scopes) == 0 {
				return true, d.ArgErr()
			}
		case "auth_type":
			if c.AuthType, err = providers.Arg(d); err == nil {
				err = wrap(d, c.checkAuthType())
			}
		case "curve":
			if c.Curve, err = providers.Arg(d); err == nil {
				err = wrap(d, c.checkCurve())
			}
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return err
	}
	if m := c.Missing(); m != "" {
		return d.Errf("provider blockid: missing required option %q", m)
	}
	return nil
}

// wrap adds the file and line to a validation error.
func wrap(d *caddyfile.Dispenser, err error) error {
	if err == nil {
		return nil
	}
	return d.Err(err.Error())
}

func (c *Config) checkAuthType() error {
	if c.AuthType == "" {
		return nil
	}
	for _, a := range authTypes {
		if c.AuthType == a {
			return nil
		}
	}
	return fmt.Errorf("provider blockid: auth_type %q: want one of %s", c.AuthType, strings.Join(authTypes, ", "))
}

func (c *Config) checkCurve() error {
	if c.Curve != "" && c.Curve != "secp256k1" {
		return fmt.Errorf("provider blockid: curve %q is not supported (only secp256k1)", c.Curve)
	}
	return nil
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if err := c.ValidateCommon(); err != nil {
		return fmt.Errorf("provider blockid: %w", err)
	}
	if err := c.TenantOptions.Validate(); err != nil {
		return fmt.Errorf("provider blockid: %w", err)
	}
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, ", ") {
			return fmt.Errorf("provider blockid: scope %q: one name per argument", s)
		}
	}
	if err := c.checkAuthType(); err != nil {
		return err
	}
	return c.checkCurve()
}

// Open implements providers.Config.
func (c *Config) Open(env providers.Env) (providers.Provider, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	env = env.WithDefaults(c.CallTimeout())
	// The key pair lives in the shared store: the phone encrypts to the key
	// registered at session creation, and any instance may poll.
	tenant, err := onekosmos.OpenTenant(Kind, c.TenantOptions, &c.Common, env, appID)
	if err != nil {
		return nil, err
	}
	authType := c.AuthType
	if authType == "" {
		authType = "none"
	}
	return &provider{
		env:      env,
		name:     tenant.Name,
		prefix:   tenant.Prefix,
		logger:   env.Logger,
		client:   tenant.Client,
		key:      tenant.Key,
		scopes:   strings.Join(c.Scopes, ","),
		authType: authType,
	}, nil
}

var (
	_ providers.Config      = (*Config)(nil)
	_ caddyfile.Unmarshaler = (*Config)(nil)
	_ caddy.Validator       = (*Config)(nil)
)
