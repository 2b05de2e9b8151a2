package attack_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
)

// Limits the oversize class checks (README: "request bodies are bounded
// (16 KiB for POST /sessions)", "The module bounds its own request bodies
// to 10 s"; oidc: 16 KiB bodies, 2048-character parameters; the suite's
// Caddy: `timeouts { read_header 5s; read_body 10s }`, and Caddy's default
// max_header_size, 16 KiB of request line and headers, beyond which Go's
// server answers 431 before any handler sees the request).
const (
	bigStartBody   = 16 << 10
	bigOIDCParam   = 2048
	bigBodyTimeout = 10 * time.Second
	bigHeaderWait  = 5 * time.Second
	bigHeaderLimit = 16 << 10
	bigUnderLimit  = 14 << 10 // a header this long still reaches the module
)

// TestAttackOversizeAndSlow: oversize and slow input. Every oversized
// body, header, URL, parameter and value gets its documented refusal, at
// once; every slow one is cut off within its deadline; nothing answers
// with a 5xx or holds a connection. The slow cases run in parallel (each
// takes up to its deadline), after the others.
func TestAttackOversizeAndSlow(t *testing.T) {
	s := newSuite(t, options{})
	host := s.spoofHost()

	// post sends a POST to path with a content type and body.
	post := func(t *testing.T, path, ct string, body []byte, more map[string]string) answer {
		h := s.sameOrigin()
		h["Content-Type"] = ct
		for k, v := range more {
			h[k] = v
		}
		return do(t, e2e.NewBrowser(), http.MethodPost, s.url(path), bytes.NewReader(body), h)
	}
	startJSON := func(t *testing.T, body []byte) answer {
		return post(t, "/.idv/sessions", "application/json", body, nil)
	}
	started := func(t *testing.T, a answer) {
		t.Helper()
		want(t, a, http.StatusCreated)
		st := fwdStarted(t, a)
		if st.Provider != "demo" {
			t.Fatalf("start answer %v", a)
		}
		if c := fwdCookie(t, a, "idv_session_login_"); len(c.Value) > 3800 {
			t.Fatalf("pending cookie of %d bytes", len(c.Value))
		}
	}
	form := func(t *testing.T, path string, v url.Values, more map[string]string) answer {
		return post(t, path, "application/x-www-form-urlencoded", []byte(v.Encode()), more)
	}
	tokenForm := func(t *testing.T, v url.Values) answer {
		req := request(t, http.MethodPost, s.url("/.idv/oidc/token"), strings.NewReader(v.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		req.SetBasicAuth("app", s.secret)
		return send(t, plain(), req)
	}
	// authorize sends an authorization request of the app client with
	// extra parameters, with a session, and returns where it redirected.
	var once sync.Once
	var session *e2e.Browser
	loggedIn := func(t *testing.T) *e2e.Browser {
		once.Do(func() { session = s.loggedIn(t) })
		return session
	}
	authorize := func(t *testing.T, extra url.Values) *url.URL {
		q := url.Values{"client_id": {"app"}, "response_type": {"code"}, "scope": {"openid"}, "state": {"st"}, "redirect_uri": {s.rp + "/callback"}}
		for k, v := range extra {
			q[k] = v
		}
		a := do(t, loggedIn(t), http.MethodGet, s.url("/.idv/oidc/authorize?"+q.Encode()), nil, nil)
		want(t, a, http.StatusFound)
		u, err := url.Parse(a.header.Get("Location"))
		if err != nil || u.Scheme+"://"+u.Host+u.Path != s.rp+"/callback" || u.Query().Get("iss") != s.inst.URL {
			t.Fatalf("authorize redirected to %q", a.header.Get("Location"))
		}
		return u
	}
	tooLong := func(param string) func(t *testing.T) {
		return func(t *testing.T) {
			u := authorize(t, url.Values{param: {strings.Repeat("a", bigOIDCParam+1)}})
			q := u.Query()
			wantState := "st"
			if param == "state" {
				wantState = "" // never echoed back when it is the parameter at fault
			}
			if q.Get("error") != "invalid_request" || q.Get("error_description") != param+" is too long" || q.Get("code") != "" || q.Get("state") != wantState {
				t.Fatalf("authorize with a long %s: %s", param, u)
			}
		}
	}
	// poll polls a fresh login of a fresh browser with wait=w.
	poll := func(t *testing.T, w string) (answer, time.Duration) {
		b := e2e.NewBrowser()
		st := s.start(t, b, "/")
		begin := time.Now()
		a := do(t, b, http.MethodGet, s.url(st.StatusURL+"?wait="+url.QueryEscape(w)), nil, nil)
		return a, time.Since(begin)
	}
	badWait := func(w string) func(t *testing.T) {
		return func(t *testing.T) {
			a, took := poll(t, w)
			wantError(t, a, http.StatusBadRequest, "bad_request")
			if took > 5*time.Second {
				t.Fatalf("a refused wait=%s was held %v", w, took)
			}
		}
	}
	// heldWait: a poll with wait=w is held (and answers the outcome as
	// soon as there is one): the login is approved a second after the
	// poll began, and the poll reports it completed.
	heldWait := func(w string) func(t *testing.T) {
		return func(t *testing.T) {
			b := e2e.NewBrowser()
			st := s.start(t, b, "/")
			done := make(chan answer, 1)
			go func() {
				// Not through t: this goroutine must not call t.Fatal.
				resp, err := b.Get(s.url(st.StatusURL + "?wait=" + url.QueryEscape(w)))
				if err != nil {
					done <- answer{code: -1, body: []byte(err.Error())}
					return
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				done <- answer{code: resp.StatusCode, header: resp.Header, body: body}
			}()
			time.Sleep(time.Second)
			s.approve(t, st)
			select {
			case a := <-done:
				want(t, a, http.StatusOK)
				var out e2e.Status
				if err := json.Unmarshal(a.body, &out); err != nil || out.State != "completed" {
					t.Fatalf("wait=%s answered %v before the login was approved", w, a)
				}
			case <-time.After(maxWait):
				t.Fatalf("wait=%s: no answer %v after the approval", w, maxWait)
			}
		}
	}
	// The slow exchanges each take up to a deadline: they all start now,
	// in the background, and their cases wait for them.
	trickle := func(head string, line func(i int) string) func(net.Conn) error {
		return func(c net.Conn) error {
			if _, err := io.WriteString(c, head); err != nil {
				return err
			}
			for i := 0; ; i++ {
				time.Sleep(time.Second)
				if _, err := io.WriteString(c, line(i)); err != nil {
					return err
				}
			}
		}
	}
	aByte := func(int) string { return "a" }
	slowBody := func(path, ct string) *bigRun {
		head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: 100000\r\n\r\n", path, host, ct)
		return bigStartRun(host, 3*bigBodyTimeout, trickle(head, aByte), nil)
	}
	expect := func(path, ct string) *bigRun {
		head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", path, host, ct, 1<<30)
		return bigStartRun(host, 3*bigBodyTimeout, func(c net.Conn) error {
			_, err := io.WriteString(c, head)
			return err
		}, bytes.Repeat([]byte("a"), bigStartBody+1))
	}
	var (
		slowStart     = slowBody("/.idv/sessions", "application/json")
		slowToken     = slowBody("/.idv/oidc/token", "application/x-www-form-urlencoded")
		slowAuthorize = slowBody("/.idv/oidc/authorize", "application/x-www-form-urlencoded")
		slowLogout    = slowBody("/.idv/logout", "application/x-www-form-urlencoded")
		shortBody     = bigStartRun(host, 3*bigBodyTimeout, func(c net.Conn) error {
			_, err := fmt.Fprintf(c, "POST /.idv/sessions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"provider\":\"demo\"}", host)
			return err
		}, nil)
		slowHeaderBytes = bigStartRun(host, 3*bigHeaderWait, trickle("GET /.idv/login HTTP/1.1\r\nHost: "+host+"\r\n", func(int) string { return "X" }), nil)
		slowHeaderLines = bigStartRun(host, 3*bigHeaderWait, trickle("GET /.idv/login HTTP/1.1\r\nHost: "+host+"\r\n", func(i int) string { return fmt.Sprintf("X-Slow-%d: a\r\n", i) }), nil)
		expectForm      = expect("/.idv/sessions", "application/x-www-form-urlencoded")
		expectJSON      = expect("/.idv/sessions", "application/json")
		expectToken     = expect("/.idv/oidc/token", "application/x-www-form-urlencoded")
	)
	// cutOff: a slow request ends, by the endpoint's refusal or a closed
	// connection, at about the deadline.
	cutOff := func(run *bigRun, deadline time.Duration, status int, errorCode string) func(t *testing.T) {
		return func(t *testing.T) {
			a, took := run.wait(t)
			bigCutOff(t, a, took, deadline, status, errorCode)
		}
	}
	// expected: the answer to a request that declared 1 GiB with Expect:
	// 100-continue. Caddy holds every answer to a request whose declared
	// body has not arrived until it has, or read_body has passed, so even
	// a refusal that never asks for the body comes at that deadline.
	expected := func(run *bigRun, askedForBody bool, status int, errorCode string) func(t *testing.T) {
		return func(t *testing.T) {
			a, took := run.wait(t)
			if a == nil {
				t.Fatalf("closed without an answer after %v", took)
			}
			if run.cont != askedForBody {
				t.Fatalf("100 Continue sent: %v; want %v", run.cont, askedForBody)
			}
			bigCutOff(t, a, took, bigBodyTimeout, status, errorCode)
		}
	}
	// endless sends an endless chunked body as fast as the server takes
	// it: the endpoint answers once it has read its limit.
	endless := func(path, ct string, extra map[string]string, check func(t *testing.T, a answer)) func(t *testing.T) {
		return func(t *testing.T) {
			head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n", path, host, ct)
			for k, v := range extra {
				head += k + ": " + v + "\r\n"
			}
			chunk := []byte(fmt.Sprintf("1000\r\n%s\r\n", bytes.Repeat([]byte("a"), 0x1000)))
			a, took := bigExchange(t, s, func(c net.Conn) error {
				if _, err := io.WriteString(c, head+"\r\n"); err != nil {
					return err
				}
				for {
					if _, err := c.Write(chunk); err != nil {
						return err
					}
				}
			}, maxWait)
			if a == nil {
				t.Fatalf("closed without an answer after %v", took)
			}
			if took > 5*time.Second {
				t.Fatalf("answered after %v", took)
			}
			check(t, *a)
		}
	}

	attacks := []attack{
		// POST /sessions: 16 KiB of JSON.
		{"POST /sessions body over 16 KiB", func(t *testing.T) {
			wantError(t, startJSON(t, bigStart(2*bigStartBody)), http.StatusBadRequest, "bad_request")
		}},
		{"POST /sessions body of exactly 16 KiB", func(t *testing.T) {
			started(t, startJSON(t, bigStart(bigStartBody)))
		}},
		{"POST /sessions body one byte over 16 KiB", func(t *testing.T) {
			wantError(t, startJSON(t, bigStart(bigStartBody+1)), http.StatusBadRequest, "bad_request")
		}},
		{"POST /sessions with 100,000 nested arrays", func(t *testing.T) {
			wantError(t, startJSON(t, []byte(strings.Repeat("[", 100000))), http.StatusBadRequest, "bad_request")
		}},
		{"POST /sessions with 7,000 nested arrays within 16 KiB", func(t *testing.T) {
			// An unknown member, however deep, within the limit.
			body := `{"provider":"demo","x":` + strings.Repeat("[", 7000) + strings.Repeat("]", 7000) + `}`
			started(t, startJSON(t, []byte(body)))
		}},
		{"POST /sessions with 10,000 keys", func(t *testing.T) {
			wantError(t, startJSON(t, bigKeys(10000)), http.StatusBadRequest, "bad_request")
		}},
		{"POST /sessions with 1,500 keys within 16 KiB", func(t *testing.T) {
			started(t, startJSON(t, bigKeys(1500)))
		}},
		{"POST /sessions with a 15 KiB provider name", func(t *testing.T) {
			a := startJSON(t, jsonMust(map[string]string{"provider": strings.Repeat("demo", 15<<8)}))
			wantError(t, a, http.StatusBadRequest, "unknown_provider")
		}},
		{"POST /sessions with a 15 KiB rd", func(t *testing.T) {
			started(t, startJSON(t, jsonMust(map[string]string{"provider": "demo", "rd": "/" + strings.Repeat("a", 15<<10)})))
		}},
		{"POST /sessions with a 2 KiB rd of characters JSON escapes", func(t *testing.T) {
			// Each '<' is six bytes in the sealed JSON record: the
			// pending cookie must still fit, so the rd gives way to "/".
			started(t, startJSON(t, jsonMust(map[string]string{"provider": "demo", "rd": "/" + strings.Repeat("<", 2000)})))
			if got := s.login(t, e2e.NewBrowser(), "/"+strings.Repeat("<", 2000)); got != "/" {
				t.Fatalf("the completed login redirects to %.40q...; want /", got)
			}
		}},
		{"POST /sessions with a 2 KiB rd of quotes", func(t *testing.T) {
			started(t, startJSON(t, jsonMust(map[string]string{"provider": "demo", "rd": "/" + strings.Repeat(`"`, 2000)})))
		}},
		{"POST /sessions with a 15 KiB Mobile-ID phone number", func(t *testing.T) {
			a := startJSON(t, jsonMust(map[string]string{"provider": "marksign_mobileid", "phone": "+372" + strings.Repeat("5", 15<<10), "personal_code": "38001085718"}))
			wantError(t, a, http.StatusBadRequest, "invalid_input")
		}},
		{"POST /sessions with invalid UTF-8 in the provider name", func(t *testing.T) {
			wantError(t, startJSON(t, []byte("{\"provider\":\"de\xffmo\"}")), http.StatusBadRequest, "unknown_provider")
		}},
		{"POST /sessions with invalid UTF-8 in rd", func(t *testing.T) {
			started(t, startJSON(t, []byte("{\"provider\":\"demo\",\"rd\":\"/\xff\xfe\xc0\xaf\"}")))
		}},
		{"POST /sessions with a multipart body", func(t *testing.T) {
			ct, body := bigMultipart(map[string]string{"provider": "demo", "rd": "/"})
			wantError(t, post(t, "/.idv/sessions", ct, body, nil), http.StatusUnsupportedMediaType, "unsupported_media_type")
		}},
		{"POST /sessions with a 14 KiB Origin", func(t *testing.T) {
			a := post(t, "/.idv/sessions", "application/json", jsonMust(map[string]string{"provider": "demo"}), map[string]string{"Origin": s.inst.URL + "/" + strings.Repeat("a", bigUnderLimit)})
			wantError(t, a, http.StatusForbidden, "cross_origin")
		}},
		{"Content-Length longer than the body of POST /sessions", func(t *testing.T) {
			// The client ends its side: the body ends early.
			body := `{"provider":"demo"}`
			a, took := bigExchange(t, s, func(c net.Conn) error {
				_, err := fmt.Fprintf(c, "POST /.idv/sessions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n%s", host, body)
				if err == nil {
					err = c.(*net.TCPConn).CloseWrite()
				}
				return err
			}, maxWait)
			if a == nil || took > 5*time.Second {
				t.Fatalf("no answer (%v) after %v", a, took)
			}
			wantError(t, *a, http.StatusBadRequest, "bad_request")
		}},
		{"Expect 100-continue with a 1 GiB form body to POST /sessions", expected(expectForm, false, http.StatusUnsupportedMediaType, "unsupported_media_type")},
		{"Expect 100-continue with a 1 GiB JSON body to POST /sessions", expected(expectJSON, true, http.StatusBadRequest, "bad_request")},
		{"Expect 100-continue with a 1 GiB form to the OIDC token endpoint", expected(expectToken, true, http.StatusBadRequest, "invalid_request")},
		{"endless chunked body to POST /sessions", endless("/.idv/sessions", "application/json", nil, func(t *testing.T, a answer) {
			wantError(t, a, http.StatusBadRequest, "bad_request")
		})},
		{"endless chunked body to the OIDC token endpoint", endless("/.idv/oidc/token", "application/x-www-form-urlencoded", nil, func(t *testing.T, a answer) {
			wantError(t, a, http.StatusBadRequest, "invalid_request")
		})},
		{"endless chunked body to POST /logout", endless("/.idv/logout", "application/x-www-form-urlencoded", nil, func(t *testing.T, a answer) {
			want(t, a, http.StatusSeeOther)
			if loc := a.header.Get("Location"); loc != "/" {
				t.Fatalf("Location %q", loc)
			}
		})},
		{"endless chunked body to a protected path without a session", endless("/big-endless", "text/plain", nil, func(t *testing.T, a answer) {
			wantError(t, a, http.StatusUnauthorized, "unauthenticated")
			if s.up.reached("/big-endless") {
				t.Fatal("the upstream was reached")
			}
		})},

		// The OpenID Connect endpoints: 16 KiB bodies and queries, 2048
		// characters a parameter.
		{"huge state on OIDC authorize", tooLong("state")},
		{"huge nonce on OIDC authorize", tooLong("nonce")},
		{"huge scope on OIDC authorize", tooLong("scope")},
		{"huge login_hint on OIDC authorize", tooLong("login_hint")},
		{"OIDC authorize query over 16 KiB", func(t *testing.T) {
			q := url.Values{"client_id": {"app"}, "response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {s.rp + "/callback"}}
			for i := 0; i < 20; i++ {
				q.Set(fmt.Sprintf("x%d", i), strings.Repeat("a", 1000))
			}
			a := do(t, loggedIn(t), http.MethodGet, s.url("/.idv/oidc/authorize?"+q.Encode()), nil, map[string]string{"Accept": "text/html"})
			want(t, a, http.StatusBadRequest)
			if a.header.Get("Location") != "" || !bytes.Contains(a.body, []byte("malformed")) {
				t.Fatalf("%v, Location %q", a, a.header.Get("Location"))
			}
		}},
		{"OIDC authorize POST form over 16 KiB", func(t *testing.T) {
			v := url.Values{"client_id": {"app"}, "response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {s.rp + "/callback"}, "x": {strings.Repeat("a", 20<<10)}}
			a := form(t, "/.idv/oidc/authorize", v, map[string]string{"Accept": "text/html"})
			want(t, a, http.StatusBadRequest)
			if a.header.Get("Location") != "" {
				t.Fatalf("redirected to %q", a.header.Get("Location"))
			}
		}},
		{"1000 query parameters on OIDC authorize", func(t *testing.T) {
			extra := url.Values{}
			for i := 0; i < 1000; i++ {
				extra.Set(fmt.Sprintf("p%d", i), "v")
			}
			if u := authorize(t, extra); u.Query().Get("code") == "" || u.Query().Get("state") != "st" {
				t.Fatalf("authorize with 1000 unknown parameters: %s", u)
			}
		}},
		{"huge form to the OIDC token endpoint", func(t *testing.T) {
			a := tokenForm(t, url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "pad": {strings.Repeat("a", 20<<10)}})
			wantError(t, a, http.StatusBadRequest, "invalid_request")
		}},
		{"huge code at the OIDC token endpoint", func(t *testing.T) {
			a := tokenForm(t, url.Values{"grant_type": {"authorization_code"}, "code": {strings.Repeat("a", bigOIDCParam+1)}, "redirect_uri": {s.rp + "/callback"}})
			wantError(t, a, http.StatusBadRequest, "invalid_request")
		}},
		{"3000 repeated parameters at the OIDC token endpoint", func(t *testing.T) {
			a := tokenForm(t, url.Values{"grant_type": bigRepeat("refresh_token", 3000)})
			wantError(t, a, http.StatusBadRequest, "invalid_request")
		}},
		{"multipart body to the OIDC token endpoint", func(t *testing.T) {
			ct, body := bigMultipart(map[string]string{"grant_type": "authorization_code", "code": "x"})
			req := request(t, http.MethodPost, s.url("/.idv/oidc/token"), bytes.NewReader(body), map[string]string{"Content-Type": ct})
			req.SetBasicAuth("app", s.secret)
			wantError(t, send(t, plain(), req), http.StatusBadRequest, "invalid_request")
		}},
		{"JSON body to the OIDC token endpoint", func(t *testing.T) {
			req := request(t, http.MethodPost, s.url("/.idv/oidc/token"), strings.NewReader(`{"grant_type":"authorization_code","code":"x"}`), map[string]string{"Content-Type": "application/json"})
			req.SetBasicAuth("app", s.secret)
			wantError(t, send(t, plain(), req), http.StatusBadRequest, "invalid_request")
		}},
		{"huge Basic credentials at the OIDC token endpoint", func(t *testing.T) {
			req := request(t, http.MethodPost, s.url("/.idv/oidc/token"), strings.NewReader("grant_type=authorization_code&code=x"), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
			req.SetBasicAuth("app", strings.Repeat("s", bigUnderLimit*3/4))
			wantError(t, send(t, plain(), req), http.StatusUnauthorized, "invalid_client")
		}},
		{"huge form to OIDC logout", func(t *testing.T) {
			a := form(t, "/.idv/oidc/logout", url.Values{"client_id": {"app"}, "state": {strings.Repeat("a", 20<<10)}}, map[string]string{"Accept": "text/html"})
			want(t, a, http.StatusBadRequest)
			if a.header.Get("Location") != "" || !bytes.Contains(a.body, []byte("malformed")) {
				t.Fatalf("%v, Location %q", a, a.header.Get("Location"))
			}
		}},
		{"huge form to POST /logout", func(t *testing.T) {
			// The form is not read past 8 KiB: no rd, so "/"; the
			// session ends all the same.
			b := s.loggedIn(t)
			h := s.sameOrigin()
			h["Content-Type"] = "application/x-www-form-urlencoded"
			a := do(t, b, http.MethodPost, s.url("/.idv/logout"), strings.NewReader("rd=/"+strings.Repeat("a", 20<<10)), h)
			want(t, a, http.StatusSeeOther)
			if loc := a.header.Get("Location"); loc != "/" {
				t.Fatalf("Location %q", loc)
			}
			wantError(t, do(t, b, http.MethodGet, s.url("/.idv/me"), nil, nil), http.StatusUnauthorized, "unauthenticated")
		}},

		// Headers and URLs.
		{"Authorization header over the 16 KiB header limit", func(t *testing.T) {
			a := bigHeaders(t, s, "GET /big-auth-431 HTTP/1.1\r\nHost: "+host+"\r\nAuthorization: Bearer "+strings.Repeat("a", bigHeaderLimit+4096)+"\r\n\r\n")
			want(t, a, http.StatusRequestHeaderFieldsTooLarge)
		}},
		{"14 KiB bearer token on a protected path", func(t *testing.T) {
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/big-auth"), nil, map[string]string{"Authorization": "Bearer " + strings.Repeat("a", bigUnderLimit)})
			wantError(t, a, http.StatusUnauthorized, "unauthenticated")
			if a.header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` || s.up.reached("/big-auth") {
				t.Fatalf("WWW-Authenticate %q", a.header.Get("WWW-Authenticate"))
			}
		}},
		{"14 KiB three-part bearer token on /me", func(t *testing.T) {
			part := strings.Repeat("A", bigUnderLimit/3)
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.idv/me"), nil, map[string]string{"Authorization": "Bearer " + part + "." + part + "." + part})
			wantError(t, a, http.StatusUnauthorized, "unauthenticated")
		}},
		{"14 KiB bearer token at OIDC userinfo", func(t *testing.T) {
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.idv/oidc/userinfo"), nil, map[string]string{"Authorization": "Bearer " + strings.Repeat("a", bigUnderLimit)})
			wantError(t, a, http.StatusUnauthorized, "invalid_token")
		}},
		{"Cookie header over the 16 KiB header limit", func(t *testing.T) {
			a := bigHeaders(t, s, "GET /big-cookie HTTP/1.1\r\nHost: "+host+"\r\nCookie: idv_session="+strings.Repeat("a", bigHeaderLimit+4096)+"\r\n\r\n")
			want(t, a, http.StatusRequestHeaderFieldsTooLarge)
		}},
		{"request line over the 16 KiB header limit", func(t *testing.T) {
			a := bigHeaders(t, s, "GET /big-url?"+strings.Repeat("a", bigHeaderLimit+4096)+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
			want(t, a, http.StatusRequestHeaderFieldsTooLarge)
		}},
		{"14 KiB Cookie of 1,000 cookies with the session among them", func(t *testing.T) {
			b := s.loggedIn(t)
			var c strings.Builder
			for i := 0; i < 1000; i++ {
				fmt.Fprintf(&c, "c%d=%s; ", i, strings.Repeat("x", 8))
			}
			c.WriteString("idv_session=" + s.sessionCookie(b))
			a := send(t, plain(), request(t, http.MethodGet, s.url("/big-cookies"), nil, map[string]string{"Cookie": c.String()}))
			if e := echoOf(t, a); len(e.Header["X-User"]) != 1 || !strings.HasPrefix(e.Header.Get("X-User"), "demo-") {
				t.Fatalf("upstream got X-User %q", e.Header["X-User"])
			}
		}},
		{"300 forged pending cookies on GET /sessions", func(t *testing.T) {
			var c strings.Builder
			for i := 0; i < 300; i++ {
				fmt.Fprintf(&c, "idv_session_login_%010d=%s; ", i, strings.Repeat("A", 12))
			}
			a := send(t, plain(), request(t, http.MethodGet, s.url("/.idv/sessions"), nil, map[string]string{"Cookie": c.String()}))
			want(t, a, http.StatusNoContent)
		}},
		{"14 KiB URL on a protected path", func(t *testing.T) {
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/big-url?"+strings.Repeat("a", bigUnderLimit)), nil, map[string]string{"Accept": "text/html"})
			want(t, a, http.StatusFound)
			if loc := a.header.Get("Location"); loc != "/.idv/login?rd=%2F" {
				t.Fatalf("Location %q", loc)
			}
		}},
		{"1000 query parameters on the login page", func(t *testing.T) {
			q := url.Values{"rd": {"/in"}}
			for i := 0; i < 1000; i++ {
				q.Set(fmt.Sprintf("p%d", i), "v")
			}
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.idv/login?"+q.Encode()), nil, map[string]string{"Accept": "text/html"})
			want(t, a, http.StatusOK)
			if !bytes.Contains(a.body, []byte(`data-rd="/in"`)) {
				t.Fatal("the login page lost its rd")
			}
		}},
		{"14 KiB Accept-Language on the login page", func(t *testing.T) {
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.idv/login"), nil, map[string]string{"Accept": "text/html", "Accept-Language": strings.Repeat("xx-YY;q=0.1, ", bigUnderLimit/13) + "et"})
			want(t, a, http.StatusOK)
			if a.header.Get("Content-Language") == "" {
				t.Fatal("no Content-Language")
			}
		}},

		// The status poll's wait (documented: at most 30).
		{"wait=-1 on the status poll", badWait("-1")},
		{"wait=1e9 on the status poll", badWait("1e9")},
		{"wait=NaN on the status poll", badWait("NaN")},
		{"wait=2.5 on the status poll", badWait("2.5")},
		{"wait beyond int64 on the status poll", badWait("99999999999999999999")},
		{"wait=0 on the status poll", func(t *testing.T) {
			a, took := poll(t, "0")
			want(t, a, http.StatusOK)
			if !bytes.Contains(a.body, []byte(`"state":"pending"`)) || took > 5*time.Second {
				t.Fatalf("%v after %v", a, took)
			}
		}},
		{"huge wait on the status poll is still a long-poll", heldWait("1000000")},
		{"wait whose seconds overflow a duration is still a long-poll", heldWait("9223372037")},

		// Slow input: cut off by the deadlines.
		{"slow JSON body to POST /sessions", cutOff(slowStart, bigBodyTimeout, http.StatusBadRequest, "bad_request")},
		{"slowloris body to the OIDC token endpoint", cutOff(slowToken, bigBodyTimeout, http.StatusBadRequest, "invalid_request")},
		{"slowloris body to OIDC authorize", cutOff(slowAuthorize, bigBodyTimeout, http.StatusBadRequest, "")},
		{"slowloris body to POST /logout", cutOff(slowLogout, bigBodyTimeout, http.StatusSeeOther, "")},
		{"Content-Length longer than the body, connection left open", cutOff(shortBody, bigBodyTimeout, http.StatusBadRequest, "bad_request")},
		// Go's server answers 400 for an unfinished line it holds at the
		// deadline, or closes the connection.
		{"slow headers, a byte a second", cutOff(slowHeaderBytes, bigHeaderWait, http.StatusBadRequest, "")},
		{"a header line every second that never ends the headers", cutOff(slowHeaderLines, bigHeaderWait, http.StatusBadRequest, "")},
	}
	runClass(t, classOversize, attacks)
}

// bigStart is a POST /sessions body of exactly n bytes (n > 64): a demo
// start padded with an unknown member.
func bigStart(n int) []byte {
	head, tail := `{"provider":"demo","rd":"/","pad":"`, `"}`
	return []byte(head + strings.Repeat("a", n-len(head)-len(tail)) + tail)
}

// bigKeys is a demo start with n more members.
func bigKeys(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"provider":"demo"`)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `,"k%d":0`, i)
	}
	b.WriteString("}")
	return []byte(b.String())
}

func jsonMust(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func bigRepeat(v string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// bigMultipart is a multipart/form-data body of fields.
func bigMultipart(fields map[string]string) (string, []byte) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = w.WriteField(k, v)
	}
	_ = w.Close()
	return w.FormDataContentType(), buf.Bytes()
}

// bigRun is an exchange with the suite run in the background.
type bigRun struct {
	done chan struct{}
	a    *answer // nil: the server closed the connection without one
	cont bool    // a 100 Continue came first
	took time.Duration
	err  error
}

// bigStartRun dials addr, runs write on the connection in its own
// goroutine (it may write forever: it stops when the connection closes),
// and reads the answer, within limit. When the answer is 100 Continue and
// afterContinue is not nil, it writes afterContinue and reads the next.
func bigStartRun(addr string, limit time.Duration, write func(net.Conn) error, afterContinue []byte) *bigRun {
	r := &bigRun{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			r.err = err
			return
		}
		start := time.Now()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = write(conn)
		}()
		defer func() {
			conn.Close() // ends the writer
			wg.Wait()
		}()
		_ = conn.SetReadDeadline(start.Add(limit))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err == nil && resp.StatusCode == http.StatusContinue && afterContinue != nil {
			r.cont = true
			if _, err = conn.Write(afterContinue); err == nil {
				resp, err = http.ReadResponse(br, nil)
			}
		}
		r.took = time.Since(start)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.err = fmt.Errorf("neither an answer nor a closed connection after %v", r.took)
			}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		r.a = &answer{code: resp.StatusCode, header: resp.Header, body: body}
	}()
	return r
}

// wait waits for the exchange and checks the invariants: it ended, and
// not with a 5xx.
func (r *bigRun) wait(t *testing.T) (*answer, time.Duration) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the exchange never ended")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.a != nil && r.a.code >= 500 {
		t.Fatalf("%v after %v (a server error is never the answer to an attack)", *r.a, r.took)
	}
	return r.a, r.took
}

// bigExchange is bigStartRun, waited for.
func bigExchange(t *testing.T, s *suite, write func(net.Conn) error, limit time.Duration) (*answer, time.Duration) {
	t.Helper()
	return bigStartRun(s.spoofHost(), limit, write, nil).wait(t)
}

// bigCutOff fails t unless a slow request ended, by the endpoint's
// refusal (status and error code) or a closed connection, after about
// deadline: not before half of it (else something else refused it) and
// not much after.
func bigCutOff(t *testing.T, a *answer, took, deadline time.Duration, status int, errorCode string) {
	t.Helper()
	if took < deadline/2 || took > deadline+8*time.Second {
		t.Fatalf("cut off after %v; want about %v", took, deadline)
	}
	if a != nil {
		wantError(t, *a, status, errorCode)
	}
}

// bigHeaders sends a request whose headers are too large for the server
// and returns its answer; the server stops reading, so the write runs
// beside the read.
func bigHeaders(t *testing.T, s *suite, raw string) answer {
	t.Helper()
	a, took := bigExchange(t, s, func(c net.Conn) error {
		_, err := io.WriteString(c, raw)
		return err
	}, maxWait)
	if a == nil {
		t.Fatalf("closed without an answer after %v", took)
	}
	return *a
}
