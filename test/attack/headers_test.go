package attack_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
)

// TestAttackHeaderSpoofing: the suite's site sends the session's sub as
// X-User and its name as X-User-Name (`header` rules), protects every path
// but /public/*, and proxies to the recording upstream. A client must
// never be able to supply an identity header itself: in any spelling a
// server might read as the same name (README, `header`), as a trailer,
// outside the idv matcher, or through a forged session whose claims would
// break the header. Every case checks exactly what the upstream received:
// the real sub and name for a valid session, no identity header for none.
func TestAttackHeaderSpoofing(t *testing.T) {
	s := newSuite(t, options{})
	ps := spoofPlaceholderSuite(t)

	// One session for the cases that need one: its cookie, its token and
	// the identity the upstream must see.
	var once sync.Once
	var cookie, bearer, sub, name string
	session := func(t *testing.T) {
		once.Do(func() {
			b := s.loggedIn(t)
			cookie = s.sessionCookie(b)
			bearer = s.bearer(t, b)
			c := claimsOf(t, bearer)
			sub, _ = c["sub"].(string)
			name, _ = c["name"].(string)
		})
		if cookie == "" || sub == "" || name != "Ada Lovelace" {
			t.Fatalf("no session to attack with (cookie %q, sub %q, name %q)", cookie, sub, name)
		}
	}
	withCookie := func() string { return "Cookie: idv_session=" + cookie + "\r\n" }
	n := 0
	path := func(prefix string) string { n++; return fmt.Sprintf("%s/spoof-%d", prefix, n) }

	// get sends GET p with the given header lines, exactly as written.
	get := func(t *testing.T, p, lines string) answer {
		return rawRequest(t, s, "GET "+p+" HTTP/1.1\r\nHost: "+s.spoofHost()+"\r\n"+lines+"Connection: close\r\n\r\n")
	}
	// withSession is a protected request with the session cookie and the
	// spoofed header lines: the upstream sees the session's identity only.
	withSession := func(lines string) func(t *testing.T) {
		return func(t *testing.T) {
			session(t)
			p := path("")
			spoofWant(t, get(t, p, withCookie()+lines), sub, name)
		}
	}
	// public is a request outside the matcher with the spoofed header
	// lines (and the session cookie when asked): the upstream sees no
	// identity header at all.
	public := func(lines string, withSess bool) func(t *testing.T) {
		return func(t *testing.T) {
			c := ""
			if withSess {
				session(t)
				c = withCookie()
			}
			spoofWant(t, get(t, path("/public"), c+lines), "", "")
		}
	}
	// withoutSession is a protected API request without a session: 401,
	// and the upstream is never reached.
	withoutSession := func(lines string) func(t *testing.T) {
		return func(t *testing.T) {
			p := path("")
			a := get(t, p, "Accept: application/json\r\n"+lines)
			wantError(t, a, http.StatusUnauthorized, "unauthenticated")
			if s.up.reached(p) {
				t.Fatalf("%s reached the upstream without a session", p)
			}
		}
	}
	// trailer sends a chunked POST whose trailer section carries lines.
	trailer := func(prefix, declared, lines string, withSess bool) func(t *testing.T) {
		return func(t *testing.T) {
			c, wantSub, wantName := "", "", ""
			if withSess {
				session(t)
				c, wantSub, wantName = withCookie(), sub, name
			}
			decl := ""
			if declared != "" {
				decl = "Trailer: " + declared + "\r\n"
			}
			a := rawRequest(t, s, "POST "+path(prefix)+" HTTP/1.1\r\nHost: "+s.spoofHost()+"\r\n"+c+
				"Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"+decl+"Connection: close\r\n\r\n"+
				"5\r\nhello\r\n0\r\n"+lines+"X-Other-Trailer: kept\r\n\r\n")
			e := spoofWant(t, a, wantSub, wantName)
			if strings.Contains(declared, "X-Other-Trailer") && !slices.Equal(e.Trailer["X-Other-Trailer"], []string{"kept"}) {
				t.Fatalf("a trailer that names no identity header was lost: %v", e.Trailer)
			}
		}
	}
	// forged sends a session token with the real stolen key whose claims are
	// a real session's, changed by edit: it verifies, so the gate's own
	// checks on the claims decide.
	forged := func(t *testing.T, edit func(c jwt.MapClaims)) string {
		c := jwt.MapClaims{}
		for k, v := range claimsOf(t, bearer) {
			c[k] = v
		}
		c["jti"] = fmt.Sprintf("forged-%d-%d", n, time.Now().UnixNano())
		edit(c)
		return s.signingKey(t).Sign(t, c, "idv-session+jwt")
	}
	// refusedClaim: a forged session whose claim cannot be a header value
	// is refused with 403 (never a 502 from a broken upstream request) and
	// the upstream never sees the request.
	refusedClaim := func(claim string, v any) func(t *testing.T) {
		return func(t *testing.T) {
			session(t)
			raw := forged(t, func(c jwt.MapClaims) { c[claim] = v })
			p := path("")
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url(p), nil, map[string]string{"Authorization": "Bearer " + raw, "X-User": "admin"})
			want(t, a, http.StatusForbidden)
			if s.up.reached(p) {
				t.Fatalf("a claim with a control character reached the upstream at %s", p)
			}
			if strings.Contains(string(a.body), "admin") || a.header.Get("X-User") != "" {
				t.Fatalf("the refusal echoes the claim: %q %v", a.body, a.header)
			}
		}
	}
	// passedClaim: a forged session whose claim is an unusual but valid
	// header value reaches the upstream with exactly that value.
	passedClaim := func(claim string, v any, wantValue string) func(t *testing.T) {
		return func(t *testing.T) {
			session(t)
			raw := forged(t, func(c jwt.MapClaims) { c[claim] = v })
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url(path("")), nil, map[string]string{"Authorization": "Bearer " + raw, "X-User-Name": "admin"})
			wantSub, wantName := sub, name
			if claim == "sub" {
				wantSub = wantValue
			} else {
				wantName = wantValue
			}
			spoofWant(t, a, wantSub, wantName)
		}
	}

	attacks := []attack{
		// Without a session the request never reaches the upstream.
		{"X-User without a session on a protected path", withoutSession("X-User: admin\r\n")},
		{"X-User-Name without a session on a protected path", withoutSession("X-User-Name: Admin\r\n")},
		{"X-User without a session on a browser navigation", func(t *testing.T) {
			p := path("")
			a := get(t, p, "Accept: text/html\r\nX-User: admin\r\n")
			want(t, a, http.StatusFound)
			if loc := a.header.Get("Location"); loc != "/.idv/login?rd="+strings.ReplaceAll(p, "/", "%2F") || s.up.reached(p) {
				t.Fatalf("Location %q, upstream reached %v", loc, s.up.reached(p))
			}
		}},
		{"X-User with an invalid bearer token", func(t *testing.T) {
			p := path("")
			a := get(t, p, "Authorization: Bearer not.a.token\r\nX-User: admin\r\n")
			wantError(t, a, http.StatusUnauthorized, "unauthenticated")
			if a.header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` || s.up.reached(p) {
				t.Fatalf("WWW-Authenticate %q, upstream reached %v", a.header.Get("WWW-Authenticate"), s.up.reached(p))
			}
		}},
		{"X-User with a valid cookie but a Basic Authorization header", func(t *testing.T) {
			// The Authorization header decides (README: cookie or
			// bearer); one that is not a bearer token is no session, so
			// the valid cookie beside it does not let the spoof through.
			session(t)
			p := path("")
			a := get(t, p, withCookie()+"Authorization: Basic YWRtaW46YWRtaW4=\r\nX-User: admin\r\n")
			wantError(t, a, http.StatusUnauthorized, "unauthenticated")
			if s.up.reached(p) {
				t.Fatalf("%s reached the upstream", p)
			}
		}},

		// With a session, every spelling is replaced by the session's
		// identity.
		{"X-User with a session", withSession("X-User: admin\r\n")},
		{"X-User-Name with a session", withSession("X-User-Name: Admin\r\n")},
		{"lower-case x-user with a session", withSession("x-user: admin\r\n")},
		{"upper-case X-USER with a session", withSession("X-USER: admin\r\n")},
		{"underscore X_User with a session", withSession("X_User: admin\r\n")},
		{"lower-case x-user-name with a session", withSession("x-user-name: Admin\r\n")},
		{"underscore X_User_Name with a session", withSession("X_User_Name: Admin\r\n")},
		{"mixed separators X-User_Name with a session", withSession("X-User_Name: Admin\r\n")},
		{"two X-User headers with a session", withSession("X-User: admin\r\nX-User: root\r\n")},
		{"X-User and X_User together with a session", withSession("X-User: admin\r\nX_User: root\r\nx-user: toor\r\n")},
		{"X-User with an empty value with a session", withSession("X-User:\r\n")},
		{"X-User with a comma-separated list with a session", withSession("X-User: admin, root\r\n")},
		{"X-User-Name only (no X-User) with a session", withSession("X_USER_NAME: Admin\r\n")},
		{"X-User continued on an obs-fold line with a session", func(t *testing.T) {
			// A folded line is part of the header before it (Go's
			// server joins it): never an identity header of its own.
			session(t)
			e := spoofWant(t, get(t, path(""), withCookie()+"X-Note: a\r\n X-User: admin\r\n"), sub, name)
			if got := e.Header["X-Note"]; len(got) != 1 || got[0] != "a X-User: admin" {
				t.Fatalf("upstream got X-Note %q", got)
			}
		}},
		{"X-User with a space before the colon", func(t *testing.T) {
			session(t)
			p := path("")
			a := get(t, p, withCookie()+"X-User : admin\r\n")
			want(t, a, http.StatusBadRequest) // Go's server: malformed header
			if s.up.reached(p) {
				t.Fatal("a malformed header line reached the upstream")
			}
		}},
		{"X-User on a WebSocket upgrade request with a session", withSession("Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-User: admin\r\n")},
		{"X-User named in the Connection header with a session", withSession("Connection: X-User, X-User-Name\r\nX-User: admin\r\n")},

		// Trailers: a chunked body may end with fields a proxy passes on
		// after the headers it checked.
		{"X-User as a declared trailer with a session", trailer("", "X-User, X-Other-Trailer", "X-User: admin\r\n", true)},
		{"X_User as a declared trailer with a session", trailer("", "X_User, X-Other-Trailer", "X_User: admin\r\n", true)},
		{"X-User-Name as a declared trailer with a session", trailer("", "X-User-Name, X-Other-Trailer", "X-User-Name: Admin\r\n", true)},
		{"X-User as an undeclared trailer with a session", trailer("", "", "X-User: admin\r\n", true)},
		{"X-User as a trailer on /public/*", trailer("/public", "X-User, X-Other-Trailer", "X-User: admin\r\nx_user_name: Admin\r\n", false)},

		// Outside the idv matcher the handler never runs; the names are
		// deleted there too.
		{"X-User on /public/* (outside the matcher)", public("X-User: admin\r\n", false)},
		{"X-User-Name on /public/*", public("X-User-Name: Admin\r\n", false)},
		{"lower-case and underscore spellings on /public/*", public("x-user: a\r\nX_USER: b\r\nx_user_name: c\r\nX-USER-NAME: d\r\n", false)},
		{"X-User on /public/* with a session cookie", public("X-User: admin\r\n", true)},

		// Bearer tokens.
		{"X-User with a bearer session token", func(t *testing.T) {
			// The bearer's identity, not the spoof; the Authorization
			// header itself is passed on as sent (the README documents
			// no stripping: an application may verify the token too).
			session(t)
			a := get(t, path(""), "Authorization: Bearer "+bearer+"\r\nX-User: admin\r\nX_User_Name: Admin\r\n")
			e := spoofWant(t, a, sub, name)
			if got := e.Header["Authorization"]; !slices.Equal(got, []string{"Bearer " + bearer}) {
				t.Fatalf("upstream got Authorization %q", got)
			}
		}},

		// Names other proxies use: the module never sets them.
		{"Remote-User and X-Forwarded-User are never set from a session", func(t *testing.T) {
			session(t)
			e := spoofWant(t, get(t, path(""), withCookie()+"X-User: admin\r\n"), sub, name)
			for _, h := range []string{"Remote-User", "X-Remote-User", "X-Forwarded-User", "X-Auth-Request-User", "X-Forwarded-Preferred-Username"} {
				if v, ok := e.Header[h]; ok {
					t.Fatalf("the module set %s: %q", h, v)
				}
			}
		}},
		{"a client's Remote-User passes unchanged beside the real X-User", func(t *testing.T) {
			// The module documents only its own `header` names: others
			// are the application's to distrust, and are passed as sent.
			session(t)
			e := spoofWant(t, get(t, path(""), withCookie()+"Remote-User: admin\r\nX-Forwarded-User: admin\r\n"), sub, name)
			if !slices.Equal(e.Header["Remote-User"], []string{"admin"}) || !slices.Equal(e.Header["X-Forwarded-User"], []string{"admin"}) {
				t.Fatalf("upstream got Remote-User %q, X-Forwarded-User %q", e.Header["Remote-User"], e.Header["X-Forwarded-User"])
			}
		}},

		// Claims that cannot be a header value: 403, never 502, never
		// the raw bytes upstream.
		{"forged session whose name holds CR LF", refusedClaim("name", "Ada\r\nX-User: admin")},
		{"forged session whose name holds a bare LF", refusedClaim("name", "Ada\nX-User: admin")},
		{"forged session whose name holds a bare CR", refusedClaim("name", "Ada\rX-User: admin")},
		{"forged session whose name holds a NUL", refusedClaim("name", "Ada\x00admin")},
		{"forged session whose name holds DEL", refusedClaim("name", "Ada\x7f")},
		{"forged session whose sub holds CR LF", refusedClaim("sub", "demo-x\r\nX-User-Name: Admin")},
		{"forged session whose name is an array with a line break", refusedClaim("name", []any{"Ada", "\r\nX-User: admin"})},

		// Unusual but valid values pass exactly as the claim says.
		{"forged session whose name holds a tab", passedClaim("name", "Ada\tLovelace", "Ada\tLovelace")},
		{"forged session whose name holds a Unicode line separator", passedClaim("name", "Ada\u2028X-User: admin", "Ada\u2028X-User: admin")},
		{"forged session whose name is an array", passedClaim("name", []any{"Ada", "admin"}, "Ada,admin")},
		{"forged session whose name is a number", passedClaim("name", 42, "42")},
		{"forged session whose name is an object with a line break", passedClaim("name", map[string]any{"a": "\n"}, `{"a":"\n"}`)},

		// Caddy's placeholders: set by the handler from the session only.
		{"a header named like the placeholder http.auth.user.id", func(t *testing.T) {
			a := rawRequest(t, ps, "GET /public/ph HTTP/1.1\r\nHost: "+ps.spoofHost()+"\r\nhttp.auth.user.id: admin\r\nHttp-Auth-User-Id: admin\r\nConnection: close\r\n\r\n")
			spoofPlaceholders(t, a, "{http.auth.user.id}", "{http.auth.user.name}")
		}},
		{"a query parameter named like the placeholder http.auth.user.id", func(t *testing.T) {
			a := do(t, e2e.NewBrowser(), http.MethodGet, ps.url("/public/ph?http.auth.user.id=admin&http.auth.user.name=Admin"), nil, nil)
			spoofPlaceholders(t, a, "{http.auth.user.id}", "{http.auth.user.name}")
		}},
		{"client X-Auth-Id with a session is replaced by the placeholder's value", func(t *testing.T) {
			b := ps.loggedIn(t)
			c := claimsOf(t, ps.bearer(t, b))
			a := do(t, b, http.MethodGet, ps.url("/ph"), nil, map[string]string{"X-Auth-Id": "admin", "X-Auth-Name": "Admin"})
			spoofPlaceholders(t, a, c["sub"].(string), "Ada Lovelace")
		}},
		{"a claim holding placeholder text is passed literally", func(t *testing.T) {
			b := ps.loggedIn(t)
			c := claimsOf(t, ps.bearer(t, b))
			c["jti"] = "forged-placeholder"
			c["name"] = "{env.APP_SECRET}{http.request.header.Cookie}"
			raw := ps.signingKey(t).Sign(t, c, "idv-session+jwt")
			a := do(t, e2e.NewBrowser(), http.MethodGet, ps.url("/ph"), nil, map[string]string{"Authorization": "Bearer " + raw, "Cookie": "x=leak"})
			spoofPlaceholders(t, a, c["sub"].(string), "{env.APP_SECRET}{http.request.header.Cookie}")
		}},
	}
	runClass(t, classHeaders, attacks)
}

// spoofHost is the Host header of the suite's site.
func (s *suite) spoofHost() string { return strings.TrimPrefix(s.inst.URL, "http://") }

// spoofFold is a header name as a server might read it: any case, '_'
// for '-'.
func spoofFold(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// spoofWant fails t unless the answer came from the upstream and the
// upstream saw exactly X-User: sub and X-User-Name: name (none of them
// when empty), in no other spelling, and neither in its trailers.
func spoofWant(t *testing.T, a answer, sub, name string) echo {
	t.Helper()
	e := echoOf(t, a)
	want := map[string]string{"x-user": sub, "x-user-name": name}
	canonical := map[string]string{"x-user": "X-User", "x-user-name": "X-User-Name"}
	for k, v := range e.Header {
		f := spoofFold(k)
		w, identity := want[f]
		if !identity {
			continue
		}
		if w == "" || k != canonical[f] || !slices.Equal(v, []string{w}) {
			t.Fatalf("upstream got header %s: %q; want %s: %q", k, v, canonical[f], w)
		}
	}
	for f, w := range want {
		if w != "" && !slices.Equal(e.Header[canonical[f]], []string{w}) {
			t.Fatalf("upstream got %s: %q; want %q", canonical[f], e.Header[canonical[f]], w)
		}
	}
	for k, v := range e.Trailer {
		if _, identity := want[spoofFold(k)]; identity {
			t.Fatalf("upstream got trailer %s: %q", k, v)
		}
	}
	return e
}

// spoofPlaceholderSuite is a site whose reverse proxy sends Caddy's
// authentication placeholders upstream (header_up), as an operator who
// uses them instead of `header` rules would.
func spoofPlaceholderSuite(t *testing.T) *suite {
	t.Helper()
	ps := &suite{storage: t.TempDir(), secret: appSecret, rp: "https://app.example"}
	ps.up = newUpstream(t)
	ps.inst = e2e.Start(t, `
	@protected not path /public/*
	idv @protected {
		provider demo {
			user "Ada Lovelace"
		}
		limit {
			per_address 100000 1m
		}
	}
	reverse_proxy `+strings.TrimPrefix(ps.up.URL, "http://")+` {
		header_up X-Auth-Id   "{http.auth.user.id}"
		header_up X-Auth-Name "{http.auth.user.name}"
	}
`, e2e.Options{Storage: ps.storage, Env: []string{"APP_SECRET=" + appSecret}})
	t.Cleanup(func() { ps.checkLogs(t) })
	return ps
}

// spoofPlaceholders fails t unless the upstream saw X-Auth-Id and
// X-Auth-Name (header_up from {http.auth.user.id} and
// {http.auth.user.name}) with exactly these values. Without a session the
// placeholders are unknown, and header_up leaves their text as it is.
func spoofPlaceholders(t *testing.T, a answer, id, name string) {
	t.Helper()
	e := echoOf(t, a)
	for h, w := range map[string]string{"X-Auth-Id": id, "X-Auth-Name": name} {
		if got := e.Header[h]; !slices.Equal(got, []string{w}) {
			t.Fatalf("upstream got %s: %q; want %q", h, got, w)
		}
	}
	if strings.Contains(fmt.Sprint(e.Header), appSecret) {
		t.Fatalf("a placeholder in a claim was expanded: %v", e.Header)
	}
}
