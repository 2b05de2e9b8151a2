package attack_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
)

// The CSRF rule (README, "Security model"): every POST under the prefix
// whose Origin is not the site's own, or that has no Origin and a
// Sec-Fetch-Site other than same-origin, is refused with 403 cross_origin
// before it is routed. A request with neither header is not from a browser
// (browsers send Origin on every cross-origin POST) and is let through;
// POST /sessions then still requires a JSON body, which no cross-site form
// can send. The OpenID Connect endpoints have their own rules: logout ends
// the browser's session only on a same-origin POST (or with an
// id_token_hint of that very session), and authorize is a cross-site
// protocol endpoint that only ever answers to a registered redirect URI.

// crossSiteForm are the headers a browser sends when a page on another
// site submits a form to us.
func crossSiteForm() map[string]string {
	return map[string]string{
		"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
		"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html",
	}
}

// withHeaders returns h with kv (name, value, ...) set.
func withHeaders(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// wantCrossOrigin fails t unless a is the CSRF refusal: 403 with the
// JSON error cross_origin, or for a form submission the error page.
func wantCrossOrigin(t *testing.T, a answer) {
	t.Helper()
	if strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
		want(t, a, http.StatusForbidden)
		return
	}
	wantError(t, a, http.StatusForbidden, "cross_origin")
}

// setCookies are the cookies an answer sets.
func setCookies(a answer) []*http.Cookie {
	return (&http.Response{Header: a.header}).Cookies()
}

// setCookieNamed is the cookie named name that a sets (a name ending in
// '_' is a prefix), or nil.
func setCookieNamed(a answer, name string) *http.Cookie {
	for _, c := range setCookies(a) {
		if c.Name == name || strings.HasSuffix(name, "_") && strings.HasPrefix(c.Name, name) {
			return c
		}
	}
	return nil
}

// wantNoCookie fails t when a sets (or clears) a cookie named name.
func wantNoCookie(t *testing.T, a answer, name string) {
	t.Helper()
	if c := setCookieNamed(a, name); c != nil {
		t.Fatalf("answer %v sets the cookie %s (%s)", a, c.Name, c)
	}
}

// me is GET <prefix>/me with b.
func (s *suite) me(t *testing.T, b *e2e.Browser) answer {
	t.Helper()
	return do(t, b, http.MethodGet, s.url("/.idv/me"), nil, nil)
}

// sidOf is the sid of a 200 answer of /me.
func sidOf(t *testing.T, a answer) string {
	t.Helper()
	want(t, a, http.StatusOK)
	var c struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(a.body, &c); err != nil || c.SID == "" {
		t.Fatalf("/me answer without a sid: %v", a)
	}
	return c.SID
}

// stillLoggedIn fails t unless b's session is still valid.
func (s *suite) stillLoggedIn(t *testing.T, b *e2e.Browser) {
	t.Helper()
	if a := s.me(t, b); a.code != http.StatusOK {
		t.Fatalf("the session did not survive: /me answered %v", a)
	}
}

// loggedOut fails t unless b's session has ended.
func (s *suite) loggedOut(t *testing.T, b *e2e.Browser, cookie string) {
	t.Helper()
	a := send(t, plain(), request(t, http.MethodGet, s.url("/.idv/me"), nil, map[string]string{"Cookie": "idv_session=" + cookie}))
	want(t, a, http.StatusUnauthorized)
}

// stateOf is the state of b's login st now (a short poll).
func (s *suite) stateOf(t *testing.T, b *e2e.Browser, st e2e.Started) string {
	t.Helper()
	a, out := s.poll(t, b, st, 0)
	want(t, a, http.StatusOK)
	return out.State
}

// stillPending fails t unless b's login st is still pending.
func (s *suite) stillPending(t *testing.T, b *e2e.Browser, st e2e.Started) {
	t.Helper()
	if got := s.stateOf(t, b, st); got != "pending" {
		t.Fatalf("login %s is %q after a refused request; want pending", st.ID, got)
	}
}

// idToken walks the OpenID Connect code flow for the confidential client
// with b's session and returns the ID token.
func (s *suite) idToken(t *testing.T, b *e2e.Browser) string {
	t.Helper()
	q := url.Values{"client_id": {"app"}, "response_type": {"code"}, "scope": {"openid"}, "state": {"st"}, "redirect_uri": {s.rp + "/callback"}}
	a := do(t, b, http.MethodGet, s.url("/.idv/oidc/authorize?"+q.Encode()), nil, map[string]string{"Accept": "text/html"})
	want(t, a, http.StatusFound)
	loc, err := url.Parse(a.header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %v, Location %q", a, a.header.Get("Location"))
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {s.rp + "/callback"},
		"client_id": {"app"}, "client_secret": {s.secret}}
	a = send(t, plain(), request(t, http.MethodPost, s.url("/.idv/oidc/token"), strings.NewReader(form.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"}))
	want(t, a, http.StatusOK)
	var out struct {
		IDToken string `json:"id_token"`
	}
	if err := json.Unmarshal(a.body, &out); err != nil || out.IDToken == "" {
		t.Fatalf("token: %v", a)
	}
	return out.IDToken
}

// TestAttackCSRF tries every state-changing request under the prefix from
// another site, in every form a browser can send it, and the GET requests
// that must not change state; each is refused (or answered as documented)
// and changes nothing, and the same request from the site itself works.
func TestAttackCSRF(t *testing.T) {
	s := newSuite(t, options{})
	site := s.inst.URL
	jsonStart := `{"provider":"demo","rd":"/"}`

	// start sends POST /sessions from a fresh browser.
	start := func(t *testing.T, h map[string]string, body string) answer {
		return do(t, e2e.NewBrowser(), http.MethodPost, s.url("/.idv/sessions"), strings.NewReader(body), h)
	}
	startRefused := func(h map[string]string, body string) func(t *testing.T) {
		return func(t *testing.T) {
			a := start(t, h, body)
			wantCrossOrigin(t, a)
			wantNoCookie(t, a, "idv_session_login_")
		}
	}
	startUnsupported := func(h map[string]string, body string) func(t *testing.T) {
		return func(t *testing.T) {
			a := start(t, h, body)
			wantError(t, a, http.StatusUnsupportedMediaType, "unsupported_media_type")
			wantNoCookie(t, a, "idv_session_login_")
		}
	}
	jsonFrom := func(origin string) map[string]string {
		return map[string]string{"Origin": origin, "Content-Type": "application/json"}
	}
	otherPort := fmt.Sprintf("http://127.0.0.1:%d", s.inst.Port+1)

	// logoutRefused logs a browser in, sends POST /logout with h, and
	// checks that it was refused and the session survived.
	logoutRefused := func(query string, h map[string]string, body string) func(t *testing.T) {
		return func(t *testing.T) {
			b := s.loggedIn(t)
			a := do(t, b, http.MethodPost, s.url("/.idv/logout"+query), strings.NewReader(body), h)
			wantCrossOrigin(t, a)
			wantNoCookie(t, a, "idv_session")
			s.stillLoggedIn(t, b)
		}
	}

	// decideRefused starts a login in one browser and sends the wallet's
	// approve or decline from another device with h: refused, and the login
	// is still pending.
	decideRefused := func(action string, h map[string]string) func(t *testing.T) {
		return func(t *testing.T) {
			b := e2e.NewBrowser()
			st := s.start(t, b, "/")
			a := do(t, e2e.NewBrowser(), http.MethodPost, st.QRText+"/"+action, nil, h)
			wantCrossOrigin(t, a)
			s.stillPending(t, b, st)
		}
	}

	// oidcLogoutKept sends an OpenID Connect logout that must only ask for
	// confirmation: the session survives.
	oidcLogoutKept := func(method string, h map[string]string) func(t *testing.T) {
		return func(t *testing.T) {
			b := s.loggedIn(t)
			form := url.Values{"confirm": {"yes"}}.Encode()
			var a answer
			if method == http.MethodGet {
				a = do(t, b, method, s.url("/.idv/oidc/logout?"+form), nil, h)
			} else {
				a = do(t, b, method, s.url("/.idv/oidc/logout"), strings.NewReader(form), withHeaders(h, "Content-Type", "application/x-www-form-urlencoded"))
			}
			want(t, a, http.StatusOK)
			if !strings.Contains(string(a.body), "Log out?") || !strings.Contains(string(a.body), `name="confirm" value="yes"`) {
				t.Fatalf("logout did not ask for confirmation: %v", a)
			}
			wantNoCookie(t, a, "idv_session")
			s.stillLoggedIn(t, b)
		}
	}

	attacks := []attack{
		// Starting a login (login CSRF: a login started in the victim's
		// browser for the attacker's purposes).
		{"POST /sessions with a cross-site Origin", startRefused(jsonFrom("https://evil.example"), jsonStart)},
		{"POST /sessions with Origin null (sandboxed frame, data: URL)", startRefused(jsonFrom("null"), jsonStart)},
		{"POST /sessions from another port of the same host", startRefused(jsonFrom(otherPort), jsonStart)},
		{"POST /sessions from localhost, another name of the same machine", startRefused(jsonFrom(fmt.Sprintf("http://localhost:%d", s.inst.Port)), jsonStart)},
		{"POST /sessions with the site's Origin as a prefix of another origin", startRefused(jsonFrom(site+"0"), jsonStart)},
		{"POST /sessions with a cross-site Origin and a same-origin Sec-Fetch-Site", startRefused(withHeaders(jsonFrom("https://evil.example"), "Sec-Fetch-Site", "same-origin"), jsonStart)},
		{"POST /sessions with Sec-Fetch-Site cross-site and no Origin", startRefused(map[string]string{"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}, jsonStart)},
		{"POST /sessions with Sec-Fetch-Site same-site and no Origin", startRefused(map[string]string{"Sec-Fetch-Site": "same-site", "Content-Type": "application/json"}, jsonStart)},
		{"POST /sessions as a cross-site HTML form", startRefused(crossSiteForm(), "provider=demo&rd=%2F")},
		{"POST /sessions as cross-site JSON with a UTF-7 charset", startRefused(withHeaders(jsonFrom("https://evil.example"), "Content-Type", "application/json; charset=utf-7"), `+AHsAIg-provider+ACI-:+ACI-demo+ACIAfQ-`)},
		// Without Origin and Sec-Fetch-Site (not a browser, or one that
		// sends neither), the JSON requirement still stands: a form can
		// only send these types.
		{"POST /sessions with a form-encoded body", startUnsupported(map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "provider=demo&rd=%2F")},
		{"POST /sessions with a text/plain body holding JSON", startUnsupported(map[string]string{"Content-Type": "text/plain"}, jsonStart)},
		{"POST /sessions with a multipart body", startUnsupported(map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, "--x\r\nContent-Disposition: form-data; name=\"provider\"\r\n\r\ndemo\r\n--x--\r\n")},
		{"POST /sessions with text/plain whose charset says application/json", startUnsupported(map[string]string{"Content-Type": "text/plain; charset=application/json"}, jsonStart)},
		{"POST /sessions with application/json after a semicolon of text/plain", startUnsupported(map[string]string{"Content-Type": "text/plain;application/json"}, jsonStart)},
		{"POST /sessions without a Content-Type", startUnsupported(map[string]string{}, jsonStart)},
		{"preflight of a cross-site JSON POST /sessions grants no CORS", func(t *testing.T) {
			a := do(t, e2e.NewBrowser(), http.MethodOptions, s.url("/.idv/sessions"), nil, map[string]string{
				"Origin": "https://evil.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
			wantError(t, a, http.StatusMethodNotAllowed, "method_not_allowed")
			for k := range a.header {
				if strings.HasPrefix(strings.ToLower(k), "access-control-") {
					t.Fatalf("preflight answered %s: %v", k, a.header)
				}
			}
		}},
		{"POST /sessions with only a cross-site Referer (no browser sends a cross-site POST without Origin: let through)", func(t *testing.T) {
			a := start(t, map[string]string{"Referer": "https://evil.example/page", "Content-Type": "application/json"}, jsonStart)
			want(t, a, http.StatusCreated)
			if setCookieNamed(a, "idv_session_login_") == nil {
				t.Fatalf("start without its pending cookie: %v", a.header)
			}
		}},
		{"POST /sessions from the site's own page (positive control)", func(t *testing.T) {
			a := start(t, s.sameOrigin(), jsonStart)
			want(t, a, http.StatusCreated)
			if setCookieNamed(a, "idv_session_login_") == nil {
				t.Fatalf("start without its pending cookie: %v", a.header)
			}
		}},

		// Logging out (logout CSRF).
		{"POST /logout with a cross-site Origin and rd in the query", logoutRefused("?rd=%2Fx", map[string]string{"Origin": "https://evil.example"}, "")},
		{"POST /logout with Origin null", logoutRefused("", map[string]string{"Origin": "null", "Content-Type": "application/x-www-form-urlencoded"}, "rd=%2F")},
		{"POST /logout as a cross-site HTML form with rd in the form", logoutRefused("", crossSiteForm(), "rd=%2Fx")},
		{"POST /logout with Sec-Fetch-Site cross-site and no Origin", logoutRefused("", map[string]string{"Sec-Fetch-Site": "cross-site", "Content-Type": "application/x-www-form-urlencoded"}, "rd=%2F")},
		{"POST /logout with Sec-Fetch-Site same-site and no Origin", logoutRefused("", map[string]string{"Sec-Fetch-Site": "same-site"}, "")},
		{"POST /logout from the site's own page (positive control)", func(t *testing.T) {
			b := s.loggedIn(t)
			cookie := s.sessionCookie(b)
			a := do(t, b, http.MethodPost, s.url("/.idv/logout"), strings.NewReader("rd=%2Fbye"), withHeaders(s.sameOrigin(), "Content-Type", "application/x-www-form-urlencoded"))
			want(t, a, http.StatusSeeOther)
			if loc := a.header.Get("Location"); loc != "/bye" {
				t.Fatalf("logout went to %q", loc)
			}
			if c := setCookieNamed(a, "idv_session"); c == nil || c.MaxAge >= 0 {
				t.Fatalf("logout did not clear the session cookie: %v", a.header["Set-Cookie"])
			}
			s.loggedOut(t, b, cookie)
		}},
		{"POST /logout with only a cross-site Referer (not a browser: documented to log out)", func(t *testing.T) {
			b := s.loggedIn(t)
			cookie := s.sessionCookie(b)
			a := do(t, b, http.MethodPost, s.url("/.idv/logout"), nil, map[string]string{"Referer": "https://evil.example/"})
			want(t, a, http.StatusSeeOther)
			s.loggedOut(t, b, cookie)
		}},
		{"GET /logout (a link or an image) does not log out", func(t *testing.T) {
			b := s.loggedIn(t)
			a := do(t, b, http.MethodGet, s.url("/.idv/logout?rd=%2F"), nil, map[string]string{"Accept": "text/html", "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
			want(t, a, http.StatusOK)
			if !strings.Contains(string(a.body), `method="post"`) {
				t.Fatalf("logout page without its button: %v", a)
			}
			wantNoCookie(t, a, "idv_session")
			s.stillLoggedIn(t, b)
		}},
		{"HEAD /logout does not log out", func(t *testing.T) {
			b := s.loggedIn(t)
			a := do(t, b, http.MethodHead, s.url("/.idv/logout"), nil, nil)
			want(t, a, http.StatusMethodNotAllowed)
			wantNoCookie(t, a, "idv_session")
			s.stillLoggedIn(t, b)
		}},

		// The demo wallet: it is opened on another device (the phone that
		// scanned the QR code), from the QR code's link on the site's own
		// origin, so its buttons are same-origin POSTs without the pending
		// cookie; anything cross-site is refused like every other POST.
		{"approve with a cross-site Origin", decideRefused("approve", map[string]string{"Origin": "https://evil.example", "Content-Type": "application/x-www-form-urlencoded"})},
		{"approve as a cross-site HTML form", decideRefused("approve", crossSiteForm())},
		{"approve with Sec-Fetch-Site cross-site and no Origin", decideRefused("approve", map[string]string{"Sec-Fetch-Site": "cross-site"})},
		{"approve with Sec-Fetch-Site same-site and no Origin", decideRefused("approve", map[string]string{"Sec-Fetch-Site": "same-site"})},
		{"approve as JSON from another port of the same host", decideRefused("approve", map[string]string{"Origin": otherPort, "Content-Type": "application/json", "Accept": "application/json"})},
		{"decline with a cross-site Origin", decideRefused("decline", map[string]string{"Origin": "https://evil.example"})},
		{"GET on approve does not approve", func(t *testing.T) {
			b := e2e.NewBrowser()
			st := s.start(t, b, "/")
			a := do(t, e2e.NewBrowser(), http.MethodGet, st.QRText+"/approve", nil, map[string]string{"Accept": "text/html"})
			want(t, a, http.StatusMethodNotAllowed)
			s.stillPending(t, b, st)
		}},
		{"approve from the phone's wallet page (positive control)", func(t *testing.T) {
			b := e2e.NewBrowser()
			st := s.start(t, b, "/")
			phone := map[string]string{"Origin": site, "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate",
				"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}
			a := do(t, e2e.NewBrowser(), http.MethodPost, st.QRText+"/approve", nil, phone)
			want(t, a, http.StatusSeeOther)
			if _, out := s.poll(t, b, st, 10); out.State != "completed" {
				t.Fatalf("approved login is %q", out.State)
			}
		}},
		{"decline from the phone's wallet page (positive control)", func(t *testing.T) {
			b := e2e.NewBrowser()
			st := s.start(t, b, "/")
			a := do(t, e2e.NewBrowser(), http.MethodPost, st.QRText+"/decline", nil, map[string]string{"Origin": site, "Accept": "application/json"})
			want(t, a, http.StatusOK)
			if got := s.stateOf(t, b, st); got != "declined" {
				t.Fatalf("declined login is %q", got)
			}
		}},

		// OpenID Connect RP-initiated logout: any site may send the browser
		// here, so without an id_token_hint of the browser's own session the
		// person confirms with a button, which only a same-origin POST can
		// press.
		{"OIDC logout confirmed by a cross-site POST", oidcLogoutKept(http.MethodPost, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})},
		{"OIDC logout confirmed by a POST with Sec-Fetch-Site same-site", oidcLogoutKept(http.MethodPost, map[string]string{"Sec-Fetch-Site": "same-site"})},
		{"OIDC logout confirmed by a GET", oidcLogoutKept(http.MethodGet, map[string]string{"Accept": "text/html"})},
		{"OIDC logout by a cross-site POST with the attacker's own id_token_hint", func(t *testing.T) {
			attacker := s.loggedIn(t)
			hint := s.idToken(t, attacker)
			victim := s.loggedIn(t)
			form := url.Values{"confirm": {"yes"}, "id_token_hint": {hint}}.Encode()
			a := do(t, victim, http.MethodPost, s.url("/.idv/oidc/logout"), strings.NewReader(form), withHeaders(crossSiteForm(), "Origin", "https://evil.example"))
			want(t, a, http.StatusOK)
			if !strings.Contains(string(a.body), "Log out?") {
				t.Fatalf("the victim was not asked: %v", a)
			}
			s.stillLoggedIn(t, victim)
			if got := s.me(t, attacker); got.code != http.StatusUnauthorized {
				t.Fatalf("the hinted session survived: %v", got)
			}
		}},
		{"OIDC logout confirmed from the site's own page (positive control)", func(t *testing.T) {
			b := s.loggedIn(t)
			cookie := s.sessionCookie(b)
			a := do(t, b, http.MethodPost, s.url("/.idv/oidc/logout"), strings.NewReader("confirm=yes"), withHeaders(s.sameOrigin(), "Content-Type", "application/x-www-form-urlencoded"))
			want(t, a, http.StatusOK)
			if !strings.Contains(string(a.body), "Logged out") {
				t.Fatalf("logout page: %v", a)
			}
			s.loggedOut(t, b, cookie)
		}},
		{"OIDC authorize by a cross-site POST answers only to the registered redirect URI", func(t *testing.T) {
			// Authorization requests come from other sites by design (and a
			// browser would not send the SameSite=Lax session cookie on a
			// cross-site POST): the code goes to the client's registered
			// redirect URI, nowhere else; login CSRF at the client is what
			// its state parameter is for.
			b := s.loggedIn(t)
			form := url.Values{"client_id": {"app"}, "response_type": {"code"}, "scope": {"openid"}, "state": {"xyz"}, "redirect_uri": {s.rp + "/callback"}}
			a := do(t, b, http.MethodPost, s.url("/.idv/oidc/authorize"), strings.NewReader(form.Encode()), crossSiteForm())
			want(t, a, http.StatusFound)
			loc, err := url.Parse(a.header.Get("Location"))
			if err != nil || loc.Scheme+"://"+loc.Host+loc.Path != s.rp+"/callback" || loc.Query().Get("code") == "" || loc.Query().Get("state") != "xyz" {
				t.Fatalf("authorize redirected to %q", a.header.Get("Location"))
			}
			form.Set("redirect_uri", "https://evil.example/callback")
			a = do(t, b, http.MethodPost, s.url("/.idv/oidc/authorize"), strings.NewReader(form.Encode()), crossSiteForm())
			want(t, a, http.StatusBadRequest)
			if loc := a.header.Get("Location"); loc != "" {
				t.Fatalf("unregistered redirect URI answered with a redirect to %q", loc)
			}
		}},

		// The session token for a page's script: refused when the fetch
		// metadata says the request is not same-origin (docs/reference.md).
		{"GET /token with Sec-Fetch-Site cross-site", func(t *testing.T) {
			a := do(t, s.loggedIn(t), http.MethodGet, s.url("/.idv/token"), nil, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
			wantError(t, a, http.StatusForbidden, "cross_origin")
		}},
		{"GET /token with Sec-Fetch-Site same-site (a sibling subdomain's fetch)", func(t *testing.T) {
			a := do(t, s.loggedIn(t), http.MethodGet, s.url("/.idv/token"), nil, map[string]string{"Sec-Fetch-Site": "same-site"})
			wantError(t, a, http.StatusForbidden, "cross_origin")
		}},
	}

	// A site behind a proxy, with its public origin configured: the
	// Origin must be exactly that, whatever the connection was.
	pub := newSuite(t, options{idv: "site https://app.example.com"})
	pubStart := func(origin string, code int) func(t *testing.T) {
		return func(t *testing.T) {
			a := do(t, e2e.NewBrowser(), http.MethodPost, pub.url("/.idv/sessions"), strings.NewReader(jsonStart), jsonFrom(origin))
			if code == http.StatusForbidden {
				wantCrossOrigin(t, a)
				wantNoCookie(t, a, "idv_session_login_")
				return
			}
			want(t, a, code)
		}
	}
	attacks = append(attacks,
		attack{"POST /sessions from a sibling subdomain of the public origin", pubStart("https://evil.example.com", http.StatusForbidden)},
		attack{"POST /sessions from the parent domain of the public origin", pubStart("https://example.com", http.StatusForbidden)},
		attack{"POST /sessions from the public host over plain http", pubStart("http://app.example.com", http.StatusForbidden)},
		attack{"POST /sessions with the connection's origin instead of the public one", pubStart(pub.inst.URL, http.StatusForbidden)},
		attack{"POST /sessions from the public origin (positive control)", pubStart("https://app.example.com", http.StatusCreated)},
	)
	runClass(t, classCSRF, attacks)
}
