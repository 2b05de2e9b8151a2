package attack_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
)

// Cookie tossing: a sibling subdomain (or anything else that can write
// cookies for the site) plants cookies next to the real ones. The rules
// (README, "Security model"): when a request carries several session
// cookies, none is trusted unless exactly one verifies; on https sites the
// session cookie is __Host- prefixed, which no sibling can set; cookies
// are HttpOnly, SameSite as configured (session) or Strict (pending), Secure
// on https; every response that sets a session cookie is no-store.

// cookieJar is a browser's cookies kept by hand, for sites whose Secure
// cookies an http client would not send back.
type cookieJar map[string]string

// take applies the cookies an answer sets.
func (j cookieJar) take(a answer) {
	for _, c := range setCookies(a) {
		if c.MaxAge < 0 {
			delete(j, c.Name)
			continue
		}
		j[c.Name] = c.Value
	}
}

// header is the Cookie header of every cookie in the jar.
func (j cookieJar) header() string {
	parts := make([]string, 0, len(j))
	for k, v := range j {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// publicLogin walks a demo login on a suite whose site is the public origin
// given (behind a proxy: the connection is plain http), keeping the cookies
// by hand, and returns them with the start and completing answers.
func (s *suite) publicLogin(t *testing.T, origin string) (jar cookieJar, started, completed answer) {
	t.Helper()
	jar = cookieJar{}
	started = send(t, plain(), request(t, http.MethodPost, s.url("/.idv/sessions"), jsonBody(map[string]string{"provider": "demo"}),
		map[string]string{"Origin": origin, "Content-Type": "application/json"}))
	want(t, started, http.StatusCreated)
	jar.take(started)
	var st e2e.Started
	if err := json.Unmarshal(started.body, &st); err != nil || !strings.HasPrefix(st.QRText, origin+"/") {
		t.Fatalf("start: %v", started)
	}
	a := send(t, plain(), request(t, http.MethodPost, s.url(strings.TrimPrefix(st.QRText, origin)+"/approve"), nil, map[string]string{"Origin": origin}))
	want(t, a, http.StatusSeeOther)
	completed = send(t, plain(), request(t, http.MethodGet, s.url(st.StatusURL+"?wait=10"), nil, map[string]string{"Cookie": jar.header()}))
	want(t, completed, http.StatusOK)
	jar.take(completed)
	return jar, started, completed
}

// meWith asks /me with the Cookie header lines given, one line each.
func (s *suite) meWith(t *testing.T, lines ...string) answer {
	t.Helper()
	req := request(t, http.MethodGet, s.url("/.idv/me"), nil, nil)
	for _, l := range lines {
		req.Header.Add("Cookie", l)
	}
	return send(t, plain(), req)
}

// invalidToken fails t unless a is /me's answer to a session that does not
// verify.
func invalidToken(t *testing.T, a answer) {
	t.Helper()
	wantError(t, a, http.StatusUnauthorized, "unauthenticated")
	if got := a.header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
		t.Fatalf("WWW-Authenticate %q; want the invalid_token challenge", got)
	}
}

// noCredential fails t unless a is /me's answer to a request that carries
// no session at all.
func noCredential(t *testing.T, a answer) {
	t.Helper()
	wantError(t, a, http.StatusUnauthorized, "unauthenticated")
	if got := a.header.Get("WWW-Authenticate"); got != "" {
		t.Fatalf("WWW-Authenticate %q for a request without a session cookie", got)
	}
}

// wantSession fails t unless a is /me's answer for the session sid.
func wantSession(t *testing.T, a answer, sid string) {
	t.Helper()
	if got := sidOf(t, a); got != sid {
		t.Fatalf("/me answered session %s; want %s", got, sid)
	}
}

// sessionAttrs fails t unless c is a session cookie with the attributes
// every session cookie has.
func sessionAttrs(t *testing.T, c *http.Cookie, name string, secure bool, domain string) {
	t.Helper()
	if c == nil {
		t.Fatalf("no %s cookie set", name)
	}
	if c.Name != name || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure != secure || c.Domain != domain {
		t.Fatalf("session cookie %s; want %s, HttpOnly, SameSite=Lax, Path=/, Secure %v, Domain %q", c, name, secure, domain)
	}
	if c.MaxAge <= 0 || c.MaxAge > int((8*time.Hour).Seconds()) {
		t.Fatalf("session cookie Max-Age %d; want at most 8h", c.MaxAge)
	}
}

// TestAttackCookieTossing sends several session and pending cookies at
// once, in every arrangement a planted cookie can take, and checks the
// attributes that keep siblings from planting them.
func TestAttackCookieTossing(t *testing.T) {
	s := newSuite(t, options{idv: `provider demo mallory {
			user "Mallory"
		}`})
	// The victim (Ada, through demo) and the attacker (Mallory).
	victimB := s.loggedIn(t)
	victim := s.sessionCookie(victimB)
	victimSID := sidOf(t, s.me(t, victimB))
	attackerB := e2e.NewBrowser()
	st := s.startWith(t, attackerB, "mallory")
	s.approve(t, st)
	if a, out := s.poll(t, attackerB, st, 10); out.State != "completed" {
		t.Fatalf("the attacker's login: %v", a)
	}
	attacker := s.sessionCookie(attackerB)
	const garbage = "idv_session=garbagegarbagegarbage0000"

	// Another handler sharing the store (signing keys, sealing key,
	// session references): its sessions are for its own audience.
	other := e2e.Start(t, `
	idv {
		prefix /.other
		provider demo
	}
	respond "other"
`, e2e.Options{Storage: s.storage})
	t.Cleanup(func() { (&suite{inst: other}).checkLogs(t) })
	otherB := e2e.NewBrowser()
	code, _, body := otherB.Do(t, http.MethodPost, other.URL+"/.other/sessions", strings.NewReader(`{"provider":"demo"}`),
		map[string]string{"Content-Type": "application/json", "Origin": other.URL})
	var ost e2e.Started
	if code != http.StatusCreated || json.Unmarshal(body, &ost) != nil {
		t.Fatalf("the other handler's start: %d %s", code, body)
	}
	if code, _, body := otherB.Do(t, http.MethodPost, ost.QRText+"/approve", nil, nil); code != http.StatusSeeOther {
		t.Fatalf("the other handler's approve: %d %s", code, body)
	}
	if out := otherB.Poll(t, other.URL, ost, 10); out.State != "completed" {
		t.Fatalf("the other handler's login: %+v", out)
	}
	otherSession := otherB.Cookie(other.URL, "idv_session")
	if otherSession == "" {
		t.Fatal("the other handler set no session cookie")
	}

	// revoked is a session that was logged out, as a reference and as a
	// token.
	revokedB := s.loggedIn(t)
	revokedRef, revokedJWT := s.sessionCookie(revokedB), s.bearer(t, revokedB)
	want(t, do(t, revokedB, http.MethodPost, s.url("/.idv/logout"), nil, s.sameOrigin()), http.StatusSeeOther)

	pub := newSuite(t, options{idv: "site https://app.example.com"})
	const pubOrigin = "https://app.example.com"

	// The gate of a site whose upstream wants its answers cached, with a
	// session shared across subdomains and an idle timeout, so that the
	// gate renews the session on a request that reaches the upstream.
	caching := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Expires", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
		_, _ = w.Write([]byte("cacheable"))
	}))
	t.Cleanup(caching.Close)
	shared := &suite{storage: t.TempDir(), secret: appSecret, rp: s.rp}
	shared.inst = e2e.Start(t, `
	idv {
		site https://app.example.com
		provider demo
		session {
			domain example.com
			idle   2s
		}
	}
	reverse_proxy `+strings.TrimPrefix(caching.URL, "http://")+`
`, e2e.Options{Storage: shared.storage})
	t.Cleanup(func() { shared.checkLogs(t) })

	// pendingOne starts a login in a fresh browser and returns its pending
	// cookie's value too.
	pendingOne := func(t *testing.T) (*e2e.Browser, e2e.Started, string) {
		b := e2e.NewBrowser()
		st := s.start(t, b, "/")
		return b, st, s.pendingOf(t, b, st)
	}

	attacks := []attack{
		{"a valid session then garbage in one Cookie line", func(t *testing.T) {
			wantSession(t, s.meWith(t, "idv_session="+victim+"; "+garbage), victimSID)
		}},
		{"garbage then a valid session in one Cookie line", func(t *testing.T) {
			wantSession(t, s.meWith(t, garbage+"; idv_session="+victim), victimSID)
		}},
		{"two sessions of different people, the victim's first", func(t *testing.T) {
			invalidToken(t, s.meWith(t, "idv_session="+victim+"; idv_session="+attacker))
		}},
		{"two sessions of different people, the attacker's first", func(t *testing.T) {
			invalidToken(t, s.meWith(t, "idv_session="+attacker+"; idv_session="+victim))
		}},
		{"two sessions of different people on separate Cookie header lines", func(t *testing.T) {
			invalidToken(t, s.meWith(t, "idv_session="+victim, "idv_session="+attacker))
		}},
		{"two sessions of different people at the gate reach no upstream", func(t *testing.T) {
			cookie := "idv_session=" + attacker + "; idv_session=" + victim
			a := s.withCookie(t, http.MethodGet, "/tossing/api", cookie, map[string]string{"Accept": "application/json"})
			wantError(t, a, http.StatusUnauthorized, "unauthenticated")
			a = s.withCookie(t, http.MethodGet, "/tossing/page", cookie, map[string]string{"Accept": "text/html"})
			want(t, a, http.StatusFound)
			if !strings.HasPrefix(a.header.Get("Location"), "/.idv/login?") {
				t.Fatalf("navigation sent to %q", a.header.Get("Location"))
			}
			if s.up.reached("/tossing/api") || s.up.reached("/tossing/page") {
				t.Fatal("a request with two people's sessions reached the upstream")
			}
		}},
		{"garbage and a valid session on separate Cookie header lines", func(t *testing.T) {
			wantSession(t, s.meWith(t, garbage, "idv_session="+victim), victimSID)
		}},
		{"the same session twice", func(t *testing.T) {
			wantSession(t, s.meWith(t, "idv_session="+victim+"; idv_session="+victim), victimSID)
		}},
		{"a valid session next to another handler's session from the same store", func(t *testing.T) {
			wantSession(t, s.meWith(t, "idv_session="+otherSession+"; idv_session="+victim), victimSID)
		}},
		{"another handler's session from the same store alone", func(t *testing.T) {
			invalidToken(t, s.meWith(t, "idv_session="+otherSession))
		}},
		{"a revoked session next to a valid one", func(t *testing.T) {
			wantSession(t, s.meWith(t, "idv_session="+revokedRef+"; idv_session="+victim), victimSID)
		}},
		{"a revoked session alone", func(t *testing.T) {
			invalidToken(t, s.meWith(t, "idv_session="+revokedRef))
		}},
		{"a revoked session's token next to a valid session", func(t *testing.T) {
			wantSession(t, s.meWith(t, "idv_session="+revokedJWT+"; idv_session="+victim), victimSID)
		}},
		{"the session token where the cookie's reference is expected", func(t *testing.T) {
			// Documented: a cookie may hold the token itself (one set by an
			// earlier version, or by hand).
			wantSession(t, s.meWith(t, "idv_session="+s.bearer(t, victimB)), victimSID)
		}},
		{"the session reference as a bearer token", func(t *testing.T) {
			a := send(t, plain(), request(t, http.MethodGet, s.url("/.idv/me"), nil, map[string]string{"Authorization": "Bearer " + victim}))
			invalidToken(t, a)
		}},
		{"a session's token and its own reference as two cookies", func(t *testing.T) {
			invalidToken(t, s.meWith(t, "idv_session="+victim+"; idv_session="+s.bearer(t, victimB)))
		}},
		{"a pending cookie's value as the session cookie", func(t *testing.T) {
			_, _, v := pendingOne(t)
			invalidToken(t, s.meWith(t, "idv_session="+v))
		}},
		{"a percent-encoded session cookie name", func(t *testing.T) {
			noCredential(t, s.meWith(t, "idv%5Fsession="+victim))
		}},
		{"the session cookie name in upper case", func(t *testing.T) {
			noCredential(t, s.meWith(t, "IDV_SESSION="+victim))
		}},
		{"the __Host- cookie name on an http site", func(t *testing.T) {
			noCredential(t, s.meWith(t, "__Host-idv_session="+victim))
		}},
		{"a quoted session cookie value", func(t *testing.T) {
			wantSession(t, s.meWith(t, `idv_session="`+victim+`"`), victimSID)
		}},
		{"quoted and bare copies of one session", func(t *testing.T) {
			wantSession(t, s.meWith(t, `idv_session="`+victim+`"; idv_session=`+victim), victimSID)
		}},
		{"the attacker's session quoted next to the victim's bare", func(t *testing.T) {
			invalidToken(t, s.meWith(t, `idv_session="`+attacker+`"; idv_session=`+victim))
		}},

		// Pending cookies.
		{"duplicated pending cookies, the real one first", func(t *testing.T) {
			_, st, v := pendingOne(t)
			a := s.withCookie(t, http.MethodGet, st.StatusURL, pendingName(st)+"="+v+"; "+pendingName(st)+"=garbage", nil)
			want(t, a, http.StatusOK)
		}},
		{"duplicated pending cookies, a tossed one first", func(t *testing.T) {
			// A sibling that sets a cookie of the same name with a longer
			// Path has it sent first; it must not lock the person out of
			// their login, nor stand in for it.
			_, st, v := pendingOne(t)
			_, other, ov := pendingOne(t)
			for _, tossed := range []string{"garbage", ov} {
				a := s.withCookie(t, http.MethodGet, st.StatusURL, pendingName(st)+"="+tossed+"; "+pendingName(st)+"="+v, nil)
				want(t, a, http.StatusOK)
			}
			forbidden(t, s.withCookie(t, http.MethodGet, other.StatusURL, pendingName(other)+"="+v, nil))
		}},
		{"more than five logins in one browser: the sixth drops the oldest", func(t *testing.T) {
			b := e2e.NewBrowser()
			var logins []e2e.Started
			var last answer
			for i := range 6 {
				last = do(t, b, http.MethodPost, s.url("/.idv/sessions"), jsonBody(map[string]string{"provider": "demo", "rd": fmt.Sprintf("/%d", i)}), s.sameOrigin())
				want(t, last, http.StatusCreated)
				var st e2e.Started
				_ = json.Unmarshal(last.body, &st)
				logins = append(logins, st)
			}
			if c := setCookieNamed(last, pendingName(logins[0])); c == nil || c.MaxAge >= 0 {
				t.Fatalf("the sixth start did not clear the oldest pending cookie: %v", last.header["Set-Cookie"])
			}
			forbidden(t, do(t, b, http.MethodGet, s.url(logins[0].StatusURL), nil, nil))
			for _, st := range logins[1:] {
				want(t, do(t, b, http.MethodGet, s.url(st.StatusURL), nil, nil), http.StatusOK)
			}
		}},
		{"fifty forged pending cookies next to the real one", func(t *testing.T) {
			_, st, v := pendingOne(t)
			var parts []string
			for i := range 50 {
				parts = append(parts, fmt.Sprintf("idv_session_login_%010d=%s", i, strings.Repeat("A", 60)))
			}
			cookie := strings.Join(append(parts, pendingName(st)+"="+v), "; ")
			a := s.withCookie(t, http.MethodGet, "/.idv/sessions", cookie, nil)
			want(t, a, http.StatusOK)
			var got e2e.Started
			if json.Unmarshal(a.body, &got) != nil || got.ID != st.ID {
				t.Fatalf("resumed %v; want %s", a, st.ID)
			}
			h := withHeaders(s.sameOrigin(), "Cookie", cookie)
			a = send(t, plain(), request(t, http.MethodPost, s.url("/.idv/sessions"), jsonBody(map[string]string{"provider": "demo"}), h))
			want(t, a, http.StatusCreated)
			if n := len(setCookies(a)); n != 1 {
				t.Fatalf("a start with forged pending cookies set %d cookies: %v", n, a.header["Set-Cookie"])
			}
		}},

		// Size.
		{"a Cookie header near Caddy's limit with the session at its end", func(t *testing.T) {
			var parts []string
			for i := 0; len(strings.Join(parts, "; ")) < 14<<10; i++ {
				parts = append(parts, fmt.Sprintf("filler%d=%s", i, strings.Repeat("f", 100)))
			}
			wantSession(t, s.meWith(t, strings.Join(append(parts, "idv_session="+victim), "; ")), victimSID)
		}},
		{"hundreds of tossed session references next to the real one", func(t *testing.T) {
			var parts []string
			for i := range 400 {
				parts = append(parts, fmt.Sprintf("idv_session=%022d", i))
			}
			began := time.Now()
			wantSession(t, s.meWith(t, strings.Join(append(parts, "idv_session="+victim), "; ")), victimSID)
			if d := time.Since(began); d > 5*time.Second {
				t.Fatalf("400 tossed cookies took %v", d)
			}
		}},
		{"a Cookie header beyond Caddy's header limit", func(t *testing.T) {
			host := strings.TrimPrefix(s.inst.URL, "http://")
			a := rawRequest(t, s, "GET /.idv/me HTTP/1.1\r\nHost: "+host+"\r\nCookie: idv_session="+victim+"; filler="+strings.Repeat("x", 64<<10)+"\r\nConnection: close\r\n\r\n")
			want(t, a, http.StatusRequestHeaderFieldsTooLarge)
		}},

		// Attributes.
		{"session cookie attributes on an http site", func(t *testing.T) {
			b := e2e.NewBrowser()
			st := s.start(t, b, "/")
			s.approve(t, st)
			a, _ := s.poll(t, b, st, 10)
			sessionAttrs(t, setCookieNamed(a, "idv_session"), "idv_session", false, "")
			if got := a.header.Get("Cache-Control"); got != "no-store" {
				t.Fatalf("the answer that sets the session cookie has Cache-Control %q", got)
			}
		}},
		{"session cookie attributes on an https site", func(t *testing.T) {
			_, _, completed := pub.publicLogin(t, pubOrigin)
			sessionAttrs(t, setCookieNamed(completed, "__Host-idv_session"), "__Host-idv_session", true, "")
			if got := completed.header.Get("Cache-Control"); got != "no-store" {
				t.Fatalf("the answer that sets the session cookie has Cache-Control %q", got)
			}
		}},
		{"pending cookie attributes on an https site", func(t *testing.T) {
			_, started, _ := pub.publicLogin(t, pubOrigin)
			// Named after the configured cookie, not its __Host- form: a
			// __Host- cookie must have Path=/, and this one is scoped to
			// the prefix.
			c := setCookieNamed(started, "idv_session_login_")
			if c == nil || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/.idv/" || c.Domain != "" {
				t.Fatalf("pending cookie: %v", started.header["Set-Cookie"])
			}
		}},
		{"a plain idv_session cookie on an https site is not the session", func(t *testing.T) {
			jar, _, _ := pub.publicLogin(t, pubOrigin)
			noCredential(t, pub.meWith(t, "idv_session="+jar["__Host-idv_session"]))
			wantSession(t, pub.meWith(t, "__Host-idv_session="+jar["__Host-idv_session"]), sidOf(t, pub.meWith(t, jar.header())))
		}},
		{"a lower-case __host- cookie on an https site is not the session", func(t *testing.T) {
			jar, _, _ := pub.publicLogin(t, pubOrigin)
			noCredential(t, pub.meWith(t, "__host-idv_session="+jar["__Host-idv_session"]))
		}},
		{"logout on an https site clears the __Host- cookie as browsers require", func(t *testing.T) {
			jar, _, _ := pub.publicLogin(t, pubOrigin)
			a := send(t, plain(), request(t, http.MethodPost, pub.url("/.idv/logout"), nil, map[string]string{"Origin": pubOrigin, "Cookie": jar.header()}))
			want(t, a, http.StatusSeeOther)
			c := setCookieNamed(a, "__Host-idv_session")
			if c == nil || c.MaxAge >= 0 || !c.Secure || c.Path != "/" || c.Domain != "" {
				t.Fatalf("logout's Set-Cookie: %v", a.header["Set-Cookie"])
			}
			if got := a.header.Get("Cache-Control"); got != "no-store" {
				t.Fatalf("logout's Cache-Control %q", got)
			}
			noCredential(t, pub.meWith(t))
			invalidToken(t, pub.meWith(t, jar.header()))
		}},
		{"with a shared session domain the cookie names it and has no __Host- prefix", func(t *testing.T) {
			_, _, completed := shared.publicLogin(t, pubOrigin)
			sessionAttrs(t, setCookieNamed(completed, "idv_session"), "idv_session", true, "example.com")
			if setCookieNamed(completed, "__Host-idv_session") != nil {
				t.Fatalf("a __Host- cookie with a Domain: %v", completed.header["Set-Cookie"])
			}
		}},
		{"the gate's renewed session cookie is no-store whatever the upstream says", func(t *testing.T) {
			jar, _, _ := shared.publicLogin(t, pubOrigin)
			// Renewal is due once half of the 2 s idle time has passed;
			// nothing signals that but the clock.
			time.Sleep(1100 * time.Millisecond)
			a := send(t, plain(), request(t, http.MethodGet, shared.url("/page"), nil, map[string]string{"Cookie": jar.header(), "Accept": "text/html"}))
			want(t, a, http.StatusOK)
			if string(a.body) != "cacheable" {
				t.Fatalf("answer %v did not come from the upstream", a)
			}
			// The reference stays; the cookie is sent again with the new
			// expiry.
			if c := setCookieNamed(a, "idv_session"); c == nil || c.Value != jar["idv_session"] || c.MaxAge <= 0 {
				t.Fatalf("no renewed session cookie: %v", a.header["Set-Cookie"])
			}
			if got := a.header.Get("Cache-Control"); got != "no-store" || a.header.Get("Expires") != "" {
				t.Fatalf("a response setting the session cookie has Cache-Control %q, Expires %q", got, a.header.Get("Expires"))
			}
		}},
	}
	runClass(t, classTossing, attacks)
}
