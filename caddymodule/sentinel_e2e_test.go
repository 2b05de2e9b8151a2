package caddymodule_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
)

// maxLoginOutage bounds how long after the master crashed logins may still
// meet 503: Sentinel promotes the replica within about 2–3 s, and the new
// master, left without a replica, confirms no write for 3 s more before the
// store takes writes unconfirmed (store/redis/README.md).
const maxLoginOutage = 20 * time.Second

// TestSentinelFailoverDuringLogins crashes the Redis master of a Sentinel
// group under two Caddy instances while people log in through both: every
// person gets in (retrying what met 503, as the login page does, and
// starting over a login that failed during the outage), nothing answers
// another 5xx, no login fails outside the outage, sessions logged out
// before the crash stay refused on both instances and on an instance
// started after it, the outage is bounded, and each instance logs it as
// JSON lines only.
//
// Logins fail, rather than answer 503, when the demo provider cannot
// consume the wallet's one-time result during the outage: it reports any
// error of its result check as a failed login. The test counts them.
func TestSentinelFailoverDuringLogins(t *testing.T) {
	g := e2e.StartSentinel(t)
	cfg := withStore(site, "store redis {env.IDV_REDIS_URL}")
	env := []string{"IDV_REDIS_URL=" + g.URL()}
	a := e2e.Start(t, cfg, e2e.Options{Env: env})
	b := e2e.Start(t, cfg, e2e.Options{Env: env})
	insts := []*e2e.Instance{a, b}

	// Sessions logged out before the crash.
	var revoked []string
	for i := range 3 {
		br := viaLB(e2e.NewBrowser(), a)
		if _, st := login(t, insts[i%2], br, nil, "/"); st.State != "completed" {
			t.Fatalf("login before the crash: %+v", st)
		}
		tok := br.Cookie(a.URL, "idv_session")
		bearer := map[string]string{"Authorization": "Bearer " + tok}
		if code, _, _ := br.Do(t, http.MethodPost, insts[(i+1)%2].URL+"/.idv/logout", nil, bearer); code != http.StatusSeeOther {
			t.Fatalf("logout: %d", code)
		}
		revoked = append(revoked, tok)
	}

	var (
		mu                      sync.Mutex
		firstOutage, lastOutage time.Time
		unexpected              []string
		completed               atomic.Int64
		completedAfter          atomic.Int64
		crashed                 atomic.Bool
		// failedAt are the times logins failed and were started over.
		failedAt []time.Time
		// warm is closed once 10 logins have completed.
		warm     = make(chan struct{})
		warmOnce sync.Once
	)
	// note records an answer: 503 is the outage, anything not in ok is a
	// failure of the test.
	note := func(what string, code int, body []byte, ok ...int) bool {
		if code == http.StatusServiceUnavailable {
			mu.Lock()
			now := time.Now()
			if firstOutage.IsZero() {
				firstOutage = now
			}
			lastOutage = now
			mu.Unlock()
			return false
		}
		for _, c := range ok {
			if code == c {
				return true
			}
		}
		mu.Lock()
		unexpected = append(unexpected, fmt.Sprintf("%s: %d %.200s", what, code, body))
		mu.Unlock()
		return false
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				err := loginThroughOutage(insts[(w+n)%2], insts[(w+n+1)%2], a, note)
				if errors.Is(err, errLoginFailed) {
					mu.Lock()
					failedAt = append(failedAt, time.Now())
					mu.Unlock()
					continue
				}
				if err != nil {
					mu.Lock()
					unexpected = append(unexpected, err.Error())
					mu.Unlock()
					return
				}
				if completed.Add(1) == 10 {
					warmOnce.Do(func() { close(warm) })
				}
				if crashed.Load() {
					completedAfter.Add(1)
				}
			}
		})
	}

	select {
	case <-warm:
	case <-time.After(time.Minute):
		close(stop)
		wg.Wait()
		t.Fatal("no load before the failover")
	}
	old := g.MasterAddr()
	crash := time.Now()
	crashed.Store(true)
	g.KillMaster()
	newMaster := g.WaitFailover(old)
	t.Logf("Sentinel promoted %s %v after the crash", newMaster, time.Since(crash).Round(time.Millisecond))
	deadline := crash.Add(maxLoginOutage + 20*time.Second)
	for completedAfter.Load() < 20 || time.Since(lastOutageOf(&mu, &lastOutage)) < 2*time.Second {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // a state that builds up over time, with no event to await
	}
	close(stop)
	wg.Wait()

	mu.Lock()
	for _, u := range unexpected {
		t.Error(u)
	}
	outage := time.Duration(0)
	if !lastOutage.IsZero() {
		outage = lastOutage.Sub(crash)
		t.Logf("503 from %v to %v after the crash", firstOutage.Sub(crash).Round(time.Millisecond), outage.Round(time.Millisecond))
	}
	for _, at := range failedAt {
		if since := at.Sub(crash); since < 0 || since > maxLoginOutage {
			t.Errorf("a login failed %v after the crash, outside the outage", since.Round(time.Millisecond))
		}
	}
	t.Logf("%d logins completed, %d of them after the crash; %d failed during the outage and were started over",
		completed.Load(), completedAfter.Load(), len(failedAt))
	mu.Unlock()
	if outage > maxLoginOutage {
		t.Errorf("logins met 503 until %v after the crash, longer than %v", outage, maxLoginOutage)
	}
	if completedAfter.Load() < 20 {
		t.Errorf("only %d logins completed after the crash", completedAfter.Load())
	}

	// Logged-out sessions stay refused, also on an instance that starts now
	// and reads the revocations from the new master (the running instances
	// write back, at their next sync, any the crash lost).
	c := e2e.Start(t, cfg, e2e.Options{Env: env})
	api := viaLB(e2e.NewBrowser(), a)
	for _, tok := range revoked {
		bearer := map[string]string{"Authorization": "Bearer " + tok}
		for _, inst := range insts {
			if code, _, _ := api.Do(t, http.MethodGet, inst.URL+"/", nil, bearer); code != http.StatusUnauthorized {
				t.Errorf("a session logged out before the crash answers %d on %s", code, inst.URL)
			}
		}
		refused := false
		// Another process's periodic sync, with no signal across processes.
		for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
			code, _, _ := api.Do(t, http.MethodGet, c.URL+"/", nil, bearer)
			if code == http.StatusUnauthorized {
				refused = true
				break
			}
		}
		if !refused {
			t.Error("an instance started after the crash accepts a session logged out before it")
		}
	}

	for _, inst := range insts {
		logs := inst.Logs()
		if n := strings.Count(logs, "Redis is unavailable"); n > 1 {
			t.Errorf("%s logged the outage %d times", inst.URL, n)
		}
		for line := range strings.SplitSeq(strings.TrimSpace(logs), "\n") {
			if !json.Valid([]byte(line)) {
				t.Errorf("%s wrote a line that is not JSON: %q", inst.URL, line)
			}
		}
	}
}

func lastOutageOf(mu *sync.Mutex, t *time.Time) time.Time {
	mu.Lock()
	defer mu.Unlock()
	return *t
}

// errLoginFailed is a login that ended in the state "failed".
var errLoginFailed = errors.New("login failed")

// loginThroughOutage walks one demo login, started on first and approved on
// second, both reached with a's Host as a load balancer would, retrying each
// step that answers 503 as the login page and the wallet do. It returns an
// error for a login that does not complete within a minute.
func loginThroughOutage(first, second, a *e2e.Instance, note func(string, int, []byte, ...int) bool) error {
	br := viaLB(e2e.NewBrowser(), a)
	phone := viaLB(e2e.NewBrowser(), a)
	deadline := time.Now().Add(time.Minute)
	retry := func(what string, fn func() (bool, error)) error {
		for time.Now().Before(deadline) {
			done, err := fn()
			if err != nil || done {
				return err
			}
			time.Sleep(50 * time.Millisecond) // the page's own retry pause, shortened
		}
		return fmt.Errorf("%s: not within a minute", what)
	}
	var s e2e.Started
	err := retry("start", func() (bool, error) {
		code, body, err := send(br, http.MethodPost, first.URL+"/.idv/sessions", `{"provider":"demo"}`, "application/json")
		if err != nil {
			return false, err
		}
		if !note("start", code, body, http.StatusCreated) {
			return false, nil
		}
		return true, json.Unmarshal(body, &s)
	})
	if err != nil {
		return err
	}
	approve := strings.Replace(s.QRText, first.URL, second.URL, 1) + "/approve"
	err = retry("approve", func() (bool, error) {
		code, body, err := send(phone, http.MethodPost, approve, "", "application/x-www-form-urlencoded")
		if err != nil {
			return false, err
		}
		// 409: an earlier attempt that met 503 had recorded it.
		return note("approve", code, body, http.StatusSeeOther, http.StatusConflict), nil
	})
	if err != nil {
		return err
	}
	return retry("poll", func() (bool, error) {
		code, body, err := send(br, http.MethodGet, second.URL+s.StatusURL+"?wait=5", "", "")
		if err != nil {
			return false, err
		}
		if !note("poll", code, body, http.StatusOK) {
			return false, nil
		}
		var st e2e.Status
		if err := json.Unmarshal(body, &st); err != nil {
			return false, err
		}
		switch st.State {
		case "completed":
			return true, nil
		case "pending", "approved":
			return false, nil
		case "failed":
			return false, errLoginFailed
		}
		return false, fmt.Errorf("login ended %q: %s", st.State, body)
	})
}

// send makes one request with b, with b's Host, and returns the status and
// body; unlike Browser.Do it may be called off the test goroutine.
func send(b *e2e.Browser, method, url, body, contentType string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewBufferString(body))
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if b.Host != "" {
		req.Host = b.Host
	}
	resp, err := b.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}
