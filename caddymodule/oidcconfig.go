package caddymodule

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-idv/caddy-idv/oidc"
)

// OIDCConfig makes the module an OpenID Connect provider (docs/reference.md,
// "OpenID Connect provider").
type OIDCConfig struct {
	// Issuer is the issuer URL. It must be https, except for localhost and
	// 127.0.0.1. Discovery is served at <issuer path>/.well-known/openid-configuration.
	Issuer string `json:"issuer"`
	// Clients are the registered relying parties.
	Clients []OIDCClient `json:"clients,omitempty"`
	// RefreshReuseGrace is how long after its first use a refresh token
	// may be used again (parallel refreshes) without ending its family.
	// Default (unset): 10s; 0 for none; at most 5m.
	RefreshReuseGrace *caddy.Duration `json:"refresh_reuse_grace,omitempty"`
}

// OIDCClient is a registered relying party.
type OIDCClient struct {
	// ID is the client_id.
	ID string `json:"id"`
	// Name is the application's display name, which the login page shows
	// ("Log in to <name>") when the application sent the person there.
	// Accepts placeholders. Default: the client_id.
	Name string `json:"name,omitempty"`
	// Secret is the client secret, at least 16 characters; empty for a
	// public client, which must then use PKCE. Accepts placeholders such
	// as {env.NAME}; one that resolves to nothing is an error, never a
	// public client.
	Secret string `json:"secret,omitempty"`
	// RedirectURIs are the exact redirect URIs the client may use.
	RedirectURIs []string `json:"redirect_uris"`
	// PostLogoutRedirectURIs are where RP-initiated logout may return to.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	// Subject is "public" (default: the same sub for every client) or
	// "pairwise" (a different, stable sub and sid per client).
	Subject string `json:"subject,omitempty"`
	// IDTokenSignedResponseAlg is "RS256" (default) or "ES256".
	IDTokenSignedResponseAlg string `json:"id_token_signed_response_alg,omitempty"`
	// BackchannelLogoutURI receives logout tokens when a session in which
	// the client got tokens ends (OpenID Connect Back-Channel Logout 1.0).
	BackchannelLogoutURI string `json:"backchannel_logout_uri,omitempty"`
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
	if g := c.RefreshReuseGrace; g != nil && (*g < 0 || time.Duration(*g) > oidc.MaxRefreshReuseGrace) {
		return fmt.Errorf("oidc refresh_reuse_grace: %s must be between 0 and %s", time.Duration(*g), oidc.MaxRefreshReuseGrace)
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
		if err := checkLiteralSecret(cl.ID, cl.Secret); err != nil {
			return err
		}
		if cl.BackchannelLogoutURI != "" {
			if err := checkBackchannelURI(cl.BackchannelLogoutURI); err != nil {
				return fmt.Errorf("oidc client %q: backchannel_logout_uri: %w", cl.ID, err)
			}
		}
		if a := cl.IDTokenSignedResponseAlg; a != "" && a != "RS256" && a != "ES256" {
			return fmt.Errorf("oidc client %q: id_token_signed_response_alg %q must be RS256 or ES256", cl.ID, a)
		}
	}
	return nil
}

// checkBackchannelURI allows an absolute https URL (http for loopback
// hosts) without fragment (Back-Channel Logout 1.0 §2.2); a query is
// allowed.
func checkBackchannelURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Fragment != "" || strings.Contains(raw, "#") || u.User != nil {
		return fmt.Errorf("%q is not an absolute URL without fragment", raw)
	}
	if u.Scheme == "https" {
		return nil
	}
	if ip := net.ParseIP(u.Hostname()); u.Scheme == "http" && (u.Hostname() == "localhost" || ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("%q must use https (http only for loopback hosts)", raw)
}

// checkLiteralSecret refuses a secret written out in the configuration that
// is shorter than oidc.MinSecretLength. A secret with placeholders is
// checked once they are replaced (openOIDC).
func checkLiteralSecret(clientID, secret string) error {
	if secret == "" || strings.Contains(secret, "{") {
		return nil
	}
	if len(secret) < oidc.MinSecretLength {
		return fmt.Errorf("oidc client %q: secret is %d characters; use at least %d (for example `openssl rand -base64 32`)",
			clientID, len(secret), oidc.MinSecretLength)
	}
	return nil
}

// openOIDC starts the OpenID Connect provider on the module's keys, store
// and sessions. Client secrets may be placeholders ({env.NAME}); one that
// resolves to nothing stops the start, since the client would otherwise
// silently become a public client.
func (h *Handler) openOIDC() error {
	repl := caddy.NewReplacer()
	cfg := oidc.Config{Issuer: h.OIDC.Issuer}
	switch g := h.OIDC.RefreshReuseGrace; {
	case g == nil:
		cfg.RefreshReuseGrace = 0 // the provider's default
	case *g == 0:
		cfg.RefreshReuseGrace = -1 // none
	default:
		cfg.RefreshReuseGrace = time.Duration(*g)
	}
	for _, c := range h.OIDC.Clients {
		secret := repl.ReplaceKnown(c.Secret, "")
		if c.Secret != "" && secret == "" {
			return fmt.Errorf("idv: oidc client %q: secret %q is empty once its placeholders are replaced; set it, or remove the secret option to make a public client",
				c.ID, c.Secret)
		}
		cfg.Clients = append(cfg.Clients, oidc.Client{
			ID:                     c.ID,
			Name:                   c.Name,
			Secret:                 secret,
			RedirectURIs:           c.RedirectURIs,
			PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
			Subject:                c.Subject,
			IDTokenAlg:             c.IDTokenSignedResponseAlg,
			BackchannelLogoutURI:   c.BackchannelLogoutURI,
		})
	}
	p, err := oidc.New(cfg, oidc.Options{
		Tokens:          h.tokens,
		Store:           h.store,
		Revocations:     h.revoked,
		Host:            oidcHost{h},
		Prefix:          h.Prefix,
		Now:             h.now,
		Logger:          h.logger.Named("oidc"),
		Events:          h.oidcEvent,
		SessionLifetime: time.Duration(h.sc.Lifetime),
		ClientAddress:   func(r *http.Request) string { return addressKey(clientAddress(r)) }, // IPv6 per /64
	})
	if err != nil {
		return fmt.Errorf("idv: %w", err)
	}
	h.oidc = p
	return nil
}

// unmarshalOIDC reads
//
//	oidc {
//		issuer <url>
//		refresh_reuse_grace <duration>|off
//		client <client_id> {
//			name         <display name>
//			secret       <secret>
//			redirect_uri <uri...>
//			post_logout_redirect_uri <uri...>
//			backchannel_logout_uri   <uri>
//			subject      public|pairwise
//			id_token_signed_response_alg RS256|ES256
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
		case "refresh_reuse_grace":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			var dur time.Duration
			if v != "off" {
				if dur, err = caddy.ParseDuration(v); err != nil {
					return d.Errf("oidc refresh_reuse_grace: bad duration %q", v)
				}
			}
			if dur < 0 || dur > oidc.MaxRefreshReuseGrace {
				return d.Errf("oidc refresh_reuse_grace: %s must be between 0 (or off) and %s", v, oidc.MaxRefreshReuseGrace)
			}
			g := caddy.Duration(dur)
			h.OIDC.RefreshReuseGrace = &g
		default:
			return d.Errf("oidc: unknown option %q (known: issuer, refresh_reuse_grace, client)", opt)
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
			if err := checkLiteralSecret(cl.ID, v); err != nil {
				return d.Err(err.Error())
			}
			cl.Secret = v
		case "backchannel_logout_uri":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			if err := checkBackchannelURI(v); err != nil {
				return d.Errf("oidc client %q: backchannel_logout_uri: %v", cl.ID, err)
			}
			cl.BackchannelLogoutURI = v
		case "id_token_signed_response_alg":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			if !slices.Contains([]string{"RS256", "ES256"}, v) {
				return d.Errf("oidc client %q: id_token_signed_response_alg %q must be RS256 or ES256", cl.ID, v)
			}
			cl.IDTokenSignedResponseAlg = v
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
			return d.Errf("oidc client %q: unknown option %q (known: name, secret, redirect_uri, post_logout_redirect_uri, backchannel_logout_uri, subject, id_token_signed_response_alg)", cl.ID, opt)
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
