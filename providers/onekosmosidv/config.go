// Package onekosmosidv is the `onekosmos_idv` provider kind: 1Kosmos
// document ID verification (dvcID workflows). The protocol, with the steps
// V0–V2 that comments cite, is described in docs/providers/onekosmos_idv.md.
//
// Start creates a document-share session for the configured workflow and
// document type and shows its capture URL as a QR code and as a link; the
// person scans a document (and a selfie) in the browser of their phone;
// Poll asks for the result. The result carries personal data only on the
// first poll after completion, so Poll turns that one answer into the login
// and refuses every later one.
package onekosmosidv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/providers/onekosmos"
)

func init() {
	caddy.RegisterModule(Config{})
}

// Kind is the provider kind.
const Kind = "onekosmos_idv"

const appID = "com.caddy-idv.onekosmos_idv"

// DefaultLifetime is how long a login waits for the person to finish. The
// service's session lifetime is not documented; a document scan with a
// selfie takes a few minutes.
const DefaultLifetime = 15 * time.Minute

// documentTypes maps accepted document_type values to wire values.
var documentTypes = map[string]string{
	"ppt_object": "ppt_object", "passport": "ppt_object",
	"dl_object": "dl_object", "drivers_license": "dl_object",
	"idcard_object": "idcard_object", "id_card": "idcard_object",
}

// Config configures `provider onekosmos_idv [<name>] { … }`.
type Config struct {
	providers.Common
	onekosmos.TenantOptions
	// DvcID is the verification workflow (dvcID) from the 1Kosmos admin
	// console. Required.
	DvcID string `json:"dvc_id,omitempty"`
	// DocumentType is the document to scan: ppt_object (passport),
	// dl_object (driver's licence) or idcard_object (other ID card); the
	// aliases passport, drivers_license and id_card are accepted. Required.
	DocumentType string `json:"document_type,omitempty"`
	// RequireSelfie refuses results whose face_compare and selfie_liveness
	// checks did not both pass. Default: false (the workflow decides).
	RequireSelfie bool `json:"require_selfie,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Config) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  providers.Namespace + "." + Kind,
		New: func() caddy.Module { return new(Config) },
	}
}

const known = "dns, community, license_key, dvc_id, document_type, lifetime, require_selfie"

// UnmarshalCaddyfile reads the provider block.
func (c *Config) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	err := c.UnmarshalBlock(d, Kind, known, func(name string) (bool, error) {
		if ok, err := c.TenantOptions.UnmarshalOption(d); ok {
			return true, err
		}
		var err error
		switch name {
		case "dvc_id":
			c.DvcID, err = providers.Arg(d)
		case "document_type":
			if c.DocumentType, err = providers.Arg(d); err == nil {
				if _, ok := documentTypes[c.DocumentType]; !ok {
					err = d.Errf("provider onekosmos_idv: document_type %q: want ppt_object, dl_object or idcard_object", c.DocumentType)
				}
			}
		case "lifetime":
			c.Lifetime, err = providers.DurationArg(d, Kind, 0)
		case "require_selfie":
			c.RequireSelfie = true
			if d.NextArg() {
				err = d.ArgErr()
			}
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return err
	}
	m := c.Missing()
	switch {
	case m != "":
	case c.DvcID == "":
		m = "dvc_id"
	case c.DocumentType == "":
		m = "document_type"
	}
	if m != "" {
		return d.Errf("provider onekosmos_idv: missing required option %q", m)
	}
	return nil
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if err := c.ValidateCommon(); err != nil {
		return fmt.Errorf("provider onekosmos_idv: %w", err)
	}
	if err := c.TenantOptions.Validate(); err != nil {
		return fmt.Errorf("provider onekosmos_idv: %w", err)
	}
	if c.DvcID == "" {
		return errors.New("provider onekosmos_idv: option dvc_id is required")
	}
	if _, ok := documentTypes[c.DocumentType]; !ok {
		return fmt.Errorf("provider onekosmos_idv: document_type %q: want ppt_object, dl_object or idcard_object", c.DocumentType)
	}
	if c.Lifetime < 0 {
		return errors.New("provider onekosmos_idv: lifetime must not be negative")
	}
	return nil
}

// Open implements providers.Config.
func (c *Config) Open(env providers.Env) (providers.Provider, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	env = env.WithDefaults(c.CallTimeout())
	// Any key works for this service (each answer is encrypted to the key
	// of the request), but a shared one keeps instances alike.
	tenant, err := onekosmos.OpenTenant(Kind, c.TenantOptions, &c.Common, env, appID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.CallTimeout())
	defer cancel()
	// The subject is a keyed hash of the document, so that it is stable
	// for this deployment but tells nobody else the document number.
	subKey, err := providers.LoadSecret(ctx, env.Store, providers.SubjectSecretKey)
	if err != nil {
		return nil, fmt.Errorf("onekosmos_idv: %w", err)
	}
	lifetime := c.LifetimeOr(DefaultLifetime)
	listed := map[string]bool{}
	for _, cl := range c.Claims {
		listed[cl] = true
	}
	return &provider{
		env: env, name: tenant.Name, prefix: tenant.Prefix, logger: env.Logger,
		client:   tenant.Client,
		dns:      c.DNS,
		comm:     c.Community,
		dvcID:    c.DvcID,
		docType:  documentTypes[c.DocumentType],
		lifetime: lifetime,
		selfie:   c.RequireSelfie,
		listed:   listed,
		subKey:   subKey,
	}, nil
}

var (
	_ providers.Config      = (*Config)(nil)
	_ caddyfile.Unmarshaler = (*Config)(nil)
	_ caddy.Validator       = (*Config)(nil)
)
