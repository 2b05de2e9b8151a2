package fake1kosmos_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/providers/onekosmos"
	"github.com/caddy-idv/caddy-idv/providers/onekosmos/fake1kosmos"
	"github.com/caddy-idv/caddy-idv/store/storetest"
)

func setup(t *testing.T, cfg fake1kosmos.Config) (*fake1kosmos.Fake, *onekosmos.Client, *storetest.Clock) {
	t.Helper()
	clock := storetest.NewClock(time.Unix(1_800_000_000, 0))
	cfg.Now = clock.Now
	f := fake1kosmos.New(cfg)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	key, _ := onekosmos.GenerateKey()
	c := &onekosmos.Client{DNS: f.Config().DNS, Community: f.Config().Community, LicenseKey: f.Config().LicenseKey,
		BaseURL: srv.URL, Key: key, HTTP: srv.Client(), Now: clock.Now, AppID: "test"}
	return f, c, clock
}

func TestBootstrapPointsBackAtTheFake(t *testing.T) {
	_, c, _ := setup(t, fake1kosmos.Config{})
	ten, err := c.Tenant(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"sessions", "docuverify", "adminconsole", "events", "licenses"} {
		u, err := ten.Service(s)
		if err != nil || !strings.HasPrefix(u, c.BaseURL) {
			t.Fatalf("%s = %q %v", s, u, err)
		}
	}
	for _, s := range []string{"sessions", "docuverify", "events"} {
		if _, err := c.ServiceKey(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	c.Community = "other"
	c.Forget()
	if _, err := c.Tenant(context.Background()); err == nil || !strings.Contains(err.Error(), "Unable to load tenant/community") {
		t.Fatalf("unknown community: %v", err)
	}
}

func TestLicenceHeaders(t *testing.T) {
	cases := []struct {
		name   string
		cfg    fake1kosmos.Config
		mutate func(c *onekosmos.Client, clock *storetest.Clock)
		want   int
	}{
		{"valid", fake1kosmos.Config{}, func(*onekosmos.Client, *storetest.Clock) {}, http.StatusCreated},
		{"wrong licence", fake1kosmos.Config{}, func(c *onekosmos.Client, _ *storetest.Clock) { c.LicenseKey = "nope" }, http.StatusUnauthorized},
		{"stale requestid in strict mode", fake1kosmos.Config{StrictTS: true}, func(c *onekosmos.Client, clock *storetest.Clock) {
			c.Now = func() time.Time { return clock.Now().Add(-2 * time.Minute) }
		}, http.StatusUnauthorized},
		{"stale requestid by default", fake1kosmos.Config{}, func(c *onekosmos.Client, clock *storetest.Clock) {
			c.Now = func() time.Time { return clock.Now().Add(-2 * time.Minute) }
		}, http.StatusCreated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, c, clock := setup(t, tc.cfg)
			ctx := context.Background()
			ten, _ := c.Tenant(ctx)
			svc, _ := c.ServiceKey(ctx, "sessions")
			base, _ := ten.Service("sessions")
			tc.mutate(c, clock)
			st, raw, err := c.Do(ctx, onekosmos.Call{Op: "new", Method: http.MethodPut, URL: base + "/session/new", Peer: svc,
				Body: map[string]any{"origin": map[string]any{"tag": ten.TenantTag}}})
			if err != nil || st != tc.want {
				t.Fatalf("status %d %s %v", st, raw, err)
			}
		})
	}
}

func TestUWLLifecycle(t *testing.T) {
	for _, ttl := range []time.Duration{60 * time.Second, 120 * time.Second} {
		f, c, clock := setup(t, fake1kosmos.Config{TTL: ttl})
		ctx := context.Background()
		ten, _ := c.Tenant(ctx)
		svc, _ := c.ServiceKey(ctx, "sessions")
		base, _ := ten.Service("sessions")
		_, raw, _ := c.Do(ctx, onekosmos.Call{Op: "new", Method: http.MethodPut, URL: base + "/session/new", Peer: svc,
			Body: map[string]any{"origin": map[string]any{"tag": ten.TenantTag}}})
		var created struct{ SessionID string }
		_ = json.Unmarshal(raw, &created)
		doc := f.UWLSession(created.SessionID)
		if doc["expiryTS"].(int64)-doc["createdTS"].(int64) != int64(ttl/time.Second) {
			t.Fatalf("ttl %v: %v", ttl, doc)
		}
		poll := func() (int, string) {
			st, raw, _ := c.Do(ctx, onekosmos.Call{Op: "poll", Method: http.MethodGet, URL: base + "/session/" + created.SessionID + "/response", Peer: svc})
			return st, string(raw)
		}
		if st, msg := poll(); st != 404 || msg != "Not Found" {
			t.Fatalf("%d %s", st, msg)
		}
		clock.Advance(ttl)
		if st, msg := poll(); st != 400 || msg != "Session has expired" {
			t.Fatalf("%d %s", st, msg)
		}
		if err := f.Approve(created.SessionID, f.DemoWallet(), fake1kosmos.ApproveOptions{}); err == nil {
			t.Fatal("approved after expiry")
		}
	}
}
