package oidc_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/oidc"
	"github.com/caddy-idv/caddy-idv/store"
	"github.com/caddy-idv/caddy-idv/token"
)

const cookieName = "test_session"

// clock is an injectable clock that tests advance.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

type loginCall struct{ ReturnTo, Provider string }

// fakeHost maps a test cookie to a session, records logins and logouts.
type fakeHost struct {
	mu       sync.Mutex
	sessions map[string]*token.Session
	logins   []loginCall
	ended    []string
	acr      map[string]string
	// revoked is the session revocation check, as the module's session
	// verification makes it.
	revoked func(sid string) bool
}

func (h *fakeHost) Session(r *http.Request) *token.Session {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	h.mu.Lock()
	s := h.sessions[c.Value]
	h.mu.Unlock()
	if s == nil || h.revoked != nil && h.revoked(s.SID) {
		return nil
	}
	return s
}

func (h *fakeHost) LoginURL(returnTo, provider string) string {
	h.mu.Lock()
	h.logins = append(h.logins, loginCall{returnTo, provider})
	h.mu.Unlock()
	u := "/.idv/login?rd=" + url.QueryEscape(returnTo)
	if provider != "" {
		u += "&provider=" + url.QueryEscape(provider)
	}
	return u
}

func (h *fakeHost) EndSession(w http.ResponseWriter, r *http.Request) error {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.sessions[c.Value]; s != nil {
		h.ended = append(h.ended, s.SID)
		delete(h.sessions, c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1})
	return nil
}

func (h *fakeHost) ProviderForACR(acr string) (string, bool) {
	p, ok := h.acr[acr]
	return p, ok
}

func (h *fakeHost) ACRValues() []string {
	var out []string
	for acr := range h.acr {
		out = append(out, acr)
	}
	return out
}

func (h *fakeHost) RenderError(w http.ResponseWriter, r *http.Request, status int, message string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<p>ERROR: %s</p>", message)
}

func (h *fakeHost) lastLogin() loginCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.logins) == 0 {
		return loginCall{}
	}
	return h.logins[len(h.logins)-1]
}

func (h *fakeHost) endedSIDs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.ended...)
}

// env is a provider behind a real HTTP server on http://127.0.0.1.
type env struct {
	t        testing.TB
	clock    *clock
	store    *store.Memory
	revs     *store.Revocations
	tokens   *token.Service
	host     *fakeHost
	srv      *httptest.Server
	issuer   string
	provider *oidc.Provider
	browser  *http.Client
	n        atomic.Int64
}

const (
	spaRedirect  = "http://127.0.0.1/spa/callback"
	webRedirect  = "https://web.example/callback"
	web2Redirect = "https://other.example/cb"
	webLogout    = "https://web.example/bye"
)

const (
	webSecret = "s3cr3t:with/odd+chars"
	pw1Secret = "pw1-secret-0123456789"
	pw2Secret = "pw2-secret-0123456789"
)

func testClients() []oidc.Client {
	return []oidc.Client{
		{ID: "spa", RedirectURIs: []string{spaRedirect, "http://[::1]/native/cb"}},
		{ID: "web", Secret: webSecret, RedirectURIs: []string{webRedirect, "https://web.example/cb?tenant=1"}, PostLogoutRedirectURIs: []string{webLogout}},
		{ID: "pw1", Secret: pw1Secret, RedirectURIs: []string{webRedirect}, Subject: oidc.SubjectPairwise},
		{ID: "pw2", Secret: pw2Secret, RedirectURIs: []string{web2Redirect}, Subject: oidc.SubjectPairwise},
	}
}

// optionsHook lets a test change the provider's configuration and options
// before it is built.
type optionsHook struct {
	cfg  *oidc.Config
	opts *oidc.Options
	// logger, when set, replaces opts.Logger.
	logger *zap.Logger
}

func newEnv(t testing.TB) *env { return newEnvWith(t, nil) }

func newEnvWith(t testing.TB, hook func(*optionsHook)) *env {

	e := &env{t: t, clock: newClock(), host: &fakeHost{sessions: map[string]*token.Session{}, acr: map[string]string{
		"urn:caddy-idv:mobileid": "mobileid", "high": "mobileid",
	}}}
	e.store = store.NewMemory(e.clock.Now)
	keys := token.NewKeyring(e.store, 30*24*time.Hour, e.clock.Now)
	if err := keys.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.revs = store.NewRevocations(e.store, nil, e.clock.Now)
	e.host.revoked = e.revs.Revoked
	e.tokens = token.NewService(keys, e.revs.Revoked, e.clock.Now, 0)

	var handler atomic.Pointer[http.Handler]
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	e.issuer = e.srv.URL
	cfg := oidc.Config{Issuer: e.issuer, Clients: testClients()}
	opts := oidc.Options{
		Tokens: e.tokens, Store: e.store, Revocations: e.revs, Host: e.host,
		Prefix: "/.idv", Now: e.clock.Now, PairwiseSecret: []byte("0123456789abcdef0123456789abcdef"),
	}
	if hook != nil {
		oh := &optionsHook{cfg: &cfg, opts: &opts}
		hook(oh)
		if oh.logger != nil {
			opts.Logger = oh.logger
		}
	}
	p, err := oidc.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.provider = p
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.Handles(r.URL.Path) {
			p.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	})
	handler.Store(&h)
	jar, _ := cookiejar.New(nil)
	e.browser = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return e
}

// login gives the browser a caddy-idv session that logged in ago before now.
func (e *env) login(ago time.Duration, provider string) *token.Session {
	n := e.n.Add(1)
	now := e.clock.Now()
	s := &token.Session{
		Issuer: e.issuer, Subject: "EE38001085718", Audience: []string{e.issuer},
		ID: fmt.Sprintf("jti%d", n), SID: fmt.Sprintf("sid%d", n), Provider: provider,
		ACR: "urn:caddy-idv:" + provider, AMR: []string{"hwk", "user"},
		IssuedAt: now.Add(-ago), AuthTime: now.Add(-ago), Expiry: now.Add(8 * time.Hour),
		Claims: map[string]any{
			"iss": e.issuer, "sub": "EE38001085718", "sid": fmt.Sprintf("sid%d", n), "idv": provider,
			"name": "Mari Maasikas", "given_name": "Mari", "family_name": "Maasikas", "birthdate": "1980-01-08",
			"email": "mari@example.ee", "email_verified": true, "country": "EE",
		},
	}
	cookie := fmt.Sprintf("cookie%d", n)
	e.host.mu.Lock()
	e.host.sessions[cookie] = s
	e.host.mu.Unlock()
	u, _ := url.Parse(e.srv.URL)
	e.browser.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: cookie, Path: "/"}})
	return s
}

func (e *env) logoutBrowser() {
	jar, _ := cookiejar.New(nil)
	e.browser.Jar = jar
}

// get makes the browser GET u (absolute or a local path).
func (e *env) get(u string) *http.Response {
	e.t.Helper()
	if strings.HasPrefix(u, "/") {
		u = e.srv.URL + u
	}
	resp, err := e.browser.Get(u)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

func body(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// authorizeURL builds an authorization request by hand.
func (e *env) authorizeURL(params map[string]string) string {
	v := url.Values{}
	for k, val := range params {
		v.Set(k, val)
	}
	return e.issuer + "/.idv/oidc/authorize?" + v.Encode()
}

func challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-test-verifier"

// codeFor runs the authorize step for a logged-in browser and returns the code.
func (e *env) codeFor(clientID, redirectURI, scope string, extra map[string]string) string {
	e.t.Helper()
	params := map[string]string{
		"client_id": clientID, "redirect_uri": redirectURI, "response_type": "code", "scope": scope,
		"state": "st", "nonce": "nn", "code_challenge": challenge(verifier), "code_challenge_method": "S256",
	}
	for k, v := range extra {
		if v == "" {
			delete(params, k)
		} else {
			params[k] = v
		}
	}
	resp := e.get(e.authorizeURL(params))
	body(e.t, resp)
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("authorize: status %d", resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	if code == "" {
		e.t.Fatalf("authorize: no code in %s", loc)
	}
	return code
}

// tokenReq posts a form to the token endpoint.
func (e *env) tokenReq(form url.Values, basicUser, basicPass string) (int, map[string]any, http.Header) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/.idv/oidc/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicPass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	var out map[string]any
	_ = json.Unmarshal([]byte(body(e.t, resp)), &out)
	return resp.StatusCode, out, resp.Header
}

// exchange redeems a code for the public client spa.
func (e *env) exchangeSPA(code string) (int, map[string]any) {
	st, out, _ := e.tokenReq(url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {spaRedirect},
		"client_id": {"spa"}, "code_verifier": {verifier},
	}, "", "")
	return st, out
}

func (e *env) userinfo(accessToken string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/.idv/oidc/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	var out map[string]any
	_ = json.Unmarshal([]byte(body(e.t, resp)), &out)
	return resp.StatusCode, out
}
