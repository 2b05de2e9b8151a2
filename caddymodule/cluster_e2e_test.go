package caddymodule_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
)

// stores are the two ways instances share state (docs/reference.md,
// "Several instances"): one file
// system storage (as on a shared volume), or Redis with each instance on its
// own storage.
var stores = []string{"file", "redis"}

// cluster starts two instances sharing state through kind, as two Caddy
// servers behind a load balancer would.
func cluster(t *testing.T, kind string) (a, b *e2e.Instance, redis *e2e.Redis) {
	t.Helper()
	if kind == "file" {
		dir := t.TempDir()
		return e2e.Start(t, site, e2e.Options{Storage: dir}), e2e.Start(t, site, e2e.Options{Storage: dir}), nil
	}
	redis = e2e.StartRedis(t)
	cfg := strings.Replace(site, "idv {", "idv {\n\t\tstore redis {env.IDV_REDIS_URL}", 1)
	env := []string{"IDV_REDIS_URL=" + redis.URL()}
	return e2e.Start(t, cfg, e2e.Options{Env: env}), e2e.Start(t, cfg, e2e.Options{Env: env}), redis
}

// viaLB is what a load balancer in front of A and B does: every request
// reaches an instance with the public Host (here A's). Cookies need no
// copying: browsers do not keep them apart by port.
func viaLB(br *e2e.Browser, a *e2e.Instance) *e2e.Browser {
	u, _ := url.Parse(a.URL)
	return br.Via(u.Host)
}

func TestClusterSharesLoginsAndSessions(t *testing.T) {
	for _, kind := range stores {
		t.Run(kind, func(t *testing.T) { testClusterSharesLoginsAndSessions(t, kind) })
	}
}

func testClusterSharesLoginsAndSessions(t *testing.T, kind string) {
	a, b, _ := cluster(t, kind)
	br := e2e.NewBrowser()

	// A login started on A is answered on B (the pending cookie is sealed
	// with a key both share), and the wallet on B approves it.
	s := br.StartLogin(t, a.URL, map[string]string{"provider": "demo", "rd": "/here"})
	br = viaLB(br, a)
	if st := br.Poll(t, b.URL, s, 0); st.State != "pending" {
		t.Fatalf("status on B: %+v", st)
	}
	phone := viaLB(e2e.NewBrowser(), a)
	if code, _, _ := phone.Do(t, http.MethodPost, b.URL+"/.idv/demo/wallet/"+s.ID+"/approve", nil, nil); code != http.StatusSeeOther {
		t.Fatalf("approve on B: %d", code)
	}
	st := br.Poll(t, b.URL, s, 5)
	if st.State != "completed" {
		t.Fatalf("completed on B: %+v", st)
	}
	if br.Cookie(a.URL, "idv_session") == "" {
		t.Fatal("no session cookie from B")
	}
	tok := bearerFor(t, br, a.URL)

	// The session minted on B is valid on A (shared signing keys)...
	api := viaLB(e2e.NewBrowser(), a)
	for _, inst := range []*e2e.Instance{a, b} {
		if code, _, body := api.Do(t, http.MethodGet, inst.URL+"/", nil, map[string]string{"Authorization": "Bearer " + tok}); code != 200 {
			t.Fatalf("token on %s: %d %s", inst.URL, code, body)
		}
	}
	// ...A and B publish the same keys...
	_, _, ja := api.Do(t, http.MethodGet, a.URL+"/.idv/jwks", nil, nil)
	_, _, jb := api.Do(t, http.MethodGet, b.URL+"/.idv/jwks", nil, nil)
	if string(ja) != string(jb) {
		t.Fatal("instances publish different keys")
	}
	// ...and a logout on A is refused on A at once, and on B at once with
	// Redis (publish/subscribe) and within 10 s with file storage.
	if code, _, _ := api.Do(t, http.MethodPost, a.URL+"/.idv/logout", nil, map[string]string{"Authorization": "Bearer " + tok}); code != http.StatusSeeOther {
		t.Fatalf("logout on A: %d", code)
	}
	if code, _, _ := api.Do(t, http.MethodGet, a.URL+"/", nil, map[string]string{"Authorization": "Bearer " + tok}); code != 401 {
		t.Fatalf("revoked token on A: %d", code)
	}
	start := time.Now()
	for {
		code, _, _ := api.Do(t, http.MethodGet, b.URL+"/", nil, map[string]string{"Authorization": "Bearer " + tok})
		if code == 401 {
			break
		}
		limit := 10 * time.Second
		if kind == "redis" {
			limit = time.Second
		}
		if time.Since(start) > limit {
			t.Fatalf("B still accepts the token %s after logout on A", time.Since(start))
		}
		time.Sleep(100 * time.Millisecond) // no signal crosses processes; poll B
	}
	t.Logf("B refused the revoked token %s after the logout on A", time.Since(start).Round(time.Millisecond))
}

// TestClusterApprovesOnce races approvals of the same login on A and B:
// exactly one may win, every time.
func TestClusterApprovesOnce(t *testing.T) {
	for _, kind := range stores {
		t.Run(kind, func(t *testing.T) { testClusterApprovesOnce(t, kind) })
	}
}

func testClusterApprovesOnce(t *testing.T, kind string) {
	a, b, _ := cluster(t, kind)
	br := e2e.NewBrowser()
	for round := 0; round < 20; round++ {
		s := br.StartLogin(t, a.URL, map[string]string{"provider": "demo"})
		var won, lost atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 6; i++ {
			inst := a
			if i%2 == 1 {
				inst = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := http.Post(inst.URL+"/.idv/demo/wallet/"+s.ID+"/approve", "application/json", nil)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					won.Add(1)
				case http.StatusConflict:
					lost.Add(1)
				default:
					t.Errorf("approve: %d", resp.StatusCode)
				}
			}()
		}
		wg.Wait()
		if won.Load() != 1 || lost.Load() != 5 {
			t.Fatalf("round %d: %d approvals won, %d refused", round, won.Load(), lost.Load())
		}
		if st := br.Poll(t, a.URL, s, 5); st.State != "completed" {
			t.Fatalf("round %d: %+v", round, st)
		}
	}
}

// TestRedisOutage stops Redis under two running instances: requests that
// need it fail closed with 503, sessions already verified keep working, and
// everything recovers by itself when Redis is back.
func TestRedisOutage(t *testing.T) {
	a, b, redis := cluster(t, "redis")
	br := e2e.NewBrowser()
	if _, st := login(t, a, br, nil, "/"); st.State != "completed" {
		t.Fatal(st)
	}
	redis.Stop()
	code, _, body := br.Do(t, http.MethodPost, b.URL+"/.idv/sessions", strings.NewReader(`{"provider":"demo"}`), map[string]string{"Content-Type": "application/json"})
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), `"error":"unavailable"`) {
		t.Fatalf("start login with Redis down: %d %s", code, body)
	}
	if code, _, _ := br.Do(t, http.MethodGet, a.URL+"/", nil, nil); code != 200 {
		t.Fatalf("a verified session with Redis down: %d", code)
	}
	redis.Start()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _, _ := br.Do(t, http.MethodPost, b.URL+"/.idv/sessions", strings.NewReader(`{"provider":"demo"}`), map[string]string{"Content-Type": "application/json"})
		if code == http.StatusCreated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after Redis came back: %d", code)
		}
		time.Sleep(200 * time.Millisecond) // the reconnect is go-redis's, with no signal to await
	}
	if !strings.Contains(b.Logs(), "unavailable") {
		t.Error("the outage left no log line on B")
	}
}
