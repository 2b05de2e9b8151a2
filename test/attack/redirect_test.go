package attack_test

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
)

// hostileTargets are the named forms an open redirect takes. Each is tried
// on every parameter that redirects.
var hostileTargets = []struct{ name, payload string }{
	{"scheme-relative URL", "//evil.example/"},
	{"scheme-relative URL with a backslash", "/\\evil.example"},
	{"two backslashes", "\\\\evil.example"},
	{"absolute https URL", "https://evil.example/"},
	{"absolute URL with the site as user info", "http://127.0.0.1@evil.example/"},
	{"javascript URL", "javascript:alert(document.cookie)"},
	{"data URL", "data:text/html,<script>alert(1)</script>"},
	{"tab between the slashes", "/\t/evil.example"},
	{"newline between the slashes", "/\n/evil.example"},
	{"CRLF header injection", "/\r\nSet-Cookie: idv_session=evil"},
	{"percent-encoded slashes", "/%2f%2fevil.example"},
	{"double percent-encoded slashes", "/%252f%252fevil.example"},
	{"dot segment leading to a scheme-relative path", "/a/..//evil.example"},
	{"percent-encoded dot segment", "/%2e%2e//evil.example"},
	{"dot segment at the start", "/..//evil.example"},
	{"three slashes", "///evil.example"},
	{"fullwidth solidus", "/\uff0fevil.example"},
	{"ideographic full stop in a host", "//evil\u3002example"},
	{"leading space", " //evil.example"},
	{"NUL byte between the slashes", "/\x00/evil.example"},
	{"Unicode line separator", "/\u2028/evil.example"},
	{"mixed-case scheme", "HtTpS://evil.example"},
	{"bare host name", "evil.example"},
	{"backslash after dot segments", "/a/..\\evil.example"},
	{"encoded backslash", "/%5cevil.example"},
	{"ten thousand characters", "/" + strings.Repeat("a", 10000)},
}

// redirector is a parameter that decides where a browser goes, and how to
// try a payload on it: target returns the redirect the server chose ("" for
// none), having checked the answer's status itself.
type redirector struct {
	name   string
	target func(t *testing.T, s *suite, payload string) string
}

// redirectors are every parameter of caddy-idv that redirects.
func redirectors(s *suite, t *testing.T) []redirector {
	// One logged-in browser for the pages that need a session; logging out
	// is tried without one (it still redirects).
	var once sync.Once
	var session *e2e.Browser
	loggedIn := func(t *testing.T) *e2e.Browser {
		once.Do(func() { session = s.loggedIn(t) })
		return session
	}
	dataRD := regexp.MustCompile(`data-rd="([^"]*)"`)
	hiddenRD := regexp.MustCompile(`name="rd" value="([^"]*)"`)
	return []redirector{
		{"gate (the requested path)", func(t *testing.T, s *suite, p string) string {
			target := p
			if !strings.HasPrefix(target, "/") {
				target = "/" + target
			}
			a := rawRequest(t, s, "GET "+requestTarget(target)+" HTTP/1.1\r\nHost: "+strings.TrimPrefix(s.inst.URL, "http://")+"\r\nAccept: text/html\r\nConnection: close\r\n\r\n")
			if a.code == http.StatusBadRequest {
				return "" // the HTTP server refused the request line
			}
			want(t, a, http.StatusFound)
			loc := a.header.Get("Location")
			u, err := url.Parse(loc)
			if err != nil || u.Path != "/.idv/login" {
				t.Fatalf("gate redirected %q to %q", p, loc)
			}
			return u.Query().Get("rd")
		}},
		{"login page rd", func(t *testing.T, s *suite, p string) string {
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.idv/login?rd="+url.QueryEscape(p)), nil, map[string]string{"Accept": "text/html"})
			want(t, a, http.StatusOK)
			m := dataRD.FindSubmatch(a.body)
			if m == nil {
				t.Fatalf("login page without data-rd: %v", a)
			}
			return html.UnescapeString(string(m[1]))
		}},
		{"login rd (the completed login's redirect)", func(t *testing.T, s *suite, p string) string {
			return s.login(t, e2e.NewBrowser(), p)
		}},
		{"logout rd in the query", func(t *testing.T, s *suite, p string) string {
			h := s.sameOrigin()
			h["Content-Type"] = "application/x-www-form-urlencoded"
			a := do(t, e2e.NewBrowser(), http.MethodPost, s.url("/.idv/logout?rd="+url.QueryEscape(p)), nil, h)
			want(t, a, http.StatusSeeOther)
			return a.header.Get("Location")
		}},
		{"logout rd in the form", func(t *testing.T, s *suite, p string) string {
			h := s.sameOrigin()
			h["Content-Type"] = "application/x-www-form-urlencoded"
			a := do(t, e2e.NewBrowser(), http.MethodPost, s.url("/.idv/logout"), strings.NewReader("rd="+url.QueryEscape(p)), h)
			want(t, a, http.StatusSeeOther)
			return a.header.Get("Location")
		}},
		{"logout page rd", func(t *testing.T, s *suite, p string) string {
			a := do(t, loggedIn(t), http.MethodGet, s.url("/.idv/logout?rd="+url.QueryEscape(p)), nil, map[string]string{"Accept": "text/html"})
			want(t, a, http.StatusOK)
			m := hiddenRD.FindSubmatch(a.body)
			if m == nil {
				t.Fatalf("logout page without its rd field: %v", a)
			}
			return html.UnescapeString(string(m[1]))
		}},
		{"OIDC authorize redirect_uri", func(t *testing.T, s *suite, p string) string {
			q := url.Values{"client_id": {"app"}, "response_type": {"code"}, "scope": {"openid"}, "state": {"st"}, "redirect_uri": {p}}
			a := do(t, loggedIn(t), http.MethodGet, s.url("/.idv/oidc/authorize?"+q.Encode()), nil, map[string]string{"Accept": "text/html"})
			// An unregistered redirect_uri is never redirected to (RFC 6749
			// section 4.1.2.1): the answer is a 400 page.
			if a.code != http.StatusBadRequest || a.header.Get("Location") != "" {
				t.Fatalf("authorize with redirect_uri %q: %v, Location %q; want 400 without a redirect", p, a, a.header.Get("Location"))
			}
			return ""
		}},
		{"OIDC logout post_logout_redirect_uri", func(t *testing.T, s *suite, p string) string {
			q := url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {p}}
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.idv/oidc/logout?"+q.Encode()), nil, map[string]string{"Accept": "text/html"})
			loc := a.header.Get("Location")
			if a.code/100 == 3 && loc != "" {
				return loc
			}
			if a.code != http.StatusOK && a.code != http.StatusBadRequest {
				t.Fatalf("logout with post_logout_redirect_uri %q: %v", p, a)
			}
			return ""
		}},
	}
}

// TestAttackOpenRedirect tries every hostile target on every parameter that
// redirects, then the 559 payloads of oauth2-proxy's corpus on each: the
// browser always stays on the site (or, for OpenID Connect, is never sent
// to an unregistered address).
func TestAttackOpenRedirect(t *testing.T) {
	s := newSuite(t, options{})
	var attacks []attack
	for _, r := range redirectors(s, t) {
		for _, h := range hostileTargets {
			attacks = append(attacks, attack{r.name + "/" + h.name, func(t *testing.T) {
				if got := r.target(t, s, h.payload); got != "" {
					assertLocal(t, s.inst.URL, got, h.payload)
				}
			}})
		}
	}
	// The registered OIDC addresses, bent: each must be refused, never
	// matched by prefix, case or normalisation.
	for _, v := range []struct{ name, uri string }{
		{"registered URI plus a path", "https://app.example/callback/evil"},
		{"registered URI plus dot segments", "https://app.example/callback/../evil"},
		{"registered URI plus a query", "https://app.example/callback?next=https://evil.example"},
		{"registered URI plus a fragment", "https://app.example/callback#x"},
		{"registered host as a prefix of another host", "https://app.example.evil.example/callback"},
		{"registered URI with user info", "https://app.example@evil.example/callback"},
		{"registered URI over http", "http://app.example/callback"},
		{"registered URI with an explicit port", "https://app.example:8443/callback"},
		{"registered URI in upper case", "HTTPS://APP.EXAMPLE/CALLBACK"},
		{"registered URI with an encoded slash", "https://app.example/callback%2f..%2fevil"},
		{"registered URI after a backslash", "https://evil.example\\@app.example/callback"},
		{"another client's redirect URI", "https://app.example/spa"},
	} {
		attacks = append(attacks, attack{"OIDC authorize redirect_uri/" + v.name, func(t *testing.T) {
			q := url.Values{"client_id": {"app"}, "response_type": {"code"}, "scope": {"openid"}, "state": {"st"}, "redirect_uri": {v.uri}}
			a := do(t, s.loggedIn(t), http.MethodGet, s.url("/.idv/oidc/authorize?"+q.Encode()), nil, map[string]string{"Accept": "text/html"})
			if a.code != http.StatusBadRequest || a.header.Get("Location") != "" {
				t.Fatalf("authorize with %q: %v, Location %q; want 400 without a redirect", v.uri, a, a.header.Get("Location"))
			}
		}})
		attacks = append(attacks, attack{"OIDC logout post_logout_redirect_uri/" + v.name, func(t *testing.T) {
			q := url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {strings.Replace(v.uri, "/callback", "/bye", 1)}}
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/.idv/oidc/logout?"+q.Encode()), nil, map[string]string{"Accept": "text/html"})
			if loc := a.header.Get("Location"); loc != "" && !strings.HasPrefix(loc, "/") {
				t.Fatalf("logout redirected to %q", loc)
			}
		}})
	}
	runClass(t, classRedirect, attacks)

	payloads := e2e.RedirectCorpus(t)
	for _, r := range redirectors(s, t) {
		t.Run("corpus/"+r.name, func(t *testing.T) {
			// Several at once: the corpus is long, the machine small.
			sem := make(chan struct{}, 4)
			var wg sync.WaitGroup
			for i, p := range payloads {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					t.Run(fmt.Sprintf("%03d", i+1), func(t *testing.T) {
						if got := r.target(t, s, p); got != "" {
							assertLocal(t, s.inst.URL, got, p)
						}
					})
				}()
			}
			wg.Wait()
		})
		countPayloads(classRedirect, len(payloads))
	}
}

// requestTarget percent-encodes what cannot go into a request line as is
// (controls, spaces, non-ASCII), keeping everything else byte for byte.
func requestTarget(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c >= 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// rawRequest writes a request byte for byte (so that a request target such
// as //evil.example reaches the server as written) and reads the answer,
// with the invariants of send.
func rawRequest(t *testing.T, s *suite, raw string) answer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(s.inst.URL, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(maxWait))
	if _, err := conn.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: no answer: %v", firstLine(raw), err)
	}
	defer resp.Body.Close()
	a := answer{code: resp.StatusCode, header: resp.Header, body: readSome(resp.Body)}
	if a.code >= 500 {
		t.Fatalf("%q: %v (a server error is never the answer to an attack)", firstLine(raw), a)
	}
	return a
}

// readSome reads up to 1 MiB of an answer's body, and what arrived of it
// when it breaks off.
func readSome(r io.Reader) []byte {
	b, _ := io.ReadAll(io.LimitReader(r, 1<<20))
	return b
}

func firstLine(raw string) string {
	if i := strings.Index(raw, "\r\n"); i >= 0 {
		return raw[:i]
	}
	return raw
}
