package marksign

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/providers/marksign/fakemarksign"
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

var ee = fakemarksign.DefaultAccounts[0]

type harness struct {
	t     *testing.T
	clock *clock
	fake  *fakemarksign.Server
	p     *provider
	store store.Store
	logs  *observer.ObservedLogs
}

func newHarness(t *testing.T, opts fakemarksign.Options, edit func(*Config)) *harness {
	t.Helper()
	clk := &clock{t: time.Now().Truncate(time.Second)}
	opts.Now = clk.Now
	fake, err := fakemarksign.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, fake.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{AccessToken: fake.AccessToken(), TrustedCA: ca}
	cfg.BaseURL = srv.URL
	if edit != nil {
		edit(cfg)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	client := &http.Client{Timeout: 2 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	st := store.NewMemory(clk.Now)
	impl, err := cfg.Open(providers.Env{Name: "mid", Store: st, Logger: zap.New(core), HTTP: client, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, clock: clk, fake: fake, p: impl.(*provider), store: st, logs: logs}
	t.Cleanup(h.checkLogs)
	return h
}

// checkLogs fails when an operator log line holds personal data or secrets.
func (h *harness) checkLogs() {
	secrets := []string{"TESTNUMBER", "69000366", "60001017705", "50001018865", h.fake.AccessToken()}
	for _, e := range h.logs.All() {
		line := e.Message
		for _, f := range e.Context {
			line += " " + f.String
			if err, ok := f.Interface.(error); ok {
				line += " " + err.Error()
			}
		}
		for _, s := range secrets {
			if strings.Contains(line, s) {
				h.t.Errorf("log line %q contains %q", line, s)
			}
		}
	}
}

func (h *harness) start(phone, code string) (providers.Login, string) {
	h.t.Helper()
	ch, err := h.p.Start(context.Background(), providers.StartRequest{ID: "login-0123456789abcdef", Input: map[string]string{"phone": phone, "personal_code": code}})
	if err != nil {
		h.t.Fatalf("Start: %v", err)
	}
	if len(ch.ControlCode) != 4 || ch.QRText != "" {
		h.t.Fatalf("challenge %+v", ch)
	}
	if len(ch.State) > 100 {
		h.t.Errorf("state is %d bytes; keep it small", len(ch.State))
	}
	return providers.Login{ID: "login-0123456789abcdef", State: ch.State, CreatedAt: h.clock.Now(), ExpiresAt: ch.ExpiresAt}, h.fake.LastToken()
}

func (h *harness) poll(l providers.Login) (*providers.Result, error) {
	return providers.ResultOf(h.p.Poll(context.Background(), l))
}

func TestHappyPath(t *testing.T) {
	for _, locale := range []string{"en", "lt"} {
		t.Run(locale, func(t *testing.T) {
			h := newHarness(t, fakemarksign.Options{EscapeSlash: true}, func(c *Config) {
				c.Locale = locale
				c.Claims = []string{"name", "birthdate", "gender", "phone_number"}
			})
			login, tok := h.start("+372 6900 0366", ee.Code)
			res, err := h.poll(login)
			if err != nil || res.State != providers.Pending {
				t.Fatalf("poll = %+v, %v; want pending", res, err)
			}
			if err := h.fake.Approve(tok, fakemarksign.Outcome{}); err != nil {
				t.Fatal(err)
			}
			res, err = h.poll(login)
			if err != nil || res.State != providers.Completed {
				t.Fatalf("poll = %+v, %v; want completed", res, err)
			}
			id := res.Identity
			want := map[string]any{"name": "TEN TESTNUMBER", "birthdate": "2000-01-01", "gender": "female",
				"phone_number": "+37269000366", "phone_number_verified": true}
			for k, v := range want {
				if id.Claims[k] != v {
					t.Errorf("claim %s = %v, want %v", k, id.Claims[k], v)
				}
			}
			if _, ok := id.Claims["personal_code"]; ok {
				t.Errorf("personal_code present though not listed")
			}
			if !strings.HasPrefix(id.Subject, "marksign:") || len(id.Subject) != len("marksign:")+22 || strings.Contains(id.Subject, ee.Code) {
				t.Errorf("sub = %q", id.Subject)
			}
			if id.ACR != "http://eidas.europa.eu/LoA/high" || strings.Join(id.AMR, " ") != "hwk pin mfa" {
				t.Errorf("acr/amr = %q %v", id.ACR, id.AMR)
			}
			if !h.fake.Removed(tok) {
				t.Errorf("session not removed at the gateway")
			}
		})
	}
}

func TestPersonalCodeClaimAndLithuania(t *testing.T) {
	lt := fakemarksign.DefaultAccounts[1]
	h := newHarness(t, fakemarksign.Options{}, func(c *Config) { c.Claims = []string{"personal_code", "country"} })
	login, tok := h.start("0037060000666", lt.Code)
	if err := h.fake.Approve(tok, fakemarksign.Outcome{SingleBase64: true}); err != nil {
		t.Fatal(err)
	}
	res, err := h.poll(login)
	if err != nil || res.State != providers.Completed {
		t.Fatalf("poll = %+v, %v", res, err)
	}
	if res.Identity.Claims["personal_code"] != lt.Code || res.Identity.Claims["country"] != "LT" || res.Identity.Subject != "marksign:PNOLT-"+lt.Code {
		t.Errorf("identity = %+v", res.Identity)
	}
	if _, ok := res.Identity.Claims["name"]; ok {
		t.Errorf("name present though not listed")
	}
}

func TestStartInput(t *testing.T) {
	cases := []struct {
		name, phone, code, field string
		edit                     func(*Config)
	}{
		{"phone without country code", "56123456", ee.Code, "phone", nil},
		{"phone of another country", "+358401234567", ee.Code, "phone", nil},
		{"phone with letters", "+3725612abc", ee.Code, "phone", nil},
		{"LT phone too short", "+3706123456", ee.Code, "phone", nil},
		{"country not configured", "+37060000666", "50001018865", "phone", func(c *Config) { c.Countries = []string{"EE"} }},
		{"code too short", "+37269000366", "6000101770", "personal_code", nil},
		{"code bad check digit", "+37269000366", "60001017706", "personal_code", nil},
		{"code impossible date", "+37269000366", "60013017705", "personal_code", nil},
		{"code century digit 7", "+37269000366", "70001017705", "personal_code", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, fakemarksign.Options{}, tc.edit)
			_, err := h.p.Start(context.Background(), providers.StartRequest{ID: "login-0123456789abcdef",
				Input: map[string]string{"phone": tc.phone, "personal_code": tc.code}})
			ie, ok := err.(*providers.InputError)
			if !ok || ie.Field != tc.field || ie.Message == "" {
				t.Fatalf("Start err = %v; want an InputError on %s", err, tc.field)
			}
		})
	}
}

// TestStartDoesNotRevealMobileID: the start answer, the login's course and
// its end are the same whether the phone and personal code belong together
// and have a usable Mobile-ID or not, so that nobody can probe pairs.
func TestStartDoesNotRevealMobileID(t *testing.T) {
	unqualified := ee
	unqualified.NotQualified = true
	cases := []struct {
		name     string
		accounts []fakemarksign.Account
		code     string
	}{
		{"pair with Mobile-ID, nobody confirms", nil, ee.Code},
		{"pair without Mobile-ID (40401)", nil, "39001010120"},
		{"Mobile-ID not qualified (40403)", []fakemarksign.Account{unqualified}, ee.Code},
	}
	type course struct {
		stateLen, controlLen int
		lifetime             time.Duration
		states               []string
		end                  providers.Result
	}
	var courses []course
	for _, tc := range cases {
		h := newHarness(t, fakemarksign.Options{Accounts: tc.accounts}, nil)
		t0 := h.clock.Now()
		ch, err := h.p.Start(context.Background(), providers.StartRequest{ID: "login-0123456789abcdef",
			Input: map[string]string{"phone": ee.Phone, "personal_code": tc.code}})
		if err != nil {
			t.Fatalf("%s: Start: %v; want an answer like any other", tc.name, err)
		}
		c := course{stateLen: len(ch.State), controlLen: len(ch.ControlCode), lifetime: ch.ExpiresAt.Sub(t0)}
		login := providers.Login{ID: "login-0123456789abcdef", State: ch.State, CreatedAt: t0, ExpiresAt: ch.ExpiresAt}
		// Poll every 30 s, past the gateway's own 120 s timeout, to the
		// login's expiry.
		for {
			res, err := h.poll(login)
			if err != nil {
				t.Fatalf("%s: poll: %v", tc.name, err)
			}
			if res.State != providers.Pending {
				c.end = *res
				break
			}
			c.states = append(c.states, h.clock.Now().Sub(t0).String())
			h.clock.Add(30 * time.Second)
		}
		courses = append(courses, c)
	}
	for i, c := range courses {
		if c.end.State != providers.Expired || !strings.Contains(c.end.Message, "check that it is on") {
			t.Errorf("%s ended %+v; want expired with the advice to check the input", cases[i].name, c.end)
		}
		if i == 0 {
			continue
		}
		a := courses[0]
		if c.stateLen != a.stateLen || c.controlLen != a.controlLen || c.lifetime != a.lifetime ||
			strings.Join(c.states, " ") != strings.Join(a.states, " ") || c.end != a.end {
			t.Errorf("%s is told apart from %s:\n%+v\n%+v", cases[i].name, cases[0].name, c, a)
		}
	}
}

func TestStartFailures(t *testing.T) {
	cases := []struct {
		name  string
		fault fakemarksign.Fault
		edit  func(*Config)
	}{
		{"500", fakemarksign.Fault{Status: 500, Body: "<html>"}, nil},
		{"malformed JSON", fakemarksign.Fault{Body: `{"status":`}, nil},
		{"no control code", fakemarksign.Fault{Body: `{"status":"ok","token":"381ed84f-0851-ce1e-a048-fa1e13a53bba"}`}, nil},
		{"token not path-safe", fakemarksign.Fault{Body: `{"status":"ok","token":"../../x","control_code":"1234"}`}, nil},
		{"slow", fakemarksign.Fault{Delay: 3 * time.Second}, nil},
		{"wrong access token (40003)", fakemarksign.Fault{}, func(c *Config) { c.AccessToken = "wrong" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, fakemarksign.Options{}, tc.edit)
			if tc.fault != (fakemarksign.Fault{}) {
				h.fake.Inject(fakemarksign.RouteLogin, tc.fault)
			}
			_, err := h.p.Start(context.Background(), providers.StartRequest{ID: "x", Input: map[string]string{"phone": ee.Phone, "personal_code": ee.Code}})
			if err == nil || providers.IsInputError(err) {
				t.Fatalf("err = %v; want a provider error", err)
			}
		})
	}
}

// TestFinalAnswers maps the phone's and the gateway's answers to states.
func TestFinalAnswers(t *testing.T) {
	other := fakemarksign.DefaultAccounts[1]
	other.Country = "EE"
	cases := []struct {
		name string
		act  func(f *fakemarksign.Server, tok string) error
		want providers.State
		msg  string
	}{
		{"declined on the phone (40020)", func(f *fakemarksign.Server, tok string) error { return f.Refuse(tok) }, providers.Declined, "declined"},
		// Ended early at the gateway: the login waits for its own expiry
		// (TestStartDoesNotRevealMobileID, TestGatewayTimeout).
		{"timed out at Mobile-ID (40021)", func(f *fakemarksign.Server, tok string) error { return f.Expire(tok) }, providers.Pending, ""},
		{"phone not reachable (40801)", func(f *fakemarksign.Server, tok string) error { return f.Error(tok, 40801) }, providers.Pending, ""},
		{"no Mobile-ID (40401) while polling", func(f *fakemarksign.Server, tok string) error { return f.Error(tok, 40401) }, providers.Failed, "failed"},
		{"not qualified (40403) while polling", func(f *fakemarksign.Server, tok string) error { return f.Error(tok, 40403) }, providers.Failed, "failed"},
		{"session unknown (40402)", func(f *fakemarksign.Server, tok string) error { return f.Error(tok, 40402) }, providers.Failed, "not found"},
		{"not authorized (50003)", func(f *fakemarksign.Server, tok string) error { return f.Error(tok, 50003) }, providers.Failed, "not available"},
		{"client configuration (50004)", func(f *fakemarksign.Server, tok string) error { return f.Error(tok, 50004) }, providers.Failed, "not available"},
		{"undocumented code", func(f *fakemarksign.Server, tok string) error { return f.Error(tok, 40099) }, providers.Failed, "failed"},
		{"certificate for another person", func(f *fakemarksign.Server, tok string) error {
			return f.Approve(tok, fakemarksign.Outcome{CertificateOf: &other})
		}, providers.Failed, "did not match"},
		{"answer for another personal code", func(f *fakemarksign.Server, tok string) error {
			return f.Approve(tok, fakemarksign.Outcome{Code: "39001010120"})
		}, providers.Failed, "did not match"},
		{"answer for another session token", func(f *fakemarksign.Server, tok string) error {
			return f.Approve(tok, fakemarksign.Outcome{Token: "381ed84f-0851-ce1e-a048-fa1e13a53bba"})
		}, providers.Failed, "did not match"},
		{"expired certificate", func(f *fakemarksign.Server, tok string) error {
			return f.Approve(tok, fakemarksign.Outcome{ExpiredCert: true})
		}, providers.Failed, "certificate"},
		{"certificate from an untrusted CA", func(f *fakemarksign.Server, tok string) error {
			return f.Approve(tok, fakemarksign.Outcome{UntrustedCA: true})
		}, providers.Failed, "certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, fakemarksign.Options{}, nil)
			login, tok := h.start(ee.Phone, ee.Code)
			if err := tc.act(h.fake, tok); err != nil {
				t.Fatal(err)
			}
			res, err := h.poll(login)
			if err != nil {
				t.Fatalf("poll error %v; want %s", err, tc.want)
			}
			if res.State != tc.want || !strings.Contains(res.Message, tc.msg) || res.Identity != nil {
				t.Fatalf("poll = %+v; want %s with %q", res, tc.want, tc.msg)
			}
		})
	}
}

func TestUntrustedCAWithoutTrustedCA(t *testing.T) {
	h := newHarness(t, fakemarksign.Options{}, func(c *Config) { c.TrustedCA = "" })
	login, tok := h.start(ee.Phone, ee.Code)
	if err := h.fake.Approve(tok, fakemarksign.Outcome{UntrustedCA: true}); err != nil {
		t.Fatal(err)
	}
	if res, err := h.poll(login); err != nil || res.State != providers.Completed {
		t.Fatalf("poll = %+v, %v; without trusted_ca the chain is not checked", res, err)
	}
}

func TestReplayedOK(t *testing.T) {
	h := newHarness(t, fakemarksign.Options{RepeatFinal: true}, nil)
	login, tok := h.start(ee.Phone, ee.Code)
	if err := h.fake.Approve(tok, fakemarksign.Outcome{}); err != nil {
		t.Fatal(err)
	}
	// The gateway forgets removal in this scenario: it repeats "ok".
	h.fake.Inject(fakemarksign.RouteRemove, fakemarksign.Fault{Status: 500})
	if res, err := h.poll(login); err != nil || res.State != providers.Completed {
		t.Fatalf("first poll = %+v, %v", res, err)
	}
	// The token logs in once: a second poll never yields an identity, and
	// says another poller consumed it (the module waits for its outcome).
	res, err := h.poll(login)
	if !errors.Is(err, providers.ErrConsumed) || res != nil {
		t.Fatalf("second poll = %+v, %v; want ErrConsumed", res, err)
	}
}

func TestTransient(t *testing.T) {
	cases := []struct {
		name  string
		fault fakemarksign.Fault
	}{
		{"500 without JSON", fakemarksign.Fault{Status: 500, Body: "<html>oops</html>", Times: 1}},
		{"502 empty", fakemarksign.Fault{Status: 502, Times: 1}},
		{"50000 provider issue", fakemarksign.Fault{Status: 500, Body: `{"status":"error","error_code":50000}`, Times: 1}},
		{"50001 technical error", fakemarksign.Fault{Status: 500, Body: `{"status":"error","error_code":"50001"}`, Times: 1}},
		{"50002 no connection", fakemarksign.Fault{Status: 500, Body: `{"status":"error","error_code":50002}`, Times: 1}},
		{"slower than the timeout", fakemarksign.Fault{Delay: 3 * time.Second, Times: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, fakemarksign.Options{}, nil)
			login, tok := h.start(ee.Phone, ee.Code)
			if err := h.fake.Approve(tok, fakemarksign.Outcome{}); err != nil {
				t.Fatal(err)
			}
			h.fake.Inject(fakemarksign.RouteStatus, tc.fault)
			if res, err := h.poll(login); err == nil {
				t.Fatalf("poll = %+v; want a transient error", res)
			}
			if res, err := h.poll(login); err != nil || res.State != providers.Completed {
				t.Fatalf("poll after recovery = %+v, %v", res, err)
			}
		})
	}
}

func TestMalformedStatus(t *testing.T) {
	for name, body := range map[string]string{
		"not JSON":          "hello",
		"truncated JSON":    `{"status":"ok","certificate":{`,
		"no status":         `{"token":"x"}`,
		"error_code a word": `{"status":"error","error_code":"bad"}`,
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, fakemarksign.Options{}, nil)
			login, _ := h.start(ee.Phone, ee.Code)
			h.fake.Inject(fakemarksign.RouteStatus, fakemarksign.Fault{Body: body})
			res, err := h.poll(login)
			if err != nil || res.State != providers.Failed || res.Message == "" {
				t.Fatalf("poll = %+v, %v; want failed", res, err)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	h := newHarness(t, fakemarksign.Options{Timeout: time.Hour}, nil)
	login, tok := h.start(ee.Phone, ee.Code)
	h.clock.Add(DefaultLifetime)
	res, err := h.poll(login)
	if err != nil || res.State != providers.Expired {
		t.Fatalf("poll = %+v, %v; want expired", res, err)
	}
	if !h.fake.Removed(tok) {
		t.Errorf("session not removed")
	}
}

func TestGatewayTimeout(t *testing.T) {
	h := newHarness(t, fakemarksign.Options{}, nil)
	login, _ := h.start(ee.Phone, ee.Code)
	h.clock.Add(121 * time.Second)
	res, err := h.poll(login)
	if err != nil || res.State != providers.Pending {
		t.Fatalf("poll = %+v, %v; want pending until the login's expiry", res, err)
	}
	calls := h.fake.Count(fakemarksign.RouteStatus)
	h.clock.Add(30 * time.Second)
	if res, err := h.poll(login); err != nil || res.State != providers.Pending || h.fake.Count(fakemarksign.RouteStatus) != calls {
		t.Fatalf("poll = %+v, %v (status calls %d → %d); want pending without asking the gateway again", res, err, calls, h.fake.Count(fakemarksign.RouteStatus))
	}
	h.clock.Add(DefaultLifetime)
	if res, err := h.poll(login); err != nil || res.State != providers.Expired || res.Message != msgExpired {
		t.Fatalf("poll = %+v, %v; want expired (40021)", res, err)
	}
}

func TestHeldStatus(t *testing.T) {
	h := newHarness(t, fakemarksign.Options{Hold: 5 * time.Second}, nil)
	login, tok := h.start(ee.Phone, ee.Code)
	go func() {
		time.Sleep(200 * time.Millisecond)
		_ = h.fake.Approve(tok, fakemarksign.Outcome{})
	}()
	res, err := h.poll(login)
	if err != nil || res.State != providers.Completed {
		t.Fatalf("poll = %+v, %v", res, err)
	}
}

func TestCancel(t *testing.T) {
	h := newHarness(t, fakemarksign.Options{}, nil)
	login, tok := h.start(ee.Phone, ee.Code)
	if err := h.p.Cancel(context.Background(), login); err != nil {
		t.Fatal(err)
	}
	if !h.fake.Removed(tok) {
		t.Errorf("not removed")
	}
}

func TestBadState(t *testing.T) {
	h := newHarness(t, fakemarksign.Options{}, nil)
	for _, st := range []string{"", "{}", `{"t":"../../x","c":"60001017705"}`, `{"t":"381ed84f-0851-ce1e-a048-fa1e13a53bba","c":"1"}`} {
		res, err := h.poll(providers.Login{ID: "x", State: []byte(st), ExpiresAt: h.clock.Now().Add(time.Minute)})
		if err != nil || res.State != providers.Failed {
			t.Errorf("state %q: %+v, %v", st, res, err)
		}
	}
}

func TestForm(t *testing.T) {
	h := newHarness(t, fakemarksign.Options{}, nil)
	f := h.p.Form()
	if len(f) != 2 || f[0].Name != "phone" || f[1].Name != "personal_code" || h.p.Info().Flow != "form" {
		t.Errorf("form = %+v", f)
	}
	for _, c := range h.p.Info().DefaultClaims {
		if c == "personal_code" || c == "phone_number" {
			t.Errorf("default claims include %s", c)
		}
	}
}

func TestCaddyfile(t *testing.T) {
	cases := []struct{ name, in, errHas string }{
		{"complete", "marksign_mobileid mid {\n access_token {env.MS}\n locale lt\n language EST\n message Log in to Example\n trusted_ca /etc/ca.pem\n countries EE\n lifetime 2m\n base_url http://127.0.0.1:1\n}", ""},
		{"missing access_token", "marksign_mobileid {\n locale en\n}", "access_token"},
		{"unknown option", "marksign_mobileid {\n access_token t\n pin 1234\n}", `unknown option "pin"`},
		{"bad locale", "marksign_mobileid {\n access_token t\n locale fr\n}", "locale"},
		{"bad language", "marksign_mobileid {\n access_token t\n language FIN\n}", "language"},
		{"message too long", "marksign_mobileid {\n access_token t\n message " + strings.Repeat("x", 41) + "\n}", "message"},
		{"unsupported country", "marksign_mobileid {\n access_token t\n countries EE LV\n}", "LV"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			err := c.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
			if tc.errHas == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Name != "mid" || c.AccessToken != "{env.MS}" || c.Message != "Log in to Example" || c.Locale != "lt" || len(c.Countries) != 1 {
					t.Errorf("parsed %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("err = %v; want %q", err, tc.errHas)
			}
		})
	}
}

func TestOpenRejectsBadCA(t *testing.T) {
	f := filepath.Join(t.TempDir(), "ca.pem")
	_ = os.WriteFile(f, []byte("not pem"), 0o600)
	c := &Config{AccessToken: "t", TrustedCA: f}
	if _, err := c.Open(providers.Env{Store: store.NewMemory(nil), Now: time.Now}); err == nil {
		t.Fatal("Open accepted a trusted_ca without certificates")
	}
}
