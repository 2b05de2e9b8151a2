package oidc

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-idv/caddy-idv/token"
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
	// RefreshReuseGrace is how long after its first use a refresh token
	// may be used again and get a valid answer, for relying parties that
	// refresh from several requests at once (RFC 9700 §4.14.2 allows such
	// a grace). 0 means DefaultRefreshReuseGrace, a negative value none; at
	// most MaxRefreshReuseGrace.
	RefreshReuseGrace time.Duration
}

// Refresh reuse grace bounds.
const (
	DefaultRefreshReuseGrace = 10 * time.Second
	// MaxRefreshReuseGrace bounds the grace: the longer it is, the longer
	// a stolen refresh token used right after its owner used it goes
	// unnoticed.
	MaxRefreshReuseGrace = 5 * time.Minute
)

// MinSecretLength is the shortest client secret accepted: a secret is
// guessed online at the token endpoint, so it must be long enough for that
// to be hopeless even without the rate limit (16 random characters of a
// base64 alphabet are 96 bits).
const MinSecretLength = 16

// Client is a registered relying party.
type Client struct {
	// ID is the client_id.
	ID string
	// Name is the client's display name (client_name of OpenID Connect
	// Dynamic Client Registration §2), shown to the person; "" for none.
	Name string
	// Secret is the client secret, at least MinSecretLength characters.
	// Empty makes a public client (a native app or a single-page app),
	// which must then use PKCE (RFC 7636).
	Secret string
	// RedirectURIs are the redirect URIs the client may use, compared as
	// exact strings (OpenID Connect Core §3.1.2.1), except that the port
	// of an http://127.0.0.1 or http://[::1] URI may be any (RFC 8252
	// §7.3). Each is absolute and without a fragment: https, http only for
	// loopback hosts, or a private-use scheme such as
	// com.example.app:/callback (RFC 8252 §7.1).
	RedirectURIs []string
	// PostLogoutRedirectURIs are where RP-initiated logout may send the
	// browser back to; the same rules as RedirectURIs.
	PostLogoutRedirectURIs []string
	// Subject is "public" (default: every client sees the same sub) or
	// "pairwise" (each client sees a different, stable sub; OpenID Connect
	// Core §8.1, and a sid of its own).
	Subject string
	// IDTokenAlg is the client's id_token_signed_response_alg (OpenID
	// Connect Dynamic Client Registration §2): RS256 (the default there) or
	// ES256. Its logout tokens are signed alike.
	IDTokenAlg string
	// BackchannelLogoutURI is where the client receives logout tokens
	// (OpenID Connect Back-Channel Logout 1.0 §2.2); "" for none. https,
	// http only for loopback hosts; no fragment.
	BackchannelLogoutURI string
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
	if c.RefreshReuseGrace > MaxRefreshReuseGrace {
		return fmt.Errorf("oidc: refresh_reuse_grace %s is longer than %s", c.RefreshReuseGrace, MaxRefreshReuseGrace)
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
		if cl.Secret != "" && len(cl.Secret) < MinSecretLength {
			return fmt.Errorf("oidc: client %q: secret is %d characters; use at least %d", cl.ID, len(cl.Secret), MinSecretLength)
		}
		switch cl.IDTokenAlg {
		case "", token.RS256, token.ES256:
		default:
			return fmt.Errorf("oidc: client %q: id_token_signed_response_alg %q must be RS256 or ES256", cl.ID, cl.IDTokenAlg)
		}
		if cl.BackchannelLogoutURI != "" {
			if err := checkBackchannelURI(cl.BackchannelLogoutURI); err != nil {
				return fmt.Errorf("oidc: client %q: backchannel_logout_uri: %w", cl.ID, err)
			}
		}
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

// checkBackchannelURI allows an absolute https URL, or http for a loopback
// host, without fragment (Back-Channel Logout 1.0 §2.2).
func checkBackchannelURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" || !printable(raw) {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") || u.User != nil {
		return fmt.Errorf("%q must not have a fragment or user information", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if loopback(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("%q must use https (http only for loopback hosts)", raw)
}

// loopbackParts splits an RFC 8252 §7.3 loopback IP redirect URI (http
// with the IP literal 127.0.0.1 or [::1]) into the part before its port and
// the part after it (path and query); ok is false for any other URI, and
// for one whose port is not 1 to 65535. "localhost" is not such a URI: RFC
// 8252 §8.3 advises against it, so it is matched exactly.
func loopbackParts(raw string) (host, rest string, ok bool) {
	for _, h := range []string{"http://127.0.0.1", "http://[::1]"} {
		tail, found := strings.CutPrefix(raw, h)
		if !found {
			continue
		}
		if port, hasPort := strings.CutPrefix(tail, ":"); hasPort {
			i := 0
			for i < len(port) && port[i] >= '0' && port[i] <= '9' {
				i++
			}
			if i == 0 || i > 5 {
				return "", "", false
			}
			if n, err := strconv.Atoi(port[:i]); err != nil || n < 1 || n > 65535 {
				return "", "", false
			}
			tail = port[i:]
		}
		// Anything but a path or query here ("@evil.example", "0" of
		// 127.0.0.10) is another host.
		if tail != "" && tail[0] != '/' && tail[0] != '?' {
			return "", "", false
		}
		return h, tail, true
	}
	return "", "", false
}

// redirectAllowed reports whether uri is one of c's redirect URIs: the same
// string, or for a loopback IP redirect the same string but for the port
// (RFC 8252 §7.3: native apps listen on whatever port is free).
func (c *client) redirectAllowed(uri string) bool {
	if c.redirects[uri] {
		return true
	}
	host, rest, ok := loopbackParts(uri)
	if !ok {
		return false
	}
	for _, r := range c.RedirectURIs {
		if h, t, ok := loopbackParts(r); ok && h == host && t == rest {
			return true
		}
	}
	return false
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
