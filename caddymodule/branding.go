package caddymodule

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/templates"
)

// validateBranding checks the options that shape the pages: the accent
// colour and the logo, after their global placeholders ({env.*}) are
// replaced. The languages are checked when the templates load.
func (h *Handler) validateBranding() error {
	repl := caddy.NewReplacer()
	if h.Accent != "" {
		if err := templates.CheckColour(repl.ReplaceKnown(h.Accent, "")); err != nil {
			return fmt.Errorf("idv: %w", err)
		}
	}
	h.logo = ""
	if h.Logo != "" {
		logo := repl.ReplaceKnown(h.Logo, "")
		if err := checkLogo(logo, h.public); err != nil {
			return fmt.Errorf("idv: %w", err)
		}
		h.logo = logo
	}
	return nil
}

// checkLogo allows a path on this site, or an absolute URL on the site's
// configured origin: the pages' Content-Security-Policy loads images from
// their own origin only, and a logo from elsewhere would be a request to
// another site on every login.
func checkLogo(logo, public string) error {
	bad := fmt.Errorf("logo %q: give a path on this site, such as /logo.svg, or a URL on the `site` origin", logo)
	if strings.ContainsAny(logo, " \\{}") || strings.ContainsFunc(logo, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return bad
	}
	if strings.HasPrefix(logo, "/") {
		if strings.HasPrefix(logo, "//") {
			return bad
		}
		return nil
	}
	u, err := url.Parse(logo)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || public == "" || u.Scheme+"://"+u.Host != public || u.User != nil {
		return bad
	}
	return nil
}

// replacer is the request's placeholder replacer (Caddy's, with the
// request's values), or a global one.
func replacer(r *http.Request) *caddy.Replacer {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok && repl != nil {
		return repl
	}
	return caddy.NewReplacer()
}

// siteName is the name the pages give the site: `site_name` with its
// placeholders replaced, else the host (and port) of the site's origin.
func (h *Handler) siteName(r *http.Request) string {
	if name := strings.TrimSpace(replacer(r).ReplaceKnown(h.SiteName, "")); name != "" {
		return name
	}
	origin := h.origin(r)
	if i := strings.Index(origin, "://"); i >= 0 {
		return origin[i+3:]
	}
	return origin
}

// decorate fills what every page shows of the site: its name, its logo and
// the language switcher.
func (h *Handler) decorate(r *http.Request, lang *templates.Lang, p *templates.Page) {
	p.Site = h.siteName(r)
	p.Logo = h.logo
	p.Languages = h.languageChoices(r, lang)
}

// languageChoices are the switcher's links: this page with ?lang=<tag>, as
// a reference of only a query, so that it stays on the page's own path
// whatever the request looked like. A page answering a POST (a form) has
// none: its address cannot be fetched again.
func (h *Handler) languageChoices(r *http.Request, cur *templates.Lang) []templates.Language {
	langs := h.pages.Languages()
	if len(langs) < 2 || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return nil
	}
	q := r.URL.Query()
	out := make([]templates.Language, 0, len(langs))
	for _, l := range langs {
		q.Set(templates.LanguageParam, l.Tag)
		out = append(out, templates.Language{Tag: l.Tag, Name: l.Name, URL: "?" + q.Encode(), Current: l == cur})
	}
	return out
}

// languageCookie remembers a language chosen with ?lang= for the whole site
// (the gate's pages too), for a year.
func (h *Handler) languageCookie(r *http.Request, lang *templates.Lang) *http.Cookie {
	return &http.Cookie{
		Name:     templates.LanguageCookie,
		Value:    lang.Tag,
		Path:     "/",
		MaxAge:   int((365 * 24 * time.Hour).Seconds()),
		Secure:   h.secure(r),
		SameSite: http.SameSiteLaxMode,
	}
}

// localize prepares page data for a request: the site's name, logo and
// language switcher, and the placeholders of the operator's texts (provider
// labels and descriptions, the application's name) replaced.
func (h *Handler) localize(r *http.Request, lang *templates.Lang, data any) any {
	data = templates.WithPage(data, func(p *templates.Page) { h.decorate(r, lang, p) })
	repl := replacer(r)
	switch d := data.(type) {
	case templates.Login:
		d.Client = repl.ReplaceKnown(d.Client, "")
		ps := make([]templates.Provider, len(d.Providers))
		for i, p := range d.Providers {
			p.Label = repl.ReplaceKnown(p.Label, "")
			p.Description = repl.ReplaceKnown(p.Description, "")
			ps[i] = p
		}
		d.Providers = ps
		return d
	case templates.Error:
		// The HTTP status text is English; the page's own heading for the
		// status is translated.
		if d.Heading == http.StatusText(d.Status) {
			d.Heading = ""
		}
		return d
	}
	return data
}

// clientName is the display name of the OpenID Connect application whose
// authorization request rd continues, or "". The client_id only selects a
// registered client: the name shown comes from the configuration.
func (h *Handler) clientName(rd string) string {
	if h.OIDC == nil {
		return ""
	}
	u, err := url.Parse(rd)
	if err != nil || u.Path != h.Prefix+"/oidc/authorize" {
		return ""
	}
	id := u.Query().Get("client_id")
	for _, c := range h.OIDC.Clients {
		if c.ID == id && id != "" {
			if c.Name != "" {
				return c.Name
			}
			return c.ID
		}
	}
	return ""
}

// digitsOnly matches an HTML pattern of digits only, such as [0-9]{11}.
var digitsOnly = regexp.MustCompile(`^(?:\[0-9\]|\\d)(?:\{\d+(?:,\d*)?\}|[+*])?$`)

// inputMode is the on-screen keyboard for a form field: the phone keypad
// for phone numbers, digits for a code of digits (a personal code).
func inputMode(f providers.Field) string {
	switch {
	case f.Type == "tel":
		return "tel"
	case digitsOnly.MatchString(f.Pattern):
		return "numeric"
	}
	return ""
}
