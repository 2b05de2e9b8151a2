package attack_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
)

// fwdSpoof are the headers proxies use to tell a backend the public host,
// scheme, prefix or client: a client sends them all. The module reads
// none of them (README, Security model: "X-Forwarded-* is never read";
// behind a proxy, `site` decides), and without trusted_proxies Caddy
// takes none of them as the client's address.
var fwdSpoof = map[string]string{
	"X-Forwarded-Host":   "evil.example",
	"X-Forwarded-Proto":  "https",
	"X-Forwarded-Prefix": "/evil",
	"X-Forwarded-Port":   "443",
	"X-Forwarded-Server": "evil.example",
	"X-Forwarded-For":    "203.0.113.7",
	"X-Real-IP":          "203.0.113.7",
	"X-Original-Host":    "evil.example",
	"X-Host":             "evil.example",
	"Forwarded":          "for=203.0.113.7;host=evil.example;proto=https",
	"Front-End-Https":    "on",
	"X-Url-Scheme":       "https",
}

// fwdWith is fwdSpoof plus more headers.
func fwdWith(more map[string]string) map[string]string {
	out := make(map[string]string, len(fwdSpoof)+len(more))
	for k, v := range fwdSpoof {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

// TestAttackHostAndForwarded: Host header tricks and forwarded headers
// never move the site. Without `site`, the origin is the connection's
// scheme and the Host Caddy matched (a Host no site matches gets Caddy's
// own empty answer, never the module); with `site`, the configured origin,
// whatever the request says. Links, cookies, the Origin check, discovery,
// the key sets and issued tokens follow that, and client-supplied
// X-Forwarded-For never buys a new rate-limit budget.
func TestAttackHostAndForwarded(t *testing.T) {
	s := newSuite(t, options{})
	limited := newSuite(t, options{idv: "limit {\n\t\t\tper_address 3 1m\n\t\t}"})
	site := newSuite(t, options{idv: "site https://app.example"})
	named := fwdNamedSuite(t)
	host := strings.TrimPrefix(s.inst.URL, "http://")

	// The answers and tokens of the unspoofed site, to compare with.
	var once sync.Once
	var plainClaims map[string]any
	var disco, jwks, oidcJWKS answer
	baseline := func(t *testing.T) {
		once.Do(func() {
			plainClaims = claimsOf(t, s.bearer(t, s.loggedIn(t)))
			disco = do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.well-known/openid-configuration"), nil, nil)
			jwks = do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.idv/jwks"), nil, nil)
			oidcJWKS = do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.idv/oidc/jwks"), nil, nil)
		})
		if plainClaims == nil || disco.code != http.StatusOK || jwks.code != http.StatusOK || oidcJWKS.code != http.StatusOK {
			t.Fatal("no baseline")
		}
	}
	raw := func(t *testing.T, lines string) answer { return rawRequest(t, s, lines+"Connection: close\r\n\r\n") }
	// caddysAnswer: no site matched, so Caddy answered itself (an empty
	// 200) and the module never saw the request.
	caddysAnswer := func(t *testing.T, a answer, upstreamPath string) {
		t.Helper()
		want(t, a, http.StatusOK)
		if len(a.body) != 0 || a.header.Get("Location") != "" || len(a.header["Set-Cookie"]) != 0 {
			t.Fatalf("an unmatched Host got %v, Location %q, cookies %q", a, a.header.Get("Location"), a.header["Set-Cookie"])
		}
		if upstreamPath != "" && s.up.reached(upstreamPath) {
			t.Fatalf("%s reached the upstream", upstreamPath)
		}
	}
	// gateRedirect: a navigation to /fwd without a session goes to the
	// login page by a relative Location, whatever the headers say.
	gateRedirect := func(hdr map[string]string) func(t *testing.T) {
		return func(t *testing.T) {
			h := map[string]string{"Accept": "text/html"}
			for k, v := range hdr {
				h[k] = v
			}
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/fwd?a=1"), nil, h)
			want(t, a, http.StatusFound)
			if loc := a.header.Get("Location"); loc != "/.idv/login?rd=%2Ffwd%3Fa%3D1" {
				t.Fatalf("Location %q", loc)
			}
		}
	}
	// started: a start with the spoofed headers answers links on the site
	// itself and a pending cookie without Secure (the site is http).
	started := func(hdr map[string]string) func(t *testing.T) {
		return func(t *testing.T) {
			h := s.sameOrigin()
			for k, v := range hdr {
				h[k] = v
			}
			a := do(t, e2e.NewBrowser(), http.MethodPost, s.url("/.idv/sessions"), jsonBody(map[string]string{"provider": "demo", "rd": "/in"}), h)
			want(t, a, http.StatusCreated)
			st := fwdStarted(t, a)
			fwdLinks(t, st, s.inst.URL)
			if c := fwdCookie(t, a, "idv_session_login_"); c.Secure || !c.HttpOnly || c.Path != "/.idv/" {
				t.Fatalf("pending cookie %+v", c)
			}
		}
	}
	// refusedOrigin: a POST /sessions with this Origin and these headers
	// is refused as cross-site, and starts nothing.
	refusedOrigin := func(origin string, hdr map[string]string) func(t *testing.T) {
		return func(t *testing.T) {
			h := map[string]string{"Content-Type": "application/json", "Origin": origin}
			for k, v := range hdr {
				h[k] = v
			}
			a := do(t, e2e.NewBrowser(), http.MethodPost, s.url("/.idv/sessions"), jsonBody(map[string]string{"provider": "demo"}), h)
			wantError(t, a, http.StatusForbidden, "cross_origin")
			if len(a.header["Set-Cookie"]) != 0 {
				t.Fatalf("a refused start set %q", a.header["Set-Cookie"])
			}
		}
	}
	// sameTokens: a session logged in with every request carrying hdr
	// (and Host, when not empty) has the iss and aud of any other.
	sameTokens := func(hostHeader string, hdr map[string]string) func(t *testing.T) {
		return func(t *testing.T) {
			baseline(t)
			b := e2e.NewBrowser()
			if hostHeader != "" {
				b = b.Via(hostHeader)
			}
			jar := fwdBrowser{b: b, hdr: hdr}
			st := jar.start(t, s)
			if u, err := url.Parse(st.QRText); err != nil || u.Hostname() != "127.0.0.1" {
				t.Fatalf("qr_text %q", st.QRText)
			}
			st.QRText = s.url("/.idv/demo/wallet/" + st.ID)
			s.approve(t, st)
			a := jar.do(t, http.MethodGet, s.url(st.StatusURL+"?wait=10"), nil, nil)
			want(t, a, http.StatusOK)
			c := fwdCookie(t, a, "idv_session")
			if c.Name != "idv_session" || c.Secure || !c.HttpOnly || c.Domain != "" {
				t.Fatalf("session cookie %+v", c)
			}
			tok := jar.do(t, http.MethodGet, s.url("/.idv/token"), nil, map[string]string{"Sec-Fetch-Site": "same-origin"})
			want(t, tok, http.StatusOK)
			var out struct{ Token string }
			if err := json.Unmarshal(tok.body, &out); err != nil {
				t.Fatal(err)
			}
			got := claimsOf(t, out.Token)
			if got["iss"] != plainClaims["iss"] || got["iss"] != s.inst.URL || fmt.Sprint(got["aud"]) != fmt.Sprint(plainClaims["aud"]) {
				t.Fatalf("iss %v aud %v; want iss %v aud %v", got["iss"], got["aud"], plainClaims["iss"], plainClaims["aud"])
			}
		}
	}
	// limitedStart exhausts the limited suite's budget for 127.0.0.1 (3
	// a minute), then starts with hdr: a spoofed address is no new budget.
	limitedStart := func(hdr map[string]string) func(t *testing.T) {
		return func(t *testing.T) {
			start := func(h map[string]string) answer {
				all := limited.sameOrigin()
				for k, v := range h {
					all[k] = v
				}
				return do(t, e2e.NewBrowser(), http.MethodPost, limited.url("/.idv/sessions"), jsonBody(map[string]string{"provider": "demo"}), all)
			}
			for i := 0; i < 4; i++ {
				if a := start(nil); a.code == http.StatusTooManyRequests {
					break
				} else if i == 3 {
					t.Fatalf("the 4th start within the limit of 3: %v", a)
				}
			}
			a := start(hdr)
			wantError(t, a, http.StatusTooManyRequests, "rate_limited")
			if a.header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		}
	}

	attacks := []attack{
		// Hosts no site matches: Caddy's own answer, never the module's.
		{"login page requested with Host evil.example", func(t *testing.T) {
			caddysAnswer(t, raw(t, "GET /.idv/login?rd=/x HTTP/1.1\r\nHost: evil.example\r\nAccept: text/html\r\n"), "")
		}},
		{"login started with Host evil.example", func(t *testing.T) {
			body := `{"provider":"demo","rd":"/x"}`
			caddysAnswer(t, raw(t, fmt.Sprintf("POST /.idv/sessions HTTP/1.1\r\nHost: evil.example\r\nOrigin: http://evil.example\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)), "")
		}},
		{"protected path with Host evil.example", func(t *testing.T) {
			caddysAnswer(t, raw(t, "GET /fwd-evil-host HTTP/1.1\r\nHost: evil.example\r\nAccept: text/html\r\n"), "/fwd-evil-host")
		}},
		{"OIDC discovery with Host evil.example", func(t *testing.T) {
			caddysAnswer(t, raw(t, "GET /.well-known/openid-configuration HTTP/1.1\r\nHost: evil.example\r\n"), "")
		}},
		{"absolute-form target naming evil.example with the site's Host", func(t *testing.T) {
			// The target's authority replaces Host (RFC 9112 §3.2.2):
			// no site matches it.
			caddysAnswer(t, raw(t, "GET http://evil.example/fwd-absolute HTTP/1.1\r\nHost: "+host+"\r\nAccept: text/html\r\n"), "/fwd-absolute")
		}},
		{"absolute-form target naming the site with Host evil.example", func(t *testing.T) {
			a := raw(t, "GET http://"+host+"/fwd HTTP/1.1\r\nHost: evil.example\r\nAccept: text/html\r\n")
			want(t, a, http.StatusFound)
			if loc := a.header.Get("Location"); loc != "/.idv/login?rd=%2Ffwd" {
				t.Fatalf("Location %q", loc)
			}
		}},
		{"absolute-form https target over plain http", func(t *testing.T) {
			body := `{"provider":"demo","rd":"/x"}`
			a := raw(t, fmt.Sprintf("POST https://%s/.idv/sessions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", host, host, len(body), body))
			want(t, a, http.StatusCreated)
			fwdLinks(t, fwdStarted(t, a), s.inst.URL)
			if c := fwdCookie(t, a, "idv_session_login_"); c.Secure {
				t.Fatalf("an https request target made the pending cookie Secure: %+v", c)
			}
		}},
		{"Host with a trailing dot", func(t *testing.T) {
			caddysAnswer(t, raw(t, "GET /fwd-dot HTTP/1.1\r\nHost: 127.0.0.1.:"+fmt.Sprint(s.inst.Port)+"\r\nAccept: text/html\r\n"), "/fwd-dot")
		}},
		{"Host with user info", func(t *testing.T) {
			a := raw(t, "GET /fwd-userinfo HTTP/1.1\r\nHost: evil.example@"+host+"\r\nAccept: text/html\r\n")
			want(t, a, http.StatusBadRequest)
			if s.up.reached("/fwd-userinfo") || a.header.Get("Location") != "" {
				t.Fatalf("%v, Location %q", a, a.header.Get("Location"))
			}
		}},
		{"two Host headers", func(t *testing.T) {
			a := raw(t, "GET /fwd-two HTTP/1.1\r\nHost: "+host+"\r\nHost: evil.example\r\nAccept: text/html\r\n")
			want(t, a, http.StatusBadRequest)
			if s.up.reached("/fwd-two") || a.header.Get("Location") != "" {
				t.Fatalf("%v, Location %q", a, a.header.Get("Location"))
			}
		}},
		{"empty Host", func(t *testing.T) {
			a := raw(t, "GET /fwd-empty HTTP/1.1\r\nHost: \r\nAccept: text/html\r\n")
			want(t, a, http.StatusBadRequest)
			if s.up.reached("/fwd-empty") || a.header.Get("Location") != "" {
				t.Fatalf("%v, Location %q", a, a.header.Get("Location"))
			}
		}},
		{"Host with a path", func(t *testing.T) {
			a := raw(t, "GET /fwd-hostpath HTTP/1.1\r\nHost: "+host+"/evil.example\r\nAccept: text/html\r\n")
			want(t, a, http.StatusBadRequest) // Go's server: malformed Host header
			if s.up.reached("/fwd-hostpath") || a.header.Get("Location") != "" {
				t.Fatalf("%v, Location %q", a, a.header.Get("Location"))
			}
		}},
		{"Host with another port", func(t *testing.T) {
			// The Host Caddy matched is the origin when `site` is not set:
			// another port of the same host, never another host.
			a := do(t, e2e.NewBrowser(), http.MethodPost, s.url("/.idv/sessions"), jsonBody(map[string]string{"provider": "demo"}),
				map[string]string{"Host": "127.0.0.1:1", "Content-Type": "application/json"})
			want(t, a, http.StatusCreated)
			st := fwdStarted(t, a)
			fwdLinks(t, st, "http://127.0.0.1:1")
		}},
		{"Host in upper case on a named site", func(t *testing.T) {
			a := do(t, e2e.NewBrowser(), http.MethodPost, named.inst.URL+"/.idv/sessions", jsonBody(map[string]string{"provider": "demo"}),
				map[string]string{"Host": strings.ToUpper(fmt.Sprintf("app.localhost:%d", named.inst.Port)), "Content-Type": "application/json"})
			want(t, a, http.StatusCreated)
			st := fwdStarted(t, a)
			if u, err := url.Parse(st.QRText); err != nil || !strings.EqualFold(u.Host, fmt.Sprintf("app.localhost:%d", named.inst.Port)) {
				t.Fatalf("qr_text %q is not on app.localhost", st.QRText)
			}
		}},
		{"Host with a trailing dot on a named site", func(t *testing.T) {
			a := rawRequest(t, named, "POST /.idv/sessions HTTP/1.1\r\nHost: app.localhost.:"+fmt.Sprint(named.inst.Port)+"\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
			want(t, a, http.StatusOK)
			if len(a.body) != 0 || len(a.header["Set-Cookie"]) != 0 {
				t.Fatalf("app.localhost. was served: %v", a)
			}
		}},

		// Forwarded headers on what the module builds from the origin.
		{"X-Forwarded-Host on the gate's login redirect", gateRedirect(map[string]string{"X-Forwarded-Host": "evil.example"})},
		{"Forwarded host and proto on the gate's login redirect", gateRedirect(map[string]string{"Forwarded": "host=evil.example;proto=https"})},
		{"every forwarded header at once on the gate's login redirect", gateRedirect(fwdSpoof)},
		{"X-Original-URL does not change the gated path", func(t *testing.T) {
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/fwd-original"), nil, map[string]string{"X-Original-URL": "/public/x", "X-Rewrite-URL": "/public/x"})
			wantError(t, a, http.StatusUnauthorized, "unauthenticated")
			if s.up.reached("/fwd-original") || s.up.reached("/public/x") {
				t.Fatal("a rewritten path reached the upstream without a session")
			}
		}},
		{"X-Forwarded-Host and X-Forwarded-Proto on the start answer", started(map[string]string{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"})},
		{"Forwarded host and proto on the start answer", started(map[string]string{"Forwarded": "host=evil.example;proto=https"})},
		{"every forwarded header at once on the start answer", started(fwdSpoof)},
		{"X-Forwarded-Host on the login page", func(t *testing.T) {
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.idv/login?rd=/in"), nil, fwdWith(map[string]string{"Accept": "text/html"}))
			want(t, a, http.StatusOK)
			if bytes.Contains(a.body, []byte("evil")) || !bytes.Contains(a.body, []byte(host)) {
				t.Fatalf("login page:\n%s", a.body)
			}
		}},
		{"X-Forwarded-Host on the demo wallet page", func(t *testing.T) {
			st := s.start(t, e2e.NewBrowser(), "/")
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.idv/demo/wallet/"+st.ID), nil, fwdWith(map[string]string{"Accept": "text/html"}))
			want(t, a, http.StatusOK)
			if bytes.Contains(a.body, []byte("evil")) {
				t.Fatalf("wallet page:\n%s", a.body)
			}
		}},
		{"X-Forwarded-Host on the logout redirect", func(t *testing.T) {
			h := fwdWith(s.sameOrigin())
			h["Content-Type"] = "application/x-www-form-urlencoded"
			a := do(t, e2e.NewBrowser(), http.MethodPost, s.url("/.idv/logout?rd=/bye"), nil, h)
			want(t, a, http.StatusSeeOther)
			if loc := a.header.Get("Location"); loc != "/bye" {
				t.Fatalf("Location %q", loc)
			}
		}},
		{"forwarded headers reaching the upstream are Caddy's own", func(t *testing.T) {
			// Without trusted_proxies Caddy replaces what the client sent.
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/public/fwd"), nil, fwdSpoof)
			e := echoOf(t, a)
			if e.Header.Get("X-Forwarded-Host") != host || e.Header.Get("X-Forwarded-Proto") != "http" || e.Header.Get("X-Forwarded-For") != "127.0.0.1" {
				t.Fatalf("upstream got X-Forwarded-Host %q, -Proto %q, -For %q", e.Header.Get("X-Forwarded-Host"), e.Header.Get("X-Forwarded-Proto"), e.Header.Get("X-Forwarded-For"))
			}
		}},

		// Cookies.
		{"X-Forwarded-Proto https on the session cookie", sameTokens("", map[string]string{"X-Forwarded-Proto": "https", "Forwarded": "proto=https"})},

		// The Origin check.
		{"Origin equal to a spoofed X-Forwarded-Host", refusedOrigin("http://evil.example", map[string]string{"X-Forwarded-Host": "evil.example"})},
		{"https Origin of the site with X-Forwarded-Proto https", refusedOrigin("https://"+host, map[string]string{"X-Forwarded-Proto": "https"})},
		{"Origin equal to a spoofed Forwarded host", refusedOrigin("https://evil.example", map[string]string{"Forwarded": "host=evil.example;proto=https"})},
		{"Origin of the site with a prefix from X-Forwarded-Prefix", refusedOrigin(s.inst.URL+"/evil", map[string]string{"X-Forwarded-Prefix": "/evil"})},
		{"logout with an Origin equal to a spoofed X-Forwarded-Host", func(t *testing.T) {
			b := s.loggedIn(t)
			a := do(t, b, http.MethodPost, s.url("/.idv/logout"), nil, map[string]string{"Origin": "http://evil.example", "X-Forwarded-Host": "evil.example"})
			wantError(t, a, http.StatusForbidden, "cross_origin")
			want(t, do(t, b, http.MethodGet, s.url("/.idv/me"), nil, nil), http.StatusOK)
		}},

		// OpenID Connect: the configured issuer, always.
		{"forwarded headers on OIDC discovery", func(t *testing.T) {
			baseline(t)
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.well-known/openid-configuration"), nil, fwdSpoof)
			fwdDiscovery(t, a, disco, s.inst.URL)
		}},
		{"Host with another port on OIDC discovery", func(t *testing.T) {
			baseline(t)
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.well-known/openid-configuration"), nil, map[string]string{"Host": "127.0.0.1:1"})
			fwdDiscovery(t, a, disco, s.inst.URL)
		}},
		{"forwarded headers on RFC 8414 metadata", func(t *testing.T) {
			baseline(t)
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.well-known/oauth-authorization-server"), nil, fwdWith(map[string]string{"Host": "127.0.0.1:1"}))
			fwdDiscovery(t, a, disco, s.inst.URL)
		}},
		{"forwarded headers on the session JWKS", func(t *testing.T) {
			baseline(t)
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.idv/jwks"), nil, fwdWith(map[string]string{"Host": "127.0.0.1:1"}))
			if a.code != http.StatusOK || !bytes.Equal(a.body, jwks.body) || a.header.Get("ETag") != jwks.header.Get("ETag") {
				t.Fatalf("JWKS changed with the request: %v", a)
			}
		}},
		{"forwarded headers on the OIDC JWKS", func(t *testing.T) {
			baseline(t)
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.idv/oidc/jwks"), nil, fwdWith(map[string]string{"Host": "127.0.0.1:1"}))
			if a.code != http.StatusOK || !bytes.Equal(a.body, oidcJWKS.body) || a.header.Get("ETag") != oidcJWKS.header.Get("ETag") {
				t.Fatalf("JWKS changed with the request: %v", a)
			}
		}},
		{"forwarded headers on the authorization response's iss", func(t *testing.T) {
			b := s.loggedIn(t)
			q := url.Values{"client_id": {"app"}, "response_type": {"code"}, "scope": {"openid"}, "state": {"st"}, "redirect_uri": {s.rp + "/callback"}}
			a := do(t, b, http.MethodGet, s.url("/.idv/oidc/authorize?"+q.Encode()), nil, fwdWith(map[string]string{"Host": "127.0.0.1:1"}))
			want(t, a, http.StatusFound)
			u, err := url.Parse(a.header.Get("Location"))
			if err != nil || u.Scheme+"://"+u.Host+u.Path != s.rp+"/callback" || u.Query().Get("iss") != s.inst.URL || u.Query().Get("code") == "" {
				t.Fatalf("Location %q", a.header.Get("Location"))
			}
		}},
		{"forwarded headers on the authorize login redirect", func(t *testing.T) {
			q := url.Values{"client_id": {"app"}, "response_type": {"code"}, "scope": {"openid"}, "state": {"st"}, "redirect_uri": {s.rp + "/callback"}}
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.idv/oidc/authorize?"+q.Encode()), nil, fwdWith(map[string]string{"Accept": "text/html"}))
			want(t, a, http.StatusFound)
			if loc := a.header.Get("Location"); !strings.HasPrefix(loc, "/.idv/login?rd=%2F.idv%2Foidc%2Fauthorize%3F") {
				t.Fatalf("Location %q", loc)
			}
		}},
		{"forwarded headers on ID and access tokens", func(t *testing.T) {
			b := s.loggedIn(t)
			tokens := fwdCodeFlow(t, s, b, fwdWith(map[string]string{"Host": "127.0.0.1:1"}))
			for _, kind := range []string{"id_token", "access_token"} {
				c := claimsOf(t, tokens[kind])
				aud := fmt.Sprint(c["aud"])
				if c["iss"] != s.inst.URL || !strings.Contains(aud, "app") || strings.Contains(aud, "evil") || strings.Contains(aud, ":1") {
					t.Fatalf("%s: iss %v aud %v", kind, c["iss"], c["aud"])
				}
			}
		}},

		// Session tokens.
		{"forwarded headers on a session's iss and aud", sameTokens("", fwdSpoof)},
		{"Host with another port on a session's iss and aud", sameTokens("127.0.0.1:1", nil)},

		// The rate limit's client address (no trusted_proxies).
		{"X-Forwarded-For for a new rate-limit budget", limitedStart(map[string]string{"X-Forwarded-For": "198.51.100.1, 198.51.100.2"})},
		{"X-Real-IP for a new rate-limit budget", limitedStart(map[string]string{"X-Real-IP": "198.51.100.4"})},
		{"Forwarded for= for a new rate-limit budget", limitedStart(map[string]string{"Forwarded": "for=198.51.100.5"})},
		{"True-Client-IP and CF-Connecting-IP for a new rate-limit budget", limitedStart(map[string]string{"True-Client-IP": "198.51.100.6", "CF-Connecting-IP": "198.51.100.6"})},
		{"IPv6 X-Forwarded-For for a new rate-limit budget", limitedStart(map[string]string{"X-Forwarded-For": "2001:db8::1"})},

		// `site https://app.example` behind a TLS-terminating proxy: the
		// configuration decides, whatever the request says.
		{"start behind a TLS proxy with forwarded headers", func(t *testing.T) {
			h := fwdWith(map[string]string{"Content-Type": "application/json", "Origin": "https://app.example", "Host": "127.0.0.1:1"})
			h["X-Forwarded-Proto"] = "http"
			a := send(t, plain(), request(t, http.MethodPost, site.url("/.idv/sessions"), jsonBody(map[string]string{"provider": "demo"}), h))
			want(t, a, http.StatusCreated)
			fwdLinks(t, fwdStarted(t, a), "https://app.example")
			if c := fwdCookie(t, a, "idv_session_login_"); !c.Secure || !c.HttpOnly {
				t.Fatalf("pending cookie %+v", c)
			}
		}},
		{"session cookie behind a TLS proxy with X-Forwarded-Proto http", func(t *testing.T) {
			c, claims := fwdSiteLogin(t, site, map[string]string{"X-Forwarded-Proto": "http", "Forwarded": "proto=http;host=evil.example", "X-Forwarded-Host": "evil.example"})
			if c.Name != "__Host-idv_session" || !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" {
				t.Fatalf("session cookie %+v", c)
			}
			if claims["iss"] != site.inst.URL || fmt.Sprint(claims["aud"]) != "https://app.example" {
				t.Fatalf("iss %v aud %v", claims["iss"], claims["aud"])
			}
		}},
		{"Origin of the connection behind a TLS proxy", func(t *testing.T) {
			for _, origin := range []string{site.inst.URL, "http://app.example", "https://evil.example"} {
				h := map[string]string{"Content-Type": "application/json", "Origin": origin, "X-Forwarded-Host": strings.TrimPrefix(origin, "https://")}
				a := send(t, plain(), request(t, http.MethodPost, site.url("/.idv/sessions"), jsonBody(map[string]string{"provider": "demo"}), h))
				wantError(t, a, http.StatusForbidden, "cross_origin")
			}
		}},
		{"gate redirect behind a TLS proxy", func(t *testing.T) {
			a := send(t, plain(), request(t, http.MethodGet, site.url("/fwd"), nil, fwdWith(map[string]string{"Accept": "text/html", "Host": "127.0.0.1:1"})))
			want(t, a, http.StatusFound)
			if loc := a.header.Get("Location"); loc != "/.idv/login?rd=%2Ffwd" {
				t.Fatalf("Location %q", loc)
			}
		}},
		{"login page behind a TLS proxy names the configured site", func(t *testing.T) {
			a := send(t, plain(), request(t, http.MethodGet, site.url("/.idv/login"), nil, fwdWith(map[string]string{"Accept": "text/html", "Host": "127.0.0.1:1"})))
			want(t, a, http.StatusOK)
			if bytes.Contains(a.body, []byte("evil")) || bytes.Contains(a.body, []byte("127.0.0.1")) || !bytes.Contains(a.body, []byte("app.example")) {
				t.Fatalf("login page:\n%s", a.body)
			}
		}},
	}
	runClass(t, classHost, attacks)
}

// fwdStarted decodes a start answer.
func fwdStarted(t *testing.T, a answer) e2e.Started {
	t.Helper()
	var st e2e.Started
	if err := json.Unmarshal(a.body, &st); err != nil || st.ID == "" {
		t.Fatalf("start answer %v", a)
	}
	return st
}

// fwdLinks fails t unless the start answer's links are on origin: the
// QR text and deep link absolute there, the others relative to the site.
func fwdLinks(t *testing.T, st e2e.Started, origin string) {
	t.Helper()
	wallet := origin + "/.idv/demo/wallet/" + st.ID
	if st.QRText != wallet || st.DeepLink != wallet || st.StatusURL != "/.idv/sessions/"+st.ID || st.QRSVGURL != st.StatusURL+"/qr.svg" {
		t.Fatalf("start answer %+v; want links on %s", st, origin)
	}
}

// fwdCookie is the cookie an answer sets whose name is name, or starts
// with it when it ends in '_'.
func fwdCookie(t *testing.T, a answer, name string) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		if c.Name == name || strings.HasSuffix(name, "_") && strings.HasPrefix(c.Name, name) || name == "idv_session" && c.Name == "__Host-idv_session" {
			if c.MaxAge >= 0 && c.Value != "" {
				return c
			}
		}
	}
	t.Fatalf("no cookie %s in %q", name, a.header["Set-Cookie"])
	return nil
}

// fwdDiscovery fails t unless a is the discovery document unchanged, with
// the configured issuer and every endpoint on it.
func fwdDiscovery(t *testing.T, a, baseline answer, issuer string) {
	t.Helper()
	want(t, a, http.StatusOK)
	if !bytes.Equal(a.body, baseline.body) || a.header.Get("ETag") != baseline.header.Get("ETag") {
		t.Fatalf("discovery changed with the request:\n%s\nwas\n%s", a.body, baseline.body)
	}
	var doc map[string]any
	if err := json.Unmarshal(a.body, &doc); err != nil || doc["issuer"] != issuer {
		t.Fatalf("issuer %v; want %s", doc["issuer"], issuer)
	}
	for k, v := range doc {
		if s, ok := v.(string); ok && strings.HasSuffix(k, "_endpoint") && !strings.HasPrefix(s, issuer+"/.idv/oidc/") {
			t.Fatalf("%s is %q", k, s)
		}
	}
}

// fwdBrowser is a browser that adds headers to every request.
type fwdBrowser struct {
	b   *e2e.Browser
	hdr map[string]string
}

func (f fwdBrowser) do(t *testing.T, method, rawURL string, body *bytes.Reader, more map[string]string) answer {
	t.Helper()
	h := map[string]string{}
	for k, v := range f.hdr {
		h[k] = v
	}
	for k, v := range more {
		h[k] = v
	}
	if body == nil {
		return do(t, f.b, method, rawURL, nil, h)
	}
	return do(t, f.b, method, rawURL, body, h)
}

func (f fwdBrowser) start(t *testing.T, s *suite) e2e.Started {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"provider": "demo", "rd": "/"})
	a := f.do(t, http.MethodPost, s.url("/.idv/sessions"), bytes.NewReader(body), map[string]string{"Content-Type": "application/json"})
	want(t, a, http.StatusCreated)
	return fwdStarted(t, a)
}

// fwdCodeFlow runs the authorization code flow for the app client with
// b's session, every request with hdr, and returns the token answer.
func fwdCodeFlow(t *testing.T, s *suite, b *e2e.Browser, hdr map[string]string) map[string]string {
	t.Helper()
	q := url.Values{"client_id": {"app"}, "response_type": {"code"}, "scope": {"openid profile"}, "state": {"st"}, "redirect_uri": {s.rp + "/callback"}}
	a := do(t, b, http.MethodGet, s.url("/.idv/oidc/authorize?"+q.Encode()), nil, hdr)
	want(t, a, http.StatusFound)
	u, err := url.Parse(a.header.Get("Location"))
	if err != nil || u.Query().Get("code") == "" {
		t.Fatalf("authorize: Location %q", a.header.Get("Location"))
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {s.rp + "/callback"}}
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for k, v := range hdr {
		h[k] = v
	}
	req := request(t, http.MethodPost, s.url("/.idv/oidc/token"), strings.NewReader(form.Encode()), h)
	req.SetBasicAuth("app", s.secret)
	a = send(t, plain(), req)
	want(t, a, http.StatusOK)
	var out map[string]any
	if err := json.Unmarshal(a.body, &out); err != nil {
		t.Fatal(err)
	}
	res := map[string]string{}
	for k, v := range out {
		res[k] = fmt.Sprint(v)
	}
	return res
}

// fwdSiteLogin logs in at a `site https://app.example` suite as the
// TLS-terminating proxy would pass the browser's requests (over http,
// cookies by hand: a cookie jar sends no Secure cookie over http), with
// hdr on every request, and returns the session cookie and the claims of
// its token.
func fwdSiteLogin(t *testing.T, ss *suite, hdr map[string]string) (*http.Cookie, map[string]any) {
	t.Helper()
	h := func(more map[string]string) map[string]string {
		out := map[string]string{"Origin": "https://app.example", "Sec-Fetch-Site": "same-origin"}
		for k, v := range hdr {
			out[k] = v
		}
		for k, v := range more {
			out[k] = v
		}
		return out
	}
	a := send(t, plain(), request(t, http.MethodPost, ss.url("/.idv/sessions"), jsonBody(map[string]string{"provider": "demo"}), h(map[string]string{"Content-Type": "application/json"})))
	want(t, a, http.StatusCreated)
	st := fwdStarted(t, a)
	pending := fwdCookie(t, a, "idv_session_login_")
	st.QRText = ss.url("/.idv/demo/wallet/" + st.ID)
	ss.approve(t, st)
	a = send(t, plain(), request(t, http.MethodGet, ss.url(st.StatusURL+"?wait=10"), nil, h(map[string]string{"Cookie": pending.Name + "=" + pending.Value})))
	want(t, a, http.StatusOK)
	c := fwdCookie(t, a, "idv_session")
	a = send(t, plain(), request(t, http.MethodGet, ss.url("/.idv/token"), nil, h(map[string]string{"Cookie": c.Name + "=" + c.Value})))
	want(t, a, http.StatusOK)
	var out struct{ Token string }
	if err := json.Unmarshal(a.body, &out); err != nil {
		t.Fatal(err)
	}
	return c, claimsOf(t, out.Token)
}

// fwdNamedSuite is a site with a host name, app.localhost, beside the
// suite's 127.0.0.1 on the same port: Host name tricks need a name.
func fwdNamedSuite(t *testing.T) *suite {
	t.Helper()
	ns := &suite{storage: t.TempDir(), secret: appSecret, rp: "https://app.example"}
	ns.up = newUpstream(t)
	port := e2e.FreePort(t)
	ns.inst = e2e.Start(t, `
	respond "not this site" 404
`, e2e.Options{Storage: ns.storage, Port: port, Extra: fmt.Sprintf(`http://app.localhost:%d {
	idv {
		provider demo
	}
	reverse_proxy %s
}`, port, strings.TrimPrefix(ns.up.URL, "http://"))})
	t.Cleanup(func() { ns.checkLogs(t) })
	return ns
}
