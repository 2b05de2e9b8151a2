package uqudo

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/providers/uqudo/fakeuqudo"
	"github.com/caddy-idv/caddy-idv/store"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type harness struct {
	t     *testing.T
	clock *clock
	fake  *fakeuqudo.Server
	srv   *httptest.Server
	p     *provider
	logs  *observer.ObservedLogs
}

func newHarness(t *testing.T, opts fakeuqudo.Options, edit func(*Config)) *harness {
	t.Helper()
	clk := &clock{t: time.Now().Truncate(time.Second)}
	opts.Now = clk.Now
	fake, err := fakeuqudo.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	cfg := &Config{ClientID: fake.ClientID(), ClientSecret: fake.ClientSecret()}
	cfg.BaseURL = srv.URL
	if edit != nil {
		edit(cfg)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	client := &http.Client{Timeout: 2 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	impl, err := cfg.Open(providers.Env{
		Name: "uqudo", Store: store.NewMemory(clk.Now), Logger: zap.New(core), HTTP: client, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, clock: clk, fake: fake, srv: srv, p: impl.(*provider), logs: logs}
	t.Cleanup(h.checkLogs)
	return h
}

// checkLogs fails when an operator log line holds personal data or secrets.
func (h *harness) checkLogs() {
	_, qr := h.fake.LastSession()
	secrets := []string{"CASOLA", "MARIO", "YA1234567", h.fake.ClientSecret()}
	if qr != "" {
		secrets = append(secrets, qr)
	}
	for _, e := range h.logs.All() {
		line := e.Message
		for _, f := range e.Context {
			line += " " + f.String
			if f.Interface != nil {
				if err, ok := f.Interface.(error); ok {
					line += " " + err.Error()
				}
			}
		}
		for _, s := range secrets {
			if strings.Contains(line, s) {
				h.t.Errorf("log line %q contains %q", line, s)
			}
		}
	}
}

func (h *harness) start() (providers.Login, string) {
	h.t.Helper()
	ch, err := h.p.Start(context.Background(), providers.StartRequest{ID: "login-0123456789abcdef"})
	if err != nil {
		h.t.Fatalf("Start: %v", err)
	}
	id, _ := h.fake.LastSession()
	if ch.QRText == "" || ch.DeepLink == "" || !strings.Contains(ch.QRText, "/fake/phone/") {
		h.t.Fatalf("challenge without QR link: %+v", ch)
	}
	if want := h.clock.Now().Add(DefaultLifetime); !ch.ExpiresAt.Equal(want) {
		h.t.Fatalf("ExpiresAt = %v, want %v", ch.ExpiresAt, want)
	}
	return providers.Login{ID: "login-0123456789abcdef", State: ch.State, CreatedAt: h.clock.Now(), ExpiresAt: ch.ExpiresAt}, id
}

func (h *harness) poll(login providers.Login) (*providers.Result, error) {
	return providers.ResultOf(h.p.Poll(context.Background(), login))
}

func TestHappyPath(t *testing.T) {
	h := newHarness(t, fakeuqudo.Options{}, func(c *Config) { c.Claims = []string{"name", "birthdate", "gender", "document_number"} })
	login, id := h.start()
	res, err := h.poll(login)
	if err != nil || res.State != providers.Pending {
		t.Fatalf("first poll = %+v, %v; want pending", res, err)
	}
	if err := h.fake.Complete(id, fakeuqudo.Result{}); err != nil {
		t.Fatal(err)
	}
	res, err = h.poll(login)
	if err != nil || res.State != providers.Completed {
		t.Fatalf("poll = %+v, %v; want completed", res, err)
	}
	idt := res.Identity
	if !strings.HasPrefix(idt.Subject, "uqudo:") || len(idt.Subject) != len("uqudo:")+22 {
		t.Errorf("sub = %q", idt.Subject)
	}
	want := map[string]any{"name": "MARIO CASOLA", "birthdate": "1980-08-25", "gender": "male", "document_number": "YA1234567"}
	for k, v := range want {
		if idt.Claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, idt.Claims[k], v)
		}
	}
	if _, ok := idt.Claims["given_name"]; ok {
		t.Errorf("given_name present though not listed")
	}
	if idt.ACR != "urn:idv:uqudo:chip+face" || len(idt.AMR) != 1 || idt.AMR[0] != "face" {
		t.Errorf("acr/amr = %q %v", idt.ACR, idt.AMR)
	}
	if h.fake.HasResult(id) || h.fake.SessionAlive(id) {
		t.Errorf("result or session not deleted at uqudo after reading")
	}
	if n := h.fake.Count(fakeuqudo.RouteToken); n != 1 {
		t.Errorf("token fetched %d times, want 1 (cached)", n)
	}
}

func TestDefaultClaimsHoldNoDocumentData(t *testing.T) {
	h := newHarness(t, fakeuqudo.Options{}, nil)
	login, id := h.start()
	p := fakeuqudo.DefaultPerson
	p.IdentityNumber = "784-1980-1234567-1"
	if err := h.fake.Complete(id, fakeuqudo.Result{Person: &p, NoChip: true}); err != nil {
		t.Fatal(err)
	}
	res, err := h.poll(login)
	if err != nil || res.State != providers.Completed {
		t.Fatalf("poll = %+v, %v", res, err)
	}
	for _, k := range []string{"document_number", "national_id", "document_type", "gender"} {
		if _, ok := res.Identity.Claims[k]; ok {
			t.Errorf("claim %s present without being listed", k)
		}
	}
	if res.Identity.ACR != "urn:idv:uqudo:scan+face" {
		t.Errorf("acr = %q", res.Identity.ACR)
	}
	if res.Identity.Claims["given_name"] != "MARIO" || res.Identity.Claims["family_name"] != "CASOLA" {
		t.Errorf("claims = %v", res.Identity.Claims)
	}
}

func TestSubjectIsStable(t *testing.T) {
	h := newHarness(t, fakeuqudo.Options{}, nil)
	var subs []string
	for range 2 {
		login, id := h.start()
		if err := h.fake.Complete(id, fakeuqudo.Result{}); err != nil {
			t.Fatal(err)
		}
		res, err := h.poll(login)
		if err != nil || res.State != providers.Completed {
			t.Fatalf("poll = %+v, %v", res, err)
		}
		subs = append(subs, res.Identity.Subject)
	}
	if subs[0] != subs[1] {
		t.Errorf("sub changed between logins: %v", subs)
	}
}

// TestBadResults has one case per attack on the result
// (docs/providers/uqudo.md, "The fake"); each must fail closed, be deleted
// at uqudo and say
// something to the person.
func TestBadResults(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name   string
		result fakeuqudo.Result
		want   providers.State
	}{
		{"jti is another session", fakeuqudo.Result{JTI: "00000000-0000-4000-8000-000000000000"}, providers.Failed},
		{"audience is another client", fakeuqudo.Result{Audience: "someone-else"}, providers.Failed},
		{"issuer is not uqudo", fakeuqudo.Result{Issuer: "https://evil.example"}, providers.Failed},
		{"expired JWS", fakeuqudo.Result{IssuedAt: now.Add(-3 * time.Hour), Lifetime: time.Hour}, providers.Expired},
		{"issued in the future", fakeuqudo.Result{IssuedAt: now.Add(time.Hour)}, providers.Failed},
		{"alg none", fakeuqudo.Result{Alg: "none"}, providers.Failed},
		{"alg HS256 keyed with a public value", fakeuqudo.Result{Alg: "HS256"}, providers.Failed},
		{"signature by another key under the published kid", fakeuqudo.Result{WrongKey: true}, providers.Failed},
		{"payload tampered after signing", fakeuqudo.Result{Tamper: true}, providers.Failed},
		{"not a JWS", fakeuqudo.Result{Raw: "{\"hello\":\"world\"}"}, providers.Failed},
		{"face did not match", fakeuqudo.Result{FaceMismatch: true}, providers.Failed},
		{"document type not requested", fakeuqudo.Result{DocumentType: "DRIVING_LICENSE"}, providers.Failed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, fakeuqudo.Options{}, nil)
			h.clock.t = now
			login, id := h.start()
			if err := h.fake.Complete(id, tc.result); err != nil {
				t.Fatal(err)
			}
			raw, rawErr := h.p.Poll(context.Background(), login)
			// A rejection, with a reason for the operator's log (the
			// module writes it).
			var rej *providers.Reject
			if !errors.As(rawErr, &rej) || rej.Reason == "" {
				t.Errorf("poll = %+v, %v; want a *providers.Reject with a reason", raw, rawErr)
			}
			res, err := providers.ResultOf(raw, rawErr)
			if err != nil {
				t.Fatalf("poll error %v; want a %s result", err, tc.want)
			}
			if res.State != tc.want || res.Message == "" || res.Identity != nil {
				t.Fatalf("poll = %+v; want %s with a message", res, tc.want)
			}
			if h.fake.HasResult(id) {
				t.Errorf("rejected result not deleted at uqudo")
			}
		})
	}
}

func TestReplayedResult(t *testing.T) {
	t.Run("same JWS delivered twice", func(t *testing.T) {
		h := newHarness(t, fakeuqudo.Options{KeepResults: true}, nil)
		login, id := h.start()
		if err := h.fake.Complete(id, fakeuqudo.Result{}); err != nil {
			t.Fatal(err)
		}
		if res, err := h.poll(login); err != nil || res.State != providers.Completed {
			t.Fatalf("first poll = %+v, %v", res, err)
		}
		res, err := h.poll(login)
		if !errors.Is(err, providers.ErrConsumed) || res != nil {
			t.Fatalf("replayed poll = %+v, %v; want ErrConsumed", res, err)
		}
	})
	t.Run("JWS of another session", func(t *testing.T) {
		h := newHarness(t, fakeuqudo.Options{}, nil)
		_, first := h.start()
		if err := h.fake.Complete(first, fakeuqudo.Result{}); err != nil {
			t.Fatal(err)
		}
		login, second := h.start()
		h.fake.SetResult(second, h.fake.ResultJWS(first))
		res, err := h.poll(login)
		if err != nil || res.State != providers.Failed {
			t.Fatalf("poll = %+v, %v; want failed", res, err)
		}
	})
}

func TestKeyRotation(t *testing.T) {
	h := newHarness(t, fakeuqudo.Options{}, nil)
	login, id := h.start()
	if err := h.fake.Complete(id, fakeuqudo.Result{}); err != nil {
		t.Fatal(err)
	}
	if res, err := h.poll(login); err != nil || res.State != providers.Completed {
		t.Fatalf("poll = %+v, %v", res, err)
	}
	login, id = h.start()
	if err := h.fake.Complete(id, fakeuqudo.Result{UnknownKid: true}); err != nil {
		t.Fatal(err)
	}
	h.fake.PublishKeys()
	// The JWKS was fetched a moment ago: wait (a transient error) rather
	// than fail.
	if res, err := h.poll(login); err == nil {
		t.Fatalf("poll within 10 s of the last JWKS fetch = %+v; want a transient error", res)
	}
	if n := h.fake.Count(fakeuqudo.RouteJWKS); n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", n)
	}
	// A result signed with uqudo's new key completes at most 10 s after
	// the last fetch (plus one poll interval), not a minute.
	h.clock.Add(9 * time.Second)
	if _, err := h.poll(login); err == nil {
		t.Fatal("refetched the JWKS within 10 s of the last fetch")
	}
	h.clock.Add(2 * time.Second)
	res, err := h.poll(login)
	if err != nil || res.State != providers.Completed {
		t.Fatalf("poll after refetch = %+v, %v", res, err)
	}
	if n := h.fake.Count(fakeuqudo.RouteJWKS); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2", n)
	}
}

func TestUnknownKidNeverPublished(t *testing.T) {
	h := newHarness(t, fakeuqudo.Options{}, nil)
	login, id := h.start()
	if err := h.fake.Complete(id, fakeuqudo.Result{UnknownKid: true}); err != nil {
		t.Fatal(err)
	}
	res, err := h.poll(login)
	if err != nil || res.State != providers.Failed {
		t.Fatalf("poll = %+v, %v; want failed", res, err)
	}
}

// TestTransient: provider trouble keeps the login pending (an error), and
// the login completes once uqudo is back.
func TestTransient(t *testing.T) {
	cases := []struct {
		name  string
		route string
		fault fakeuqudo.Fault
	}{
		{"info 500", fakeuqudo.RouteInfo, fakeuqudo.Fault{Status: 500, Body: "oops", Times: 1}},
		{"info 503", fakeuqudo.RouteInfo, fakeuqudo.Fault{Status: 503, Times: 1}},
		{"info slower than the timeout", fakeuqudo.RouteInfo, fakeuqudo.Fault{Delay: 3 * time.Second, Times: 1}},
		{"info token refused", fakeuqudo.RouteInfo, fakeuqudo.Fault{Status: 401, Times: 1}},
		{"jwks 500", fakeuqudo.RouteJWKS, fakeuqudo.Fault{Status: 500, Times: 1}},
		{"jwks malformed", fakeuqudo.RouteJWKS, fakeuqudo.Fault{Body: "{\"keys\":[", Times: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, fakeuqudo.Options{}, nil)
			login, id := h.start()
			if err := h.fake.Complete(id, fakeuqudo.Result{}); err != nil {
				t.Fatal(err)
			}
			h.fake.Fail(tc.route, tc.fault)
			if res, err := h.poll(login); err == nil {
				t.Fatalf("poll = %+v; want a transient error", res)
			}
			if !h.fake.HasResult(id) {
				t.Fatalf("result deleted although it was not processed")
			}
			// A failed JWKS fetch does not count against the refetch limit.
			res, err := h.poll(login)
			if err != nil || res.State != providers.Completed {
				t.Fatalf("poll after recovery = %+v, %v", res, err)
			}
		})
	}
}

func TestStartFailures(t *testing.T) {
	cases := []struct {
		name  string
		route string
		fault fakeuqudo.Fault
		edit  func(*Config)
	}{
		{"create 500", fakeuqudo.RouteCreate, fakeuqudo.Fault{Status: 500}, nil},
		{"create malformed JSON", fakeuqudo.RouteCreate, fakeuqudo.Fault{Body: "{\"sessionId\":"}, nil},
		{"create without session id", fakeuqudo.RouteCreate, fakeuqudo.Fault{Body: `{"sessionId":"../../x","qrCodeText":"q"}`}, nil},
		{"create slow", fakeuqudo.RouteCreate, fakeuqudo.Fault{Delay: 3 * time.Second}, nil},
		{"token 500", fakeuqudo.RouteToken, fakeuqudo.Fault{Status: 500}, nil},
		{"wrong client secret", "", fakeuqudo.Fault{}, func(c *Config) { c.ClientSecret = "wrong" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, fakeuqudo.Options{}, tc.edit)
			if tc.route != "" {
				h.fake.Fail(tc.route, tc.fault)
			}
			ch, err := h.p.Start(context.Background(), providers.StartRequest{ID: "login-0123456789abcdef"})
			if err == nil || providers.IsInputError(err) {
				t.Fatalf("Start = %+v, %v; want a provider error", ch, err)
			}
			if strings.Contains(err.Error(), h.fake.ClientSecret()) {
				t.Errorf("error quotes the secret: %v", err)
			}
		})
	}
}

func TestExpiryDeletesSession(t *testing.T) {
	h := newHarness(t, fakeuqudo.Options{}, nil)
	login, id := h.start()
	h.clock.Add(DefaultLifetime)
	res, err := h.poll(login)
	if err != nil || res.State != providers.Expired {
		t.Fatalf("poll = %+v, %v; want expired", res, err)
	}
	if h.fake.SessionAlive(id) {
		t.Errorf("QR session still alive at uqudo")
	}
}

func TestCancel(t *testing.T) {
	h := newHarness(t, fakeuqudo.Options{}, nil)
	login, id := h.start()
	if err := h.p.Cancel(context.Background(), login); err != nil {
		t.Fatal(err)
	}
	if h.fake.SessionAlive(id) {
		t.Errorf("QR session still alive after Cancel")
	}
	if h.fake.Count(fakeuqudo.RouteDeleteInfo) != 1 {
		t.Errorf("cached result not deleted")
	}
	if err := h.p.Cancel(context.Background(), providers.Login{State: []byte("junk")}); err == nil {
		t.Errorf("Cancel of junk state succeeded")
	}
}

func TestBadState(t *testing.T) {
	h := newHarness(t, fakeuqudo.Options{}, nil)
	for _, st := range []string{"", "null", `{"s":"../x","q":"q"}`, `{"s":"00000000-0000-4000-8000-000000000000"}`} {
		res, err := h.poll(providers.Login{ID: "x", State: []byte(st), ExpiresAt: h.clock.Now().Add(time.Minute)})
		if err != nil || res.State != providers.Failed {
			t.Errorf("state %q: poll = %+v, %v; want failed", st, res, err)
		}
	}
}

func TestQRText(t *testing.T) {
	h := newHarness(t, fakeuqudo.Options{}, func(c *Config) { c.QR = "text" })
	ch, err := h.p.Start(context.Background(), providers.StartRequest{ID: "login-0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	_, qr := h.fake.LastSession()
	if ch.QRText != qr || !strings.Contains(ch.DeepLink, qr) {
		t.Errorf("qr text = %q, deep link %q", ch.QRText, ch.DeepLink)
	}
}

func TestSecretPlaceholder(t *testing.T) {
	t.Setenv("UQUDO_TEST_SECRET", "fake-secret")
	h := newHarness(t, fakeuqudo.Options{}, func(c *Config) { c.ClientSecret = "{env.UQUDO_TEST_SECRET}" })
	h.start()
}

func TestEndpoints(t *testing.T) {
	c := &Config{}
	c.BaseURL = "http://127.0.0.1:9"
	ep, err := c.resolve()
	if err != nil {
		t.Fatal(err)
	}
	want := endpoints{
		token: "http://127.0.0.1:9/api/oauth/token", session: "http://127.0.0.1:9/api/v1/session",
		info: "http://127.0.0.1:9/api/v1/info", jwks: "http://127.0.0.1:9/api/.well-known/jwks.json",
	}
	if ep != want {
		t.Errorf("with base_url: %+v, want %+v", ep, want)
	}
	c = &Config{APIURL: "https://tenant.example/", WSURL: "wss://ws.example/ws/v1/session"}
	ep, _ = c.resolve()
	if ep.info != "https://tenant.example/api/v1/info" || ep.session != "https://ws.example/api/v1/session" || ep.token != DefaultAuthURL {
		t.Errorf("without base_url: %+v", ep)
	}
}

func TestCaddyfile(t *testing.T) {
	data := base64.StdEncoding.EncodeToString([]byte(`{"documents":[{"documentType":"ID"}]}`))
	cases := []struct {
		name, in, errHas string
	}{
		{"complete", "uqudo main {\n client_id c\n client_secret {env.S}\n data " + data + "\n lifetime 2m\n qr text\n base_url http://127.0.0.1:1\n claims name document_number\n}", ""},
		{"missing client_id", "uqudo {\n client_secret s\n}", "client_id"},
		{"missing client_secret", "uqudo {\n client_id c\n}", "client_secret"},
		{"unknown option", "uqudo {\n client_id c\n client_secret s\n colour blue\n}", `unknown option "colour"`},
		{"data not base64", "uqudo {\n client_id c\n client_secret s\n data !!!\n}", "base64"},
		{"data not JSON", "uqudo {\n client_id c\n client_secret s\n data " + base64.StdEncoding.EncodeToString([]byte("nope")) + "\n}", "JSON"},
		{"lifetime beyond uqudo's session", "uqudo {\n client_id c\n client_secret s\n lifetime 31m\n}", "lifetime"},
		{"bad qr", "uqudo {\n client_id c\n client_secret s\n qr png\n}", "qr"},
		{"relative api_url", "uqudo {\n client_id c\n client_secret s\n api_url /x\n}", "api_url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			err := c.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
			if tc.errHas == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Name != "main" || c.ClientSecret != "{env.S}" || time.Duration(c.Lifetime) != 2*time.Minute || len(c.Claims) != 2 {
					t.Errorf("parsed %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("err = %v; want it to mention %q", err, tc.errHas)
			}
		})
	}
}

func TestBirthdateCentury(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]string{"800825": "1980-08-25", "100101": "2010-01-01", "300101": "1930-01-01", "991399": ""} {
		if got := birthdate("", in, now); got != want {
			t.Errorf("birthdate(%q) = %q, want %q", in, got, want)
		}
	}
	if got := birthdate("25/08/1980", "", now); got != "1980-08-25" {
		t.Errorf("formatted = %q", got)
	}
}

// TestB64Token: only an RFC 6750 b64token is sent on as a bearer token; an
// access token with other bytes (invalid UTF-8, spaces, a line break) from
// a hostile token endpoint is refused before any call carries it.
func TestB64Token(t *testing.T) {
	for s, want := range map[string]bool{
		"eyJhbGciOi.J9-_~+/abc==": true, "abc": true, "": false, "==": false,
		"a b": false, "a\r\nX-Admin: 1": false, "a\x80\xff": false, "a=b": false, "a,b": false,
	} {
		if got := b64token(s); got != want {
			t.Errorf("b64token(%q) = %v, want %v", s, got, want)
		}
	}
}
