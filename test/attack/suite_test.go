// Package attack_test is caddy-idv's attack suite: one named, table-driven
// test per class of attack, run against the real Caddy binary configured as
// an operator would (the demo provider, Mobile-ID against its fake gateway,
// the OpenID Connect provider, identity headers, a reverse proxy to a
// recording upstream).
//
// Every case is named after what it guards against, and every case must end
// in a clear 4xx or the documented answer: never a 5xx, a panic, a hang or
// a request that reaches the upstream when it must not. The runner checks
// those invariants for every request a case sends; the case checks the
// answer it expects. TestMain counts the cases per class and prints the
// table (go test -v ./test/attack, or ATTACK_TABLE=1), and fails a full
// run that has fewer cases than the suite is known to have.
package attack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
	"github.com/caddy-idv/caddy-idv/internal/leaktest"
	"github.com/caddy-idv/caddy-idv/providers/marksign/fakemarksign"
)

// minCases is how many named cases a full run has at least; a full run with
// fewer fails, so that the suite never shrinks unnoticed.
const minCases = 700

// tally counts the cases (and corpus payloads) of each class that ran.
var tally = struct {
	sync.Mutex
	cases    map[string]int
	payloads map[string]int
}{cases: map[string]int{}, payloads: map[string]int{}}

func TestMain(m *testing.M) { leaktest.VerifyTestMain(countingM{m}) }

// countingM runs the tests and then the report.
type countingM struct{ m *testing.M }

func (c countingM) Run() int {
	if code := c.m.Run(); code != 0 {
		return code
	}
	return report()
}

// report prints the table of classes and fails a full run (every class ran)
// with fewer than minCases cases.
func report() int {
	tally.Lock()
	defer tally.Unlock()
	classes := make([]string, 0, len(tally.cases))
	total, payloads := 0, 0
	for c, n := range tally.cases {
		classes = append(classes, c)
		total += n
		payloads += tally.payloads[c]
	}
	sort.Strings(classes)
	if testing.Verbose() || os.Getenv("ATTACK_TABLE") != "" {
		fmt.Println("| attack class | named cases | corpus payloads |")
		fmt.Println("|---|---:|---:|")
		for _, c := range classes {
			fmt.Printf("| %s | %d | %d |\n", c, tally.cases[c], tally.payloads[c])
		}
		fmt.Printf("| **total** | **%d** | **%d** |\n", total, payloads)
	}
	if len(classes) == len(allClasses) && total < minCases {
		fmt.Printf("attack suite: %d named cases, fewer than the %d it is known to have\n", total, minCases)
		return 1
	}
	return 0
}

// allClasses are the classes the suite has, one test function each.
var allClasses = []string{
	classRedirect, classCSRF, classHeaders, classHost, classForgery, classReplay,
	classBinding, classTossing, classOversize, classLimits, classHostile,
}

const (
	classRedirect = "open redirect"
	classCSRF     = "cross-site request forgery"
	classHeaders  = "identity header spoofing"
	classHost     = "Host and forwarded-header tricks"
	classForgery  = "token forgery and confusion"
	classReplay   = "replay (sessions, results, codes, refresh tokens)"
	classBinding  = "login binding and fixation"
	classTossing  = "cookie tossing"
	classOversize = "oversize and slow input"
	classLimits   = "abuse limits"
	classHostile  = "hostile providers and issuers"
)

// attack is one named case: what it guards against, and the requests that
// try it. A case fails the test through t; the runner adds the invariants.
type attack struct {
	name string
	run  func(t *testing.T)
}

// runClass runs every case of one class as a subtest and counts it. Case
// names must be unique within a class.
func runClass(t *testing.T, class string, attacks []attack) {
	t.Helper()
	seen := map[string]bool{}
	for _, a := range attacks {
		if seen[a.name] {
			t.Fatalf("%s: case %q twice", class, a.name)
		}
		seen[a.name] = true
	}
	for _, a := range attacks {
		t.Run(a.name, a.run)
	}
	tally.Lock()
	tally.cases[class] += len(attacks)
	tally.Unlock()
}

// countPayloads records how many corpus payloads a class tried.
func countPayloads(class string, n int) {
	tally.Lock()
	tally.payloads[class] += n
	tally.Unlock()
}

// suite is one Caddy configured with everything on, an upstream that
// records what reaches it, and the Mobile-ID fake gateway.
type suite struct {
	inst     *e2e.Instance
	storage  string
	up       *upstream
	gateway  *fakemarksign.Server
	secret   string // the confidential OIDC client's secret
	rp       string // the registered OIDC redirect origin
	keysOnce sync.Once
	key      *e2e.SigningKey
}

// options tune a suite for a class.
type options struct {
	global  string // more global options
	servers string // more lines in the global servers block (trusted_proxies, ...)
	idv     string // more lines inside the idv block
	limits  string // the idv block's limit block (default: high enough for every other class)
	mobile  string // more lines in the Mobile-ID provider's block
	env     []string
}

const appSecret = "app-secret-0123456789-abcdef"

// newSuite starts the suite's Caddy.
func newSuite(t *testing.T, o options) *suite {
	t.Helper()
	s := &suite{storage: t.TempDir(), secret: appSecret, rp: "https://app.example"}
	s.up = newUpstream(t)
	gw, err := fakemarksign.New(fakemarksign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.gateway = gw
	gsrv := httptest.NewServer(gw)
	t.Cleanup(gsrv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, gw.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	limits := o.limits
	if limits == "" {
		limits = "limit {\n\t\t\tper_address 100000 1m\n\t\t\ttotal 1000000 1m\n\t\t}"
	}
	site := `
	@protected not path /public/*
	idv @protected {
		provider demo {
			user "Ada Lovelace"
		}
		provider marksign_mobileid {
			base_url     ` + gsrv.URL + `
			access_token {env.MARKSIGN_TOKEN}
			trusted_ca   ` + ca + `
			claims       name
			` + o.mobile + `
		}
		header X-User sub
		header X-User-Name name
		` + limits + `
		oidc {
			issuer {url}
			client app {
				secret       {env.APP_SECRET}
				redirect_uri ` + s.rp + `/callback
				post_logout_redirect_uri ` + s.rp + `/bye
			}
			client spa {
				redirect_uri ` + s.rp + `/spa
			}
		}
		` + o.idv + `
	}
	metrics /public/metrics
	reverse_proxy ` + strings.TrimPrefix(s.up.URL, "http://") + `
`
	global := `servers {
		timeouts {
			read_header 5s
			read_body   10s
		}
		` + o.servers + `
	}
	` + o.global
	env := append([]string{"MARKSIGN_TOKEN=" + gw.AccessToken(), "APP_SECRET=" + appSecret}, o.env...)
	s.inst = e2e.Start(t, site, e2e.Options{Storage: s.storage, Global: global, Env: env})
	t.Cleanup(func() { s.checkLogs(t) })
	return s
}

// checkLogs fails t when Caddy logged a panic or an internal error, or has
// exited.
func (s *suite) checkLogs(t *testing.T) {
	logs := s.inst.Logs()
	for _, bad := range []string{"panic", "runtime error", "goroutine "} {
		if strings.Contains(logs, bad) {
			i := strings.Index(logs, bad)
			t.Errorf("caddy logged %q:\n%s", bad, logs[max(0, i-2000):min(len(logs), i+2000)])
		}
	}
}

// url is the instance's URL for path.
func (s *suite) url(path string) string { return s.inst.URL + path }

// answer is what came back for one request.
type answer struct {
	code   int
	header http.Header
	body   []byte
}

func (a answer) String() string {
	b := a.body
	if len(b) > 300 {
		b = b[:300]
	}
	return fmt.Sprintf("%d %s", a.code, b)
}

// maxWait is how long any single request of the suite may take (the
// longest legitimate one is a 30 s long-poll, which no case sends).
const maxWait = 20 * time.Second

// send sends req with client and checks the invariants every request
// shares: an answer within maxWait, never a 5xx. The body is read up to
// 1 MiB.
func send(t *testing.T, client *http.Client, req *http.Request) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), maxWait)
	defer cancel()
	req = req.WithContext(ctx)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: no answer after %v: %v", req.Method, req.URL, time.Since(start).Round(time.Millisecond), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", req.Method, req.URL, err)
	}
	a := answer{code: resp.StatusCode, header: resp.Header, body: body}
	if a.code >= 500 {
		t.Fatalf("%s %s: %v (a server error is never the answer to an attack)", req.Method, req.URL, a)
	}
	return a
}

// request builds a request; header values are set as given (Host and
// Cookie included).
func request(t *testing.T, method, rawURL string, body io.Reader, header map[string]string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	return req
}

// do sends a request with b (its cookies) and checks the invariants.
func do(t *testing.T, b *e2e.Browser, method, rawURL string, body io.Reader, header map[string]string) answer {
	t.Helper()
	req := request(t, method, rawURL, body, header)
	if b.Host != "" {
		req.Host = b.Host
	}
	return send(t, b.Client, req)
}

// plain is a client without cookies that does not follow redirects.
func plain() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// want fails t unless the answer has the status code.
func want(t *testing.T, a answer, code int) {
	t.Helper()
	if a.code != code {
		t.Fatalf("answer %v; want %d", a, code)
	}
}

// wantError fails t unless the answer has the status code and, for JSON,
// the error code.
func wantError(t *testing.T, a answer, code int, errorCode string) {
	t.Helper()
	want(t, a, code)
	if errorCode == "" {
		return
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(a.body, &e) != nil || e.Error != errorCode {
		t.Fatalf("answer %v; want error %q", a, errorCode)
	}
}

// jsonBody marshals v.
func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

// sameOrigin are the headers a same-origin fetch of the login page sends.
func (s *suite) sameOrigin() map[string]string {
	return map[string]string{"Origin": s.inst.URL, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}
}

// start starts a demo login with b (rd as given) and returns its answer.
func (s *suite) start(t *testing.T, b *e2e.Browser, rd string) e2e.Started {
	t.Helper()
	a := do(t, b, http.MethodPost, s.url("/.idv/sessions"), jsonBody(map[string]string{"provider": "demo", "rd": rd}), s.sameOrigin())
	want(t, a, http.StatusCreated)
	var st e2e.Started
	if err := json.Unmarshal(a.body, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// approve approves a demo login from another device.
func (s *suite) approve(t *testing.T, st e2e.Started) {
	t.Helper()
	a := do(t, e2e.NewBrowser(), http.MethodPost, st.QRText+"/approve", nil, map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	want(t, a, http.StatusSeeOther)
}

// poll asks for the login's state with b.
func (s *suite) poll(t *testing.T, b *e2e.Browser, st e2e.Started, wait int) (answer, e2e.Status) {
	t.Helper()
	a := do(t, b, http.MethodGet, s.url(fmt.Sprintf("%s?wait=%d", st.StatusURL, wait)), nil, nil)
	var out e2e.Status
	if a.code == http.StatusOK {
		if err := json.Unmarshal(a.body, &out); err != nil {
			t.Fatalf("status answer %v: %v", a, err)
		}
	}
	return a, out
}

// login walks a whole demo login with b and returns the redirect the
// completed login answered.
func (s *suite) login(t *testing.T, b *e2e.Browser, rd string) string {
	t.Helper()
	st := s.start(t, b, rd)
	s.approve(t, st)
	a, out := s.poll(t, b, st, 10)
	if a.code != http.StatusOK || out.State != "completed" {
		t.Fatalf("login: %v", a)
	}
	return out.Redirect
}

// loggedIn returns a browser with a session.
func (s *suite) loggedIn(t *testing.T) *e2e.Browser {
	t.Helper()
	b := e2e.NewBrowser()
	s.login(t, b, "/")
	return b
}

// sessionCookie is the session cookie b holds.
func (s *suite) sessionCookie(b *e2e.Browser) string { return b.Cookie(s.inst.URL, "idv_session") }

// bearer is the session token (JWT) of b's session, from /token.
func (s *suite) bearer(t *testing.T, b *e2e.Browser) string {
	t.Helper()
	a := do(t, b, http.MethodGet, s.url("/.idv/token"), nil, map[string]string{"Sec-Fetch-Site": "same-origin"})
	want(t, a, http.StatusOK)
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(a.body, &out); err != nil || strings.Count(out.Token, ".") != 2 {
		t.Fatalf("/token: %v", a)
	}
	return out.Token
}

// signingKey is the instance's newest session signing key, read from its
// storage as an attacker who can read the store could: tokens it signs are
// valid by signature, so a case tests every other check.
func (s *suite) signingKey(t *testing.T) *e2e.SigningKey {
	t.Helper()
	s.keysOnce.Do(func() { s.key = e2e.StealSigningKey(t, s.storage) })
	if s.key == nil {
		t.Fatal("no signing key")
	}
	return s.key
}

// claimsOf decodes the payload of a compact JWS without verifying it.
func claimsOf(t *testing.T, raw string) jwt.MapClaims {
	t.Helper()
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(raw, c); err != nil {
		t.Fatalf("token %q: %v", raw, err)
	}
	return c
}

// upstream is the protected application: it answers every request with
// what reached it, and remembers the paths it saw.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

// echo is what the upstream saw of a request.
type echo struct {
	Method  string      `json:"method"`
	Path    string      `json:"path"`
	Header  http.Header `json:"header"`
	Trailer http.Header `json:"trailer"`
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		u.mu.Lock()
		u.seen = append(u.seen, r.URL.Path)
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echo{Method: r.Method, Path: r.URL.Path, Header: r.Header, Trailer: r.Trailer})
	}))
	t.Cleanup(u.Close)
	return u
}

// reached reports whether the upstream saw path.
func (u *upstream) reached(path string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Contains(u.seen, path)
}

// echoOf decodes the upstream's echo from an answer that reached it.
func echoOf(t *testing.T, a answer) echo {
	t.Helper()
	var e echo
	if a.code != http.StatusOK || json.Unmarshal(a.body, &e) != nil || e.Method == "" {
		t.Fatalf("answer %v did not come from the upstream", a)
	}
	return e
}

// assertLocal fails t unless target, a redirect target the server chose,
// stays on the site when a browser resolves it against base (the site),
// also after repeated percent-decoding.
func assertLocal(t *testing.T, base, target, payload string) {
	t.Helper()
	b, _ := url.Parse(base + "/.idv/login")
	u, err := b.Parse(target)
	if err != nil {
		t.Fatalf("payload %q: redirect %q does not parse", payload, target)
	}
	if u.Scheme != b.Scheme || u.Host != b.Host {
		t.Fatalf("payload %q: redirect %q leaves the site (%s)", payload, target, u)
	}
	cur := target
	for i := 0; i < 5; i++ {
		if !strings.HasPrefix(cur, "/") || strings.HasPrefix(cur, "//") || strings.HasPrefix(cur, "/\\") || strings.ContainsAny(cur, "\t\r\n \\") {
			t.Fatalf("payload %q: redirect %q is not a plain local path", payload, target)
		}
		next, err := url.PathUnescape(cur)
		if err != nil || next == cur {
			return
		}
		cur = next
	}
}

// metric is the value of an unlabelled series of the instance's metrics
// (0 when absent).
func (s *suite) metric(t *testing.T, name string) float64 {
	t.Helper()
	a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/public/metrics"), nil, nil)
	want(t, a, http.StatusOK)
	for _, line := range strings.Split(string(a.body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return 0
}
