package templates

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func page() Page { return Page{Title: "", Prefix: "/.idv", Site: "Example Bank"} }

var (
	qrProvider   = Provider{Name: "demo", Label: "Demo wallet", Kind: "demo", Flow: "qr", Autostart: true}
	formProvider = Provider{Name: "mobileid", Label: "Mobile-ID", Kind: "marksign_mobileid", Flow: "form", Fields: []Field{
		{Name: "phone", Label: "Phone number", Type: "tel", Autocomplete: "tel", InputMode: "tel", Pattern: `\+37[02][0-9]{7,8}`, Hint: "With country code, such as +372"},
		{Name: "personal_code", Label: "Personal code", Type: "text", Autocomplete: "off", InputMode: "numeric", Pattern: `[0-9]{11}`},
	}}
)

func mustLoad(t *testing.T, dir string) *Set {
	t.Helper()
	s, err := Load(dir)
	if err != nil {
		t.Fatalf("Load(%q): %v", dir, err)
	}
	return s
}

func render(t *testing.T, s *Set, name string, data any) string {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Render(&buf, name, nil, data); err != nil {
		t.Fatalf("Render(%s): %v", name, err)
	}
	return buf.String()
}

// The handler's Content-Security-Policy allows no inline script or style and
// nothing from another origin; these patterns find what it would block.
var cspViolations = []struct {
	name string
	re   *regexp.Regexp
}{
	{"style block", regexp.MustCompile(`(?i)<style\b`)},
	{"style attribute", regexp.MustCompile(`(?i)\sstyle\s*=`)},
	{"event handler attribute", regexp.MustCompile(`(?i)\son[a-z]+\s*=`)},
	{"external resource", regexp.MustCompile(`(?i)\b(?:src|href|action|formaction|srcset|poster)\s*=\s*["']?\s*(?:https?:|//)`)},
	{"absolute URL", regexp.MustCompile(`(?i)https?://`)},
	{"javascript: URL", regexp.MustCompile(`(?i)=\s*["']?\s*javascript:`)},
}

// checkPage holds for every rendered page.
func checkPage(t *testing.T, html string) {
	t.Helper()
	for _, v := range cspViolations {
		if m := v.re.FindString(html); m != "" {
			t.Errorf("%s: %q", v.name, m)
		}
	}
	// Scripts come from the module's static files; the texts for them are
	// JSON data blocks, which no browser executes.
	for _, src := range regexp.MustCompile(`(?i)<script\b[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(src, ` src="/.idv/static/`) && src != `<script type="application/json" id="idv-text">` {
			t.Errorf("script not from the module's static files: %s", src)
		}
	}
	for _, want := range []string{
		"<!doctype html>",
		`<html lang="en" dir="ltr">`,
		`<meta charset="utf-8">`,
		`<meta name="viewport" content="width=device-width, initial-scale=1">`,
		`<link rel="stylesheet" href="/.idv/static/style.css?v=`,
		`<main id="main">`,
		`<span class="site-name">Example Bank</span>`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(html, "<h1"); n != 1 {
		t.Errorf("page has %d h1 elements, want 1", n)
	}
	if strings.Contains(html, "ZgotmplZ") {
		t.Errorf("a value was refused by html/template: %s", html)
	}
}

func TestRender(t *testing.T) {
	s := mustLoad(t, "")
	expires := time.Date(2026, 11, 22, 10, 5, 0, 0, time.UTC)
	wallet := func(state string, same bool) Wallet {
		w := Wallet{Page: page(), ID: "abc", User: "Mari Maasikas", ExpiresAt: expires, State: state,
			ApproveURL: "/.idv/demo/wallet/abc/approve", DeclineURL: "/.idv/demo/wallet/abc/decline", SameDevice: same}
		if same {
			w.ReturnURL = "/.idv/login#idv-resume=abc"
		}
		return w
	}
	tests := []struct {
		name   string
		page   string
		data   any
		want   []string
		absent []string
	}{
		{"login with one QR provider", "login", Login{Page: page(), RD: "/app?x=1", Providers: []Provider{qrProvider}},
			[]string{
				`<title>Log in – Example Bank</title>`, `<h1>Log in to Example Bank</h1>`, `<noscript>`,
				`<script src="/.idv/static/login.js?v=`, `defer></script>`,
				`<script type="application/json" id="idv-text">{`,
				`data-prefix="/.idv"`, `data-rd="/app?x=1"`,
				`data-provider="demo" data-flow="qr"`,
				`data-scan="Scan the QR code to open the demo wallet"`, `data-button="Open the demo wallet"`,
				`alt="QR code to scan with your phone"`, `Open on this device`, `Use another device`,
				`aria-expanded="false" aria-controls="idv-qr-wrap"`,
				`Check that your phone shows the same code: <strong id="idv-code"`,
				`id="idv-status" class="status" role="status" aria-live="polite"`,
				`id="idv-retry" class="button primary" hidden>Try again</button>`,
			},
			[]string{"idv-back", "<form", "choice-qualifier"}},
		{"login with a choice", "login", Login{Page: page(), RD: "/", Providers: []Provider{qrProvider, formProvider}},
			[]string{
				`<span class="choice-label">Demo wallet</span>`, `<span class="choice-label">Mobile-ID</span>`,
				`<span class="choice-desc">Approve the login in a simulated wallet</span>`,
				`<span class="choice-desc">Mobile-ID: you will be asked for your PIN1</span>`,
				`<form class="idv-form" data-provider="mobileid" novalidate>`,
				`<p class="lead">Mobile-ID: you will be asked for your PIN1</p>`,
				`<label for="idv-p1-f0">Phone number</label>`,
				`<p class="hint" id="idv-p1-f0-hint">With country code, such as &#43;372</p>`,
				`<input id="idv-p1-f0" name="phone" type="tel" autocomplete="tel" pattern="\&#43;37[02][0-9]{7,8}" inputmode="tel" dir="ltr"`,
				`aria-describedby="idv-p1-f0-hint idv-p1-f0-error"`,
				`<p class="field-error" id="idv-p1-f0-error" hidden></p>`,
				`<input id="idv-p1-f1" name="personal_code" type="text" autocomplete="off" pattern="[0-9]{11}" inputmode="numeric" dir="ltr" spellcheck="false" required`,
				`aria-describedby="idv-p1-f1-error"`,
				`<button type="submit" class="button primary">Continue</button>`,
				`Choose another method`,
			},
			[]string{`id="idv-p0"`}},
		{"two providers of one kind", "login", Login{Page: page(), Providers: []Provider{
			{Name: "staff", Label: "Demo wallet", Qualifier: "staff", Kind: "demo", Flow: "qr"},
			{Name: "guests", Label: "Guest wallet", Description: "For visitors", Kind: "demo", Flow: "qr"}}},
			[]string{`Demo wallet <span class="choice-qualifier">(staff)</span>`, `<span class="choice-label">Guest wallet</span>`,
				`<span class="choice-desc">For visitors</span>`}, nil},
		{"login for an OpenID Connect application", "login", Login{Page: page(), RD: "/.idv/oidc/authorize?client_id=grafana", Client: "Grafana", Providers: []Provider{qrProvider}},
			[]string{`<h1>Log in to Grafana</h1>`, `<p class="lead">Example Bank confirms who you are for Grafana.</p>`}, nil},
		{"login without providers", "login", Login{Page: page(), RD: "/"},
			[]string{"No login method is available"}, nil},
		{"error with retry", "error", Error{Page: page(), Status: 502, Heading: "The provider did not answer", Message: "Please try again in a moment.", RetryURL: "/.idv/login?rd=%2Fapp"},
			[]string{`<title>The provider did not answer – Example Bank</title>`, `<h1>The provider did not answer</h1>`, `<p>Please try again in a moment.</p>`,
				`Error 502`, `<a class="button primary" href="/.idv/login?rd=%2Fapp">Try again</a>`},
			[]string{`<script`, `href="/">`}},
		{"error without retry", "error", Error{Page: page(), Status: 404},
			[]string{`<h1>Not found</h1>`, `<a class="button" href="/">Go to the home page</a>`, `Error 404`}, []string{"Try again"}},
		{"wallet pending", "wallet", wallet("pending", false),
			[]string{
				`Demo wallet — not a real identity provider`, `<h1>Log in as Mari Maasikas?</h1>`,
				`<p class="lead">Example Bank asks you to confirm this login.</p>`,
				`<p>This request expires at <time class="idv-local" datetime="2026-11-22T10:05:00Z" dir="ltr">10:05 UTC</time>.</p>`,
				`<form class="idv-answer" method="post" action="/.idv/demo/wallet/abc/approve">`,
				`<button type="submit" class="button primary">Approve</button>`,
				`<form class="idv-answer" method="post" action="/.idv/demo/wallet/abc/decline">`,
				`<button type="submit" class="button">Decline</button>`,
				`<script src="/.idv/static/wallet.js?v=`,
			},
			[]string{"same device"}},
		{"wallet same device", "wallet", wallet("pending", true),
			[]string{"You are approving on the same device", "Approve</button>"}, nil},
		{"wallet approved", "wallet", wallet("approved", false),
			[]string{"Approved. You can return to the other screen."}, []string{"Approve</button>", "Decline</button>", "idv-return"}},
		{"wallet approved on the same device", "wallet", wallet("approved", true),
			[]string{"Approved. Taking you back to the login page…", `<a id="idv-return" class="button primary" href="/.idv/login#idv-resume=abc" data-auto="true">Continue</a>`},
			[]string{"other screen"}},
		{"wallet declined", "wallet", wallet("declined", false),
			[]string{"You declined this login."}, []string{"Approve</button>", "idv-return"}},
		{"wallet declined on the same device", "wallet", wallet("declined", true),
			[]string{"You declined this login.", `<a id="idv-return" class="button primary" href="/.idv/login#idv-resume=abc">Back to the login page</a>`}, []string{"data-auto"}},
		{"wallet expired", "wallet", wallet("expired", false),
			[]string{"This login has expired."}, []string{"Approve</button>"}},
		{"wallet unknown", "wallet", wallet("unknown", false),
			[]string{"This login does not exist."}, []string{"Approve</button>"}},
		{"wallet with a state it does not know", "wallet", wallet("", false),
			[]string{"This login does not exist."}, []string{"Approve</button>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			html := render(t, s, tt.page, tt.data)
			checkPage(t, html)
			for _, w := range tt.want {
				if !strings.Contains(html, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(html, a) {
					t.Errorf("page has %q", a)
				}
			}
			if t.Failed() {
				t.Log(html)
			}
		})
	}
}

func TestRenderPointerData(t *testing.T) {
	s := mustLoad(t, "")
	html := render(t, s, "error", &Error{Page: page(), Status: 500, Heading: "Oops"})
	checkPage(t, html)
}

// Values come from requests and providers; html/template must escape them in
// every context they appear in (XSS).
func TestEscaping(t *testing.T) {
	const evil = `<script>alert("x")</script>`
	s := mustLoad(t, "")
	evilProvider := Provider{Name: `a"b`, Label: evil, Flow: "form", Fields: []Field{
		{Name: `n"><script>`, Label: evil, Type: `text" onfocus="alert(1)`, Hint: evil, Pattern: `"><script>`, Autocomplete: `"x`},
	}}
	tests := []struct {
		name string
		page string
		data any
	}{
		{"login", "login", Login{Page: Page{Prefix: "/.idv", Lang: `en"><script>`, Title: evil}, RD: `/"><script>alert("x")</script>`, Providers: []Provider{qrProvider, evilProvider}}},
		{"error", "error", Error{Page: page(), Status: 400, Heading: evil, Message: evil, RetryURL: `/"><script>`}},
		{"wallet", "wallet", Wallet{Page: page(), User: evil, State: "pending", ApproveURL: `/x"><script>`, DeclineURL: "/d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			html := render(t, s, tt.page, tt.data)
			if strings.Contains(html, `<script>`) || strings.Contains(html, `"><script`) || strings.Contains(html, ` onfocus="`) {
				t.Errorf("unescaped value in page:\n%s", html)
			}
			if !strings.Contains(html, `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`) {
				t.Errorf("escaped value missing:\n%s", html)
			}
		})
	}
}

// A retry link or form action with a script scheme is neutralised.
func TestUnsafeURLs(t *testing.T) {
	s := mustLoad(t, "")
	html := render(t, s, "error", Error{Page: page(), Heading: "x", RetryURL: "javascript:alert(1)"})
	if strings.Contains(html, "javascript:") || !strings.Contains(html, `href="#ZgotmplZ"`) {
		t.Errorf("javascript: URL not neutralised:\n%s", html)
	}
	html = render(t, s, "wallet", Wallet{Page: page(), State: "pending", ApproveURL: "javascript:alert(1)", DeclineURL: "/d"})
	if strings.Contains(html, "javascript:") {
		t.Errorf("javascript: URL not neutralised:\n%s", html)
	}
}

func TestRenderUnknownPage(t *testing.T) {
	s := mustLoad(t, "")
	var buf bytes.Buffer
	if err := s.Render(&buf, "layout", nil, Page{}); err == nil || !strings.Contains(err.Error(), `"layout"`) {
		t.Errorf("Render(layout) = %v, want an error naming the page", err)
	}
}

// A template that fails while executing must not send half a page.
func TestRenderFailureWritesNothing(t *testing.T) {
	s := mustLoad(t, "")
	var buf bytes.Buffer
	err := s.Render(&buf, "wallet", nil, Error{Page: page(), Heading: "not a wallet"})
	if err == nil {
		t.Fatal("Render of the wallet page with error data succeeded")
	}
	if buf.Len() != 0 {
		t.Errorf("Render wrote %d bytes before failing", buf.Len())
	}
}

func writeFile(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadOverride(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "login.html", `{{define "content"}}<h1>Welcome to Example</h1><p data-rd="{{.RD}}">{{len .Providers}} ways</p>{{end}}`)
	s := mustLoad(t, dir)

	html := render(t, s, "login", Login{Page: page(), RD: "/x", Providers: []Provider{qrProvider}})
	if !strings.Contains(html, "<h1>Welcome to Example</h1>") || !strings.Contains(html, `data-rd="/x"`) {
		t.Errorf("override not used:\n%s", html)
	}
	if !strings.Contains(html, `<span class="site-name">Example Bank</span>`) || !strings.Contains(html, `<title>Example Bank</title>`) {
		t.Errorf("embedded layout not used around the override:\n%s", html)
	}
	html = render(t, s, "error", Error{Page: page(), Heading: "Embedded"})
	if !strings.Contains(html, "<h1>Embedded</h1>") {
		t.Errorf("missing override did not fall back to the embedded page:\n%s", html)
	}

	writeFile(t, dir, "layout.html", `<!doctype html><html><body class="custom">{{template "content" .}}</body></html>`)
	s = mustLoad(t, dir)
	html = render(t, s, "wallet", Wallet{Page: page(), User: "Jaan", State: "pending", ApproveURL: "/a", DeclineURL: "/d"})
	if !strings.Contains(html, `<body class="custom">`) || !strings.Contains(html, "Log in as Jaan?") {
		t.Errorf("layout override not used with the embedded page:\n%s", html)
	}
}

func TestLoadBrokenOverride(t *testing.T) {
	tests := []struct {
		name string
		file string
		text string
		want string
	}{
		{"does not parse", "login.html", `{{define "content"}}{{.RD`, "login.html"},
		{"unknown function", "error.html", `{{define "content"}}{{nosuch .}}{{end}}`, "error.html"},
		{"misspelt field", "wallet.html", `{{define "content"}}{{.Usr}}{{end}}`, "wallet.html"},
		{"no content", "error.html", `<p>just text</p>`, "error.html"},
		{"broken layout", "layout.html", `<html>{{template "content" .}`, "layout.html"},
		{"ends in a tag", "login.html", `{{define "content"}}<a href="{{.RD}}{{end}}`, "login.html"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, tt.file, tt.text)
			_, err := Load(dir)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, tt.want)) {
				t.Errorf("error %q does not name %s", err, filepath.Join(dir, tt.want))
			}
		})
	}
}

func TestLoadMissingDir(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nosuch")); err == nil {
		t.Error("Load of a missing directory succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	writeFile(t, filepath.Dir(file), "file", "")
	if _, err := Load(file); err == nil {
		t.Error("Load of a file succeeded")
	}
}

func serve(h http.Handler, method, path, query string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "/", nil)
	r.URL.Path = path
	r.URL.RawQuery = query
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestStatic(t *testing.T) {
	h := Static()
	tests := []struct {
		name   string
		method string
		path   string
		status int
		ctype  string
	}{
		{"script", "GET", "login.js", 200, "text/javascript; charset=utf-8"},
		{"wallet script", "GET", "wallet.js", 200, "text/javascript; charset=utf-8"},
		{"style", "GET", "style.css", 200, "text/css; charset=utf-8"},
		{"leading slash", "GET", "/login.js", 200, "text/javascript; charset=utf-8"},
		{"head", "HEAD", "login.js", 200, "text/javascript; charset=utf-8"},
		{"unknown", "GET", "nosuch.js", 404, ""},
		{"empty", "GET", "", 404, ""},
		{"directory", "GET", ".", 404, ""},
		{"with static prefix", "GET", "static/login.js", 404, ""},
		{"traversal to source", "GET", "../templates.go", 404, ""},
		{"traversal to template", "GET", "../login.html", 404, ""},
		{"encoded traversal", "GET", "%2e%2e/templates.go", 404, ""},
		{"encoded traversal, bare", "GET", "%2e%2e/", 404, ""},
		{"decoded traversal, bare", "GET", "../", 404, ""},
		{"backslash traversal", "GET", `..\templates.go`, 404, ""},
		{"dot segment", "GET", "./login.js", 404, ""},
		{"post", "POST", "login.js", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(h, tt.method, tt.path, "")
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if tt.ctype != "" && w.Header().Get("Content-Type") != tt.ctype {
				t.Errorf("Content-Type %q, want %q", w.Header().Get("Content-Type"), tt.ctype)
			}
			if tt.status == 200 {
				if w.Header().Get("X-Content-Type-Options") != "nosniff" {
					t.Error("no X-Content-Type-Options: nosniff")
				}
				if !strings.Contains(w.Header().Get("Cache-Control"), "max-age=") {
					t.Errorf("Cache-Control %q", w.Header().Get("Cache-Control"))
				}
			}
		})
	}

	// A request through the real URL parser, as the handler would see it
	// after stripping its prefix.
	r := httptest.NewRequest("GET", "/.idv/static/%2e%2e/templates.go", nil)
	w := httptest.NewRecorder()
	http.StripPrefix("/.idv/static/", h).ServeHTTP(w, r)
	if w.Code != 404 {
		t.Errorf("encoded traversal through StripPrefix: status %d", w.Code)
	}
}

// The URLs the templates build carry the asset's version and may be cached
// for good; others are revalidated.
func TestStaticCaching(t *testing.T) {
	h := Static()
	s := mustLoad(t, "")
	html := render(t, s, "login", Login{Page: page(), Providers: []Provider{qrProvider}})
	m := regexp.MustCompile(`src="/\.idv/static/login\.js\?v=([0-9a-f]+)"`).FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no versioned login.js in page:\n%s", html)
	}
	w := serve(h, "GET", "login.js", "v="+m[1])
	if got := w.Header().Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
		t.Errorf("versioned Cache-Control %q", got)
	}
	etag := w.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	w = serve(h, "GET", "login.js", "v=old")
	if got := w.Header().Get("Cache-Control"); strings.Contains(got, "immutable") {
		t.Errorf("stale version Cache-Control %q", got)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.URL.Path = "login.js"
	r.Header.Set("If-None-Match", etag)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", rec.Code)
	}
}

func TestCSS(t *testing.T) {
	css, err := fs.ReadFile(embedded, "static/style.css")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"@import", "url(", "http:", "https:", "//fonts"} {
		if bytes.Contains(css, []byte(bad)) {
			t.Errorf("style.css contains %q", bad)
		}
	}
	for _, want := range []string{"prefers-color-scheme: dark", "prefers-reduced-motion: reduce", ":focus-visible", "min-height: 2.75rem", "image-rendering: pixelated"} {
		if !bytes.Contains(css, []byte(want)) {
			t.Errorf("style.css lacks %q", want)
		}
	}
}

// Every element login.js looks up by id exists on the login page.
func TestLoginScriptElements(t *testing.T) {
	js, err := fs.ReadFile(embedded, "static/login.js")
	if err != nil {
		t.Fatal(err)
	}
	s := mustLoad(t, "")
	html := render(t, s, "login", Login{Page: page(), Providers: []Provider{qrProvider, formProvider}})
	ids := regexp.MustCompile(`(?:byId|getElementById)\("([^"]+)"\)`).FindAllSubmatch(js, -1)
	if len(ids) < 10 {
		t.Fatalf("found only %d element ids in login.js", len(ids))
	}
	for _, m := range ids {
		if !strings.Contains(html, `id="`+string(m[1])+`"`) {
			t.Errorf("login.js needs #%s, which the page lacks", m[1])
		}
	}
	for _, class := range []string{"idv-view", "idv-choice", "idv-form", "idv-back", "form-error"} {
		if !strings.Contains(html, class) {
			t.Errorf("login.js needs class %s, which the page lacks", class)
		}
	}
}

func nodePath(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH")
	}
	return node
}

func TestScriptsParse(t *testing.T) {
	node := nodePath(t)
	names, err := fs.Glob(embedded, "static/*.js")
	if err != nil || len(names) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, name := range names {
		out, err := exec.Command(node, "--check", filepath.FromSlash(name)).CombinedOutput()
		if err != nil {
			t.Errorf("node --check %s: %v\n%s", name, err, out)
		}
	}
}

// harness loads login.js outside a browser, where it exports its pure
// helpers, and answers the calls listed in a JSON file. The calls travel in
// a file because the open-redirect list is too long for some command lines.
const harness = `
const h = require(process.argv[2]);
const calls = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
process.stdout.write(JSON.stringify(calls.map(c => h[c[0]](...c.slice(1)))));
`

func callJS(t *testing.T, calls [][]any) []any {
	t.Helper()
	node := nodePath(t)
	script, err := filepath.Abs("static/login.js")
	if err != nil {
		t.Fatal(err)
	}
	in, err := json.Marshal(calls)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "calls.json")
	if err := os.WriteFile(f, in, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, "-e", harness, f, script).Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var res []any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	return res
}

const origin = "https://site.example"

func TestSafeRedirect(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"path and query", "/app/page?x=1#top", "/app/page?x=1#top"},
		{"root", "/", "/"},
		{"encoded slashes stay a path", "/%2f%2fevil.example", "/%2f%2fevil.example"},
		{"dot segments are left to the server", "/a/../b", "/a/../b"},
		{"dot segment then two slashes", "/.//evil.example", "/"},
		{"dot-dot then two slashes", "/..//evil.example", "/"},
		{"encoded dot then two slashes", "/%2e//evil.example", "/"},
		{"segment, dot-dot, two slashes", "/a/..//evil.example", "/"},
		{"protocol-relative", "//evil.example/", "/"},
		{"backslash host", `/\evil.example`, "/"},
		{"tab between slashes", "/\t/evil.example", "/"},
		{"newline between slashes", "/\n/evil.example", "/"},
		{"leading space", " /app", "/"},
		{"absolute URL", "https://evil.example/", "/"},
		{"script scheme", "javascript:alert(1)", "/"},
		{"relative", "app", "/"},
		{"empty", "", "/"},
		{"missing", nil, "/"},
		{"number", 42, "/"},
	}
	var calls [][]any
	for _, tt := range tests {
		calls = append(calls, []any{"safeRedirect", tt.in, origin})
	}
	got := callJS(t, calls)
	for i, tt := range tests {
		if got[i] != tt.want {
			t.Errorf("%s: safeRedirect(%q) = %q, want %q", tt.name, tt.in, got[i], tt.want)
		}
	}
}

// Every payload of a public open-redirect list, raw and percent-decoded,
// ends on the page's own origin.
func TestSafeRedirectOpenRedirectList(t *testing.T) {
	b, err := os.ReadFile("testdata/openredirects.txt")
	if err != nil {
		t.Fatal(err)
	}
	var calls [][]any
	var inputs []string
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" {
			continue
		}
		inputs = append(inputs, line)
		calls = append(calls, []any{"safeRedirect", line, origin})
	}
	got := callJS(t, calls)
	check := make([][]any, len(got))
	for i, g := range got {
		p, _ := g.(string)
		if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, `/\`) {
			t.Errorf("safeRedirect(%q) = %q", inputs[i], p)
		}
		check[i] = []any{"isLocalPath", p, origin}
	}
	for i, ok := range callJS(t, check) {
		if ok != true {
			t.Errorf("safeRedirect(%q) = %q, which is not local", inputs[i], got[i])
		}
	}
}

func TestSafeLink(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"https://wallet.example/x?y=1", "https://wallet.example/x?y=1"},
		{"/.idv/demo/wallet/abc", origin + "/.idv/demo/wallet/abc"},
		{"blockid://auth?session=1", "blockid://auth?session=1"},
		{"javascript:alert(1)", ""},
		{"JavaScript:alert(1)", ""},
		{" javascript:alert(1)", ""},
		{"java\tscript:alert(1)", ""},
		{"data:text/html,<script>alert(1)</script>", ""},
		{"vbscript:msgbox", ""},
		{"", ""},
	}
	var calls [][]any
	for _, tt := range tests {
		calls = append(calls, []any{"safeLink", tt.in, origin})
	}
	got := callJS(t, calls)
	for i, tt := range tests {
		if got[i] != tt.want {
			t.Errorf("safeLink(%q) = %q, want %q", tt.in, got[i], tt.want)
		}
	}
}

// scriptTexts are login.js's texts in language tag, as a page carries them.
func scriptTexts(t *testing.T, tag string) map[string]any {
	t.Helper()
	s := mustLoad(t, "")
	l, ok := s.Lang(tag)
	if !ok {
		t.Fatalf("no language %s", tag)
	}
	texts, err := l.Script("login")
	if err != nil {
		t.Fatal(err)
	}
	return texts
}

func TestScriptHelpers(t *testing.T) {
	en := scriptTexts(t, "en")
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	nowMS := float64(now.UnixMilli())
	tests := []struct {
		call []any
		want any
	}{
		{[]any{"mmss", 0}, "00:00"},
		{[]any{"mmss", 59}, "00:59"},
		{[]any{"mmss", 61}, "01:01"},
		{[]any{"mmss", 600}, "10:00"},
		{[]any{"mmss", -5}, "00:00"},
		{[]any{"retryAfterSeconds", "30", nowMS}, 30.0},
		{[]any{"retryAfterSeconds", "", nowMS}, 0.0},
		{[]any{"retryAfterSeconds", "soon", nowMS}, 0.0},
		{[]any{"retryAfterSeconds", now.Add(90 * time.Second).Format(http.TimeFormat), nowMS}, 90.0},
		{[]any{"backoffSeconds", 0}, 1.0},
		{[]any{"backoffSeconds", 1}, 2.0},
		{[]any{"backoffSeconds", 2}, 4.0},
		{[]any{"backoffSeconds", 3}, 8.0},
		{[]any{"backoffSeconds", 4}, 10.0},
		{[]any{"backoffSeconds", 20}, 10.0},
		{[]any{"remainingText", 180, en}, "About 3 minutes left."},
		{[]any{"remainingText", 60, en}, "1 minute left."},
		{[]any{"remainingText", 30, en}, "30 seconds left."},
		{[]any{"remainingText", 1, en}, "1 second left."},
		{[]any{"remainingText", 180, scriptTexts(t, "ru")}, "Осталось примерно 3 минуты."},
		{[]any{"remainingText", 300, scriptTexts(t, "ru")}, "Осталось примерно 5 минут."},
		{[]any{"remainingText", 21, scriptTexts(t, "ru")}, "Осталась 21 секунда."},
		{[]any{"remainingText", 2, scriptTexts(t, "ar")}, "بقيت ثانيتان."},
		{[]any{"remainingText", 5, scriptTexts(t, "ar")}, "بقيت 5 ثوانٍ."},
		{[]any{"remainingText", 11, scriptTexts(t, "ar")}, "بقيت 11 ثانية."},
		{[]any{"remainingText", 2, scriptTexts(t, "lt")}, "Liko 2 sekundės."},
		{[]any{"remainingText", 10, scriptTexts(t, "lt")}, "Liko 10 sekundžių."},
		{[]any{"remainingText", 21, scriptTexts(t, "lv")}, "Atlikusi 21 sekunde."},
		{[]any{"remainingText", 10, scriptTexts(t, "lv")}, "Atlikušas 10 sekundes."},
		{[]any{"tr", "error_status", map[string]any{"Status": 502}, scriptTexts(t, "et")}, "Midagi läks valesti (viga 502). Palun proovi uuesti."},
		{[]any{"serverText", "The login was declined in the wallet.", "declined", scriptTexts(t, "lv")}, "Pieteikšanās tika noraidīta makā."},
		{[]any{"serverText", "Unknown English.", "declined", scriptTexts(t, "lv")}, "Pieteikšanās tika noraidīta."},
		{[]any{"serverText", "Unknown English.", "declined", en}, "Unknown English."},
		{[]any{"serverText", "", "declined", en}, "The login was declined."},
		{[]any{"resumeID", "#idv-resume=ABCDEFGHIJKLMNOPQRSTUV"}, "ABCDEFGHIJKLMNOPQRSTUV"},
		{[]any{"resumeID", "#idv-resume=short"}, ""},
		{[]any{"resumeID", "#idv-resume=../../x/ABCDEFGHIJKLMNOP"}, ""},
		{[]any{"resumeID", ""}, ""},
		{[]any{"stage", 181}, "m4"},
		{[]any{"stage", 180}, "m3"},
		{[]any{"stage", 45}, "60"},
		{[]any{"stage", 10}, "10"},
	}
	var calls [][]any
	for _, tt := range tests {
		calls = append(calls, tt.call)
	}
	got := callJS(t, calls)
	for i, tt := range tests {
		if got[i] != tt.want {
			t.Errorf("%v = %v, want %v", tt.call, got[i], tt.want)
		}
	}
}

// TestLoginScript runs login.js on rendered login pages in node, with a
// small DOM, a fake API and a virtual clock (testdata/login_harness.js).
func TestLoginScript(t *testing.T) {
	node := nodePath(t)
	s := mustLoad(t, "")
	dir := t.TempDir()
	pages := map[string][]Provider{
		"qr":     {qrProvider},
		"choice": {qrProvider, formProvider},
		"form":   {formProvider},
	}
	for name, providers := range pages {
		html := render(t, s, "login", Login{Page: page(), RD: "/app", Providers: providers})
		writeFile(t, dir, name+".html", html)
	}
	et, _ := s.Lang("et")
	var buf bytes.Buffer
	if err := s.Render(&buf, "login", et, Login{Page: page(), RD: "/app", Providers: []Provider{qrProvider}}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "qr-et.html", buf.String())
	tests := []struct{ scenario, page string }{
		{"qr completes", "qr"},
		{"qr completes with foreign redirect", "qr"},
		{"qr declined and retried", "qr"},
		{"qr countdown expires", "qr"},
		{"qr clock skew", "qr"},
		{"qr rate limited", "qr"},
		{"qr start error", "qr"},
		{"qr poll backoff", "qr"},
		{"qr poll refused", "qr"},
		{"qr on a phone", "qr"},
		{"resume", "qr"},
		{"resume refused", "qr"},
		{"translated", "qr-et"},
		{"choice and form", "choice"},
		{"single form", "form"},
		{"reload resumes", "qr"},
		{"no autostart", "qr"},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			out, err := exec.Command(node, "testdata/login_harness.js", "static/login.js",
				filepath.Join(dir, tt.page+".html"), tt.scenario).CombinedOutput()
			if err != nil || string(out) != "ok\n" {
				t.Errorf("%v\n%s", err, out)
			}
		})
	}
}
