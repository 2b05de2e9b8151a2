package caddymodule

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/caddy-idv/caddy-idv/login"
	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/templates"
)

// provider is a configured, opened provider.
type provider struct {
	name     string
	info     providers.Info
	claims   map[string]bool // identity claims allowed into tokens
	impl     providers.Provider
	interval time.Duration
	form     []providers.Field
	src      *login.Source
	// label and description are the operator's (`label`, `description`),
	// or "" for the kind's own.
	label       string
	description string
	// autostart: the page may start a login with it at once (see
	// providers.Common.Autostart).
	autostart bool
}

func (h *Handler) openProvider(c providers.Config) error {
	common := c.Settings()
	kind := string(c.CaddyModule().ID.Name())
	name := common.Name
	if name == "" {
		name = kind
		common.Name = name
	}
	if !validProviderName(name) {
		return fmt.Errorf("idv: provider name %q: use letters, digits, '-' and '_'", name)
	}
	if _, dup := h.byName[name]; dup {
		return fmt.Errorf("idv: provider name %q is used twice; give one a name: provider %s <name>", name, kind)
	}
	env := providers.Env{
		Name:   name,
		Prefix: h.Prefix,
		Store:  h.store,
		Logger: h.logger.Named("provider." + name),
		HTTP:   newProviderClient(common.CallTimeout()),
		Now:    h.now,
	}
	impl, err := c.Open(env)
	if err != nil {
		return fmt.Errorf("idv: provider %s: %w", name, err)
	}
	info := impl.Info()
	p := &provider{name: name, info: info, impl: impl, interval: providers.PollInterval, claims: map[string]bool{},
		label: common.Label, description: common.Description}
	allowed := common.Claims
	if len(allowed) == 0 {
		allowed = info.DefaultClaims
	}
	for _, c := range allowed {
		p.claims[c] = true
	}
	if pl, ok := impl.(providers.Poller); ok && pl.PollInterval() > 0 {
		p.interval = pl.PollInterval()
	}
	p.autostart = info.FreeStart && info.Flow != "form"
	if common.Autostart != nil {
		p.autostart = *common.Autostart
	}
	p.src = &login.Source{Name: name, Provider: impl, Interval: p.interval, CallTimeout: common.CallTimeout(), GiveUp: time.Duration(common.GiveUp)}
	p.src.Prepare()
	if an, ok := impl.(providers.Announcer); ok {
		an.Announce(h.engine.Nudge)
	}
	if fp, ok := impl.(providers.FormProvider); ok {
		p.form = fp.Form()
	}
	if rt, ok := impl.(providers.Router); ok {
		path, handler := rt.Routes(providers.RouteHost{Pages: pageRenderer{h}, SameBrowser: h.sameBrowser})
		if _, taken := h.routes[path]; !taken {
			h.routes[path] = handler
		}
	}
	h.providers = append(h.providers, p)
	h.byName[name] = p
	return nil
}

func validProviderName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// newProviderClient is the HTTP client for one provider's service: a bounded
// time per call, and no redirects followed (a provider API that redirects is
// misconfigured, and following could leak credentials to another host).
func newProviderClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// loginView is what the login page shows of the providers. Texts stay in
// the source language (the kinds' English labels and hints, the operator's
// own texts); the page translates them in the person's language, and
// renderPage fills the site's name and the placeholders.
func (h *Handler) loginView(rd string) templates.Login {
	v := templates.Login{Page: h.page(""), RD: rd, Client: h.clientName(rd)}
	labels := map[string]int{}
	for _, p := range h.providers {
		labels[p.displayLabel()]++
	}
	for _, p := range h.providers {
		tp := templates.Provider{Name: p.name, Label: p.displayLabel(), Description: p.description, Kind: p.info.Kind, Flow: p.info.Flow, Autostart: p.autostart}
		if labels[tp.Label] > 1 {
			// Two providers of one kind without labels of their own.
			tp.Qualifier = p.name
		}
		for _, f := range p.form {
			tp.Fields = append(tp.Fields, templates.Field{
				Name: f.Name, Label: f.Label, Type: f.Type, Autocomplete: f.Autocomplete, InputMode: inputMode(f), Pattern: f.Pattern, Hint: f.Hint,
			})
		}
		v.Providers = append(v.Providers, tp)
	}
	return v
}

// displayLabel is the provider's label: the operator's, else its kind's,
// else its name.
func (p *provider) displayLabel() string {
	for _, l := range []string{p.label, p.info.Label} {
		if l != "" {
			return l
		}
	}
	return p.name
}

// page is the Page of a module page; renderPage adds the site's name, logo
// and languages. title may be "" for the page's own.
func (h *Handler) page(title string) templates.Page {
	return templates.Page{Title: title, Prefix: h.Prefix}
}

// origin is the public origin of r's site: `site` when configured, else
// scheme://host from the connection and the Host that Caddy matched.
// X-Forwarded-* headers are never read: behind a proxy, configure `site`.
func (h *Handler) origin(r *http.Request) string {
	if h.public != "" {
		return h.public
	}
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// secure reports whether r's site is served over https, for the cookies'
// Secure flag.
func (h *Handler) secure(r *http.Request) bool {
	if h.public != "" {
		return strings.HasPrefix(h.public, "https://")
	}
	return r.TLS != nil
}

// baseURL is the absolute URL of the module's prefix on this site.
func (h *Handler) baseURL(r *http.Request) string {
	return h.origin(r) + h.Prefix
}

func jsonUnmarshal(raw []byte, v any) error { return json.Unmarshal(raw, v) }
