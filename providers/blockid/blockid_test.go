package blockid

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-idv/caddy-idv/internal/hostile"
	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/providers/onekosmos"
	"github.com/caddy-idv/caddy-idv/providers/onekosmos/fake1kosmos"
	"github.com/caddy-idv/caddy-idv/store"
	"github.com/caddy-idv/caddy-idv/store/storetest"
)

type harness struct {
	t      *testing.T
	clock  *storetest.Clock
	fake   *fake1kosmos.Fake
	srv    *httptest.Server
	store  store.Store
	logs   *observer.ObservedLogs
	prov   *provider
	wallet *fake1kosmos.Wallet
}

func newHarness(t *testing.T, cfg fake1kosmos.Config, mod func(*Config)) *harness {
	t.Helper()
	clock := storetest.NewClock(time.Unix(1_800_000_000, 0))
	cfg.Now = clock.Now
	f := fake1kosmos.New(cfg)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	h := &harness{t: t, clock: clock, fake: f, srv: srv, store: store.NewMemory(clock.Now)}
	h.prov = h.open(mod)
	h.wallet = fake1kosmos.NewWallet("alice@example.com")
	h.wallet.Data = map[string]any{"firstname": "Alice", "lastname": "Liddell"}
	f.Enroll(h.wallet)
	return h
}

func (h *harness) open(mod func(*Config)) *provider {
	h.t.Helper()
	fc := h.fake.Config()
	c := &Config{TenantOptions: onekosmos.TenantOptions{DNS: fc.DNS, Community: fc.Community, LicenseKey: fc.LicenseKey}}
	c.BaseURL = h.srv.URL
	if mod != nil {
		mod(c)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	h.logs = logs
	p, err := c.Open(providers.Env{Name: "blockid", Store: h.store, Logger: zap.New(core),
		HTTP: &http.Client{Timeout: 300 * time.Millisecond}, Now: h.clock.Now})
	if err != nil {
		h.t.Fatal(err)
	}
	return p.(*provider)
}

func (h *harness) start() (providers.Login, string) {
	h.t.Helper()
	ch, err := h.prov.Start(context.Background(), providers.StartRequest{ID: "login-0123456789abcdef"})
	if err != nil {
		h.t.Fatal(err)
	}
	sid := ch.QRText[strings.LastIndex(ch.QRText, "/")+1:]
	return providers.Login{ID: "login-0123456789abcdef", State: ch.State, CreatedAt: h.clock.Now(), ExpiresAt: ch.ExpiresAt}, sid
}

func (h *harness) poll(l providers.Login) (*providers.Result, error) {
	return providers.ResultOf(h.prov.Poll(context.Background(), l))
}

func (h *harness) mustPoll(l providers.Login, want providers.State) *providers.Result {
	h.t.Helper()
	res, err := h.poll(l)
	if err != nil {
		h.t.Fatalf("poll: %v", err)
	}
	if res.State != want {
		h.t.Fatalf("state = %s (%q), want %s", res.State, res.Message, want)
	}
	if res.State == providers.Failed && res.Message == "" {
		h.t.Fatal("failed without a message for the person")
	}
	return res
}

// noPII fails if the operator's log holds the person's data.
func (h *harness) noPII() {
	h.t.Helper()
	for _, e := range h.logs.All() {
		line := e.Message
		for _, f := range e.Context {
			line += " " + f.String + " " + f.Key
			if f.Interface != nil {
				if err, ok := f.Interface.(error); ok {
					line += err.Error()
				}
			}
		}
		for _, secret := range []string{"alice@example.com", "Alice", h.wallet.DID, h.fake.Config().LicenseKey} {
			if strings.Contains(line, secret) {
				h.t.Fatalf("log line leaks %q: %s", secret, line)
			}
		}
	}
}

func TestHappyPath(t *testing.T) {
	for _, ttl := range []time.Duration{60 * time.Second, 120 * time.Second} {
		t.Run(ttl.String(), func(t *testing.T) {
			h := newHarness(t, fake1kosmos.Config{TTL: ttl}, func(c *Config) { c.AuthType = "face"; c.Scopes = []string{"firstname", "lastname"} })
			login, sid := h.start()
			if !strings.HasPrefix(login.ExpiresAt.String(), h.clock.Now().Add(ttl).String()[:10]) || !login.ExpiresAt.Equal(h.clock.Now().Add(ttl)) {
				t.Fatalf("ExpiresAt = %v, want now+%v from expiryTS", login.ExpiresAt, ttl)
			}
			doc := h.fake.UWLSession(sid)
			if doc["publicKey"] != h.prov.key.Public().String() || doc["authtype"] != "face" || doc["scopes"] != "firstname,lastname" {
				t.Fatalf("session document: %v", doc)
			}
			h.mustPoll(login, providers.Pending)
			if err := h.fake.Approve(sid, h.wallet, fake1kosmos.ApproveOptions{}); err != nil {
				t.Fatal(err)
			}
			res := h.mustPoll(login, providers.Completed)
			id := res.Identity
			if id.Subject != "blockid:"+h.wallet.DID {
				t.Fatalf("sub = %s", id.Subject)
			}
			if id.Claims["email"] != "alice@example.com" || id.Claims["email_verified"] != false || id.Claims["name"] != "Alice Liddell" || id.Claims["ial"] != "1" {
				t.Fatalf("claims = %v", id.Claims)
			}
			if id.ACR != "urn:idv:blockid:ial1" || strings.Join(id.AMR, " ") != "hwk mca face mfa" {
				t.Fatalf("acr %s amr %v", id.ACR, id.AMR)
			}
			// The session is closed after one answer.
			h.mustPoll(login, providers.Failed)
			h.noPII()
		})
	}
}

func TestNegative(t *testing.T) {
	other, _ := onekosmos.GenerateKey()
	cases := []struct {
		name  string
		cfg   fake1kosmos.Config
		setup func(h *harness, sid string)
		want  providers.State
	}{
		{"answer encrypted to another relying party (GCM failure)", fake1kosmos.Config{}, func(h *harness, sid string) {
			h.approve(sid, fake1kosmos.ApproveOptions{WrongRPKey: true})
		}, providers.Failed},
		{"200 without data", fake1kosmos.Config{}, func(h *harness, sid string) {
			h.approve(sid, fake1kosmos.ApproveOptions{NoData: true})
		}, providers.Failed},
		{"data without did", fake1kosmos.Config{}, func(h *harness, sid string) {
			h.approve(sid, fake1kosmos.ApproveOptions{NoDID: true})
		}, providers.Failed},
		{"answering key is not the enrolled device key", fake1kosmos.Config{}, func(h *harness, sid string) {
			h.approve(sid, fake1kosmos.ApproveOptions{DeviceKey: other})
		}, providers.Failed},
		{"user id not in userIdList", fake1kosmos.Config{}, func(h *harness, sid string) {
			h.approve(sid, fake1kosmos.ApproveOptions{UserID: "mallory@example.com"})
		}, providers.Failed},
		{"DID not enrolled (200 {})", fake1kosmos.Config{}, func(h *harness, sid string) {
			w := fake1kosmos.NewWallet("bob@example.com")
			if err := h.fake.Approve(sid, w, fake1kosmos.ApproveOptions{}); err != nil {
				h.t.Fatal(err)
			}
		}, providers.Failed},
		{"DID not enrolled (404)", fake1kosmos.Config{UnknownDIDNotFound: true}, func(h *harness, sid string) {
			w := fake1kosmos.NewWallet("bob@example.com")
			if err := h.fake.Approve(sid, w, fake1kosmos.ApproveOptions{}); err != nil {
				h.t.Fatal(err)
			}
		}, providers.Failed},
		{"replayed answer of another session", fake1kosmos.Config{}, func(h *harness, sid string) {
			h.approve(sid, fake1kosmos.ApproveOptions{})
			h.fake.InjectFault(fake1kosmos.OpPoll, fake1kosmos.Fault{SessionID: "11111111-2222-4333-8444-555555555555", Times: 1})
		}, providers.Failed},
		{"truncated data", fake1kosmos.Config{}, func(h *harness, sid string) {
			h.approve(sid, fake1kosmos.ApproveOptions{})
			h.fake.InjectFault(fake1kosmos.OpPoll, fake1kosmos.Fault{Truncate: true, Times: 1})
		}, providers.Failed},
		{"malformed JSON", fake1kosmos.Config{}, func(h *harness, sid string) {
			h.fake.InjectFault(fake1kosmos.OpPoll, fake1kosmos.Fault{Malformed: true, Times: 1})
		}, providers.Failed},
		{"account answer under the wrong key", fake1kosmos.Config{}, func(h *harness, sid string) {
			h.approve(sid, fake1kosmos.ApproveOptions{})
			h.fake.InjectFault(fake1kosmos.OpUserInfo, fake1kosmos.Fault{WrongKey: true, Times: 1})
		}, providers.Failed},
		{"account lookup refused", fake1kosmos.Config{}, func(h *harness, sid string) {
			h.approve(sid, fake1kosmos.ApproveOptions{})
			h.fake.InjectFault(fake1kosmos.OpUserInfo, fake1kosmos.Fault{Status: 401, Body: `{"code":401}`, Times: 1})
		}, providers.Failed},
		{"late answer after expiry", fake1kosmos.Config{}, func(h *harness, sid string) {
			h.clock.Advance(3 * time.Minute)
			h.approve(sid, fake1kosmos.ApproveOptions{Late: true})
		}, providers.Expired},
		{"no answer before expiry (400 Session has expired)", fake1kosmos.Config{}, func(h *harness, sid string) {
			h.clock.Advance(3 * time.Minute)
		}, providers.Expired},
		{"no answer before expiry, JSON error bodies", fake1kosmos.Config{JSONErrors: true}, func(h *harness, sid string) {
			h.clock.Advance(3 * time.Minute)
		}, providers.Expired},
		{"session unknown at the service", fake1kosmos.Config{}, func(h *harness, sid string) {
			h.fake.InjectFault(fake1kosmos.OpPoll, fake1kosmos.Fault{Status: 404, Body: "Session with this sessionId doesn't exist", Times: 1})
		}, providers.Failed},
		{"licence refused at poll", fake1kosmos.Config{}, func(h *harness, sid string) {
			h.fake.InjectFault(fake1kosmos.OpPoll, fake1kosmos.Fault{Status: 401, Body: `{"code":401,"message":"Invalid or Unauthorized License"}`, Times: 1})
		}, providers.Failed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, c.cfg, nil)
			login, sid := h.start()
			c.setup(h, sid)
			h.mustPoll(login, c.want)
			h.noPII()
		})
	}
}

func (h *harness) approve(sid string, o fake1kosmos.ApproveOptions) {
	h.t.Helper()
	if err := h.fake.Approve(sid, h.wallet, o); err != nil {
		h.t.Fatal(err)
	}
}

// The Node SDK rejects the first entry of userIdList (indexOf > 0); we
// accept it, with and without an explicit userid.
func TestFirstUserIDAccepted(t *testing.T) {
	for _, o := range []fake1kosmos.ApproveOptions{{}, {OmitUserID: true}} {
		h := newHarness(t, fake1kosmos.Config{}, nil)
		w := fake1kosmos.NewWallet("first@example.com")
		h.fake.Enroll(w, "first@example.com", "second@example.com")
		login, sid := h.start()
		if err := h.fake.Approve(sid, w, o); err != nil {
			t.Fatal(err)
		}
		res := h.mustPoll(login, providers.Completed)
		if res.Identity.Claims["preferred_username"] != "first@example.com" {
			t.Fatalf("claims %v", res.Identity.Claims)
		}
	}
}

func TestTransient(t *testing.T) {
	cases := []struct {
		name  string
		op    fake1kosmos.Op
		fault fake1kosmos.Fault
	}{
		{"poll 503", fake1kosmos.OpPoll, fake1kosmos.Fault{Status: 503, Body: "busy", Times: 1}},
		{"poll slower than the timeout", fake1kosmos.OpPoll, fake1kosmos.Fault{Delay: 2 * time.Second, Times: 1}},
		{"account lookup 502 after the one-shot answer", fake1kosmos.OpUserInfo, fake1kosmos.Fault{Status: 502, Times: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, fake1kosmos.Config{}, nil)
			login, sid := h.start()
			h.approve(sid, fake1kosmos.ApproveOptions{})
			h.fake.InjectFault(c.op, c.fault)
			if res, err := h.poll(login); err == nil {
				t.Fatalf("want a transient error, got %v", res)
			}
			// The answer was kept: the next poll completes even though the
			// service now says the session does not exist.
			h.mustPoll(login, providers.Completed)
			h.mustPoll(login, providers.Failed)
		})
	}
}

func TestReplayedDeliveryIsUsedOnce(t *testing.T) {
	h := newHarness(t, fake1kosmos.Config{}, nil)
	login, sid := h.start()
	h.approve(sid, fake1kosmos.ApproveOptions{})
	h.fake.InjectFault(fake1kosmos.OpPoll, fake1kosmos.Fault{Replay: true})
	h.mustPoll(login, providers.Completed)
	h.mustPoll(login, providers.Failed)
	if err := h.fake.Approve(sid, h.wallet, fake1kosmos.ApproveOptions{}); err == nil {
		t.Fatal("a second answer was accepted by the fake")
	}
}

// Two instances share the key pair through the store, so the one that did
// not create the session can still decrypt its answer.
func TestKeyPairSharedAcrossInstances(t *testing.T) {
	h := newHarness(t, fake1kosmos.Config{}, nil)
	login, sid := h.start()
	b := h.open(nil)
	if !b.key.Public().Equal(h.prov.key.Public()) {
		t.Fatal("second instance has another key")
	}
	h.approve(sid, fake1kosmos.ApproveOptions{})
	res, err := providers.ResultOf(b.Poll(context.Background(), login))
	if err != nil || res.State != providers.Completed {
		t.Fatalf("%v %v", res, err)
	}
}

func TestStartErrors(t *testing.T) {
	cases := []struct {
		name  string
		mod   func(*Config)
		op    fake1kosmos.Op
		fault fake1kosmos.Fault
	}{
		{"wrong licence", func(c *Config) { c.LicenseKey = "wrong" }, "", fake1kosmos.Fault{}},
		{"unknown community", func(c *Config) { c.Community = "nope" }, "", fake1kosmos.Fault{}},
		{"community info 500", nil, fake1kosmos.OpCommunityInfo, fake1kosmos.Fault{Status: 500}},
		{"service discovery malformed", nil, fake1kosmos.OpDiscovery, fake1kosmos.Fault{Malformed: true}},
		{"public key 503", nil, fake1kosmos.OpPublicKeys, fake1kosmos.Fault{Status: 503}},
		{"create 500", nil, fake1kosmos.OpSessionNew, fake1kosmos.Fault{Status: 500}},
		{"create slow", nil, fake1kosmos.OpSessionNew, fake1kosmos.Fault{Delay: time.Second}},
		{"session info without expiryTS", nil, fake1kosmos.OpSessionInfo, fake1kosmos.Fault{Status: 200, Body: `{"sessionId":"x"}`}},
		{"session info malformed", nil, fake1kosmos.OpSessionInfo, fake1kosmos.Fault{Malformed: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, fake1kosmos.Config{}, nil)
			p := h.open(c.mod)
			if c.op != "" {
				h.fake.InjectFault(c.op, c.fault)
			}
			if _, err := p.Start(context.Background(), providers.StartRequest{ID: "login-0123456789abcdef"}); err == nil {
				t.Fatal("started")
			} else if strings.Contains(err.Error(), h.fake.Config().LicenseKey) {
				t.Fatal("error leaks the licence key")
			}
		})
	}
}

func TestBadState(t *testing.T) {
	h := newHarness(t, fake1kosmos.Config{}, nil)
	for _, s := range []string{"", "{", `{"s":"../../x"}`} {
		h.mustPoll(providers.Login{ID: "x", State: []byte(s)}, providers.Failed)
	}
}

func TestCaddyfile(t *testing.T) {
	t.Setenv("BLOCKID_TEST_LICENSE", "from-env")
	cases := []struct {
		name, in, err string
	}{
		{"complete", `blockid { dns a.1kosmos.net
 community default
 license_key {env.BLOCKID_TEST_LICENSE}
 scopes firstname lastname
 auth_type pin
 curve secp256k1
 base_url http://127.0.0.1:9
 timeout 5s
 claims name email
}`, ""},
		{"missing dns", "blockid { community c\n license_key k\n}", `"dns"`},
		{"missing license_key", "blockid { dns d\n community c\n}", `"license_key"`},
		{"unknown option", "blockid { dns d\n community c\n license_key k\n colour red\n}", `unknown option "colour"`},
		{"other curve", "blockid { dns d\n community c\n license_key k\n curve prime256v1\n}", "only secp256k1"},
		{"bad auth_type", "blockid { dns d\n community c\n license_key k\n auth_type retina\n}", "auth_type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cfg Config
			err := cfg.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.in))
			if c.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.AuthType != "pin" || strings.Join(cfg.Scopes, ",") != "firstname,lastname" {
					t.Fatalf("%+v", cfg)
				}
				p, err := cfg.Open(providers.Env{Name: "b", Store: store.NewMemory(nil), HTTP: http.DefaultClient, Now: time.Now})
				if err != nil {
					t.Fatal(err)
				}
				if p.(*provider).client.LicenseKey != "from-env" {
					t.Fatal("placeholder not resolved")
				}
				raw, _ := json.Marshal(cfg)
				if !strings.Contains(string(raw), `"license_key":"{env.BLOCKID_TEST_LICENSE}"`) {
					t.Fatalf("JSON %s", raw)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("err = %v, want %s", err, c.err)
			}
		})
	}
	var cfg Config
	_ = cfg.UnmarshalCaddyfile(caddyfile.NewTestDispenser("blockid { dns d\n community c\n license_key {env.BLOCKID_TEST_UNSET}\n}"))
	if _, err := cfg.Open(providers.Env{Store: store.NewMemory(nil), HTTP: http.DefaultClient, Now: time.Now}); err == nil {
		t.Fatal("empty licence accepted")
	}
}

// No goroutine is left behind by a full login, including a timed-out call.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		h := newHarness(t, fake1kosmos.Config{}, nil)
		login, sid := h.start()
		h.fake.InjectFault(fake1kosmos.OpPoll, fake1kosmos.Fault{Delay: time.Second, Times: 1})
		_, _ = h.poll(login)
		h.approve(sid, fake1kosmos.ApproveOptions{})
		h.mustPoll(login, providers.Completed)
		h.srv.CloseClientConnections()
		h.srv.Close()
	}()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Fatalf("goroutines: %d before, %d after", before, n)
	}
}

// TestNullAccountIsNotAnUnknownAccount: the account lookup answering the
// JSON literal null (a broken or hostile service) failed the login with
// "not enrolled here", which the service says with {} or 404 only.
func TestNullAccountIsNotAnUnknownAccount(t *testing.T) {
	h := newHarness(t, fake1kosmos.Config{}, nil)
	login, sid := h.start()
	h.approve(sid, fake1kosmos.ApproveOptions{})
	h.fake.InjectFault(fake1kosmos.OpUserInfo, fake1kosmos.Fault{Hostile: hostile.MalformedNull, Times: 1})
	res := h.mustPoll(login, providers.Failed)
	if strings.Contains(res.Message, "not enrolled") {
		t.Fatalf("a null answer said %q", res.Message)
	}
}
