package providers

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// DefaultTimeout is the per-call timeout when `timeout` is not set.
const DefaultTimeout = 10 * time.Second

// Common holds the options every provider kind takes. Kinds embed it.
type Common struct {
	// Name identifies the provider in POST /sessions and in the token's `idv`
	// claim. Default: the kind.
	Name string `json:"name,omitempty"`
	// BaseURL replaces the scheme and host of every address of the provider,
	// so that one fake server can stand in for the whole service.
	BaseURL string `json:"base_url,omitempty"`
	// Timeout bounds every call to the provider's service. Default: 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// Autostart, when set, overrides whether the login page may start a
	// session with this provider as soon as it is the only choice.
	// Default: the kind's (on for QR logins that cost nothing to start:
	// demo, blockid, uqudo; off for document verification).
	Autostart *bool `json:"autostart,omitempty"`
	// Lifetime is how long a login waits for the person before it expires.
	// Every kind that lets the module decide has its own default and
	// maximum (LifetimeOr); a kind whose service decides (blockid) does
	// not take it.
	Lifetime caddy.Duration `json:"lifetime,omitempty"`
	// GiveUp ends a login whose provider has not answered successfully for
	// this long (errors, timeouts), with a message that the identity
	// provider is not answering. Default: 30s.
	GiveUp caddy.Duration `json:"give_up,omitempty"`
	// Claims are the identity claims the provider may put into tokens.
	// Default: the kind's default claims, which never include national
	// identifiers or document numbers.
	Claims []string `json:"claims,omitempty"`
	// Label is the text of the provider's button on the login page, and
	// Description the line under it; they tell two providers of one kind
	// apart. A message id of the templates' catalogues is translated; other
	// text is shown as it is. Both accept placeholders. Default: the kind's
	// label, and what the kind asks the person to do.
	Label       string `json:"label,omitempty"`
	Description string `json:"description,omitempty"`
}

// Settings returns c; it makes every kind that embeds Common a Config.
func (c *Common) Settings() *Common { return c }

// LifetimeOr is the configured login lifetime, or def.
func (c *Common) LifetimeOr(def time.Duration) time.Duration {
	if c.Lifetime <= 0 {
		return def
	}
	return time.Duration(c.Lifetime)
}

// CallTimeout is the configured per-call timeout, or DefaultTimeout.
func (c *Common) CallTimeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultTimeout
	}
	return time.Duration(c.Timeout)
}

// ValidateCommon checks the shared options.
func (c *Common) ValidateCommon() error {
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("base_url %q: must be an absolute http or https URL", c.BaseURL)
		}
	}
	if c.Timeout < 0 {
		return fmt.Errorf("timeout must not be negative")
	}
	return nil
}

// UnmarshalHead reads `provider <kind> [<name>]`; the dispenser is positioned
// on the kind token when UnmarshalCaddyfile starts.
func (c *Common) UnmarshalHead(d *caddyfile.Dispenser) error {
	d.Next() // the kind
	if d.NextArg() {
		c.Name = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// UnmarshalOption reads one of the shared options at the dispenser's current
// token and reports whether it was one.
func (c *Common) UnmarshalOption(d *caddyfile.Dispenser) (bool, error) {
	switch d.Val() {
	case "base_url":
		if !d.NextArg() {
			return true, d.ArgErr()
		}
		c.BaseURL = d.Val()
		if err := c.ValidateCommon(); err != nil {
			return true, d.Err(err.Error())
		}
	case "timeout":
		if !d.NextArg() {
			return true, d.ArgErr()
		}
		dur, err := caddy.ParseDuration(d.Val())
		if err != nil || dur <= 0 {
			return true, d.Errf("timeout: bad duration %q", d.Val())
		}
		c.Timeout = caddy.Duration(dur)
	case "autostart":
		if !d.NextArg() {
			return true, d.ArgErr()
		}
		switch d.Val() {
		case "on", "true":
			t := true
			c.Autostart = &t
		case "off", "false":
			f := false
			c.Autostart = &f
		default:
			return true, d.Errf("autostart: want on or off, got %q", d.Val())
		}
	case "give_up":
		if !d.NextArg() {
			return true, d.ArgErr()
		}
		dur, err := caddy.ParseDuration(d.Val())
		if err != nil || dur <= 0 {
			return true, d.Errf("give_up: bad duration %q", d.Val())
		}
		c.GiveUp = caddy.Duration(dur)
	case "claims":
		c.Claims = d.RemainingArgs()
		if len(c.Claims) == 0 {
			return true, d.ArgErr()
		}
		return true, nil
	case "label", "description":
		// Several words without quotes are one text, as in `user`.
		opt := d.Val()
		args := d.RemainingArgs()
		if len(args) == 0 {
			return true, d.ArgErr()
		}
		if opt == "label" {
			c.Label = strings.Join(args, " ")
		} else {
			c.Description = strings.Join(args, " ")
		}
		return true, nil
	default:
		return false, nil
	}
	if d.NextArg() {
		return true, d.ArgErr()
	}
	return true, nil
}

// RewriteBase replaces the scheme and host of raw with those of base, when
// base is set (docs/reference.md, "Caddyfile", base_url).
func RewriteBase(raw, base string) (string, error) {
	if base == "" {
		return raw, nil
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("base_url: %w", err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", raw, err)
	}
	u.Scheme, u.Host = b.Scheme, b.Host
	return u.String(), nil
}

// UnmarshalBlock reads `provider <kind> [<name>] { ... }`: the head, the
// options every kind shares, and each other option through opt, which
// reports whether it knew the option (the dispenser is on its name). known
// lists the kind's own options for the error about an unknown one.
func (c *Common) UnmarshalBlock(d *caddyfile.Dispenser, kind, known string, opt func(name string) (bool, error)) error {
	if err := c.UnmarshalHead(d); err != nil {
		return err
	}
	for d.NextBlock(0) {
		if ok, err := c.UnmarshalOption(d); ok {
			if err != nil {
				return err
			}
			continue
		}
		name := d.Val()
		ok, err := opt(name)
		if err != nil {
			return err
		}
		if !ok {
			return d.Errf("provider %s: unknown option %q (known: %s, base_url, timeout, give_up, autostart, claims, label, description)", kind, name, known)
		}
	}
	return nil
}

// Arg reads the one argument of the current option.
func Arg(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return v, nil
}

// DurationArg reads the one argument of the current option as a duration
// greater than zero and at most max (no upper bound when max is 0).
func DurationArg(d *caddyfile.Dispenser, kind string, max time.Duration) (caddy.Duration, error) {
	name := d.Val()
	v, err := Arg(d)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur <= 0 || (max > 0 && dur > max) {
		if max > 0 {
			return 0, d.Errf("provider %s: %s: want a duration between 1s and %s, got %q", kind, name, max, v)
		}
		return 0, d.Errf("provider %s: %s: bad duration %q", kind, name, v)
	}
	return caddy.Duration(dur), nil
}
