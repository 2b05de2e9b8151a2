package caddymodule

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// OIDCConfig makes the module an OpenID Connect provider (CONTRACT §8).
type OIDCConfig struct {
	// Issuer is the issuer URL. It must be https, except for localhost and
	// 127.0.0.1. Discovery is served at <issuer path>/.well-known/openid-configuration.
	Issuer string `json:"issuer"`
	// Clients are the registered relying parties.
	Clients []OIDCClient `json:"clients,omitempty"`
}

// OIDCClient is a registered relying party.
type OIDCClient struct {
	// ID is the client_id.
	ID string `json:"id"`
	// Name is the application's display name, which the login page shows
	// ("Log in to <name>") when the application sent the person there.
	// Accepts placeholders. Default: the client_id.
	Name string `json:"name,omitempty"`
	// Secret is the client secret; empty for a public client, which must
	// then use PKCE. Accepts placeholders such as {env.NAME}.
	Secret string `json:"secret,omitempty"`
	// RedirectURIs are the exact redirect URIs the client may use.
	RedirectURIs []string `json:"redirect_uris"`
	// PostLogoutRedirectURIs are where RP-initiated logout may return to.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	// Subject is "public" (default: the same sub for every client) or
	// "pairwise" (a different, stable sub per client).
	Subject string `json:"subject,omitempty"`
}

// TrustIssuer makes the gate also accept bearer JWTs (ID or access tokens)
// from another OpenID Connect issuer whose aud contains Audience.
type TrustIssuer struct {
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
}

// checkIssuerURL allows https, and http only for loopback hosts.
func checkIssuerURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q is not an absolute URL without query or fragment", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if host == "localhost" || host == "127.0.0.1" || host == "::1" {
			return nil
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("%q must use https (http is allowed only for localhost and 127.0.0.1)", raw)
	}
	return fmt.Errorf("%q must be an https URL", raw)
}

func (c *OIDCConfig) validate() error {
	if err := checkIssuerURL(c.Issuer); err != nil {
		return fmt.Errorf("oidc issuer: %w", err)
	}
	seen := map[string]bool{}
	for _, cl := range c.Clients {
		if cl.ID == "" {
			return fmt.Errorf("oidc client: empty client id")
		}
		if seen[cl.ID] {
			return fmt.Errorf("oidc client %q: defined twice", cl.ID)
		}
		seen[cl.ID] = true
		if len(cl.RedirectURIs) == 0 {
			return fmt.Errorf("oidc client %q: needs at least one redirect_uri", cl.ID)
		}
		for _, ru := range append(append([]string{}, cl.RedirectURIs...), cl.PostLogoutRedirectURIs...) {
			u, err := url.Parse(ru)
			if err != nil || u.Scheme == "" || u.Fragment != "" || strings.HasPrefix(ru, "javascript:") || strings.HasPrefix(ru, "data:") {
				return fmt.Errorf("oidc client %q: redirect URI %q must be absolute, without a fragment", cl.ID, ru)
			}
			if u.Scheme == "http" && u.Hostname() != "localhost" && u.Hostname() != "127.0.0.1" && u.Hostname() != "::1" {
				return fmt.Errorf("oidc client %q: redirect URI %q must use https (http only for loopback)", cl.ID, ru)
			}
		}
		if cl.Subject != "" && cl.Subject != "public" && cl.Subject != "pairwise" {
			return fmt.Errorf("oidc client %q: subject must be public or pairwise", cl.ID)
		}
	}
	return nil
}

// unmarshalOIDC reads
//
//	oidc {
//		issuer <url>
//		client <client_id> {
//			name         <display name>
//			secret       <secret>
//			redirect_uri <uri...>
//			post_logout_redirect_uri <uri...>
//			subject      public|pairwise
//		}
//	}
func (h *Handler) unmarshalOIDC(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	if h.OIDC != nil {
		return d.Err("oidc: only one oidc block is allowed")
	}
	h.OIDC = new(OIDCConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "issuer":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			if err := checkIssuerURL(v); err != nil {
				return d.Errf("oidc issuer: %v", err)
			}
			h.OIDC.Issuer = strings.TrimSuffix(v, "/")
		case "client":
			if err := h.unmarshalOIDCClient(d); err != nil {
				return err
			}
		default:
			return d.Errf("oidc: unknown option %q (known: issuer, client)", opt)
		}
	}
	if h.OIDC.Issuer == "" {
		return d.Err("oidc: issuer is required")
	}
	if err := h.OIDC.validate(); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

func (h *Handler) unmarshalOIDCClient(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.Errf("oidc client: want `client <client_id> { ... }`")
	}
	cl := OIDCClient{ID: d.Val()}
	if d.NextArg() {
		return d.ArgErr()
	}
	for _, existing := range h.OIDC.Clients {
		if existing.ID == cl.ID {
			return d.Errf("oidc client %q: defined twice", cl.ID)
		}
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "name":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			cl.Name = strings.Join(args, " ")
		case "secret":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			cl.Secret = v
		case "redirect_uri", "redirect_uris":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			cl.RedirectURIs = append(cl.RedirectURIs, args...)
		case "post_logout_redirect_uri", "post_logout_redirect_uris":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			cl.PostLogoutRedirectURIs = append(cl.PostLogoutRedirectURIs, args...)
		case "subject":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			if v != "public" && v != "pairwise" {
				return d.Errf("oidc client %q: subject %q must be public or pairwise", cl.ID, v)
			}
			cl.Subject = v
		default:
			return d.Errf("oidc client %q: unknown option %q (known: name, secret, redirect_uri, post_logout_redirect_uri, subject)", cl.ID, opt)
		}
	}
	if len(cl.RedirectURIs) == 0 {
		return d.Errf("oidc client %q: needs at least one redirect_uri", cl.ID)
	}
	h.OIDC.Clients = append(h.OIDC.Clients, cl)
	return nil
}

func (h *Handler) unmarshalTrustIssuer(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) != 2 {
		return d.Errf("trust_issuer: want `trust_issuer <issuer_url> <audience>`")
	}
	if err := checkIssuerURL(args[0]); err != nil {
		return d.Errf("trust_issuer: %v", err)
	}
	h.TrustIssuers = append(h.TrustIssuers, TrustIssuer{Issuer: strings.TrimSuffix(args[0], "/"), Audience: args[1]})
	return nil
}
