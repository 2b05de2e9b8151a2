package caddymodule_test

import (
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
	"github.com/caddy-idv/caddy-idv/token"
)

// site is a protected site behind the demo provider that shows the
// identity placeholders (docs/reference.md, "Protected requests").
const site = `
	idv {
		provider demo {
			user "Ada Lovelace"
		}
		limit {
			per_address 1000 1m
			total 10000 1m
		}
	}
	respond "user={http.auth.user.id} name={http.auth.user.name} idv={http.auth.user.idv} amr={http.auth.user.amr}"
`

// login walks the whole demo login with b, approving from approver (nil
// means another device), and returns the start answer and final status.
func login(t *testing.T, inst *e2e.Instance, b, approver *e2e.Browser, rd string) (e2e.Started, e2e.Status) {
	t.Helper()
	s := b.StartLogin(t, inst.URL, map[string]string{"provider": "demo", "rd": rd})
	if approver == nil {
		approver = e2e.NewBrowser()
	}
	approve(t, approver, s, http.StatusSeeOther)
	return s, b.Poll(t, inst.URL, s, 10)
}

// bearerFor asks base's /token, with b's session cookie, for the session
// token an API client sends as a bearer token.
func bearerFor(t *testing.T, b *e2e.Browser, base string) string {
	t.Helper()
	code, _, body := b.Do(t, http.MethodGet, base+"/.idv/token", nil, nil)
	var out struct {
		Token string `json:"token"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &out) != nil || strings.Count(out.Token, ".") != 2 {
		t.Fatalf("/token: %d %s", code, body)
	}
	return out.Token
}

func approve(t *testing.T, b *e2e.Browser, s e2e.Started, want int) {
	t.Helper()
	code, _, body := b.Do(t, http.MethodPost, s.QRText+"/approve", nil, map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if code != want {
		t.Fatalf("approve: %d %s, want %d", code, body, want)
	}
}

func TestLoginEndToEnd(t *testing.T) {
	inst := e2e.Start(t, site, e2e.Options{})
	b := e2e.NewBrowser()

	// A browser navigation without a session goes to the login page.
	code, hdr, _ := b.Do(t, http.MethodGet, inst.URL+"/reports?year=2026", nil, map[string]string{"Accept": "text/html"})
	if code != http.StatusFound || hdr.Get("Location") != "/.idv/login?rd=%2Freports%3Fyear%3D2026" {
		t.Fatalf("navigation: %d %q", code, hdr.Get("Location"))
	}
	code, hdr, page := b.Do(t, http.MethodGet, inst.URL+"/.idv/login?rd=%2Freports%3Fyear%3D2026", nil, map[string]string{"Accept": "text/html"})
	if code != http.StatusOK || !strings.Contains(string(page), "/.idv/static/login.js") || !strings.Contains(hdr.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("login page: %d %s", code, page)
	}

	s := b.StartLogin(t, inst.URL, map[string]string{"provider": "demo", "rd": "/reports?year=2026"})
	if s.QRText != inst.URL+"/.idv/demo/wallet/"+s.ID || s.DeepLink != s.QRText || s.QRSVGURL != "/.idv/sessions/"+s.ID+"/qr.svg" {
		t.Fatalf("start answer: %+v", s)
	}
	if exp, err := time.Parse(time.RFC3339, s.ExpiresAt); err != nil || time.Until(exp) < time.Minute {
		t.Fatalf("expires_at %q", s.ExpiresAt)
	}
	code, hdr, svg := b.Do(t, http.MethodGet, inst.URL+s.QRSVGURL, nil, nil)
	if code != http.StatusOK || hdr.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(string(svg), "<svg") {
		t.Fatalf("qr.svg: %d %s", code, hdr.Get("Content-Type"))
	}
	if st := b.Poll(t, inst.URL, s, 0); st.State != "pending" {
		t.Fatalf("state before approval: %+v", st)
	}

	// Another browser (the phone) cannot read the login's state or QR.
	phone := e2e.NewBrowser()
	for _, path := range []string{s.StatusURL, s.QRSVGURL} {
		if code, _, _ := phone.Do(t, http.MethodGet, inst.URL+path, nil, nil); code != http.StatusForbidden {
			t.Fatalf("%s without the pending cookie: %d", path, code)
		}
	}
	code, _, wallet := phone.Do(t, http.MethodGet, s.QRText, nil, nil)
	if code != http.StatusOK || !strings.Contains(string(wallet), "Ada Lovelace") {
		t.Fatalf("wallet page: %d", code)
	}

	// A long poll answers as soon as the phone approves.
	done := make(chan e2e.Status, 1)
	go func() { done <- pollNoFatal(b, inst.URL, s) }()
	approve(t, phone, s, http.StatusSeeOther)
	var st e2e.Status
	select {
	case st = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("long poll did not answer after approval")
	}
	if st.State != "completed" || st.Redirect != "/reports?year=2026" {
		t.Fatalf("status after approval: %+v", st)
	}
	cookie := b.Cookie(inst.URL, "idv_session")
	if cookie == "" {
		t.Fatal("no session cookie")
	}

	code, _, body := b.Do(t, http.MethodGet, inst.URL+"/reports", nil, nil)
	if code != http.StatusOK || !strings.Contains(string(body), "name=Ada Lovelace idv=demo amr=swk,user,mca") || !strings.Contains(string(body), "user=demo-") {
		t.Fatalf("protected page: %d %s", code, body)
	}

	// The cookie names the session (a 22-character reference); the page
	// gets the session token for APIs from /token, and /me shows the
	// claims.
	if len(cookie) != token.RefLength {
		t.Errorf("session cookie %q is not a reference", cookie)
	}
	bearer := bearerFor(t, b, inst.URL)
	api := e2e.NewBrowser()
	code, _, me := api.Do(t, http.MethodGet, inst.URL+"/.idv/me", nil, map[string]string{"Authorization": "Bearer " + bearer})
	var claims map[string]any
	if code != http.StatusOK || json.Unmarshal(me, &claims) != nil {
		t.Fatalf("/me: %d %s", code, me)
	}
	for _, c := range []string{"iss", "sub", "aud", "iat", "exp", "jti", "sid", "auth_time", "acr", "amr", "idv", "name"} {
		if _, ok := claims[c]; !ok {
			t.Errorf("token lacks claim %q: %s", c, me)
		}
	}
	// Without `site` or `oidc`, iss and aud come from the configuration,
	// never from the Host the browser used.
	if claims["iss"] != token.DefaultIssuer || claims["aud"] != siteAudience {
		t.Errorf("iss/aud = %v/%v, want %s/%s", claims["iss"], claims["aud"], token.DefaultIssuer, siteAudience)
	}

	// Logout revokes the token: it is refused at once, as cookie and bearer.
	code, hdr, _ = b.Do(t, http.MethodPost, inst.URL+"/.idv/logout?rd=/bye", nil, nil)
	if code != http.StatusSeeOther || hdr.Get("Location") != "/bye" {
		t.Fatalf("logout: %d %q", code, hdr.Get("Location"))
	}
	code, _, _ = api.Do(t, http.MethodGet, inst.URL+"/reports", nil, map[string]string{"Authorization": "Bearer " + bearer})
	if code != http.StatusUnauthorized {
		t.Fatalf("revoked bearer token: %d", code)
	}
	replay := e2e.NewBrowser()
	u, _ := url.Parse(inst.URL)
	replay.Jar.SetCookies(u, []*http.Cookie{{Name: "idv_session", Value: cookie}})
	if code, _, _ := replay.Do(t, http.MethodGet, inst.URL+"/reports", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("the logged-out session cookie: %d", code)
	}
}

func pollNoFatal(b *e2e.Browser, base string, s e2e.Started) e2e.Status {
	resp, err := b.Get(base + s.StatusURL + "?wait=20")
	if err != nil {
		return e2e.Status{State: "error: " + err.Error()}
	}
	defer resp.Body.Close()
	var st e2e.Status
	_ = json.NewDecoder(resp.Body).Decode(&st)
	return st
}

func TestSessionCookieFlags(t *testing.T) {
	inst := e2e.Start(t, site, e2e.Options{})
	b := e2e.NewBrowser()
	s := b.StartLogin(t, inst.URL, map[string]string{"provider": "demo"})
	approve(t, e2e.NewBrowser(), s, http.StatusSeeOther)
	resp, err := b.Get(inst.URL + s.StatusURL + "?wait=5")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session, pending *http.Cookie
	for _, c := range resp.Cookies() {
		switch {
		case c.Name == "idv_session":
			session = c
		case strings.HasPrefix(c.Name, "idv_session_login_"):
			pending = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" || session.MaxAge < 7*3600 {
		t.Fatalf("session cookie: %+v", session)
	}
	// Served over plain http here, so not Secure; over https it is (unit test).
	if pending == nil || pending.MaxAge >= 0 {
		t.Fatalf("pending cookie not cleared: %+v", pending)
	}
	// The session cookie is handed out once per login.
	resp, err = b.Get(inst.URL + s.StatusURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("poll after completion without pending cookie: %d", resp.StatusCode)
	}
}

func TestSameDeviceLoginHasNoMCA(t *testing.T) {
	inst := e2e.Start(t, site, e2e.Options{})
	b := e2e.NewBrowser()
	// Approving in the browser that started the login ("open on this device").
	_, st := login(t, inst, b, b, "/")
	if st.State != "completed" {
		t.Fatalf("state %+v", st)
	}
	_, _, body := b.Do(t, http.MethodGet, inst.URL+"/", nil, nil)
	if !strings.Contains(string(body), "amr=swk,user ") && !strings.HasSuffix(string(body), "amr=swk,user") {
		t.Fatalf("same-device amr: %s", body)
	}
}

func TestWalletDecisions(t *testing.T) {
	inst := e2e.Start(t, strings.Replace(site, `user "Ada Lovelace"`, "user \"Ada Lovelace\"\n\t\t\tlifetime 2s", 1), e2e.Options{})
	b := e2e.NewBrowser()

	t.Run("approve twice", func(t *testing.T) {
		s := b.StartLogin(t, inst.URL, map[string]string{"provider": "demo"})
		approve(t, e2e.NewBrowser(), s, http.StatusSeeOther)
		approve(t, e2e.NewBrowser(), s, http.StatusConflict)
		if st := b.Poll(t, inst.URL, s, 5); st.State != "completed" {
			t.Fatalf("%+v", st)
		}
	})
	t.Run("decline", func(t *testing.T) {
		s := b.StartLogin(t, inst.URL, map[string]string{"provider": "demo"})
		code, _, _ := e2e.NewBrowser().Do(t, http.MethodPost, s.QRText+"/decline", nil, nil)
		if code != http.StatusSeeOther {
			t.Fatalf("decline: %d", code)
		}
		approve(t, e2e.NewBrowser(), s, http.StatusConflict)
		if st := b.Poll(t, inst.URL, s, 5); st.State != "declined" || st.Error == "" {
			t.Fatalf("%+v", st)
		}
	})
	t.Run("approve after expiry", func(t *testing.T) {
		s := b.StartLogin(t, inst.URL, map[string]string{"provider": "demo"})
		// The long poll answers when the login expires (2 s).
		if st := b.Poll(t, inst.URL, s, 10); st.State != "expired" {
			t.Fatalf("%+v", st)
		}
		approve(t, e2e.NewBrowser(), s, http.StatusGone)
		// The outcome was reported, so the browser's pending cookie for
		// the login is gone: the login is over for it.
		if code, _, _ := b.Do(t, http.MethodGet, inst.URL+s.StatusURL, nil, nil); code != http.StatusForbidden {
			t.Fatalf("a poll after the outcome was reported: %d", code)
		}
	})
	t.Run("unknown login", func(t *testing.T) {
		code, _, _ := e2e.NewBrowser().Do(t, http.MethodPost, inst.URL+"/.idv/demo/wallet/AAAAAAAAAAAAAAAAAAAAAA/approve", nil, nil)
		if code != http.StatusNotFound {
			t.Fatalf("approve unknown: %d", code)
		}
	})
	t.Run("poll with another login's pending cookie", func(t *testing.T) {
		other := e2e.NewBrowser()
		s1 := b.StartLogin(t, inst.URL, map[string]string{"provider": "demo"})
		s2 := other.StartLogin(t, inst.URL, map[string]string{"provider": "demo"})
		// other's pending cookie, renamed as if it were s1's, binds nothing.
		u, _ := url.Parse(inst.URL + "/.idv/")
		for _, c := range other.Jar.Cookies(u) {
			if strings.HasPrefix(c.Name, "idv_session_login_") {
				req, _ := http.NewRequest(http.MethodGet, inst.URL+s1.StatusURL, nil)
				req.Header.Set("Cookie", "idv_session_login_"+s1.ID[:10]+"="+c.Value)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden {
					t.Fatalf("poll of s1 with s2's pending cookie: %d", resp.StatusCode)
				}
			}
		}
		if code, _, _ := e2e.NewBrowser().Do(t, http.MethodGet, inst.URL+s2.StatusURL, nil, nil); code != http.StatusForbidden {
			t.Fatalf("poll without a pending cookie: %d", code)
		}
	})
}

func TestAPIRefusesBadRequests(t *testing.T) {
	inst := e2e.Start(t, site, e2e.Options{})
	b := e2e.NewBrowser()
	sessions := inst.URL + "/.idv/sessions"
	jsonCT := map[string]string{"Content-Type": "application/json"}
	cases := []struct {
		name   string
		method string
		url    string
		body   string
		header map[string]string
		want   int
	}{
		{"cross-origin start", "POST", sessions, `{"provider":"demo"}`, map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}, 403},
		{"null origin", "POST", sessions, `{"provider":"demo"}`, map[string]string{"Content-Type": "application/json", "Origin": "null"}, 403},
		{"cross-site fetch metadata", "POST", sessions, `{"provider":"demo"}`, map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403},
		{"cross-origin logout", "POST", inst.URL + "/.idv/logout", "", map[string]string{"Origin": "https://evil.example"}, 403},
		{"cross-origin approve", "POST", inst.URL + "/.idv/demo/wallet/AAAAAAAAAAAAAAAAAAAAAA/approve", "", map[string]string{"Origin": "https://evil.example"}, 403},
		{"form body", "POST", sessions, `provider=demo`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415},
		{"no content type", "POST", sessions, `{"provider":"demo"}`, nil, 415},
		{"malformed JSON", "POST", sessions, `{"provider":`, jsonCT, 400},
		{"JSON array", "POST", sessions, `["demo"]`, jsonCT, 400},
		{"provider not a string", "POST", sessions, `{"provider":7}`, jsonCT, 400},
		{"two objects", "POST", sessions, `{"provider":"demo"}{"provider":"demo"}`, jsonCT, 400},
		{"unknown provider", "POST", sessions, `{"provider":"keycloak"}`, jsonCT, 400},
		{"oversized body", "POST", sessions, `{"provider":"demo","rd":"/` + strings.Repeat("a", 20000) + `"}`, jsonCT, 400},
		{"GET sessions without a login in progress", "GET", sessions, "", nil, 204},
		{"PUT sessions", "PUT", sessions, "", nil, 405},
		{"unknown endpoint", "GET", inst.URL + "/.idv/nope", "", nil, 404},
		{"status with bad wait", "GET", sessions + "/AAAAAAAAAAAAAAAAAAAAAA?wait=abc", "", nil, 403},
		{"status of unknown id", "GET", sessions + "/AAAAAAAAAAAAAAAAAAAAAA", "", nil, 403},
		{"me without session", "GET", inst.URL + "/.idv/me", "", nil, 401},
		{"path traversal in static", "GET", inst.URL + "/.idv/static/..%2f..%2fgo.mod", "", nil, 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body := b.Do(t, tc.method, tc.url, strings.NewReader(tc.body), tc.header)
			if code != tc.want {
				t.Fatalf("%d %s, want %d", code, body, tc.want)
			}
			var e map[string]string
			if tc.want >= 400 && tc.want != 404 || strings.Contains(hdr.Get("Content-Type"), "json") {
				if err := json.Unmarshal(body, &e); err != nil || e["error"] == "" {
					t.Fatalf("error body is not {error,message} JSON: %s", body)
				}
			}
		})
	}
	// No bad input ever produced a 5xx or a stack trace.
	if strings.Contains(inst.Logs(), "panic") {
		t.Fatalf("caddy logged a panic:\n%s", inst.Logs())
	}
}

func TestUnauthenticatedAnswers(t *testing.T) {
	inst := e2e.Start(t, site, e2e.Options{})
	b := e2e.NewBrowser()
	code, hdr, body := b.Do(t, http.MethodGet, inst.URL+"/api/items", nil, map[string]string{"Accept": "application/json"})
	if code != 401 || hdr.Get("WWW-Authenticate") != "Bearer" || strings.TrimSpace(string(body)) != `{"error":"unauthenticated","login":"/.idv/login"}` {
		t.Fatalf("API request: %d %q %s", code, hdr.Get("WWW-Authenticate"), body)
	}
	code, hdr, _ = b.Do(t, http.MethodHead, inst.URL+"/page", nil, map[string]string{"Accept": "text/html,application/xhtml+xml"})
	if code != 302 || !strings.HasPrefix(hdr.Get("Location"), "/.idv/login?rd=") {
		t.Fatalf("HEAD navigation: %d %q", code, hdr.Get("Location"))
	}
	code, _, _ = b.Do(t, http.MethodPost, inst.URL+"/form", nil, map[string]string{"Accept": "text/html"})
	if code != 401 {
		t.Fatalf("POST with Accept text/html is not a navigation: %d", code)
	}
	// A navigation whose path is itself an open-redirect vector stays local.
	code, hdr, _ = b.Do(t, http.MethodGet, inst.URL+"//evil.example/%2e%2e", nil, map[string]string{"Accept": "text/html"})
	if loc := hdr.Get("Location"); code != 302 || !strings.HasPrefix(loc, "/.idv/login?rd=") {
		t.Fatalf("%d %q", code, loc)
	} else if rd, _ := url.QueryUnescape(strings.TrimPrefix(loc, "/.idv/login?rd=")); rd != "/" {
		t.Fatalf("rd of a //host path = %q, want /", rd)
	}
}

// siteAudience is the session audience the `site` Caddyfile derives.
var siteAudience = token.Site{Prefix: "/.idv", Cookie: "idv_session", Providers: []token.SiteProvider{{Name: "demo", Kind: "demo"}}}.SessionAudience()

func TestForgedAndExpiredTokensAreRefused(t *testing.T) {
	dir := t.TempDir()
	inst := e2e.Start(t, site, e2e.Options{Storage: dir})
	key := e2e.StealSigningKey(t, dir)
	now := time.Now()
	base := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": token.DefaultIssuer, "aud": siteAudience, "sub": "demo-x", "iat": now.Unix(), "nbf": now.Unix(),
			"exp": now.Add(time.Hour).Unix(), "jti": "j", "sid": "s", "auth_time": now.Unix(), "idv": "demo"}
	}
	sign := func(c jwt.MapClaims) string { return key.Sign(t, c, token.TypSession) }
	good := sign(base())
	with := func(k string, v any) string { c := base(); c[k] = v; return sign(c) }

	_, _, jwksBody := e2e.NewBrowser().Do(t, http.MethodGet, inst.URL+"/.idv/jwks", nil, nil)
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(jwksBody, &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks: %s", jwksBody)
	}
	kid := set.Keys[0]["kid"].(string)
	// alg confusion (CVE-2015-9235 class): HMAC keyed with the public key
	// in every form a confused verifier might use.
	var hsTokens []string
	pub, _ := x509.MarshalPKIXPublicKey(&key.Private.PublicKey)
	for _, secret := range [][]byte{jwksBody, pub, []byte(set.Keys[0]["x"].(string))} {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, base())
		tok.Header["kid"] = kid
		s, _ := tok.SignedString(secret)
		hsTokens = append(hsTokens, s)
	}
	none := jwt.NewWithClaims(jwt.SigningMethodNone, base())
	none.Header["kid"] = kid
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	parts := strings.Split(good, ".")

	cases := map[string]string{
		"valid (control)":        good,
		"expired":                with("exp", now.Add(-time.Hour).Unix()),
		"not yet valid":          with("nbf", now.Add(time.Hour).Unix()),
		"other audience":         with("aud", "https://other.example"),
		"other issuer":           with("iss", "https://evil.example"),
		"provider not offered":   with("idv", "uqudo"),
		"audience of the Host":   with("aud", inst.URL),
		"typ of an ID token":     func() string { return key.Sign(t, base(), token.TypID) }(),
		"typ of an access token": func() string { return key.Sign(t, base(), token.TypAccess) }(),
		"no typ":                 func() string { return key.Sign(t, base(), "") }(),
		"alg none":               noneTok,
		"HS256 jwks":             hsTokens[0],
		"HS256 spki":             hsTokens[1],
		"HS256 x":                hsTokens[2],
		"tampered":               parts[0] + "." + strings.TrimRight(parts[1], "=") + "x." + parts[2],
		"signature removed":      parts[0] + "." + parts[1] + ".",
		"garbage":                "garbage",
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			want := http.StatusUnauthorized
			if name == "valid (control)" {
				want = http.StatusOK
			}
			code, _, body := e2e.NewBrowser().Do(t, http.MethodGet, inst.URL+"/x", nil, map[string]string{"Authorization": "Bearer " + tok})
			if code != want {
				t.Fatalf("bearer: %d %s, want %d", code, body, want)
			}
			// The same token as a cookie.
			b := e2e.NewBrowser()
			u, _ := url.Parse(inst.URL)
			b.Jar.SetCookies(u, []*http.Cookie{{Name: "idv_session", Value: tok}})
			if code, _, _ := b.Do(t, http.MethodGet, inst.URL+"/x", nil, nil); code != want {
				t.Fatalf("cookie: %d, want %d", code, want)
			}
		})
	}
}

func TestIdentityHeadersCannotBeSpoofed(t *testing.T) {
	var mu sync.Mutex
	var seen http.Header
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Clone()
		mu.Unlock()
	}))
	defer upstream.Close()
	inst := e2e.Start(t, `
	idv {
		provider demo {
			user "Ada Lovelace"
		}
		header X-Remote-User sub
		header X-Remote-Name name
	}
	reverse_proxy `+strings.TrimPrefix(upstream.URL, "http://")+`
`, e2e.Options{})
	b := e2e.NewBrowser()
	if _, st := login(t, inst, b, nil, "/"); st.State != "completed" {
		t.Fatal(st)
	}
	spoof := map[string]string{"X-Remote-User": "admin", "x-remote-user": "admin", "X_Remote_User": "admin", "x_REMOTE_user": "admin", "X-Remote_Name": "Mallory"}
	req, _ := http.NewRequest(http.MethodGet, inst.URL+"/", nil)
	for k, v := range spoof {
		req.Header[k] = []string{v} // raw, uncanonicalised names
	}
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	var users []string
	for name, v := range seen {
		n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
		if n == "x-remote-user" || n == "x-remote-name" {
			users = append(users, name+"="+strings.Join(v, ","))
		}
	}
	if len(users) != 2 || seen.Get("X-Remote-Name") != "Ada Lovelace" || !strings.HasPrefix(seen.Get("X-Remote-User"), "demo-") {
		t.Fatalf("upstream saw identity headers %v", users)
	}
	// Without a session nothing reaches the upstream at all.
	seen = nil
	anon, _ := http.NewRequest(http.MethodGet, inst.URL+"/", nil)
	anon.Header.Set("X-Remote-User", "admin")
	mu.Unlock()
	resp, err = http.DefaultClient.Do(anon)
	mu.Lock()
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || seen != nil {
		t.Fatalf("anonymous request: %d, upstream saw %v", resp.StatusCode, seen)
	}
}

func TestRequireRules(t *testing.T) {
	inst := e2e.Start(t, `
	idv {
		provider demo {
			user "Ada Lovelace"
		}
		require idv demo
		require name "Grace Hopper" "Ada Lovelace"
	}
	@admin path /admin*
	handle @admin {
		idv {
			provider demo {
				user "Ada Lovelace"
			}
			require amr hwk
		}
		respond "admin"
	}
	respond "ok"
`, e2e.Options{})
	b := e2e.NewBrowser()
	if _, st := login(t, inst, b, nil, "/"); st.State != "completed" {
		t.Fatal(st)
	}
	if code, _, body := b.Do(t, http.MethodGet, inst.URL+"/", nil, nil); code != 200 || string(body) != "ok" {
		t.Fatalf("rules that hold: %d %s", code, body)
	}
	if code, _, _ := b.Do(t, http.MethodGet, inst.URL+"/admin", nil, nil); code != 403 {
		t.Fatalf("rule that fails: %d", code)
	}
}

func TestRateLimit(t *testing.T) {
	inst := e2e.Start(t, `
	idv {
		provider demo
		limit {
			per_address 3 1m
		}
	}
	respond "ok"
`, e2e.Options{})
	b := e2e.NewBrowser()
	for i := 0; i < 3; i++ {
		b.StartLogin(t, inst.URL, map[string]string{"provider": "demo"})
	}
	code, hdr, body := b.Do(t, http.MethodPost, inst.URL+"/.idv/sessions", strings.NewReader(`{"provider":"demo"}`), map[string]string{"Content-Type": "application/json"})
	if code != 429 || hdr.Get("Retry-After") == "" || !strings.Contains(string(body), "rate_limited") {
		t.Fatalf("4th start: %d %q %s", code, hdr.Get("Retry-After"), body)
	}
}

// TestOpenRedirectCorpus sends every payload of the shared corpus as rd to
// every endpoint that redirects; each must end on a local path.
func TestOpenRedirectCorpus(t *testing.T) {
	payloads := e2e.RedirectCorpus(t)
	inst := e2e.Start(t, site, e2e.Options{})
	b := e2e.NewBrowser()
	for _, p := range payloads {
		code, hdr, _ := b.Do(t, http.MethodPost, inst.URL+"/.idv/logout?rd="+url.QueryEscape(p), nil, nil)
		if code != http.StatusSeeOther {
			t.Fatalf("logout rd=%q: %d", p, code)
		}
		assertLocal(t, p, hdr.Get("Location"))
		code, hdr, _ = b.Do(t, http.MethodPost, inst.URL+"/.idv/logout", strings.NewReader(url.Values{"rd": {p}}.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		if code != http.StatusSeeOther {
			t.Fatalf("logout form rd=%q: %d", p, code)
		}
		assertLocal(t, p, hdr.Get("Location"))
	}
	// The redirect after a completed login, for a sample of the corpus (each
	// one is a whole login).
	for i := 0; i < len(payloads); i += 25 {
		_, st := login(t, inst, b, nil, payloads[i])
		if st.State != "completed" {
			t.Fatalf("login with rd=%q: %+v", payloads[i], st)
		}
		assertLocal(t, payloads[i], st.Redirect)
	}
}

func assertLocal(t *testing.T, payload, loc string) {
	t.Helper()
	cur := loc
	for i := 0; i < 4; i++ {
		if !strings.HasPrefix(cur, "/") || strings.HasPrefix(cur, "//") || strings.HasPrefix(cur, "/\\") || strings.ContainsAny(cur, "\t\r\n ") {
			t.Fatalf("rd=%q redirected to %q", payload, loc)
		}
		next, err := url.PathUnescape(cur)
		if err != nil || next == cur {
			return
		}
		cur = next
	}
}

func TestKeysSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	port := e2e.FreePort(t)
	inst := e2e.Start(t, site, e2e.Options{Storage: dir, Port: port})
	b := e2e.NewBrowser()
	if _, st := login(t, inst, b, nil, "/"); st.State != "completed" {
		t.Fatal(st)
	}
	_, _, jwks1 := b.Do(t, http.MethodGet, inst.URL+"/.idv/jwks", nil, nil)
	inst.Stop()
	inst = e2e.Start(t, site, e2e.Options{Storage: dir, Port: port})
	if code, _, _ := b.Do(t, http.MethodGet, inst.URL+"/", nil, nil); code != 200 {
		t.Fatalf("session after restart: %d", code)
	}
	code, hdr, jwks2 := b.Do(t, http.MethodGet, inst.URL+"/.idv/jwks", nil, nil)
	if code != 200 || string(jwks1) != string(jwks2) || !strings.Contains(hdr.Get("Cache-Control"), "max-age") {
		t.Fatalf("jwks changed across restart or is not cacheable")
	}
	if code, _, _ := b.Do(t, http.MethodGet, inst.URL+"/.idv/jwks", nil, map[string]string{"If-None-Match": hdr.Get("ETag")}); code != http.StatusNotModified {
		t.Fatalf("conditional jwks: %d", code)
	}
}
