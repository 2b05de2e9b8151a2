package attack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
	"github.com/caddy-idv/caddy-idv/providers/marksign/fakemarksign"
)

// behindProxy makes Caddy take the client address from X-Forwarded-For, as
// behind a load balancer (the tests' connections all come from 127.0.0.1,
// the trusted proxy), so that a case can be any address.
const behindProxy = "trusted_proxies static 127.0.0.1/32\n\t\tclient_ip_headers X-Forwarded-For"

// from is a start request from addr (through the trusted proxy).
func (s *suite) startFrom(t *testing.T, addr string, fields map[string]string) answer {
	t.Helper()
	h := s.sameOrigin()
	if addr != "" {
		h["X-Forwarded-For"] = addr
	}
	return do(t, e2e.NewBrowser(), http.MethodPost, s.url("/.idv/sessions"), jsonBody(fields), h)
}

var demoStart = map[string]string{"provider": "demo", "rd": "/"}

// wantLimited fails t unless a is the documented 429: Retry-After in whole
// seconds within the window, a JSON error the page shows, no pending
// cookie.
func wantLimited(t *testing.T, a answer, window int) {
	t.Helper()
	wantError(t, a, http.StatusTooManyRequests, "rate_limited")
	secs, err := strconv.Atoi(a.header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > window {
		t.Fatalf("Retry-After %q; want 1..%d seconds", a.header.Get("Retry-After"), window)
	}
	if !strings.Contains(string(a.body), `"message":"Too many login attempts. Try again in `+strconv.Itoa(secs)+` seconds."`) {
		t.Fatalf("429 without the message the page shows: %s", a.body)
	}
	if sc := a.header.Values("Set-Cookie"); len(sc) != 0 {
		t.Fatalf("a refused start set cookies: %q", sc)
	}
}

// use spends n starts of addr, each of which must be allowed.
func (s *suite) use(t *testing.T, addr string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if a := s.startFrom(t, addr, demoStart); a.code != http.StatusCreated {
			t.Fatalf("start %d from %s: %v", i+1, addr, a)
		}
	}
}

// mobileID is a Mobile-ID start's fields.
func mobileID(phone, code string) map[string]string {
	return map[string]string{"provider": "marksign_mobileid", "rd": "/", "phone": phone, "personal_code": code}
}

// TestAttackAbuseLimits: the limits on starting logins (per address, IPv6
// per /64, in total without locking everyone out, per person for
// Mobile-ID), on long-polls held, and on failed OIDC client
// authentication. Each address below is used by one case only.
func TestAttackAbuseLimits(t *testing.T) {
	s := newSuite(t, options{servers: behindProxy, limits: `limit {
			per_address  3 1m
			total        100000 1m
			per_identity 2 10m
			held_per_address 4
		}`})
	ee := fakemarksign.DefaultAccounts[0]
	lt := fakemarksign.DefaultAccounts[1]
	attacks := []attack{
		{"fourth start from one IPv4 address in the window", func(t *testing.T) {
			s.use(t, "198.51.100.1", 3)
			wantLimited(t, s.startFrom(t, "198.51.100.1", demoStart), 60)
		}},
		{"a limited address does not use up another address's budget", func(t *testing.T) {
			s.use(t, "198.51.100.2", 3)
			wantLimited(t, s.startFrom(t, "198.51.100.2", demoStart), 60)
			s.use(t, "198.51.100.3", 3)
		}},
		{"IPv6 addresses of one /64 share one budget", func(t *testing.T) {
			s.use(t, "2001:db8:1:1::1", 1)
			s.use(t, "2001:db8:1:1::2", 1)
			s.use(t, "2001:db8:1:1:ffff:ffff:ffff:ffff", 1)
			wantLimited(t, s.startFrom(t, "2001:db8:1:1::abcd", demoStart), 60)
		}},
		{"another /64 of the same /48 has its own budget", func(t *testing.T) {
			s.use(t, "2001:db8:2:1::1", 3)
			wantLimited(t, s.startFrom(t, "2001:db8:2:1::2", demoStart), 60)
			s.use(t, "2001:db8:2:2::1", 3)
		}},
		{"an IPv6 address written in another form is the same /64", func(t *testing.T) {
			s.use(t, "2001:db8:3:1::1", 1)
			s.use(t, "2001:0db8:0003:0001:0000:0000:0000:0002", 1)
			s.use(t, "2001:DB8:3:1::3", 1)
			wantLimited(t, s.startFrom(t, "2001:db8:3:1:0:0:0:4", demoStart), 60)
		}},
		{"an IPv4-mapped IPv6 address is its IPv4 address", func(t *testing.T) {
			s.use(t, "198.51.100.4", 2)
			s.use(t, "::ffff:198.51.100.4", 1)
			wantLimited(t, s.startFrom(t, "::ffff:198.51.100.4", demoStart), 60)
			wantLimited(t, s.startFrom(t, "198.51.100.4", demoStart), 60)
		}},
		{"an address with a port is the address", func(t *testing.T) {
			s.use(t, "198.51.100.5", 3)
			wantLimited(t, s.startFrom(t, "198.51.100.5:4444", demoStart), 60)
		}},
		{"a refused start does not reach the provider", func(t *testing.T) {
			s.use(t, "198.51.100.6", 3)
			before := s.gateway.Count(fakemarksign.RouteLogin)
			wantLimited(t, s.startFrom(t, "198.51.100.6", mobileID(lt.Phone, lt.Code)), 60)
			if n := s.gateway.Count(fakemarksign.RouteLogin); n != before {
				t.Fatalf("a refused start called the gateway (%d → %d)", before, n)
			}
		}},
		{"polls, pages and keys are not counted as starts", func(t *testing.T) {
			s.use(t, "198.51.100.7", 2)
			for _, path := range []string{"/.idv/login", "/.idv/jwks", "/.idv/health", "/.idv/sessions", "/.well-known/openid-configuration"} {
				for i := 0; i < 5; i++ {
					a := do(t, e2e.NewBrowser(), http.MethodGet, s.url(path), nil, map[string]string{"X-Forwarded-For": "198.51.100.7"})
					if a.code == http.StatusTooManyRequests {
						t.Fatalf("GET %s limited: %v", path, a)
					}
				}
			}
			s.use(t, "198.51.100.7", 1)
		}},
		{"health answers a limited address", func(t *testing.T) {
			s.use(t, "198.51.100.8", 3)
			wantLimited(t, s.startFrom(t, "198.51.100.8", demoStart), 60)
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.idv/health"), nil, map[string]string{"X-Forwarded-For": "198.51.100.8"})
			want(t, a, http.StatusOK)
		}},
		{"a start with a malformed body still counts", func(t *testing.T) {
			h := s.sameOrigin()
			h["X-Forwarded-For"] = "198.51.100.9"
			for i := 0; i < 3; i++ {
				a := do(t, e2e.NewBrowser(), http.MethodPost, s.url("/.idv/sessions"), strings.NewReader("{"), h)
				wantError(t, a, http.StatusBadRequest, "bad_request")
			}
			wantLimited(t, s.startFrom(t, "198.51.100.9", demoStart), 60)
		}},
		{"Mobile-ID: a third start for one person from other addresses", func(t *testing.T) {
			acct := fakemarksign.Account{Phone: "+37250000001", Code: "39001010120"}
			for i, addr := range []string{"203.0.113.1", "203.0.113.2"} {
				if a := s.startFrom(t, addr, mobileID(acct.Phone, acct.Code)); a.code != http.StatusCreated {
					t.Fatalf("start %d: %v", i+1, a)
				}
			}
			wantLimited(t, s.startFrom(t, "203.0.113.3", mobileID(acct.Phone, acct.Code)), 600)
		}},
		{"Mobile-ID: one phone number written in other forms is one person", func(t *testing.T) {
			code := "49001010110"
			for i, phone := range []string{"+372 5000 0002", "0037250000002"} {
				if a := s.startFrom(t, fmt.Sprintf("203.0.113.%d", 10+i), mobileID(phone, code)); a.code != http.StatusCreated {
					t.Fatalf("start %d (%s): %v", i+1, phone, a)
				}
			}
			for i, phone := range []string{"+372-5000-0002", "+372 (5000) 0002", "+372.5000.0002", "+37250000002"} {
				wantLimited(t, s.startFrom(t, fmt.Sprintf("203.0.113.%d", 20+i), mobileID(phone, code)), 600)
			}
		}},
		{"Mobile-ID: the personal code with spaces is the same person", func(t *testing.T) {
			phone := "+37250000003"
			s.startFrom(t, "203.0.113.30", mobileID(phone, "39001010120"))
			s.startFrom(t, "203.0.113.31", mobileID(phone, " 390 010 101 20 "))
			wantLimited(t, s.startFrom(t, "203.0.113.32", mobileID(phone, "39001010120")), 600)
		}},
		{"Mobile-ID: the limit says the same for a pair with and without Mobile-ID", func(t *testing.T) {
			// ee is a registered pair, the other one is not: both get two
			// starts and then the same 429, so the limit tells nothing.
			var refusals []string
			for n, pair := range [][2]string{{ee.Phone, ee.Code}, {"+37250000004", "38505050507"}} {
				for i := 0; i < 2; i++ {
					a := s.startFrom(t, fmt.Sprintf("203.0.113.%d", 40+n*4+i), mobileID(pair[0], pair[1]))
					if a.code != http.StatusCreated {
						t.Fatalf("start %d for pair %d: %v", i+1, n+1, a)
					}
				}
				a := s.startFrom(t, fmt.Sprintf("203.0.113.%d", 42+n*4), mobileID(pair[0], pair[1]))
				wantLimited(t, a, 600)
				refusals = append(refusals, strings.Join(strings.Fields(string(a.body)), " "))
			}
			if refusals[0] != refusals[1] {
				t.Fatalf("the refusals differ:\n%s\n%s", refusals[0], refusals[1])
			}
		}},
		{"Mobile-ID: a limited person's start does not prompt the phone", func(t *testing.T) {
			acct := [2]string{"+37250000005", "39001010120"}
			s.startFrom(t, "203.0.113.50", mobileID(acct[0], acct[1]))
			s.startFrom(t, "203.0.113.51", mobileID(acct[0], acct[1]))
			before := s.gateway.Count(fakemarksign.RouteLogin)
			wantLimited(t, s.startFrom(t, "203.0.113.52", mobileID(acct[0], acct[1])), 600)
			if n := s.gateway.Count(fakemarksign.RouteLogin); n != before {
				t.Fatalf("the limited start reached the gateway")
			}
		}},
		{"Mobile-ID: another person is not limited by a limited one", func(t *testing.T) {
			s.startFrom(t, "203.0.113.60", mobileID("+37250000006", "39001010120"))
			s.startFrom(t, "203.0.113.61", mobileID("+37250000006", "39001010120"))
			wantLimited(t, s.startFrom(t, "203.0.113.62", mobileID("+37250000006", "39001010120")), 600)
			if a := s.startFrom(t, "203.0.113.63", mobileID("+37250000007", "39001010120")); a.code != http.StatusCreated {
				t.Fatalf("another phone: %v", a)
			}
		}},
		{"a ninth held long-poll of one login is answered at once", func(t *testing.T) {
			b := e2e.NewBrowser()
			b.Transport = &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: 16}
			h := s.sameOrigin()
			h["X-Forwarded-For"] = "198.51.100.20"
			a := do(t, b, http.MethodPost, s.url("/.idv/sessions"), jsonBody(demoStart), h)
			want(t, a, http.StatusCreated)
			st := startedOf(t, a)
			hold(t, s, b, st.StatusURL, "198.51.100.", 30, 8, func() {
				// The ninth is answered without being held.
				a := do(t, b, http.MethodGet, s.url(st.StatusURL+"?wait=25"), nil, map[string]string{"X-Forwarded-For": "198.51.100.21"})
				want(t, a, http.StatusOK)
				if !strings.Contains(string(a.body), `"state":"pending"`) {
					t.Fatalf("ninth poll: %v", a)
				}
			})
		}},
		{"a fifth held long-poll from one address is answered at once", func(t *testing.T) {
			b := e2e.NewBrowser()
			b.Transport = &http.Transport{MaxIdleConnsPerHost: 16}
			var urls []string
			for i := 0; i < 3; i++ {
				h := s.sameOrigin()
				h["X-Forwarded-For"] = "198.51.100.22"
				a := do(t, b, http.MethodPost, s.url("/.idv/sessions"), jsonBody(demoStart), h)
				want(t, a, http.StatusCreated)
				urls = append(urls, startedOf(t, a).StatusURL)
			}
			// Four held over three logins (two on the first), then one more.
			holdMany(t, s, b, []string{urls[0], urls[0], urls[1], urls[2]}, []string{"198.51.100.23", "198.51.100.23", "198.51.100.23", "198.51.100.23"}, func() {
				a := do(t, b, http.MethodGet, s.url(urls[1]+"?wait=25"), nil, map[string]string{"X-Forwarded-For": "198.51.100.23"})
				want(t, a, http.StatusOK)
			})
		}},
	}
	// Failed OIDC client authentication: ten per address in a minute, then
	// 429; addresses of one /64 are one.
	for _, c := range []struct {
		name  string
		addrs []string
	}{
		{"OIDC: an eleventh wrong client secret from one address", []string{"192.0.2.1"}},
		{"OIDC: wrong client secrets from addresses of one /64", []string{"2001:db8:9:1::1", "2001:db8:9:1::2", "2001:db8:9:1::3", "2001:db8:9:1::4", "2001:db8:9:1::5"}},
	} {
		attacks = append(attacks, attack{c.name, func(t *testing.T) {
			for i := 0; i < 10; i++ {
				a := tokenRequest(t, s, c.addrs[i%len(c.addrs)], "app", "wrong-secret-0123456789")
				wantError(t, a, http.StatusUnauthorized, "invalid_client")
			}
			a := tokenRequest(t, s, c.addrs[0], "app", "wrong-secret-0123456789")
			want(t, a, http.StatusTooManyRequests)
			if a.header.Get("Retry-After") == "" {
				t.Fatalf("429 without Retry-After")
			}
			// The right secret from that address is limited too (the
			// limit is on the address), and answers no token.
			a = tokenRequest(t, s, c.addrs[0], "app", appSecret)
			if a.code == http.StatusOK {
				t.Fatalf("a limited address got a token answer")
			}
		}})
	}
	runClass(t, classLimits, attacks)
}

// TestAttackAbuseLimitsTotal is the total limit's part of the class, with a
// small total: a flood from a few addresses never locks out the next
// person, and the flood and the newcomers together are capped.
func TestAttackAbuseLimitsTotal(t *testing.T) {
	s := newSuite(t, options{servers: behindProxy, limits: `limit {
			per_address 10 1m
			total       20 1m
		}`})
	attacks := []attack{
		{"a flood from four addresses using up the total does not lock out a newcomer", func(t *testing.T) {
			for i := 1; i <= 4; i++ {
				for j := 0; j < 5; j++ {
					if a := s.startFrom(t, fmt.Sprintf("198.51.100.%d", 100+i), demoStart); a.code != http.StatusCreated {
						t.Fatalf("flood start %d.%d: %v", i, j, a)
					}
				}
			}
			// The total (20) is used up; a flooder is shed, a newcomer is not.
			wantLimited(t, s.startFrom(t, "198.51.100.101", demoStart), 60)
			if a := s.startFrom(t, "198.51.100.150", demoStart); a.code != http.StatusCreated {
				t.Fatalf("newcomer during the flood: %v", a)
			}
		}},
		{"newcomers and the flood together stay under twice the total", func(t *testing.T) {
			allowed := 0
			for i := 0; i < 40; i++ {
				if a := s.startFrom(t, fmt.Sprintf("198.51.100.%d", 160+i), demoStart); a.code == http.StatusCreated {
					allowed++
				} else {
					wantLimited(t, a, 60)
				}
			}
			// 21 were allowed in the previous case.
			if allowed+21 > 40 {
				t.Fatalf("%d starts allowed beyond the total; the ceiling is twice the total", allowed)
			}
		}},
	}
	runClass(t, classLimits, attacks)
}

// startedOf decodes a start answer.
func startedOf(t *testing.T, a answer) e2e.Started {
	t.Helper()
	var st e2e.Started
	if err := json.Unmarshal(a.body, &st); err != nil || st.StatusURL == "" {
		t.Fatalf("start answer %v", a)
	}
	return st
}

// hold opens n long-polls of statusURL, each from another address (net
// followed by first, first+1, ...), and runs then while they are held; it
// cancels them afterwards.
func hold(t *testing.T, s *suite, b *e2e.Browser, statusURL, net string, first, n int, then func()) {
	t.Helper()
	urls, addrs := make([]string, n), make([]string, n)
	for i := range urls {
		urls[i], addrs[i] = statusURL, fmt.Sprintf("%s%d", net, first+i)
	}
	holdMany(t, s, b, urls, addrs, then)
}

// holdMany holds one long-poll of each URL from the address of the same
// index (each must be held, not answered), runs then, and cancels them.
func holdMany(t *testing.T, s *suite, b *e2e.Browser, statusURLs, addrs []string, then func()) {
	t.Helper()
	base := s.metric(t, "caddy_idv_long_polls_held")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	answered := make(chan string, len(statusURLs))
	for i, u := range statusURLs {
		addr := addrs[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url(u+"?wait=25"), nil)
			req.Header.Set("X-Forwarded-For", addr)
			resp, err := b.Client.Do(req)
			if err == nil {
				resp.Body.Close()
				answered <- u
			}
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	// Held polls show in the module's gauge of held polls: wait until it
	// counts them all (a signal, not a sleep).
	for s.metric(t, "caddy_idv_long_polls_held") < base+float64(len(statusURLs)) {
		select {
		case u := <-answered:
			t.Fatalf("a poll within the limits was answered at once: %s", u)
		case <-time.After(20 * time.Millisecond):
		}
	}
	select {
	case u := <-answered:
		t.Fatalf("a poll within the limits was answered at once: %s", u)
	default:
	}
	then()
}

// tokenRequest is a token-endpoint request with client_secret_post from
// addr.
func tokenRequest(t *testing.T, s *suite, addr, client, secret string) answer {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {"nothing"}, "redirect_uri": {s.rp + "/callback"},
		"client_id": {client}, "client_secret": {secret}}
	return do(t, e2e.NewBrowser(), http.MethodPost, s.url("/.idv/oidc/token"), strings.NewReader(form.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-For": addr})
}
