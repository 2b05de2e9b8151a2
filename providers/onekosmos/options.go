package onekosmos

import (
	"context"
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-idv/caddy-idv/providers"
)

// TenantOptions are the options both 1Kosmos kinds take to reach a tenant.
// Kinds embed it, so its fields appear flat in their JSON.
type TenantOptions struct {
	// DNS is the tenant's host name, e.g. "acme.1kosmos.net". Required.
	DNS string `json:"dns,omitempty"`
	// Community is the community name, e.g. "default". Required.
	Community string `json:"community,omitempty"`
	// LicenseKey is the licence key from the 1Kosmos admin console. It is a
	// secret: use a placeholder such as {env.BLOCKID_LICENSE} or
	// {file./run/secrets/blockid}. It is sent only encrypted and never logged.
	// Required.
	LicenseKey string `json:"license_key,omitempty"`
}

// UnmarshalOption reads dns, community or license_key at the dispenser's
// current token and reports whether it was one of them.
func (o *TenantOptions) UnmarshalOption(d *caddyfile.Dispenser) (bool, error) {
	var dst *string
	switch d.Val() {
	case "dns":
		dst = &o.DNS
	case "community":
		dst = &o.Community
	case "license_key":
		dst = &o.LicenseKey
	default:
		return false, nil
	}
	if !d.NextArg() {
		return true, d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return true, d.ArgErr()
	}
	return true, nil
}

// Missing names the first required tenant option that is not set.
func (o *TenantOptions) Missing() string {
	switch {
	case o.DNS == "":
		return "dns"
	case o.Community == "":
		return "community"
	case o.LicenseKey == "":
		return "license_key"
	}
	return ""
}

// Validate checks the tenant options (after JSON loading, where the
// Caddyfile's checks did not run).
func (o *TenantOptions) Validate() error {
	if m := o.Missing(); m != "" {
		return fmt.Errorf("option %s is required", m)
	}
	if strings.ContainsAny(o.DNS, "/:@?# ") {
		return fmt.Errorf("dns %q: want a bare host name such as acme.1kosmos.net", o.DNS)
	}
	return nil
}

// ResolveSecret is [providers.ResolveSecret]: its errors name the option
// and the placeholder, never the resolved value.
func ResolveSecret(option, s string) (string, error) {
	return providers.ResolveSecret(option, s)
}

// NewClient returns a client for the tenant of o with env's HTTP client and
// clock. license is the resolved licence key.
func NewClient(o TenantOptions, license string, c *providers.Common, env providers.Env, key *KeyPair, appID string) *Client {
	return &Client{
		DNS: o.DNS, Community: o.Community, LicenseKey: license, BaseURL: c.BaseURL,
		AppID: appID, Key: key, HTTP: env.HTTP, Now: env.Now,
	}
}

// Opened is what both 1Kosmos kinds open from their configuration: the
// tenant's client and the relying party's key pair, which lives in the shared
// store under Prefix so that every instance holds the same one (the phone
// and the services encrypt to the key given at session creation).
type Opened struct {
	Name   string // the provider's name
	Prefix string // "<kind>/<name>/": where the kind keeps its store entries
	Key    *KeyPair
	Client *Client
}

// OpenTenant resolves the licence key (placeholders allowed), loads or
// creates the key pair in env.Store, and builds the client. env must have
// its defaults (providers.Env.WithDefaults).
func OpenTenant(kind string, t TenantOptions, common *providers.Common, env providers.Env, appID string) (*Opened, error) {
	if env.Store == nil {
		return nil, fmt.Errorf("%s: incomplete environment", kind)
	}
	license, err := ResolveSecret("license_key", t.LicenseKey)
	if err != nil {
		return nil, err // the module names the provider
	}
	name := env.Name
	if name == "" {
		name = kind
	}
	ctx, cancel := context.WithTimeout(context.Background(), common.CallTimeout())
	defer cancel()
	prefix := kind + "/" + StoreName(name) + "/"
	key, err := LoadKeyPair(ctx, env.Store, prefix+"keypair")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	return &Opened{Name: name, Prefix: prefix, Key: key, Client: NewClient(t, license, common, env, key, appID)}, nil
}
