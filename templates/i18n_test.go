package templates

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// catalogue reads the embedded messages of one language, as written.
func catalogueFile(t *testing.T, tag string) map[string]any {
	t.Helper()
	b, err := fs.ReadFile(embedded, "locales/"+tag+".json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s.json: %v", tag, err)
	}
	return m
}

// forms are a message's texts: one, or one per plural form.
func forms(v any) map[string]string {
	switch v := v.(type) {
	case string:
		return map[string]string{"other": v}
	case map[string]any:
		out := map[string]string{}
		for k, s := range v {
			if k != "description" {
				out[k], _ = s.(string)
			}
		}
		return out
	}
	return nil
}

var argRE = regexp.MustCompile(`\{\{\s*\.([A-Za-z]+)\s*\}\}`)

func argsOf(s string) []string {
	var out []string
	for _, m := range argRE.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// sameInEveryLanguage are messages that are names, not words: they may read
// the same as in English.
var sameInEveryLanguage = map[string]bool{
	"msg.uqudo.label":    true, // a brand, written in lower case
	"msg.marksign.label": true, // "Mobile-ID" (Mobiil-ID in Estonian, Mobilus parašas in Lithuanian)
}

// Every language the module ships has every message, translated: the same
// arguments as the English one (a plural form may leave out the count, as
// Arabic's "one" and "two" do), and a text of its own.
func TestCataloguesAreTranslated(t *testing.T) {
	en := catalogueFile(t, "en")
	for _, tag := range DefaultLanguages()[1:] {
		t.Run(tag, func(t *testing.T) {
			cat := catalogueFile(t, tag)
			for id := range cat {
				if _, ok := en[id]; !ok {
					t.Errorf("%s has %s, which English lacks", tag, id)
				}
			}
			for id, ev := range en {
				v, ok := cat[id]
				if !ok {
					t.Errorf("untranslated: %s", id)
					continue
				}
				ef, f := forms(ev), forms(v)
				want := argsOf(ef["other"])
				for form, s := range f {
					got := argsOf(s)
					if form == "other" && !slices.Equal(got, want) {
						t.Errorf("%s: arguments %v, English has %v: %q", id, got, want, s)
					}
					for _, a := range got {
						if !slices.Contains(want, a) {
							t.Errorf("%s (%s): argument %s is not the English one's: %q", id, form, a, s)
						}
					}
					if s == "" {
						t.Errorf("%s (%s): empty", id, form)
					}
				}
				if f["other"] == ef["other"] && !sameInEveryLanguage[id] {
					t.Errorf("%s is the English text %q", id, f["other"])
				}
			}
		})
	}
}

// personText finds the texts a person may see in the module's Go code: every
// string literal that is a sentence (a capital letter or "uqudo", spaces, a
// full stop), and every Label and Hint of a composite literal.
func personTexts(t *testing.T, dirs ...string) map[string]string {
	t.Helper()
	sentence := regexp.MustCompile(`^(?:[A-Z]|uqudo)[^\n]* [^\n]*[.?!]$`)
	found := map[string]string{}
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			// The fake services speak to the module, not to people.
			if d.IsDir() && strings.HasPrefix(d.Name(), "fake") {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			// Metric descriptions speak to operators, in English.
			if strings.HasPrefix(d.Name(), "metrics") {
				return nil
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, p, nil, 0)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.KeyValueExpr:
					k, ok1 := n.Key.(*ast.Ident)
					v, ok2 := n.Value.(*ast.BasicLit)
					if ok1 && ok2 && v.Kind == token.STRING && (k.Name == "Label" || k.Name == "Hint") {
						s, _ := strconv.Unquote(v.Value)
						found[s] = fset.Position(v.Pos()).String()
					}
				case *ast.BasicLit:
					if n.Kind != token.STRING {
						return true
					}
					if s, _ := strconv.Unquote(n.Value); sentence.MatchString(s) {
						found[s] = fset.Position(n.Pos()).String()
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return found
}

// Every text a person may see that the providers and the module's API write
// in Go is in the catalogues, so pages show it translated. A new one fails
// here until it is added to locales/*.json as a "msg." message.
func TestGoTextsAreInTheCatalogues(t *testing.T) {
	s := mustLoad(t, "")
	l := s.Default()
	texts := personTexts(t, "../providers", "../caddymodule", "../login")
	if len(texts) < 60 {
		t.Fatalf("found only %d texts; is the scan broken?", len(texts))
	}
	for text, where := range texts {
		if !l.Known(text) {
			t.Errorf("%s: %q is not in the catalogues (add it to templates/locales/*.json as a msg. message)", where, text)
		}
	}
}

// englishWords are words of English that none of the other languages uses;
// one of them on a page in another language is an untranslated text.
var englishWords = regexp.MustCompile(`(?i)\b(the|and|your|you|this|with|please|login|log in|try again|scan|phone|approve|decline|wallet|choose|continue|error)\b`)

// messageID matches a message id that was shown instead of its text.
var messageID = regexp.MustCompile(`\b(?:login|layout|script|kind|error|status|wallet|msg|language)\.[a-z0-9_.]+\b`)

// visibleText is what a page shows a person: its text, and the alt, title,
// placeholder and aria-label attributes, but not scripts, data blocks or
// data-* attributes (those are checked where the script shows them).
func visibleText(t *testing.T, page string) string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "script" || n.Data == "style") {
			return
		}
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
			b.WriteByte(' ')
		}
		for _, a := range n.Attr {
			if a.Key == "alt" || a.Key == "title" || a.Key == "placeholder" || a.Key == "aria-label" {
				b.WriteString(a.Val)
				b.WriteByte(' ')
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return b.String()
}

// views are every page a person sees, with every provider kind and field,
// each outcome of the wallet, and error pages with a known, an unknown and
// a rate-limit message. The operator's own texts (site, user, application)
// are not English words.
func views() map[string]struct {
	page string
	data any
} {
	p := Page{Prefix: "/.idv", Site: "Kaubamaja", Logo: "/logo.svg"}
	all := []Provider{
		{Name: "demo", Label: "Demo wallet", Kind: "demo", Flow: "qr"},
		{Name: "blockid", Label: "BlockID app", Kind: "blockid", Flow: "qr"},
		{Name: "uqudo", Label: "uqudo", Kind: "uqudo", Flow: "qr"},
		{Name: "idv", Label: "ID document (1Kosmos)", Kind: "onekosmos_idv", Flow: "qr"},
		{Name: "mobileid", Label: "Mobile-ID", Kind: "marksign_mobileid", Flow: "form", Fields: []Field{
			{Name: "phone", Label: "Phone number", Type: "tel", Autocomplete: "tel", InputMode: "tel",
				Pattern: `\+?[0-9 ()\-]{8,20}`, Hint: "With the country code, e.g. +372 5123 4567 or +370 612 34567"},
			{Name: "personal_code", Label: "Personal code", Type: "text", Autocomplete: "off", InputMode: "numeric", Pattern: `[0-9]{11}`, Hint: "11 digits"},
		}},
	}
	wallet := func(state string, same bool) Wallet {
		w := Wallet{Page: p, ID: "abc", User: "Mari Maasikas", ExpiresAt: time.Date(2026, 11, 22, 10, 5, 0, 0, time.UTC), State: state,
			ApproveURL: "/.idv/demo/wallet/abc/approve", DeclineURL: "/.idv/demo/wallet/abc/decline", SameDevice: same}
		if same && state != "pending" {
			w.ReturnURL = "/.idv/login#idv-resume=abc"
		}
		return w
	}
	out := map[string]struct {
		page string
		data any
	}{
		"login, every kind":          {"login", Login{Page: p, RD: "/", Providers: all}},
		"login, one provider":        {"login", Login{Page: p, RD: "/", Providers: all[:1]}},
		"login, for an app":          {"login", Login{Page: p, RD: "/", Client: "Grafana", Providers: all}},
		"login, none":                {"login", Login{Page: p, RD: "/"}},
		"error, known message":       {"error", Error{Page: p, Status: 400, Message: "Choose one of the offered login methods.", RetryURL: "/.idv/login"}},
		"error, status text":         {"error", Error{Page: p, Status: 503, Message: "Logging in is unavailable right now. Try again shortly."}},
		"error, unknown message":     {"error", Error{Page: p, Status: 502, Heading: "Gateway trouble", Message: "Some English from a provider."}},
		"error, rate limited":        {"error", Error{Page: p, Status: 429, RetryAfter: 30, RetryURL: "/.idv/login"}},
		"error, unknown status":      {"error", Error{Page: p, Status: 418}},
		"wallet, pending":            {"wallet", wallet("pending", false)},
		"wallet, pending here":       {"wallet", wallet("pending", true)},
		"wallet, approved":           {"wallet", wallet("approved", false)},
		"wallet, approved here":      {"wallet", wallet("approved", true)},
		"wallet, declined":           {"wallet", wallet("declined", false)},
		"wallet, declined here":      {"wallet", wallet("declined", true)},
		"wallet, expired":            {"wallet", wallet("expired", false)},
		"wallet, unknown login":      {"wallet", wallet("unknown", false)},
		"login, form provider alone": {"login", Login{Page: p, RD: "/", Providers: all[4:]}},
	}
	return out
}

// TestEveryViewInEveryLanguage renders every view in every language the
// module ships and fails on a message id shown instead of its text, on an
// English catalogue text or English word on a page in another language,
// and on a page whose lang and dir are not its language's.
func TestEveryViewInEveryLanguage(t *testing.T) {
	s := mustLoad(t, "")
	en := s.Default()
	// The English texts a page could show, long enough not to be a name.
	var english []string
	for id, m := range en.messages {
		if sameInEveryLanguage[id] || plural(m) {
			continue
		}
		if text := m.Other; len(text) >= 8 && !strings.Contains(text, "{{") {
			english = append(english, text)
		}
	}
	for _, l := range s.Languages() {
		for name, v := range views() {
			t.Run(l.Tag+"/"+name, func(t *testing.T) {
				var buf bytes.Buffer
				if err := s.Render(&buf, v.page, l, v.data); err != nil {
					t.Fatal(err)
				}
				page := buf.String()
				checkLanguage(t, page, l)
				text := visibleText(t, page)
				if m := messageID.FindString(text); m != "" {
					t.Errorf("message id %q shown: %s", m, text)
				}
				if l.Tag == "en" {
					return
				}
				for _, e := range english {
					if strings.Contains(text, e) {
						t.Errorf("English text %q on the %s page", e, l.Tag)
					}
				}
				if m := englishWords.FindString(text); m != "" {
					t.Errorf("English word %q on the %s page: %s", m, l.Tag, text)
				}
				// The texts login.js shows come with the page.
				texts, err := l.Script("login")
				if err != nil {
					t.Fatal(err)
				}
				b, _ := json.Marshal(texts["text"])
				if m := englishWords.FindString(argRE.ReplaceAllString(string(b), "")); m != "" {
					t.Errorf("English word %q in login.js's %s texts: %s", m, l.Tag, b)
				}
			})
		}
	}
}

// checkLanguage checks a page's lang and dir, and that the switcher and the
// data block carry the same language.
func checkLanguage(t *testing.T, page string, l *Lang) {
	t.Helper()
	want := `<html lang="` + l.Tag + `" dir="` + l.Dir + `">`
	if !strings.Contains(page, want) {
		t.Errorf("page lacks %s", want)
	}
	if (l.Tag == "ar") != (l.Dir == "rtl") {
		t.Errorf("%s has dir %s", l.Tag, l.Dir)
	}
	if strings.Contains(page, `id="idv-text"`) && !strings.Contains(page, `"lang":"`+l.Tag+`"`) {
		t.Errorf("the script's texts are not in %s", l.Tag)
	}
}

func TestNegotiate(t *testing.T) {
	s := mustLoad(t, "")
	tests := []struct {
		name, query, cookie, accept string
		want                        string
		chosen                      bool
	}{
		{"nothing", "", "", "", "en", false},
		{"Accept-Language", "", "", "et-EE,et;q=0.9,en;q=0.5", "et", false},
		{"Accept-Language, a region", "", "", "ru-LV", "ru", false},
		{"Accept-Language, Gulf Arabic", "", "", "ar-AE,en;q=0.5", "ar", false},
		{"Accept-Language, second choice", "", "", "de-DE,de;q=0.9,lv;q=0.5", "lv", false},
		{"Accept-Language, none offered", "", "", "fi,de;q=0.5", "en", false},
		{"Accept-Language, Ukrainian is not answered in Russian", "", "", "uk", "en", false},
		{"Accept-Language, garbage", "", "", ";;;q=x", "en", false},
		{"query wins", "lt", "", "et", "lt", true},
		{"query with a region", "lt-LT", "", "", "lt", true},
		{"unknown query is ignored", "fi", "", "et", "et", false},
		{"malformed query is ignored", "<script>", "", "et", "et", false},
		{"cookie", "", "lv", "et", "lv", false},
		{"query beats cookie", "ar", "lv", "et", "ar", true},
		{"unknown cookie is ignored", "", "zz", "ru", "ru", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/.idv/login?lang="+strings.ReplaceAll(tt.query, "<", "%3C"), nil)
			if tt.query == "" {
				r.URL.RawQuery = ""
			}
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: LanguageCookie, Value: tt.cookie})
			}
			if tt.accept != "" {
				r.Header.Set("Accept-Language", tt.accept)
			}
			l, chosen := s.Negotiate(r)
			if l.Tag != tt.want || chosen != tt.chosen {
				t.Errorf("Negotiate = %s, %v; want %s, %v", l.Tag, chosen, tt.want, tt.chosen)
			}
		})
	}
}

func TestLanguagesOption(t *testing.T) {
	s, err := New(Options{Languages: []string{"et", "ru"}})
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, l := range s.Languages() {
		tags = append(tags, l.Tag)
	}
	if strings.Join(tags, " ") != "et ru" || s.Default().Tag != "et" {
		t.Errorf("languages %v, default %s", tags, s.Default().Tag)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Accept-Language", "en-US,en")
	if l, _ := s.Negotiate(r); l.Tag != "et" {
		t.Errorf("a language not offered got %s, want the default et", l.Tag)
	}
	if _, ok := s.Lang("en"); ok {
		t.Error("English is offered although not listed")
	}
	for _, bad := range [][]string{{"fi"}, {"en", "en"}, {"not a tag"}} {
		if _, err := New(Options{Languages: bad}); err == nil {
			t.Errorf("languages %v accepted", bad)
		}
	}
}

// An operator's templates directory adds messages for its own templates,
// replaces single texts and adds a language; a language that lacks a
// message or a plural form is refused when the configuration loads.
func TestOperatorCatalogues(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "locales"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "login.html", `{{define "content"}}<h1>{{t "login.heading" "Site" .Site}}</h1><p>{{t "intranet.help"}}</p>{{end}}`)
	writeFile(t, filepath.Join(dir, "locales"), "en.json", `{"intranet.help": "Ask the service desk.", "login.heading": "Sign in to {{.Site}}"}`)
	writeFile(t, filepath.Join(dir, "locales"), "et.json", `{"intranet.help": "Küsi klienditoelt."}`)
	s, err := New(Options{Dir: dir, Languages: []string{"en", "et"}})
	if err != nil {
		t.Fatal(err)
	}
	et, _ := s.Lang("et")
	for l, want := range map[*Lang][]string{
		s.Default(): {"<h1>Sign in to Kaubamaja</h1>", "<p>Ask the service desk.</p>"},
		et:          {"<h1>Logi sisse teenusesse Kaubamaja</h1>", "<p>Küsi klienditoelt.</p>"},
	} {
		var buf bytes.Buffer
		if err := s.Render(&buf, "login", l, Login{Page: Page{Prefix: "/.idv", Site: "Kaubamaja"}}); err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("%s page lacks %q", l.Tag, w)
			}
		}
	}
	if _, err := New(Options{Dir: dir, Languages: []string{"en", "ru"}}); err == nil || !strings.Contains(err.Error(), "intranet.help") {
		t.Errorf("Russian without intranet.help: %v", err)
	}

	// A new language: every message, with the plural forms its rules need.
	fi := map[string]any{}
	for id, v := range catalogueFile(t, "en") {
		fi[id] = v
	}
	fi["intranet.help"] = "Kysy palvelupisteestä."
	b, _ := json.Marshal(fi)
	writeFile(t, filepath.Join(dir, "locales"), "fi.json", string(b))
	if _, err := New(Options{Dir: dir, Languages: []string{"fi", "en"}}); err != nil {
		t.Errorf("a complete Finnish catalogue: %v", err)
	}
	delete(fi, "wallet.approve")
	b, _ = json.Marshal(fi)
	writeFile(t, filepath.Join(dir, "locales"), "fi.json", string(b))
	for _, langs := range [][]string{{"fi"}, {"fi", "en"}} {
		if _, err := New(Options{Dir: dir, Languages: langs}); err == nil || !strings.Contains(err.Error(), "lacks messages wallet.approve") {
			t.Errorf("languages %v, Finnish without wallet.approve: %v", langs, err)
		}
	}
	// Russian needs "few" and "many" for counts such as 2 and 5.
	writeFile(t, filepath.Join(dir, "locales"), "ru.json", `{"intranet.help": "Спросите службу поддержки.", "script.login.seconds_left": {"one": "{{.Count}} секунда", "other": "{{.Count}} секунды"}}`)
	if _, err := New(Options{Dir: dir, Languages: []string{"ru"}}); err == nil || !strings.Contains(err.Error(), "seconds_left") {
		t.Errorf("Russian without its plural forms: %v", err)
	}
	writeFile(t, filepath.Join(dir, "locales"), "xx-bad.json", `{}`)
	if _, err := New(Options{Dir: dir, Languages: []string{"en"}}); err == nil || !strings.Contains(err.Error(), "xx-bad.json") {
		t.Errorf("a file not named by a language tag: %v", err)
	}
}

func TestColour(t *testing.T) {
	good := map[string]string{
		"#0b57d0":              "#0b57d0",
		"#FFF":                 "#ffffff",
		"#0b57d0cc":            "#0b57d0",
		"rgb(11, 87, 208)":     "#0b57d0",
		"rgba(11,87,208,0.5)":  "#0b57d0",
		"rgb(11 87 208 / 50%)": "#0b57d0",
		"rgb(100%, 0%, 0%)":    "#ff0000",
		"hsl(120, 100%, 25%)":  "#008000",
		"hsl(120deg 100% 25%)": "#008000",
		"hsla(0, 0%, 0%, 1)":   "#000000",
		"rebeccapurple":        "#663399",
		"DarkGreen":            "#006400",
	}
	for in, want := range good {
		c, err := parseColour(in)
		if err != nil {
			t.Errorf("parseColour(%q): %v", in, err)
			continue
		}
		if c.hex() != want {
			t.Errorf("parseColour(%q) = %s, want %s", in, c.hex(), want)
		}
	}
	for _, bad := range []string{"", "#12", "#ggg", "blue;}", "red; background: url(x)", "url(x)", "rgb(1,2)", "hsl(1, 2, 3)",
		"expression(alert(1))", "var(--x)", "rgb(1,2,3,4,5)", "nosuchcolour", "</style>"} {
		if err := CheckColour(bad); err == nil {
			t.Errorf("CheckColour(%q) accepted", bad)
		}
	}
	// Whatever the accent, text in it and text on it stay readable (WCAG
	// AA) in both colour schemes.
	for _, in := range []string{"yellow", "white", "black", "#777777", "#0b57d0", "hsl(60, 100%, 50%)", "navy", "lime"} {
		c, _ := parseColour(in)
		for _, bg := range []rgb{lightBackground, darkBackground} {
			a := readableOn(c, bg)
			if contrast(a, bg) < minContrast {
				t.Errorf("%s on %s: contrast %.2f", in, bg.hex(), contrast(a, bg))
			}
			if contrast(onAccent(a), a) < minContrast {
				t.Errorf("text on %s (from %s): contrast %.2f", a.hex(), in, contrast(onAccent(a), a))
			}
		}
	}
}

// With an accent the pages link a generated stylesheet, which Static
// serves; it holds only the two colours, in both schemes.
func TestTheme(t *testing.T) {
	s, err := New(Options{Accent: "yellow"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Render(&buf, "login", nil, Login{Page: Page{Prefix: "/.idv"}}); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`<link rel="stylesheet" href="/\.idv/static/theme\.css\?v=([0-9a-f]+)">`).FindStringSubmatch(buf.String())
	if m == nil {
		t.Fatalf("no theme stylesheet:\n%s", buf.String())
	}
	w := serve(s.Static(), "GET", "theme.css", "v="+m[1])
	css := w.Body.String()
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/css; charset=utf-8" || !strings.Contains(w.Header().Get("Cache-Control"), "immutable") {
		t.Fatalf("theme.css: %d %v", w.Code, w.Header())
	}
	if !regexp.MustCompile(`^/\* Generated from the idv block's accent option\. \*/
:root \{
  --accent: #[0-9a-f]{6};
  --on-accent: #[0-9a-f]{6};
\}

@media \(prefers-color-scheme: dark\) \{
  :root \{
    --accent: #[0-9a-f]{6};
    --on-accent: #[0-9a-f]{6};
  \}
\}
$`).MatchString(css) {
		t.Errorf("theme.css:\n%s", css)
	}
	light := regexp.MustCompile(`--accent: (#[0-9a-f]{6})`).FindStringSubmatch(css)[1]
	if strings.Contains(css, "yellow") || light == "#ffff00" {
		t.Errorf("yellow links on white are unreadable; theme.css did not darken it:\n%s", css)
	}
	plain := mustLoad(t, "")
	if w := serve(plain.Static(), "GET", "theme.css", ""); w.Code != 404 {
		t.Errorf("theme.css without an accent: %d", w.Code)
	}
	if _, err := New(Options{Accent: "red; }"}); err == nil {
		t.Error("a broken accent was accepted")
	}
}

// Each real kind tells the person what to use, on its button and in the
// login's heading, in the page's language.
func TestKindsSayWhatToUse(t *testing.T) {
	s := mustLoad(t, "")
	p := Page{Prefix: "/.idv", Site: "Kaubamaja"}
	login := Login{Page: p, Providers: []Provider{
		{Name: "blockid", Label: "BlockID app", Kind: "blockid", Flow: "qr"},
		{Name: "uqudo", Label: "uqudo", Kind: "uqudo", Flow: "qr"},
		{Name: "idv", Label: "ID document (1Kosmos)", Kind: "onekosmos_idv", Flow: "qr"},
		{Name: "mobileid", Label: "Mobile-ID", Kind: "marksign_mobileid", Flow: "form"},
	}}
	want := map[string][]string{
		"en": {
			`<span class="choice-desc">Scan with the BlockID app</span>`,
			`data-scan="Scan the QR code with the BlockID app" data-open="Log in with the BlockID app on this device" data-button="Open the BlockID app"`,
			`<span class="choice-desc">Open the uqudo app</span>`,
			`data-button="Open the uqudo app"`,
			`<span class="choice-desc">Scan your identity document and take a selfie</span>`,
			`<span class="choice-desc">Mobile-ID: you will be asked for your PIN1</span>`,
			`data-confirm="Check the code, then enter your PIN1 on your phone"`,
		},
		"et": {
			`<span class="choice-label">BlockID rakendus</span>`,
			`<span class="choice-desc">Skanni BlockID rakendusega</span>`,
			`<span class="choice-desc">Ava uqudo rakendus</span>`,
			`<span class="choice-desc">Mobiil-ID: sinult küsitakse PIN1-koodi</span>`,
		},
		"ru": {`<span class="choice-desc">Отсканируйте приложением BlockID</span>`, `data-button="Открыть приложение uqudo"`},
	}
	for tag, wants := range want {
		l, _ := s.Lang(tag)
		var buf bytes.Buffer
		if err := s.Render(&buf, "login", l, login); err != nil {
			t.Fatal(err)
		}
		for _, w := range wants {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("%s login page lacks %s", tag, w)
			}
		}
	}
}
