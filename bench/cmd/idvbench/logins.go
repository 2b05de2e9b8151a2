package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-idv/caddy-idv/providers/marksign/fakemarksign"
)

const loginSite = `
	idv {
		provider demo {
			user "Load Test"
			lifetime 10m
		}
		limit {
			per_address 1000000 1m
			total 1000000 1m
			held_per_address 1000000
		}
	}
	respond "ok"
`

// completion times 'n' logins: from the wallet's Approve to the browser's
// long poll answering completed.
func completion(base string, n int) (median, p95 time.Duration) {
	var lat []time.Duration
	for i := 0; i < n; i++ {
		b := newBrowser()
		s := b.startLogin(base)
		held := make(chan struct{})
		done := make(chan time.Time, 1)
		go func() {
			close(held)
			// As the page does: poll again while the login is pending.
			for try := 0; ; try++ {
				st := b.poll(base, s, 30)
				if st == "completed" {
					break
				}
				if st != "pending" || try > 3 {
					fail(fmt.Errorf("login %d: %s", i, st))
				}
			}
			done <- time.Now()
		}()
		<-held
		time.Sleep(30 * time.Millisecond) // the request reaches the server; nothing to await
		t0 := time.Now()
		approve(s)
		lat = append(lat, (<-done).Sub(t0))
	}
	return percentile(lat, 0.5), percentile(lat, 0.95)
}

// pendingLogins holds many logins pending, each by a long-poll, and
// measures what they cost while nothing happens and how fast another login
// completes meanwhile.
func pendingLogins() {
	srv := start(loginSite, filepath.Join(workDir, "pending"))
	defer srv.stop()
	m0, p0 := completion(srv.url, *logins)

	tr := &http.Transport{MaxIdleConnsPerHost: *pending + 100, IdleConnTimeout: time.Minute}
	client := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	type login struct{ status, cookie string }
	ls := make([]login, *pending)
	var next atomic.Int64
	par(16, func(int) {
		for {
			i := int(next.Add(1) - 1)
			if i >= len(ls) {
				return
			}
			req, _ := http.NewRequest(http.MethodPost, srv.url+"/.idv/sessions", strings.NewReader(`{"provider":"demo"}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				fail(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				fail(fmt.Errorf("start: %d %s", resp.StatusCode, body))
			}
			var s started
			_ = jsonUnmarshal(body, &s)
			c := resp.Cookies()[0]
			ls[i] = login{status: s.StatusURL, cookie: c.Name + "=" + c.Value}
		}
	})
	time.Sleep(2 * time.Second)
	rssBefore, gBefore := srv.rssMiB(), srv.goroutines()
	var held atomic.Int64
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.url+l.status+"?wait=30", nil)
				req.Header.Set("Cookie", l.cookie)
				held.Add(1)
				resp, err := client.Do(req)
				held.Add(-1)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	time.Sleep(5 * time.Second) // let every long-poll reach the server
	rssDuring, gDuring := srv.rssMiB(), srv.goroutines()
	c0 := srv.cpuSeconds()
	idle := 10 * time.Second
	time.Sleep(idle)
	busy := (srv.cpuSeconds() - c0) / idle.Seconds() * 100
	m1, p1 := completion(srv.url, *logins)
	cancel()
	wg.Wait()
	tr.CloseIdleConnections()

	row(fmt.Sprintf("%d pending logins held by long-polls: resident memory", *pending),
		fmt.Sprintf("%.0f MiB before, %.0f MiB during: +%.0f MiB", rssBefore, rssDuring, rssDuring-rssBefore), "≤ +320 MiB")
	row("… goroutines", fmt.Sprintf("%d before, %d during: %.2f per held request (net/http's connection goroutine and its background read; the login engine adds none)", gBefore, gDuring, float64(gDuring-gBefore)/float64(*pending)), "1 per held request")
	row("… CPU while nothing changes", fmt.Sprintf("%.1f%% of a core", busy), "≤ 2%")
	row(fmt.Sprintf("completion after Approve (%d logins)", *logins), fmt.Sprintf("median %s, p95 %s", ms(m0), ms(p0)), "p95 ≤ 300 ms")
	row(fmt.Sprintf("… with %d other logins pending", *pending), fmt.Sprintf("median %s, p95 %s", ms(m1), ms(p1)), "p95 ≤ 300 ms")
}

// tabsAndInstances counts Mobile-ID status calls for one login polled by
// five tabs spread over two instances.
func tabsAndInstances() {
	fake, err := fakemarksign.New(fakemarksign.Options{})
	if err != nil {
		fail(err)
	}
	fakeSrv := &http.Server{Handler: fake}
	l, err := listen()
	if err != nil {
		fail(err)
	}
	go func() { _ = fakeSrv.Serve(l) }()
	defer fakeSrv.Close()
	ca := filepath.Join(workDir, "marksign-ca.pem")
	if err := os.WriteFile(ca, fake.CAPEM(), 0o600); err != nil {
		fail(err)
	}
	site := `
	idv {
		provider marksign_mobileid {
			base_url     http://` + l.Addr().String() + `
			access_token ` + fake.AccessToken() + `
			trusted_ca   ` + ca + `
		}
	}
	respond "ok"
`
	storage := filepath.Join(workDir, "tabs")
	a, b := start(site, storage), start(site, storage)
	defer a.stop()
	defer b.stop()
	acct := fakemarksign.DefaultAccounts[0]
	br := newBrowser()
	code, data := br.do(http.MethodPost, a.url+"/.idv/sessions", strings.NewReader(`{"provider":"marksign_mobileid","phone":"`+acct.Phone+`","personal_code":"`+acct.Code+`"}`), map[string]string{"Content-Type": "application/json"})
	if code != http.StatusCreated {
		fail(fmt.Errorf("start: %d %s", code, data))
	}
	var s started
	_ = jsonUnmarshal(data, &s)
	before := fake.Count(fakemarksign.RouteStatus)
	window := 15 * time.Second
	t0 := time.Now()
	par(5, func(i int) {
		base := []string{a.url, b.url}[i%2]
		for time.Since(t0) < window {
			br.poll(base, s, 2)
		}
	})
	calls := fake.Count(fakemarksign.RouteStatus) - before
	intervals := time.Since(t0).Seconds() / 3
	row("provider calls per login per 3 s interval, 5 tabs on 2 instances", fmt.Sprintf("%.2f after the first call, which is made at once (%d calls in %.0f s)", float64(calls-1)/intervals, calls, time.Since(t0).Seconds()), "≤ 1")
}

// oidcExchanges measures authorization-code exchanges per second, on the
// default storage and on Redis.
func oidcExchanges() {
	measure := func(name, storeLine, alg string) {
		site := `
	idv {
		provider demo
		` + storeLine + `
		oidc {
			issuer {url}
			client app {
				secret bench-secret-0123456789
				redirect_uri http://127.0.0.1/cb
				id_token_signed_response_alg ` + alg + `
			}
		}
	}
	respond "ok"
`
		srv := start(site, filepath.Join(workDir, "oidc-"+name+"-"+alg))
		defer srv.stop()
		b := login(srv.url)
		codes := make([]string, *exchanges)
		var next atomic.Int64
		par(8, func(int) {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(codes) {
					return
				}
				req, _ := http.NewRequest(http.MethodGet, srv.url+"/.idv/oidc/authorize?"+url.Values{
					"client_id": {"app"}, "redirect_uri": {"http://127.0.0.1/cb"}, "response_type": {"code"},
					"scope": {"openid"}, "state": {"s"}}.Encode(), nil)
				resp, err := b.Do(req)
				if err != nil {
					fail(err)
				}
				resp.Body.Close()
				loc, _ := url.Parse(resp.Header.Get("Location"))
				if codes[i] = loc.Query().Get("code"); codes[i] == "" {
					fail(fmt.Errorf("authorize: %d %s", resp.StatusCode, loc))
				}
			}
		})
		tr := &http.Transport{MaxIdleConnsPerHost: 16}
		client := &http.Client{Transport: tr}
		next.Store(0)
		profDone := make(chan struct{})
		if *profile != "" {
			go func() {
				defer close(profDone)
				resp, err := http.Get(srv.admin + "/debug/pprof/profile?seconds=3")
				if err != nil {
					return
				}
				defer resp.Body.Close()
				f, err := os.Create(*profile + "-" + alg + ".pprof")
				if err == nil {
					_, _ = io.Copy(f, resp.Body)
					f.Close()
				}
			}()
		} else {
			close(profDone)
		}
		t0 := time.Now()
		par(16, func(int) {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(codes) {
					return
				}
				form := url.Values{"grant_type": {"authorization_code"}, "code": {codes[i]}, "redirect_uri": {"http://127.0.0.1/cb"}}
				req, _ := http.NewRequest(http.MethodPost, srv.url+"/.idv/oidc/token", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth("app", "bench-secret-0123456789")
				resp, err := client.Do(req)
				if err != nil {
					fail(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					fail(fmt.Errorf("exchange: %d", resp.StatusCode))
				}
			}
		})
		rate := float64(len(codes)) / time.Since(t0).Seconds()
		<-profDone
		target := "≥ 3,000/s"
		if name == "redis" {
			target = "≥ 6,000/s"
		}
		if alg == "RS256" {
			target = "(RSA signing, for comparison)"
		}
		row(fmt.Sprintf("OIDC code exchanges, %s, %s ID token", name, alg), fmt.Sprintf("%.0f/s", rate), target)
	}
	measure("default storage", "", "ES256")
	measure("default storage", "", "RS256")
	if *skipRedis {
		return
	}
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		row("OIDC code exchanges, redis", "not measured: no redis-server", "")
		return
	}
	port := freePort()
	cmd := exec.Command("taskset", "-c", *serverCPU, redisBin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	time.Sleep(300 * time.Millisecond)
	measure("redis", fmt.Sprintf("store redis redis://127.0.0.1:%d/0", port), "ES256")
}
