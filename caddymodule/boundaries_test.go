package caddymodule

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"
)

// fakeIssuer is an OpenID Connect issuer on 127.0.0.1 (discovery and an
// RS256 key set) whose tokens a handler trusts with trust_issuer.
type fakeIssuer struct {
	srv *httptest.Server
	key *rsa.PrivateKey
}

func newFakeIssuer(t *testing.T) *fakeIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeIssuer{key: key}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": f.srv.URL, "jwks_uri": f.srv.URL + "/jwks",
				"id_token_signing_alg_values_supported": []string{"RS256"}})
		case "/jwks":
			e := big.NewInt(int64(key.E)).Bytes()
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
				"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()), "e": base64.RawURLEncoding.EncodeToString(e)}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIssuer) token(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"iss": f.srv.URL, "aud": "app", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
	for k, v := range claims {
		c[k] = v
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = "k1"
	raw, err := tok.SignedString(f.key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// serve runs one request through h and returns the status, the upstream's
// request headers (nil when it was not reached) and the response.
func serve(t *testing.T, h *Handler, r *http.Request, next caddyhttp.Handler) (*httptest.ResponseRecorder, http.Header, map[string]string) {
	t.Helper()
	r, repl := caddyRequest(r)
	var upstream http.Header
	placeholders := map[string]string{}
	if next == nil {
		next = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			upstream = r.Header.Clone()
			for _, k := range []string{"id", "idv", "sub", "acr"} {
				placeholders[k], _ = repl.GetString("http.auth.user." + k)
			}
			w.WriteHeader(http.StatusOK)
			return nil
		})
	}
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, next); err != nil {
		var he caddyhttp.HandlerError
		if asHandlerError(err, &he) {
			w.Code = he.StatusCode
		} else {
			t.Fatal(err)
		}
	}
	return w, upstream, placeholders
}

func asHandlerError(err error, he *caddyhttp.HandlerError) bool {
	e, ok := err.(caddyhttp.HandlerError)
	if ok {
		*he = e
	}
	return ok
}

// TestTrustedIssuerIdentitiesAreKeptApart: a trusted issuer's sub never
// equals a local subject, its idv/acr/amr never satisfy a rule meant for
// local sessions, and only a rule naming the issuer applies to its tokens.
func TestTrustedIssuerIdentitiesAreKeptApart(t *testing.T) {
	iss := newFakeIssuer(t)
	clk := &testClock{t: time.Now()}
	h := newTestHandler(t, clk, func(h *Handler) {
		h.TrustIssuers = []TrustIssuer{{Issuer: iss.srv.URL, Audience: "app"}}
		h.Headers = []HeaderRule{{Header: "X-User", Claim: "sub"}}
	})
	local := sessionToken(t, h, "app.example")
	foreign := iss.token(t, jwt.MapClaims{"sub": "demo-1", "idv": "demo", "acr": "urn:caddy-idv:demo", "groups": []string{"admins"}})
	bearer := func(raw string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://app.example/", nil)
		r.Header.Set("Authorization", "Bearer "+raw)
		return r
	}

	// No rules: both pass, with their own namespaces.
	w, up, ph := serve(t, h, bearer(foreign), nil)
	if w.Code != http.StatusOK {
		t.Fatalf("foreign token: %d", w.Code)
	}
	want := iss.srv.URL + "#demo-1"
	if up.Get("X-User") != want || ph["id"] != want || ph["sub"] != want || ph["idv"] != iss.srv.URL {
		t.Fatalf("foreign identity: X-User %q, placeholders %v", up.Get("X-User"), ph)
	}
	if _, up, ph := serve(t, h, bearer(local), nil); up.Get("X-User") != "demo-1" || ph["idv"] != "demo" {
		t.Fatalf("local identity: %q %v", up.Get("X-User"), ph)
	}

	// A rule for local sessions: the foreign token cannot satisfy it, even
	// though its own idv and acr claims say "demo".
	h.Require = []Requirement{{Claim: "idv", Values: []string{"demo"}}}
	if w, _, _ := serve(t, h, bearer(foreign), nil); w.Code != http.StatusForbidden {
		t.Fatalf("foreign token under a local rule: %d", w.Code)
	}
	h.Require = []Requirement{{Claim: "acr", Values: []string{"urn:caddy-idv:demo"}}}
	if w, _, _ := serve(t, h, bearer(foreign), nil); w.Code != http.StatusForbidden {
		t.Fatalf("foreign acr under a local rule: %d", w.Code)
	}
	if w, _, _ := serve(t, h, bearer(local), nil); w.Code != http.StatusOK {
		t.Fatalf("local token under a local rule: %d", w.Code)
	}

	// A rule naming the issuer applies to its tokens, beside the local one.
	h.Require = []Requirement{
		{Claim: "idv", Values: []string{"demo"}},
		{Claim: "groups", Values: []string{"admins"}, Issuer: iss.srv.URL},
	}
	if w, _, _ := serve(t, h, bearer(foreign), nil); w.Code != http.StatusOK {
		t.Fatalf("foreign token meeting its issuer's rule: %d", w.Code)
	}
	if w, _, _ := serve(t, h, bearer(local), nil); w.Code != http.StatusOK {
		t.Fatalf("local token beside an issuer's rule: %d", w.Code)
	}
	other := iss.token(t, jwt.MapClaims{"sub": "bob", "groups": []string{"staff"}})
	if w, _, _ := serve(t, h, bearer(other), nil); w.Code != http.StatusForbidden {
		t.Fatalf("foreign token failing its issuer's rule: %d", w.Code)
	}
}

// TestCookieTossing: a request that carries two session cookies is trusted
// only when exactly one verifies, and https sites default to a __Host-
// cookie that a sibling subdomain cannot set.
func TestCookieTossing(t *testing.T) {
	clk := &testClock{t: time.Now()}
	h := newTestHandler(t, clk, nil)
	victim, attacker := sessionToken(t, h, "app.example"), sessionToken(t, h, "app.example")
	req := func(cookies ...string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://app.example/", nil)
		r.Header.Set("Accept", "application/json")
		for _, c := range cookies {
			r.Header.Add("Cookie", "idv_session="+c)
		}
		return r
	}
	for name, c := range map[string]struct {
		cookies []string
		want    int
	}{
		"attacker's session first":      {[]string{attacker, victim}, http.StatusUnauthorized},
		"attacker's session second":     {[]string{victim, attacker}, http.StatusUnauthorized},
		"one valid beside a bad one":    {[]string{"garbage", victim}, http.StatusOK},
		"the same cookie twice":         {[]string{victim, victim}, http.StatusOK},
		"two that do not verify":        {[]string{"a.b.c", "garbage"}, http.StatusUnauthorized},
		"one valid (control)":           {[]string{victim}, http.StatusOK},
		"attacker's in one header line": {[]string{attacker + "; idv_session=" + victim}, http.StatusUnauthorized},
	} {
		t.Run(name, func(t *testing.T) {
			if w, _, _ := serve(t, h, req(c.cookies...), nil); w.Code != c.want {
				t.Fatalf("status %d, want %d", w.Code, c.want)
			}
		})
	}

	// The cookie's name.
	https := httptest.NewRequest(http.MethodGet, "https://app.example/", nil)
	https.TLS = &tls.ConnectionState{}
	plain := httptest.NewRequest(http.MethodGet, "http://app.example/", nil)
	if got := h.cookieName(https); got != "__Host-idv_session" {
		t.Errorf("https default cookie: %q", got)
	}
	if got := h.cookieName(plain); got != "idv_session" {
		t.Errorf("http default cookie: %q", got)
	}
	w := httptest.NewRecorder()
	h.setSessionCookie(w, https, victim, clk.now().Add(time.Hour))
	if c := w.Result().Cookies()[0]; c.Name != "__Host-idv_session" || c.Path != "/" || c.Domain != "" || !c.Secure {
		t.Errorf("__Host- cookie attributes: %+v", c)
	}
	shared := newTestHandler(t, clk, func(h *Handler) { h.Session = &SessionConfig{Domain: "example.com"} })
	if got := shared.cookieName(https); got != "idv_session" {
		t.Errorf("with session domain (a __Host- cookie cannot have one): %q", got)
	}
	named := newTestHandler(t, clk, func(h *Handler) { h.Session = &SessionConfig{Cookie: "app_sso"} })
	if got := named.cookieName(https); got != "app_sso" {
		t.Errorf("an explicit cookie name is kept: %q", got)
	}
}

// TestReissuedCookieIsNeverCached: when the gate re-issues a session cookie
// (sliding idle timeout) on an upstream response that says public, the
// response says no-store.
func TestReissuedCookieIsNeverCached(t *testing.T) {
	clk := &testClock{t: time.Now()}
	h := newTestHandler(t, clk, func(h *Handler) {
		h.Session = &SessionConfig{Idle: caddy.Duration(30 * time.Minute)}
	})
	raw := sessionToken(t, h, "app.example")
	clk.add(20 * time.Minute)
	cacheable := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Expires", "Thu, 01 Jan 2099 00:00:00 GMT")
		_, err := w.Write([]byte("shared page"))
		return err
	})
	r := httptest.NewRequest(http.MethodGet, "http://app.example/", nil)
	r.Header.Set("Cookie", "idv_session="+raw)
	w, _, _ := serve(t, h, r, cacheable)
	if len(w.Result().Cookies()) != 1 {
		t.Fatalf("no re-issued cookie: %v", w.Header())
	}
	if cc := w.Header().Values("Cache-Control"); len(cc) != 1 || cc[0] != "no-store" || w.Header().Get("Expires") != "" {
		t.Fatalf("Cache-Control %q, Expires %q", cc, w.Header().Get("Expires"))
	}
	if !strings.Contains(w.Body.String(), "shared page") {
		t.Fatalf("body %q", w.Body.String())
	}
	// Without a new cookie the upstream's caching is left alone.
	clk.add(-19 * time.Minute)
	fresh := sessionToken(t, h, "app.example")
	r = httptest.NewRequest(http.MethodGet, "http://app.example/", nil)
	r.Header.Set("Cookie", "idv_session="+fresh)
	if w, _, _ := serve(t, h, r, cacheable); w.Header().Get("Cache-Control") != "public, max-age=3600" {
		t.Fatalf("a response without a cookie: Cache-Control %q", w.Header().Get("Cache-Control"))
	}
}

// TestControlCharactersInIdentityClaims: a claim with CR/LF (a trusted
// issuer can send one) sent in an identity header is refused with 403,
// never passed on to break the upstream request (which answered 502).
func TestControlCharactersInIdentityClaims(t *testing.T) {
	iss := newFakeIssuer(t)
	clk := &testClock{t: time.Now()}
	h := newTestHandler(t, clk, func(h *Handler) {
		h.TrustIssuers = []TrustIssuer{{Issuer: iss.srv.URL, Audience: "app"}}
		h.Headers = []HeaderRule{{Header: "X-Name", Claim: "name"}}
	})
	for name, v := range map[string]string{"CRLF": "Ada\r\nX-Admin: 1", "LF": "Ada\nx", "NUL": "Ada\x00", "DEL": "Ada\x7f"} {
		r := httptest.NewRequest(http.MethodGet, "http://app.example/", nil)
		r.Header.Set("Authorization", "Bearer "+iss.token(t, jwt.MapClaims{"sub": "alice", "name": v}))
		if w, up, _ := serve(t, h, r, nil); w.Code != http.StatusForbidden || up != nil {
			t.Errorf("%s in a claim: %d, upstream reached: %v", name, w.Code, up != nil)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "http://app.example/", nil)
	r.Header.Set("Authorization", "Bearer "+iss.token(t, jwt.MapClaims{"sub": "alice", "name": "Ada\tLovelace"}))
	if w, up, _ := serve(t, h, r, nil); w.Code != http.StatusOK || up.Get("X-Name") != "Ada\tLovelace" {
		t.Errorf("a tab (allowed in header values): %d %q", w.Code, up.Get("X-Name"))
	}
}

// hostileIssuer serves discovery and a key set, counting key set fetches,
// and can answer with huge bodies.
type hostileIssuer struct {
	*fakeIssuer
	jwksFetches atomic.Int64
	hugeJWKS    atomic.Bool
	hugeDisc    atomic.Bool
}

func newHostileIssuer(t *testing.T) *hostileIssuer {
	h := &hostileIssuer{fakeIssuer: newFakeIssuer(t)}
	inner := h.srv.Config.Handler
	h.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/jwks":
			h.jwksFetches.Add(1)
			if h.hugeJWKS.Load() {
				w.Write([]byte(`{"keys":[` + strings.Repeat(`{"kty":"oct","k":"AAAA"},`, 100000) + `{}]}`))
				return
			}
		case h.hugeDisc.Load():
			w.Write([]byte(`{"issuer":"` + h.srv.URL + `","x":"` + strings.Repeat("a", 2<<20) + `"}`))
			return
		}
		inner.ServeHTTP(w, r)
	})
	return h
}

// TestTrustedIssuerIsTrustedOnlySoFar: bad signatures never make us fetch
// the issuer's key set, unknown kids at most once per 10 s, and discovery
// documents and key sets are read up to 1 MiB.
func TestTrustedIssuerIsTrustedOnlySoFar(t *testing.T) {
	iss := newHostileIssuer(t)
	clk := &testClock{t: time.Now()}
	h := newTestHandler(t, clk, func(h *Handler) {
		h.TrustIssuers = []TrustIssuer{{Issuer: iss.srv.URL, Audience: "app"}}
	})
	bearer := func(raw string) int {
		r := httptest.NewRequest(http.MethodGet, "http://app.example/", nil)
		r.Header.Set("Authorization", "Bearer "+raw)
		r.Header.Set("Accept", "application/json")
		w, _, _ := serve(t, h, r, nil)
		return w.Code
	}
	good := iss.token(t, jwt.MapClaims{"sub": "alice"})
	if code := bearer(good); code != http.StatusOK {
		t.Fatalf("a good token: %d", code)
	}
	if n := iss.jwksFetches.Load(); n != 1 {
		t.Fatalf("%d key set fetches for the first token", n)
	}
	parts := strings.Split(good, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[10] ^= 0xff
	forged := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	unknownKid := func(i int) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": iss.srv.URL, "aud": "app", "sub": "x", "exp": time.Now().Add(time.Hour).Unix()})
		tok.Header["kid"] = fmt.Sprintf("rotated-%d", i)
		s, _ := tok.SignedString(other)
		return s
	}
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": iss.srv.URL, "aud": "app", "sub": "x"}).SignedString([]byte("k"))
	short := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig[:40])
	for i := 0; i < 50; i++ {
		for _, tok := range []string{forged, unknownKid(i), hs, short} {
			if code := bearer(tok); code != http.StatusUnauthorized {
				t.Fatalf("a bad token: %d", code)
			}
		}
	}
	if n := iss.jwksFetches.Load(); n > 2 {
		t.Fatalf("%d key set fetches after 200 bad tokens in under 10 s; want at most one more", n)
	}
	clk.add(11 * time.Second)
	bearer(unknownKid(99))
	if n := iss.jwksFetches.Load(); n > 3 {
		t.Fatalf("%d fetches", n)
	}

	// A key set of several MiB is refused, not read.
	iss.hugeJWKS.Store(true)
	clk.add(11 * time.Second)
	before := iss.jwksFetches.Load()
	if code := bearer(unknownKid(100)); code != http.StatusUnauthorized || iss.jwksFetches.Load() != before+1 {
		t.Fatalf("huge key set: %d", code)
	}
}

func TestTrustedIssuerHugeDiscoveryIsRefused(t *testing.T) {
	iss := newHostileIssuer(t)
	iss.hugeDisc.Store(true)
	clk := &testClock{t: time.Now()}
	h := newTestHandler(t, clk, func(h *Handler) {
		h.TrustIssuers = []TrustIssuer{{Issuer: iss.srv.URL, Audience: "app"}}
	})
	ti := h.trusted[0]
	if _, err := ti.get(context.Background()); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("a 2 MiB discovery document: %v", err)
	}
}

// TestSlowBodiesAreCutOff: a client that trickles a request body to the
// token endpoint or POST /sessions is cut off after the body timeout (it
// was held for more than 80 s).
func TestSlowBodiesAreCutOff(t *testing.T) {
	clk := &testClock{t: time.Now()}
	h := newTestHandler(t, clk, func(h *Handler) {
		h.bodyTimeout = 300 * time.Millisecond
		h.OIDC = &OIDCConfig{Issuer: "http://127.0.0.1", Clients: []OIDCClient{{ID: "app", Secret: "0123456789abcdef0123", RedirectURIs: []string{"http://127.0.0.1/cb"}}}}
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, _ = caddyRequest(r)
		if err := h.ServeHTTP(w, r, okHandler); err != nil {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	for _, path := range []string{"/.idv/oidc/token", "/.idv/sessions"} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		ct := "application/x-www-form-urlencoded"
		if path == "/.idv/sessions" {
			ct = "application/json"
		}
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\nContent-Length: 1000\r\n\r\n{", path, ct)
		start := time.Now()
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err == nil {
			resp.Body.Close()
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("%s: a trickled body held the connection for %v", path, took)
		}
	}
}

// TestShortBodyIsRefused: a POST /sessions whose body ends before its
// Content-Length (the client closed its side after a complete JSON object)
// got 502 provider_error: the decoder stopped at the object's end, and the
// short body had cancelled the context the provider was called with.
func TestShortBodyIsRefused(t *testing.T) {
	clk := &testClock{t: time.Now()}
	h := newTestHandler(t, clk, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, _ = caddyRequest(r)
		if err := h.ServeHTTP(w, r, okHandler); err != nil {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"provider":"demo"}`
	fmt.Fprintf(conn, "POST /.idv/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n%s", body)
	_ = conn.(*net.TCPConn).CloseWrite()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a body cut short: %d; want 400", resp.StatusCode)
	}
}

// FuzzPendingCookie: whatever a client puts in a pending cookie, it binds
// no login (only the module's own sealed values do) and never panics.
func FuzzPendingCookie(f *testing.F) {
	clk := &testClock{t: time.Now()}
	h := newTestHandler(f, clk, nil)
	f.Add("idv_session_login_AAAAAAAAAA", "AAAA")
	f.Add("idv_session_login_x", "")
	f.Fuzz(func(t *testing.T, name, value string) {
		if pl := h.openPending(name, value); pl != nil {
			t.Fatalf("a forged pending cookie opened: %+v", pl)
		}
	})
}
