package token

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// DefaultIssuer is the iss of session tokens of a site that has neither an
// OpenID Connect issuer nor a public origin configured.
const DefaultIssuer = "urn:caddy-idv"

// Site is the configuration of one idv handler that decides the iss and aud
// of its session tokens. This is the only place that decides them, and it
// decides them from configuration alone: nothing a client sends (a Host or
// X-Forwarded-* header, the port it connected to) can change which tokens a
// handler issues or accepts.
type Site struct {
	// Origin is the public origin (`site`), "" when not set.
	Origin string
	// Prefix is where the handler serves its own pages.
	Prefix string
	// Cookie is the session cookie's configured name.
	Cookie string
	// Domain shares the session across subdomains (`session domain`).
	Domain string
	// Audience overrides the derived audience (`session audience`).
	Audience string
	// OIDCIssuer is the handler's OpenID Connect issuer, "" when none.
	OIDCIssuer string
	// Providers are the handler's providers, as "name" and "kind".
	Providers []SiteProvider
}

// SiteProvider is one provider a site offers.
type SiteProvider struct{ Name, Kind string }

// SessionAudience is the aud of the site's session tokens: `session
// audience` when set; else `session domain` (a session shared across
// subdomains); else the `site` origin; else a name derived from the
// handler's prefix, cookie name and the names and kinds of its providers.
// So two instances with the same idv block accept each other's sessions,
// whatever addresses they listen on, and two handlers with different
// providers never do.
func (s Site) SessionAudience() string {
	switch {
	case s.Audience != "":
		return s.Audience
	case s.Domain != "":
		return s.Domain
	case s.Origin != "":
		return s.Origin
	}
	ps := make([]string, 0, len(s.Providers))
	for _, p := range s.Providers {
		ps = append(ps, p.Name+"="+p.Kind)
	}
	slices.Sort(ps)
	h := sha256.New()
	fmt.Fprintf(h, "prefix=%s\x00cookie=%s\x00providers=%s", s.Prefix, s.Cookie, strings.Join(ps, ","))
	return "urn:caddy-idv:site:" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// SessionIssuer is the iss of the site's session tokens: the OpenID Connect
// issuer when one is configured, else the `site` origin, else
// DefaultIssuer.
func (s Site) SessionIssuer() string {
	switch {
	case s.OIDCIssuer != "":
		return s.OIDCIssuer
	case s.Origin != "":
		return s.Origin
	}
	return DefaultIssuer
}

// issuerOK reports whether a session token's iss is one this site accepts:
// its own; with `session domain`, also that of any site sharing the domain
// (an origin on the domain or one of its subdomains, or DefaultIssuer).
func (s Site) issuerOK(iss string) bool {
	if iss == s.SessionIssuer() {
		return true
	}
	if s.Domain == "" {
		return false
	}
	if iss == DefaultIssuer {
		return true
	}
	u, err := url.Parse(iss)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return false
	}
	host := u.Hostname()
	return host == s.Domain || strings.HasSuffix(host, "."+s.Domain)
}

// ParseOrigin checks a `site` value: an absolute http or https URL with a
// host and nothing after it (a trailing "/" is dropped). It returns the
// origin as scheme://host[:port] in lower case.
func ParseOrigin(v string) (string, error) {
	u, err := url.Parse(v)
	if err != nil {
		return "", fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", fmt.Errorf("%q: want an http or https origin such as https://app.example.com", v)
	}
	if u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("%q: want only scheme://host[:port], such as https://app.example.com", v)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}
