package attack_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
)

// What login binding guarantees (README, "Security model" and "How a login
// flows"): a login belongs to the browser holding its pending cookie, a
// sealed (AES-256-GCM), HttpOnly, SameSite=Strict cookie scoped to the
// prefix and named after the login id. Only that cookie reads the login's
// state and QR code, and the completed login's session cookie is handed
// out once, to the first poll that asks with it. Whoever holds the pending
// cookie gets the session: that is the QR-login property. A person who
// approves a QR code on their phone logs in the browser that showed it,
// never the phone, and the wallet page names the site that asks.

// pendingName is the name of login st's pending cookie.
func pendingName(st e2e.Started) string { return "idv_session_login_" + st.ID[:10] }

// pendingOf is the pending cookie b holds for st ("" when none).
func (s *suite) pendingOf(t *testing.T, b *e2e.Browser, st e2e.Started) string {
	t.Helper()
	u, _ := url.Parse(s.url("/.idv/sessions/" + st.ID))
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == pendingName(st) {
			return c.Value
		}
	}
	return ""
}

// giveCookie puts a cookie for the prefix into b's jar, as an attacker
// copies one from one browser to another.
func (s *suite) giveCookie(b *e2e.Browser, path, name, value string) {
	u, _ := url.Parse(s.url(path))
	b.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: path}})
}

// withCookie sends a request with exactly the Cookie header given, without
// a jar.
func (s *suite) withCookie(t *testing.T, method, path, cookie string, h map[string]string) answer {
	t.Helper()
	h = withHeaders(h)
	if cookie != "" {
		h["Cookie"] = cookie
	}
	return send(t, plain(), request(t, method, s.url(path), nil, h))
}

// startWith starts a login with the named provider.
func (s *suite) startWith(t *testing.T, b *e2e.Browser, provider string) e2e.Started {
	t.Helper()
	a := do(t, b, http.MethodPost, s.url("/.idv/sessions"), jsonBody(map[string]string{"provider": provider, "rd": "/"}), s.sameOrigin())
	want(t, a, http.StatusCreated)
	var st e2e.Started
	if err := json.Unmarshal(a.body, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// decide sends the wallet's approve or decline for st from another device
// as JSON and returns the answer.
func (s *suite) decide(t *testing.T, st e2e.Started, action string) answer {
	t.Helper()
	return do(t, e2e.NewBrowser(), http.MethodPost, st.QRText+"/"+action, nil, map[string]string{"Accept": "application/json"})
}

// forbidden fails t unless a is the answer to a login this browser did
// not start.
func forbidden(t *testing.T, a answer) {
	t.Helper()
	wantError(t, a, http.StatusForbidden, "forbidden")
	wantNoCookie(t, a, "idv_session")
}

// sealForeign seals a pending login record as the module does, but with a
// key of our own.
func sealForeign(t *testing.T, name string, record any) string {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := json.Marshal(record)
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, []byte(name)))
}

// expiring is a login of the short-lived provider, long-polled in the
// background until it has expired, so that the cases which need an
// expired login do not wait one after the other.
type expiring struct {
	b       *e2e.Browser
	st      e2e.Started
	pending string // a copy of its pending cookie
	done    chan struct{}
	code    int
	body    []byte
	header  http.Header
	err     error
}

func (s *suite) startExpiring(t *testing.T) *expiring {
	t.Helper()
	e := &expiring{b: e2e.NewBrowser(), done: make(chan struct{})}
	e.st = s.startWith(t, e.b, "quick")
	e.pending = s.pendingOf(t, e.b, e.st)
	go func() {
		defer close(e.done)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url(e.st.StatusURL+"?wait=25"), nil)
		if err != nil {
			e.err = err
			return
		}
		resp, err := e.b.Client.Do(req)
		if err != nil {
			e.err = err
			return
		}
		defer resp.Body.Close()
		e.code, e.header = resp.StatusCode, resp.Header
		e.body, e.err = io.ReadAll(resp.Body)
	}()
	t.Cleanup(func() { <-e.done })
	return e
}

// expired waits for the login to have expired.
func (e *expiring) expired(t *testing.T) {
	t.Helper()
	select {
	case <-e.done:
	case <-time.After(40 * time.Second):
		t.Fatal("the expiring login's long poll did not answer")
	}
	if e.err != nil {
		t.Fatal(e.err)
	}
	var st e2e.Status
	if e.code != http.StatusOK || json.Unmarshal(e.body, &st) != nil || st.State != "expired" {
		t.Fatalf("short-lived login: %d %s; want expired", e.code, e.body)
	}
}

// TestAttackLoginBinding tries to read, finish or steal a login from
// another browser, with bent, replayed and forged pending cookies and login
// ids, to fix a session before login, and to decide a login twice.
func TestAttackLoginBinding(t *testing.T) {
	s := newSuite(t, options{idv: `provider demo quick {
			lifetime 1s
		}`})
	// Logins that expire while the other cases run.
	exp1, exp2 := s.startExpiring(t), s.startExpiring(t)

	// own starts a login in a fresh browser and returns both.
	own := func(t *testing.T) (*e2e.Browser, e2e.Started) {
		b := e2e.NewBrowser()
		return b, s.start(t, b, "/")
	}
	// pollPath and qrPath of a login.
	pollPath := func(st e2e.Started) string { return st.StatusURL }
	qrPath := func(st e2e.Started) string { return st.StatusURL + "/qr.svg" }
	// bentCookie: a login's poll and QR code with its pending cookie bent
	// by bend are both refused, and the login stays pending for its owner.
	bentCookie := func(bend func(t *testing.T, v string) string) func(t *testing.T) {
		return func(t *testing.T) {
			b, st := own(t)
			v := bend(t, s.pendingOf(t, b, st))
			forbidden(t, s.withCookie(t, http.MethodGet, pollPath(st), pendingName(st)+"="+v, nil))
			forbidden(t, s.withCookie(t, http.MethodGet, qrPath(st), pendingName(st)+"="+v, nil))
			s.stillPending(t, b, st)
		}
	}
	// oddID: a status request for a login id that is not one.
	oddID := func(rawPath string, code int, errorCode string) func(t *testing.T) {
		return func(t *testing.T) {
			b, _ := own(t) // holds a real pending cookie, to no avail
			a := do(t, b, http.MethodGet, s.url(rawPath), nil, nil)
			wantError(t, a, code, errorCode)
			wantNoCookie(t, a, "idv_session")
		}
	}

	attacks := []attack{
		// Reading another browser's login.
		{"poll without the pending cookie", func(t *testing.T) {
			_, st := own(t)
			forbidden(t, do(t, e2e.NewBrowser(), http.MethodGet, s.url(pollPath(st)+"?wait=1"), nil, nil))
		}},
		{"QR code without the pending cookie", func(t *testing.T) {
			_, st := own(t)
			forbidden(t, do(t, e2e.NewBrowser(), http.MethodGet, s.url(qrPath(st)), nil, nil))
		}},
		{"poll with the pending cookie of another login of the attacker", func(t *testing.T) {
			_, victim := own(t)
			attacker, _ := own(t)
			forbidden(t, do(t, attacker, http.MethodGet, s.url(pollPath(victim)), nil, nil))
		}},
		{"another login's pending cookie renamed to this login's cookie", func(t *testing.T) {
			b, victim := own(t)
			attacker, mine := own(t)
			v := s.pendingOf(t, attacker, mine)
			forbidden(t, s.withCookie(t, http.MethodGet, pollPath(victim), pendingName(victim)+"="+v, nil))
			forbidden(t, s.withCookie(t, http.MethodGet, qrPath(victim), pendingName(victim)+"="+v, nil))
			s.stillPending(t, b, victim)
		}},
		{"a login id sharing the pending cookie's first ten characters", func(t *testing.T) {
			b, st := own(t)
			other := st.ID[:10] + strings.Repeat("A", len(st.ID)-10)
			if other == st.ID {
				other = st.ID[:10] + strings.Repeat("B", len(st.ID)-10)
			}
			forbidden(t, do(t, b, http.MethodGet, s.url("/.idv/sessions/"+other), nil, nil))
			forbidden(t, do(t, b, http.MethodGet, s.url("/.idv/sessions/"+other+"/qr.svg"), nil, nil))
		}},
		{"pending cookie with one character changed", bentCookie(func(t *testing.T, v string) string {
			i := len(v) / 2
			c := byte('A')
			if v[i] == 'A' {
				c = 'B'
			}
			return v[:i] + string(c) + v[i+1:]
		})},
		{"pending cookie truncated", bentCookie(func(t *testing.T, v string) string { return v[:len(v)-4] })},
		{"pending cookie cut to its nonce", bentCookie(func(t *testing.T, v string) string { return v[:16] })},
		{"garbage pending cookie", bentCookie(func(t *testing.T, v string) string { return "garbage" })},
		{"empty pending cookie", bentCookie(func(t *testing.T, v string) string { return "" })},
		{"pending cookie that is not base64url", bentCookie(func(t *testing.T, v string) string { return strings.Replace(v, v[:4], "+/=%", 1) })},
		{"pending cookie beyond its size bound", bentCookie(func(t *testing.T, v string) string { return v + strings.Repeat("A", 4000) })},
		{"pending cookie sealed with another key for this login", func(t *testing.T) {
			b, st := own(t)
			now := time.Now()
			forged := sealForeign(t, pendingName(st), map[string]any{"id": st.ID, "p": "demo", "rd": "/", "c": now, "e": now.Add(time.Minute)})
			forbidden(t, s.withCookie(t, http.MethodGet, pollPath(st), pendingName(st)+"="+forged, nil))
			s.stillPending(t, b, st)
		}},
		{"a session cookie presented as the pending cookie", func(t *testing.T) {
			b, st := own(t)
			ref := s.sessionCookie(s.loggedIn(t))
			forbidden(t, s.withCookie(t, http.MethodGet, pollPath(st), pendingName(st)+"="+ref, nil))
			s.stillPending(t, b, st)
		}},

		// Guessing login ids: a guessed id and another browser's real one
		// are answered alike, so a poll reveals nothing.
		{"poll of a guessed id and of another browser's id answer alike", func(t *testing.T) {
			_, st := own(t)
			guessed := s.withCookie(t, http.MethodGet, "/.idv/sessions/"+strings.Repeat("x", len(st.ID)), "", nil)
			real := s.withCookie(t, http.MethodGet, pollPath(st), "", nil)
			forbidden(t, guessed)
			if guessed.code != real.code || !bytes.Equal(guessed.body, real.body) {
				t.Fatalf("guessed id %v, real id %v", guessed, real)
			}
		}},
		{"QR code of a guessed id and of another browser's id answer alike", func(t *testing.T) {
			_, st := own(t)
			guessed := s.withCookie(t, http.MethodGet, "/.idv/sessions/"+strings.Repeat("x", len(st.ID))+"/qr.svg", "", nil)
			real := s.withCookie(t, http.MethodGet, qrPath(st), "", nil)
			forbidden(t, guessed)
			if guessed.code != real.code || !bytes.Equal(guessed.body, real.body) {
				t.Fatalf("guessed id %v, real id %v", guessed, real)
			}
		}},
		{"a long poll of a guessed id holds nothing", func(t *testing.T) {
			began := time.Now()
			forbidden(t, s.withCookie(t, http.MethodGet, "/.idv/sessions/"+strings.Repeat("x", 22)+"?wait=25", "", nil))
			if d := time.Since(began); d > 5*time.Second {
				t.Fatalf("a refused long poll took %v", d)
			}
		}},
		{"login id with encoded path traversal", oddID("/.idv/sessions/..%2f..%2fx", http.StatusNotFound, "not_found")},
		{"login id of two dots", oddID("/.idv/sessions/%2e%2e", http.StatusForbidden, "forbidden")},
		{"login id of ten thousand characters", oddID("/.idv/sessions/"+strings.Repeat("A", 10000), http.StatusForbidden, "forbidden")},
		{"login id with a NUL byte", oddID("/.idv/sessions/AAAAAAAAAA%00AAAAAAAAAAA", http.StatusForbidden, "forbidden")},
		{"login id with non-ASCII characters", oddID("/.idv/sessions/%C3%A9%E2%80%AE"+strings.Repeat("A", 18), http.StatusForbidden, "forbidden")},
		{"login id with an encoded slash before qr.svg", oddID("/.idv/sessions/AAAA%2fqr.svg", http.StatusForbidden, "forbidden")},
		{"login id followed by another path segment", oddID("/.idv/sessions/AAAAAAAAAAAAAAAAAAAAAA/qr.svg/x", http.StatusNotFound, "not_found")},

		// The session cookie is handed out once.
		{"the pending cookie moved to another browser after completion gets no session", func(t *testing.T) {
			b, st := own(t)
			copied := s.pendingOf(t, b, st)
			s.approve(t, st)
			if a, out := s.poll(t, b, st, 10); out.State != "completed" || setCookieNamed(a, "idv_session") == nil {
				t.Fatalf("the owner's poll: %v", a)
			}
			a := s.withCookie(t, http.MethodGet, pollPath(st), pendingName(st)+"="+copied, nil)
			want(t, a, http.StatusOK)
			var out e2e.Status
			if json.Unmarshal(a.body, &out) != nil || out.State != "completed" {
				t.Fatalf("second poll: %v", a)
			}
			wantNoCookie(t, a, "idv_session")
		}},
		{"a second poll of a completed login from the same browser", func(t *testing.T) {
			b, st := own(t)
			s.approve(t, st)
			a, out := s.poll(t, b, st, 10)
			if out.State != "completed" {
				t.Fatalf("first poll: %v", a)
			}
			if c := setCookieNamed(a, pendingName(st)); c == nil || c.MaxAge >= 0 {
				t.Fatalf("the pending cookie was not cleared: %v", a.header["Set-Cookie"])
			}
			forbidden(t, do(t, b, http.MethodGet, s.url(pollPath(st)), nil, nil))
		}},
		{"two browsers racing with one pending cookie get one session between them", func(t *testing.T) {
			b, st := own(t)
			c := pendingName(st) + "=" + s.pendingOf(t, b, st)
			type result struct {
				code    int
				session bool
				err     error
			}
			results := make(chan result, 2)
			for range 2 {
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), maxWait)
					defer cancel()
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url(pollPath(st)+"?wait=10"), nil)
					req.Header.Set("Cookie", c)
					resp, err := plain().Do(req)
					if err != nil {
						results <- result{err: err}
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					results <- result{code: resp.StatusCode, session: setCookieNamed(answer{header: resp.Header}, "idv_session") != nil}
				}()
			}
			s.approve(t, st)
			sessions := 0
			for range 2 {
				r := <-results
				if r.err != nil || r.code != http.StatusOK {
					t.Fatalf("racing poll: %d %v", r.code, r.err)
				}
				if r.session {
					sessions++
				}
			}
			if sessions != 1 {
				t.Fatalf("%d session cookies handed out for one login", sessions)
			}
		}},
		{"a login started by an attacker and approved on the victim's phone logs in only the attacker's browser", func(t *testing.T) {
			// The QR-login property: the approval logs in the browser that
			// holds the pending cookie. The phone and any other browser of
			// the victim get nothing; what protects the person is that the
			// wallet names the site that asks.
			attacker, st := own(t)
			phone := e2e.NewBrowser()
			page := do(t, phone, http.MethodGet, st.QRText, nil, map[string]string{"Accept": "text/html"})
			want(t, page, http.StatusOK)
			host := strings.TrimPrefix(s.inst.URL, "http://")
			if !strings.Contains(string(page.body), host+" asks you to confirm this login") {
				t.Fatalf("the wallet does not name the site %s: %s", host, page.body)
			}
			a := do(t, phone, http.MethodPost, st.QRText+"/approve", nil, map[string]string{"Origin": s.inst.URL, "Content-Type": "application/x-www-form-urlencoded"})
			want(t, a, http.StatusSeeOther)
			wantNoCookie(t, a, "idv_session")
			forbidden(t, do(t, phone, http.MethodGet, s.url(pollPath(st)), nil, nil))
			forbidden(t, do(t, e2e.NewBrowser(), http.MethodGet, s.url(pollPath(st)), nil, nil))
			if a, out := s.poll(t, attacker, st, 10); out.State != "completed" || setCookieNamed(a, "idv_session") == nil {
				t.Fatalf("the starter's poll: %v", a)
			}
		}},

		// Session fixation.
		{"a session cookie chosen before login is replaced and stays invalid", func(t *testing.T) {
			b := e2e.NewBrowser()
			chosen := "fixedfixedfixedfixed00"
			s.giveCookie(b, "/", "idv_session", chosen)
			st := s.start(t, b, "/")
			s.approve(t, st)
			a, out := s.poll(t, b, st, 10)
			c := setCookieNamed(a, "idv_session")
			if out.State != "completed" || c == nil || c.Value == chosen {
				t.Fatalf("login with a planted cookie: %v, Set-Cookie %v", a, a.header["Set-Cookie"])
			}
			want(t, s.withCookie(t, http.MethodGet, "/.idv/me", "idv_session="+chosen, nil), http.StatusUnauthorized)
			s.stillLoggedIn(t, b)
		}},
		{"the attacker's own session planted before the victim's login is replaced, not upgraded", func(t *testing.T) {
			attacker := s.sessionCookie(s.loggedIn(t))
			attackerSID := sidOf(t, s.withCookie(t, http.MethodGet, "/.idv/me", "idv_session="+attacker, nil))
			victim := e2e.NewBrowser()
			s.giveCookie(victim, "/", "idv_session", attacker)
			st := s.start(t, victim, "/")
			s.approve(t, st)
			a, _ := s.poll(t, victim, st, 10)
			c := setCookieNamed(a, "idv_session")
			if c == nil || c.Value == attacker {
				t.Fatalf("the victim's login kept the planted cookie: %v", a.header["Set-Cookie"])
			}
			if got := sidOf(t, s.withCookie(t, http.MethodGet, "/.idv/me", "idv_session="+attacker, nil)); got != attackerSID {
				t.Fatalf("the planted session now names sid %s, was %s", got, attackerSID)
			}
			if got := sidOf(t, s.me(t, victim)); got == attackerSID {
				t.Fatal("the victim's new session shares the planted session's sid")
			}
		}},

		// Resuming a login after a reload.
		{"GET /sessions in another browser reveals no login", func(t *testing.T) {
			own(t)
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.idv/sessions"), nil, nil)
			want(t, a, http.StatusNoContent)
		}},
		{"GET /sessions returns this browser's login, not a newer one of another browser", func(t *testing.T) {
			b, mine := own(t)
			own(t)
			a := do(t, b, http.MethodGet, s.url("/.idv/sessions"), nil, nil)
			want(t, a, http.StatusOK)
			var got e2e.Started
			if err := json.Unmarshal(a.body, &got); err != nil || got.ID != mine.ID {
				t.Fatalf("resumed %v; want %s", a, mine.ID)
			}
		}},
		{"GET /sessions with another browser's pending cookie renamed", func(t *testing.T) {
			victim, st := own(t)
			a := s.withCookie(t, http.MethodGet, "/.idv/sessions", "idv_session_login_AAAAAAAAAA="+s.pendingOf(t, victim, st), nil)
			want(t, a, http.StatusNoContent)
		}},
		{"GET /sessions for another provider does not return this login", func(t *testing.T) {
			b, _ := own(t)
			want(t, do(t, b, http.MethodGet, s.url("/.idv/sessions?provider=marksign_mobileid"), nil, nil), http.StatusNoContent)
		}},
		{"GET /sessions does not resume a login about to expire", func(t *testing.T) {
			b := e2e.NewBrowser()
			s.startWith(t, b, "quick")
			want(t, do(t, b, http.MethodGet, s.url("/.idv/sessions"), nil, nil), http.StatusNoContent)
		}},

		// Expired logins.
		{"an expired login's pending cookie gets no session", func(t *testing.T) {
			exp1.expired(t)
			if c := setCookieNamed(answer{header: exp1.header}, pendingName(exp1.st)); c == nil || c.MaxAge >= 0 {
				t.Fatalf("the expired login's pending cookie was not cleared: %v", exp1.header["Set-Cookie"])
			}
			a := s.withCookie(t, http.MethodGet, pollPath(exp1.st), pendingName(exp1.st)+"="+exp1.pending, nil)
			want(t, a, http.StatusOK)
			var out e2e.Status
			if json.Unmarshal(a.body, &out) != nil || out.State != "expired" {
				t.Fatalf("poll of the expired login: %v", a)
			}
			wantNoCookie(t, a, "idv_session")
		}},
		{"an expired login cannot be approved late", func(t *testing.T) {
			exp2.expired(t)
			wantError(t, s.decide(t, exp2.st, "approve"), http.StatusGone, "expired")
			page := do(t, e2e.NewBrowser(), http.MethodGet, exp2.st.QRText, nil, map[string]string{"Accept": "text/html"})
			want(t, page, http.StatusOK)
			if !strings.Contains(string(page.body), "Login expired") || strings.Contains(string(page.body), "/approve") {
				t.Fatalf("wallet page of an expired login: %s", page.body)
			}
			a := s.withCookie(t, http.MethodGet, pollPath(exp2.st), pendingName(exp2.st)+"="+exp2.pending, nil)
			if a.code != http.StatusOK || !strings.Contains(string(a.body), `"expired"`) {
				t.Fatalf("poll after a late approval: %v", a)
			}
			wantNoCookie(t, a, "idv_session")
		}},

		// The wallet.
		{"wallet page of an unknown login", func(t *testing.T) {
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.idv/demo/wallet/"+strings.Repeat("x", 22)), nil, map[string]string{"Accept": "text/html"})
			want(t, a, http.StatusNotFound)
			if !strings.Contains(string(a.body), "Login not found") || strings.Contains(string(a.body), "/approve") {
				t.Fatalf("wallet page of an unknown login: %s", a.body)
			}
		}},
		{"approving an unknown login", func(t *testing.T) {
			a := do(t, e2e.NewBrowser(), http.MethodPost, s.url("/.idv/demo/wallet/"+strings.Repeat("x", 22)+"/approve"), nil, map[string]string{"Accept": "application/json"})
			wantError(t, a, http.StatusNotFound, "unknown_login")
		}},
		{"wallet page with encoded dot segments stays in the module", func(t *testing.T) {
			_, st := own(t)
			for _, p := range []string{
				"/.idv/demo/wallet/..%2f..%2fsessions",
				"/.idv/demo/wallet/" + st.ID + "%2f..%2f..%2f..%2fx",
				"/.idv/demo//wallet/" + st.ID,
				"/.idv/demo/./wallet/" + st.ID,
			} {
				a := do(t, e2e.NewBrowser(), http.MethodGet, s.url(p), nil, nil)
				if loc := a.header.Get("Location"); loc != "" {
					t.Fatalf("%s redirected to %q", p, loc)
				}
				wantError(t, a, http.StatusNotFound, "not_found")
			}
		}},
		{"approving through a dot-segment path that names a real login", func(t *testing.T) {
			b, st := own(t)
			a := do(t, e2e.NewBrowser(), http.MethodPost, s.url("/.idv/demo/wallet/x%2f..%2f"+st.ID+"/approve"), nil, map[string]string{"Accept": "application/json"})
			if loc := a.header.Get("Location"); loc != "" {
				t.Fatalf("redirected to %q", loc)
			}
			wantError(t, a, http.StatusNotFound, "not_found")
			s.stillPending(t, b, st)
		}},
		{"wallet page of a completed login offers no second approval", func(t *testing.T) {
			b, st := own(t)
			s.approve(t, st)
			s.poll(t, b, st, 10)
			a := do(t, e2e.NewBrowser(), http.MethodGet, st.QRText, nil, map[string]string{"Accept": "text/html"})
			want(t, a, http.StatusOK)
			if !strings.Contains(string(a.body), "Login approved") || strings.Contains(string(a.body), "/approve") {
				t.Fatalf("wallet page of a completed login: %s", a.body)
			}
		}},
		{"approving twice", func(t *testing.T) {
			_, st := own(t)
			want(t, s.decide(t, st, "approve"), http.StatusOK)
			wantError(t, s.decide(t, st, "approve"), http.StatusConflict, "already_decided")
		}},
		{"declining after approval", func(t *testing.T) {
			b, st := own(t)
			want(t, s.decide(t, st, "approve"), http.StatusOK)
			wantError(t, s.decide(t, st, "decline"), http.StatusConflict, "already_decided")
			if a, out := s.poll(t, b, st, 10); out.State != "completed" || setCookieNamed(a, "idv_session") == nil {
				t.Fatalf("the approved login: %v", a)
			}
		}},
		{"approving after a decline", func(t *testing.T) {
			b, st := own(t)
			want(t, s.decide(t, st, "decline"), http.StatusOK)
			wantError(t, s.decide(t, st, "approve"), http.StatusConflict, "already_decided")
			a, out := s.poll(t, b, st, 10)
			if out.State != "declined" {
				t.Fatalf("the declined login: %v", a)
			}
			wantNoCookie(t, a, "idv_session")
		}},
		{"approving after the session was handed out", func(t *testing.T) {
			b, st := own(t)
			s.approve(t, st)
			s.poll(t, b, st, 10)
			wantError(t, s.decide(t, st, "approve"), http.StatusConflict, "already_decided")
		}},

		// What binds the login to the browser.
		{"pending cookie attributes", func(t *testing.T) {
			a := do(t, e2e.NewBrowser(), http.MethodPost, s.url("/.idv/sessions"), jsonBody(map[string]string{"provider": "demo"}), s.sameOrigin())
			want(t, a, http.StatusCreated)
			var st e2e.Started
			_ = json.Unmarshal(a.body, &st)
			c := setCookieNamed(a, pendingName(st))
			if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/.idv/" || c.Domain != "" || c.Secure {
				t.Fatalf("pending cookie: %v", a.header["Set-Cookie"])
			}
			// The demo waits 3 minutes; the cookie lives that long plus a
			// minute.
			if c.MaxAge <= 0 || c.MaxAge > int((4*time.Minute).Seconds())+1 {
				t.Fatalf("pending cookie Max-Age %d", c.MaxAge)
			}
			if a.header.Get("Cache-Control") != "no-store" {
				t.Fatalf("start answer Cache-Control %q", a.header.Get("Cache-Control"))
			}
		}},
	}
	runClass(t, classBinding, attacks)
}
