package onekosmosidv

import (
	"context"
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
	"github.com/caddy-idv/caddy-idv/providers/onekosmos"
	"github.com/caddy-idv/caddy-idv/providers/onekosmos/fake1kosmos"
	"github.com/caddy-idv/caddy-idv/store"
	"github.com/caddy-idv/caddy-idv/store/storetest"
)

const loginID = "login-0123456789abcdef"

type harness struct {
	t     *testing.T
	clock *storetest.Clock
	fake  *fake1kosmos.Fake
	srv   *httptest.Server
	store store.Store
	logs  *observer.ObservedLogs
	prov  *provider
}

func newHarness(t *testing.T, cfg fake1kosmos.Config, mod func(*Config)) *harness {
	t.Helper()
	clock := storetest.NewClock(time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC))
	cfg.Now = clock.Now
	f := fake1kosmos.New(cfg)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	h := &harness{t: t, clock: clock, fake: f, srv: srv, store: store.NewMemory(clock.Now)}
	h.prov = h.open(mod)
	return h
}

func (h *harness) open(mod func(*Config)) *provider {
	h.t.Helper()
	fc := h.fake.Config()
	c := &Config{TenantOptions: onekosmos.TenantOptions{DNS: fc.DNS, Community: fc.Community, LicenseKey: fc.LicenseKey},
		DvcID: fc.DvcIDs[0], DocumentType: "passport"}
	c.BaseURL = h.srv.URL
	if mod != nil {
		mod(c)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	h.logs = logs
	p, err := c.Open(providers.Env{Name: "idv", Store: h.store, Logger: zap.New(core),
		HTTP: &http.Client{Timeout: 300 * time.Millisecond}, Now: h.clock.Now})
	if err != nil {
		h.t.Fatal(err)
	}
	return p.(*provider)
}

func (h *harness) start() (providers.Login, string) {
	h.t.Helper()
	ch, err := h.prov.Start(context.Background(), providers.StartRequest{ID: loginID})
	if err != nil {
		h.t.Fatal(err)
	}
	if ch.QRText != ch.DeepLink || !strings.HasPrefix(ch.QRText, h.srv.URL+"/idproofing/session/") {
		h.t.Fatalf("challenge %+v", ch)
	}
	sid := ch.QRText[strings.LastIndex(ch.QRText, "/")+1:]
	return providers.Login{ID: loginID, State: ch.State, CreatedAt: h.clock.Now(), ExpiresAt: ch.ExpiresAt}, sid
}

func (h *harness) mustPoll(l providers.Login, want providers.State) *providers.Result {
	h.t.Helper()
	res, err := providers.ResultOf(h.prov.Poll(context.Background(), l))
	if err != nil {
		h.t.Fatalf("poll: %v", err)
	}
	if res.State != want {
		h.t.Fatalf("state = %s (%q), want %s", res.State, res.Message, want)
	}
	if res.State != providers.Pending && res.State != providers.Completed && res.Message == "" {
		h.t.Fatal("no message for the person")
	}
	return res
}

func (h *harness) must(err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) noPII() {
	h.t.Helper()
	for _, e := range h.logs.All() {
		line := e.Message
		for _, f := range e.Context {
			line += " " + f.Key + "=" + f.String
		}
		for _, s := range []string{"JANE", "X1234567", "19941129", h.fake.Config().LicenseKey} {
			if strings.Contains(line, s) {
				h.t.Fatalf("log leaks %q: %s", s, line)
			}
		}
	}
}

func TestHappyPath(t *testing.T) {
	h := newHarness(t, fake1kosmos.Config{}, nil)
	login, sid := h.start()
	if !login.ExpiresAt.Equal(h.clock.Now().Add(DefaultLifetime)) {
		t.Fatalf("ExpiresAt %v", login.ExpiresAt)
	}
	if uid := h.fake.IDVUser(sid)["uid"]; uid != loginID {
		t.Fatalf("uid sent = %v", uid)
	}
	h.mustPoll(login, providers.Pending)
	h.must(h.fake.Consent(sid))
	h.mustPoll(login, providers.Pending)
	h.must(h.fake.Submit(sid, fake1kosmos.DemoDocument()))
	res := h.mustPoll(login, providers.Completed)
	id := res.Identity
	want := map[string]any{"given_name": "JANE", "family_name": "DOE", "name": "JANE DOE", "birthdate": "1994-11-29", "gender": "female"}
	for k, v := range want {
		if id.Claims[k] != v {
			t.Fatalf("claim %s = %v, want %v (all: %v)", k, id.Claims[k], v, id.Claims)
		}
	}
	for _, k := range OptInClaims {
		if _, ok := id.Claims[k]; ok {
			t.Fatalf("claim %s present though not listed", k)
		}
	}
	if !strings.HasPrefix(id.Subject, "onekosmos_idv:") || strings.Contains(id.Subject, "X1234567") {
		t.Fatalf("sub %s", id.Subject)
	}
	if id.ACR != "urn:idv:1kosmos:ial2" || len(id.AMR) != 1 || id.AMR[0] != "face" {
		t.Fatalf("acr %s amr %v", id.ACR, id.AMR)
	}
	// The PII was handed out once; the next answer has none.
	res = h.mustPoll(login, providers.Failed)
	if !strings.Contains(res.Message, "already consumed") {
		t.Fatalf("message %q", res.Message)
	}
	h.noPII()
}

func TestSubjectStableAndClaimsOptIn(t *testing.T) {
	h := newHarness(t, fake1kosmos.Config{}, func(c *Config) {
		c.Claims = []string{"name", "document_number", "document_country", "document_expiry"}
	})
	var subs []string
	for i := 0; i < 2; i++ {
		login, sid := h.start()
		h.must(h.fake.Consent(sid))
		h.must(h.fake.Submit(sid, fake1kosmos.DemoDocument()))
		res := h.mustPoll(login, providers.Completed)
		c := res.Identity.Claims
		if c["document_number"] != "X1234567" || c["document_country"] != "EE" || c["document_expiry"] != "2034-06-04" {
			t.Fatalf("claims %v", c)
		}
		subs = append(subs, res.Identity.Subject)
	}
	if subs[0] != subs[1] {
		t.Fatal("subject is not stable for one document")
	}
}

func TestStates(t *testing.T) {
	cases := []struct {
		name  string
		cfg   fake1kosmos.Config
		mod   func(*Config)
		act   func(h *harness, sid string)
		want  providers.State
		inMsg string
	}{
		{"in progress, documented spelling", fake1kosmos.Config{InProgressSessionResult: true}, nil, func(h *harness, sid string) { h.must(h.fake.Consent(sid)) }, providers.Pending, ""},
		{"pending, documented spelling", fake1kosmos.Config{InProgressSessionResult: true}, nil, func(h *harness, sid string) {}, providers.Pending, ""},
		{"declined", fake1kosmos.Config{}, nil, func(h *harness, sid string) { h.must(h.fake.Decline(sid)) }, providers.Declined, ""},
		{"abandoned", fake1kosmos.Config{}, nil, func(h *harness, sid string) { h.must(h.fake.Abandon(sid)) }, providers.Expired, ""},
		{"expired at the service", fake1kosmos.Config{IDVTTL: time.Minute}, nil, func(h *harness, sid string) { h.clock.Advance(2 * time.Minute) }, providers.Expired, ""},
		{"expired locally while in progress", fake1kosmos.Config{}, func(c *Config) { c.Lifetime = 1e9 * 60 }, func(h *harness, sid string) {
			h.must(h.fake.Consent(sid))
			h.clock.Advance(2 * time.Minute)
		}, providers.Expired, ""},
		{"verification failed, reason_code", fake1kosmos.Config{}, nil, func(h *harness, sid string) {
			h.must(h.fake.Consent(sid))
			h.must(h.fake.Fail(sid, "Module 'firstname check' failed", "IDV0010", false))
		}, providers.Failed, "firstname check"},
		{"verification failed, reasonCode", fake1kosmos.Config{}, nil, func(h *harness, sid string) {
			h.must(h.fake.Consent(sid))
			h.must(h.fake.Fail(sid, "Unsupported document was presented", "IDV0006", true))
		}, providers.Failed, "Unsupported document"},
		{"PII retention off: success without PII", fake1kosmos.Config{PII: fake1kosmos.PIIOff}, nil, submit(fake1kosmos.DemoDocument()), providers.Failed, "already consumed"},
		{"encrypted create answer", fake1kosmos.Config{EncryptCreate: true}, nil, submit(fake1kosmos.DemoDocument()), providers.Completed, ""},
		{"other document type scanned", fake1kosmos.Config{}, nil, submit(func() fake1kosmos.Document {
			d := fake1kosmos.DemoDocument()
			d.DocumentType = "dl_object"
			return d
		}()), providers.Failed, "not the kind"},
		{"expired document", fake1kosmos.Config{}, nil, submit(func() fake1kosmos.Document {
			d := fake1kosmos.DemoDocument()
			d.DOE = "20200101"
			return d
		}()), providers.Failed, "expired"},
		{"selfie check not verified", fake1kosmos.Config{}, nil, submit(func() fake1kosmos.Document {
			d := fake1kosmos.DemoDocument()
			d.SelfieFailed = true
			return d
		}()), providers.Failed, "check"},
		{"require_selfie without a selfie", fake1kosmos.Config{}, func(c *Config) { c.RequireSelfie = true }, submit(func() fake1kosmos.Document {
			d := fake1kosmos.DemoDocument()
			d.Selfie = false
			return d
		}()), providers.Failed, "selfie"},
		{"document only: ial1, no amr", fake1kosmos.Config{}, nil, submit(func() fake1kosmos.Document {
			d := fake1kosmos.DemoDocument()
			d.Selfie = false
			return d
		}()), providers.Completed, ""},
		{"answer under a key that is not the service key", fake1kosmos.Config{}, nil, fault(fake1kosmos.Fault{WrongKey: true}), providers.Failed, ""},
		{"truncated data", fake1kosmos.Config{}, nil, fault(fake1kosmos.Fault{Truncate: true}), providers.Failed, ""},
		{"replayed result of another session", fake1kosmos.Config{}, nil, fault(fake1kosmos.Fault{SessionID: "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"}), providers.Failed, ""},
		{"malformed JSON", fake1kosmos.Config{}, nil, fault(fake1kosmos.Fault{Malformed: true}), providers.Failed, ""},
		{"unknown session (404)", fake1kosmos.Config{}, nil, fault(fake1kosmos.Fault{Status: 404, Body: `{"code":404,"message":"not found"}`}), providers.Failed, ""},
		{"licence refused (401)", fake1kosmos.Config{}, nil, fault(fake1kosmos.Fault{Status: 401, Body: `{"code":401,"message":"Unauthorized"}`}), providers.Failed, ""},
		{"bad request (400)", fake1kosmos.Config{}, nil, fault(fake1kosmos.Fault{Status: 400, Body: `{"code":400,"message":"dvcID is not allowed to be empty"}`}), providers.Failed, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, c.cfg, c.mod)
			login, sid := h.start()
			c.act(h, sid)
			res := h.mustPoll(login, c.want)
			if c.inMsg != "" && !strings.Contains(res.Message, c.inMsg) {
				t.Fatalf("message %q lacks %q", res.Message, c.inMsg)
			}
			h.noPII()
		})
	}
}

func submit(d fake1kosmos.Document) func(h *harness, sid string) {
	return func(h *harness, sid string) {
		h.must(h.fake.Consent(sid))
		h.must(h.fake.Submit(sid, d))
	}
}

func fault(f fake1kosmos.Fault) func(h *harness, sid string) {
	return func(h *harness, sid string) {
		submit(fake1kosmos.DemoDocument())(h, sid)
		f.Times = 1
		h.fake.InjectFault(fake1kosmos.OpIDVResult, f)
	}
}

func TestTransientKeepsPII(t *testing.T) {
	for name, f := range map[string]fake1kosmos.Fault{
		"503":  {Status: 503, Times: 1},
		"slow": {Delay: 2 * time.Second, Times: 1},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, fake1kosmos.Config{}, nil)
			login, sid := h.start()
			submit(fake1kosmos.DemoDocument())(h, sid)
			h.fake.InjectFault(fake1kosmos.OpIDVResult, f)
			if res, err := providers.ResultOf(h.prov.Poll(context.Background(), login)); err == nil {
				t.Fatalf("want a transient error, got %+v", res)
			}
			// The failed call never reached the service's state, so the PII
			// is still there for the next poll.
			h.mustPoll(login, providers.Completed)
		})
	}
}

// PII kept by the service (pii_retention_ttl = 0) is still used once only.
func TestRetainedPIIUsedOnce(t *testing.T) {
	h := newHarness(t, fake1kosmos.Config{PII: fake1kosmos.PIIKeep}, nil)
	login, sid := h.start()
	submit(fake1kosmos.DemoDocument())(h, sid)
	h.mustPoll(login, providers.Completed)
	h.mustPoll(login, providers.Failed)
}

// Two instances (sharing the store) race on the one-shot result: exactly
// one completes.
func TestRacingPolls(t *testing.T) {
	for _, mode := range []fake1kosmos.PIIMode{fake1kosmos.PIIOnce, fake1kosmos.PIIKeep} {
		h := newHarness(t, fake1kosmos.Config{PII: mode}, nil)
		login, sid := h.start()
		submit(fake1kosmos.DemoDocument())(h, sid)
		provs := []*provider{h.prov, h.open(nil), h.open(nil), h.open(nil)}
		var wg sync.WaitGroup
		var mu sync.Mutex
		count := map[providers.State]int{}
		for _, p := range provs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := providers.ResultOf(p.Poll(context.Background(), login))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				count[res.State]++
			}()
		}
		wg.Wait()
		if count[providers.Completed] != 1 || count[providers.Failed] != len(provs)-1 {
			t.Fatalf("mode %d: %v", mode, count)
		}
	}
}

func TestStartErrors(t *testing.T) {
	cases := []struct {
		name  string
		mod   func(*Config)
		fault fake1kosmos.Fault
	}{
		{"unknown dvc_id", func(c *Config) { c.DvcID = "nope" }, fake1kosmos.Fault{}},
		{"wrong licence", func(c *Config) { c.LicenseKey = "nope" }, fake1kosmos.Fault{}},
		{"create 500", nil, fake1kosmos.Fault{Status: 500}},
		{"create slow", nil, fake1kosmos.Fault{Delay: time.Second}},
		{"create malformed", nil, fake1kosmos.Fault{Malformed: true}},
		{"capture url with a script scheme", nil, fake1kosmos.Fault{Status: 200, Body: `{"sessionId":"abc","url":"javascript:alert(1)"}`}},
		{"session id with a path", nil, fake1kosmos.Fault{Status: 200, Body: `{"sessionId":"../x","url":"https://a.example/x"}`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, fake1kosmos.Config{}, nil)
			p := h.open(c.mod)
			if c.fault != (fake1kosmos.Fault{}) {
				h.fake.InjectFault(fake1kosmos.OpIDVCreate, c.fault)
			}
			if _, err := p.Start(context.Background(), providers.StartRequest{ID: loginID}); err == nil {
				t.Fatal("started")
			}
		})
	}
}

func TestCaddyfile(t *testing.T) {
	cases := []struct{ name, in, err string }{
		{"complete", "onekosmos_idv idv {\n dns a.1kosmos.net\n community default\n license_key {env.X_IDV_KEY}\n dvc_id flow\n document_type dl_object\n lifetime 10m\n require_selfie\n claims name document_number\n}", ""},
		{"missing dvc_id", "onekosmos_idv {\n dns d\n community c\n license_key k\n document_type ppt_object\n}", `"dvc_id"`},
		{"missing document_type", "onekosmos_idv {\n dns d\n community c\n license_key k\n dvc_id x\n}", `"document_type"`},
		{"bad document_type", "onekosmos_idv {\n document_type selfie\n}", "document_type"},
		{"unknown option", "onekosmos_idv {\n dns d\n colour red\n}", `unknown option "colour"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cfg Config
			err := cfg.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.in))
			if c.err == "" {
				if err != nil || cfg.Name != "idv" || !cfg.RequireSelfie || cfg.DocumentType != "dl_object" {
					t.Fatalf("%v %+v", err, cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("err = %v, want %s", err, c.err)
			}
		})
	}
}

func TestBadState(t *testing.T) {
	h := newHarness(t, fake1kosmos.Config{}, nil)
	for _, s := range []string{"", "[]", `{"s":"a/b"}`} {
		h.mustPoll(providers.Login{ID: "x", State: []byte(s)}, providers.Failed)
	}
}

func testEnv() providers.Env {
	clock := storetest.NewClock(time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC))
	return providers.Env{Store: store.NewMemory(clock.Now), Now: clock.Now, Logger: zap.NewNop()}
}
