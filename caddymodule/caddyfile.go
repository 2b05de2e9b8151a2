package caddymodule

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"golang.org/x/text/language"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/templates"
	"github.com/caddy-idv/caddy-idv/token"
)

func init() {
	httpcaddyfile.RegisterDirective("idv", parseDirective)
	// Ordered like basic_auth, before it, so no global `order` is needed.
	httpcaddyfile.RegisterDirectiveOrder("idv", httpcaddyfile.Before, "basic_auth")
}

// parseDirective is RegisterHandlerDirective's work plus one thing: with
// a matcher (`idv /admin* { ... }`), the route also matches the module's
// own paths (its prefix, and /.well-known/* when it is an OpenID Connect
// provider). Caddy applies a route's matcher before the handler runs, so
// without it the login page, API and static files of `idv /admin*` would
// never reach the handler, and logging in would be impossible. A route's
// matcher sets are ORed: [<user matcher>, path <prefix> <prefix>/*].
func parseDirective(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	val, err := parseCaddyfile(h)
	if err != nil {
		return nil, err
	}
	vals := h.NewRoute(matcherSet, val)
	if matcherSet == nil || len(vals) != 1 {
		return vals, nil
	}
	m := val.(*Handler)
	prefix := strings.TrimSuffix(m.Prefix, "/")
	if prefix == "" {
		prefix = DefaultPrefix
	}
	paths := []string{prefix, prefix + "/*"}
	if m.OIDC != nil {
		paths = append(paths, "/.well-known/*")
	}
	own, err := json.Marshal(paths)
	if err != nil {
		return nil, err
	}
	route := vals[0].Value.(caddyhttp.Route)
	route.MatcherSetsRaw = append(route.MatcherSetsRaw, caddy.ModuleMap{"path": own})
	vals[0].Value = route
	if len(m.Headers) > 0 {
		// Requests outside the matcher never reach the handler, which
		// deletes client-supplied identity headers: delete them for every
		// request of the site, before the handler. Both go into one route
		// without a matcher (the strip handler, then the idv route as a
		// subroute): as two routes, Caddy would sort the one with a matcher
		// first, and the strip handler would delete what idv had set.
		names := make([]string, len(m.Headers))
		for i, hr := range m.Headers {
			names[i] = hr.Header
		}
		sub := &caddyhttp.Subroute{Routes: caddyhttp.RouteList{route}}
		outer := caddyhttp.Route{HandlersRaw: []json.RawMessage{
			caddyconfig.JSONModuleObject(&StripHeaders{Headers: names}, "handler", "idv_strip_headers", nil),
			caddyconfig.JSONModuleObject(sub, "handler", "subroute", nil),
		}}
		vals = []httpcaddyfile.ConfigValue{{Class: "route", Value: outer}}
	}
	return vals, nil
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var m Handler
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return &m, err
}

// UnmarshalCaddyfile reads the idv directive (docs/reference.md, "Caddyfile"):
//
//	idv [<matcher>] {
//		provider <kind> [<name>] { ... }
//		prefix   <path>
//		site     <origin>
//		session  { cookie <name>; lifetime <d>; idle <d>; domain <d>; same_site lax|strict|none; audience <aud> }
//		limit    { per_address <n> <window>; total <n> <window> }
//		require  <claim> <value...> [{ issuer <trusted issuer> }]
//		header   <Header-Name> <claim>
//		templates <dir>
//		languages <tag...>
//		site_name <name...>
//		logo     <path or URL on the site>
//		accent   <css colour>
//	}
//
// Every mistake is reported with the file and line it is on.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "provider":
			if err := h.unmarshalProvider(d); err != nil {
				return err
			}
		case "prefix":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			h.Prefix = strings.TrimSuffix(v, "/")
			if err := checkPrefix(h.Prefix); err != nil {
				return d.Err(err.Error())
			}
		case "session":
			if err := h.unmarshalSession(d); err != nil {
				return err
			}
		case "limit":
			if err := h.unmarshalLimit(d); err != nil {
				return err
			}
		case "site":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			h.Site = v
			if strings.Contains(v, "{") {
				break // a placeholder, checked once resolved
			}
			if _, err := token.ParseOrigin(v); err != nil {
				return d.Errf("site: %v", err)
			}
		case "require":
			args := d.RemainingArgs()
			if len(args) < 2 {
				return d.Errf("require: want `require <claim> <value...> [{ issuer <url> }]`")
			}
			req := Requirement{Claim: args[0], Values: args[1:]}
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				if d.Val() != "issuer" {
					return d.Errf("require: unknown option %q (known: issuer)", d.Val())
				}
				v, err := oneArg(d)
				if err != nil {
					return err
				}
				req.Issuer = v
			}
			h.Require = append(h.Require, req)
		case "header":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("header: want `header <Header-Name> <claim>`")
			}
			if !validHeaderName(args[0]) {
				return d.Errf("header: %q is not a valid header name", args[0])
			}
			h.Headers = append(h.Headers, HeaderRule{Header: args[0], Claim: args[1]})
		case "templates":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			h.Templates = v
			if !strings.Contains(v, "{") {
				if err := checkDir(v); err != nil {
					return d.Errf("templates %q: %v", v, err)
				}
			} // else a placeholder, checked once resolved
		case "languages":
			tags := d.RemainingArgs()
			if len(tags) == 0 {
				return d.Errf("languages: want `languages <tag...>`, the default first, such as `languages en et ru`")
			}
			for _, tag := range tags {
				if _, err := language.Parse(tag); err != nil {
					return d.Errf("languages: %q is not a language tag: %v", tag, err)
				}
			}
			h.Languages = tags
		case "site_name":
			// Several words without quotes are one name, as in `user`.
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			h.SiteName = strings.Join(args, " ")
		case "logo":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			h.Logo = v
		case "accent":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			if !strings.Contains(v, "{") {
				if err := templates.CheckColour(v); err != nil {
					return d.Err(err.Error())
				}
			}
			h.Accent = v
		case "oidc":
			if err := h.unmarshalOIDC(d); err != nil {
				return err
			}
		case "trust_issuer":
			if err := h.unmarshalTrustIssuer(d); err != nil {
				return err
			}
		case "store":
			if err := h.unmarshalStore(d); err != nil {
				return err
			}
		default:
			return d.Errf("unknown option %q (known: provider, prefix, site, session, limit, require, header, oidc, trust_issuer, templates, languages, site_name, logo, accent, store)", opt)
		}
	}
	if len(h.ProvidersRaw) == 0 {
		return d.Err("idv: at least one `provider <kind>` is required")
	}
	return nil
}

func (h *Handler) unmarshalProvider(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.Errf("provider: want `provider <kind> [<name>]`")
	}
	kind := d.Val()
	id := providers.Namespace + "." + kind
	if _, err := caddy.GetModule(id); err != nil {
		return d.Errf("provider: unknown kind %q (available: %s)", kind, strings.Join(providerKinds(), ", "))
	}
	unm, err := caddyfile.UnmarshalModule(d, id)
	if err != nil {
		return err
	}
	cfg, ok := unm.(providers.Config)
	if !ok {
		return d.Errf("provider: kind %q is not a provider", kind)
	}
	if err := cfg.Settings().ValidateCommon(); err != nil {
		return d.Errf("provider %s: %v", kind, err)
	}
	name := cfg.Settings().Name
	if name == "" {
		name = kind
	}
	if !validProviderName(name) {
		return d.Errf("provider %s: name %q: use letters, digits, '-' and '_'", kind, name)
	}
	for _, raw := range h.ProvidersRaw {
		if existing := providerNameOf(raw); existing == name {
			return d.Errf("provider %s: the name %q is used twice; name one: provider %s <name>", kind, name, kind)
		}
	}
	h.ProvidersRaw = append(h.ProvidersRaw, caddyconfig.JSONModuleObject(unm, "kind", kind, nil))
	return nil
}

func providerNameOf(raw []byte) string {
	var v struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
	}
	if err := jsonUnmarshal(raw, &v); err != nil {
		return ""
	}
	if v.Name == "" {
		return v.Kind
	}
	return v.Name
}

func providerKinds() []string {
	var kinds []string
	for _, m := range caddy.GetModules(providers.Namespace) {
		kinds = append(kinds, m.ID.Name())
	}
	slices.Sort(kinds)
	return kinds
}

func (h *Handler) unmarshalSession(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	if h.Session == nil {
		h.Session = new(SessionConfig)
	}
	s := h.Session
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		v, err := oneArg(d)
		if err != nil {
			return err
		}
		switch opt {
		case "cookie":
			if !validCookieName(v) {
				return d.Errf("session cookie: %q is not a valid cookie name", v)
			}
			s.Cookie = v
		case "lifetime", "idle":
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return d.Errf("session %s: bad duration %q", opt, v)
			}
			if opt == "lifetime" {
				s.Lifetime = caddy.Duration(dur)
			} else {
				s.Idle = caddy.Duration(dur)
			}
		case "domain":
			s.Domain = strings.TrimPrefix(v, ".")
		case "same_site":
			v = strings.ToLower(v)
			if v != "lax" && v != "strict" && v != "none" {
				return d.Errf("session same_site: %q must be lax, strict or none", v)
			}
			s.SameSite = v
		case "audience":
			s.Audience = v
		default:
			return d.Errf("session: unknown option %q (known: cookie, lifetime, idle, domain, same_site, audience)", opt)
		}
	}
	if err := h.validateSession(); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

func (h *Handler) unmarshalLimit(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	if h.Limit == nil {
		h.Limit = new(LimitConfig)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		args := d.RemainingArgs()
		if opt == "held_per_address" {
			n, err := strconv.Atoi(strings.Join(args, " "))
			if len(args) != 1 || err != nil || n <= 0 {
				return d.Errf("limit held_per_address: want `held_per_address <n>`, a positive count")
			}
			h.Limit.HeldPerAddress = n
			continue
		}
		if len(args) != 2 && (len(args) != 3 || opt == "total") {
			if opt == "total" {
				return d.Errf("limit total: want `total <n> <window>`")
			}
			return d.Errf("limit %s: want `%s <n> <window> [<ban>]`", opt, opt)
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n <= 0 {
			return d.Errf("limit %s: %q is not a positive count", opt, args[0])
		}
		win, err := caddy.ParseDuration(args[1])
		if err != nil || win <= 0 {
			return d.Errf("limit %s: bad duration %q", opt, args[1])
		}
		r := &Rate{N: n, Window: caddy.Duration(win)}
		if len(args) == 3 {
			ban, err := caddy.ParseDuration(args[2])
			if err != nil || ban < win {
				return d.Errf("limit %s: bad ban time %q (a duration no shorter than the window)", opt, args[2])
			}
			r.Ban = caddy.Duration(ban)
		}
		switch opt {
		case "per_address":
			h.Limit.PerAddress = r
		case "total":
			h.Limit.Total = r
		case "per_identity":
			h.Limit.PerIdentity = r
		default:
			return d.Errf("limit: unknown option %q (known: per_address, total, per_identity, held_per_address)", opt)
		}
	}
	return nil
}

// unmarshalStore reads
//
//	store redis <url> [{ <options> }]
//	store { <options> }
//
// where the options, all about encrypting the secrets kept in the store,
// are encryption_key <key...>, encryption_key_file <path> (in the order
// given: the first key encrypts) and migrate_plaintext.
func (h *Handler) unmarshalStore(d *caddyfile.Dispenser) error {
	const want = "store: want `store redis <url>` or `store { encryption_key <key> }`"
	cfg := &StoreConfig{}
	switch args := d.RemainingArgs(); {
	case len(args) == 0:
	case len(args) == 2 && args[0] == "redis":
		cfg.Type, cfg.URL = "redis", args[1]
	default:
		return d.Err(want)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "encryption_key":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Err("store encryption_key: want `encryption_key <key...>` (32 random bytes, base64 or hex; use a placeholder such as {env.IDV_STORE_KEY})")
			}
			for _, a := range args {
				cfg.EncryptionKeys = append(cfg.EncryptionKeys, EncryptionKey{Value: a})
			}
		case "encryption_key_file":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			cfg.EncryptionKeys = append(cfg.EncryptionKeys, EncryptionKey{File: v})
		case "migrate_plaintext":
			if d.NextArg() {
				return d.ArgErr()
			}
			cfg.MigratePlaintext = true
		default:
			return d.Errf("store: unknown option %q (known: encryption_key, encryption_key_file, migrate_plaintext)", opt)
		}
	}
	if err := cfg.validate(); err != nil {
		return d.Err(strings.TrimPrefix(err.Error(), "idv: "))
	}
	h.Store = cfg
	return nil
}

func oneArg(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return v, nil
}

var _ caddyfile.Unmarshaler = (*Handler)(nil)
