package oidc

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Config is the OpenID Connect provider's configuration (the `oidc` block of
// the Caddyfile).
type Config struct {
	// Issuer is the issuer URL, the `iss` of every token. It must be https,
	// except for the hosts localhost and 127.0.0.1, and has no query or
	// fragment. Discovery is served at <issuer path>/.well-known/openid-configuration.
	Issuer string
	// Clients are the registered relying parties.
	Clients []Client
}

// Client is a registered relying party.
type Client struct {
	// ID is the client_id.
	ID string
	// Secret is the client secret. Empty makes a public client (a native
	// app or a single-page app), which must then use PKCE (RFC 7636).
	Secret string
	// RedirectURIs are the redirect URIs the client may use, compared as
	// exact strings (OpenID Connect Core §3.1.2.1). Each is absolute and
	// without a fragment: https, http only for loopback hosts, or a
	// private-use scheme such as com.example.app:/callback (RFC 8252 §7.1).
	RedirectURIs []string
	// PostLogoutRedirectURIs are where RP-initiated logout may send the
	// browser back to; the same rules as RedirectURIs.
	PostLogoutRedirectURIs []string
	// Subject is "public" (default: every client sees the same sub) or
	// "pairwise" (each client sees a different, stable sub; OpenID Connect
	// Core §8.1).
	Subject string
}

// Subject types (OpenID Connect Core §8).
const (
	SubjectPublic   = "public"
	SubjectPairwise = "pairwise"
)

// Validate refuses a configuration that would be unsafe or unusable, with an
// error that names the option at fault.
func (c *Config) Validate() error {
	if err := checkIssuer(c.Issuer); err != nil {
		return fmt.Errorf("oidc: issuer: %w", err)
	}
	seen := make(map[string]bool, len(c.Clients))
	for i, cl := range c.Clients {
		if cl.ID == "" {
			return fmt.Errorf("oidc: client #%d: empty client id", i+1)
		}
		if !printable(cl.ID) {
			return fmt.Errorf("oidc: client %q: client id must be printable ASCII without spaces", cl.ID)
		}
		if seen[cl.ID] {
			return fmt.Errorf("oidc: client %q: defined twice", cl.ID)
		}
		seen[cl.ID] = true
		if len(cl.RedirectURIs) == 0 {
			return fmt.Errorf("oidc: client %q: needs at least one redirect_uri", cl.ID)
		}
		for _, u := range cl.RedirectURIs {
			if err := checkRedirectURI(u); err != nil {
				return fmt.Errorf("oidc: client %q: redirect_uri: %w", cl.ID, err)
			}
		}
		for _, u := range cl.PostLogoutRedirectURIs {
			if err := checkRedirectURI(u); err != nil {
				return fmt.Errorf("oidc: client %q: post_logout_redirect_uri: %w", cl.ID, err)
			}
		}
		switch cl.Subject {
		case "", SubjectPublic, SubjectPairwise:
		default:
			return fmt.Errorf("oidc: client %q: subject %q must be public or pairwise", cl.ID, cl.Subject)
		}
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// checkIssuer allows https, and http only for localhost and 127.0.0.1
// (OpenID Connect Discovery §3: the issuer is an https URL without query or
// fragment).
func checkIssuer(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("%q must not have a query or fragment", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q must not carry user information", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if h := u.Hostname(); h == "localhost" || h == "127.0.0.1" {
			return nil
		}
		return fmt.Errorf("%q must use https (http is allowed only for localhost and 127.0.0.1)", raw)
	}
	return fmt.Errorf("%q must be an https URL", raw)
}

// checkRedirectURI allows absolute URIs without fragment: https, http for
// loopback hosts (RFC 8252 §7.3), or a private-use scheme, which must
// contain a dot (reverse domain name, RFC 8252 §7.1).
func checkRedirectURI(raw string) error {
	if strings.Contains(raw, "#") {
		return fmt.Errorf("%q must not have a fragment", raw)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("%q is not an absolute URI", raw)
	}
	if !printable(raw) {
		return fmt.Errorf("%q must not contain spaces or control characters", raw)
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("%q has no host", raw)
		}
	case "http":
		if !loopback(u.Hostname()) {
			return fmt.Errorf("%q must use https (http only for loopback hosts)", raw)
		}
	case "javascript", "data", "file", "vbscript", "blob", "about":
		return fmt.Errorf("%q uses a forbidden scheme", raw)
	default:
		if !strings.Contains(u.Scheme, ".") {
			return fmt.Errorf("%q: a private-use scheme must be a reverse domain name such as com.example.app", raw)
		}
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
