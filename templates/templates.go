package templates

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

//go:embed *.html static locales
var embedded embed.FS

// layoutFile is the document every page is rendered in.
const layoutFile = "layout.html"

// pages are the names Render accepts; page p lives in the file p + ".html".
var pages = []string{"login", "error", "wallet"}

// Options configure a Set.
type Options struct {
	// Dir is the operator's templates directory: its layout.html,
	// login.html, error.html and wallet.html replace the embedded ones, and
	// its locales/<tag>.json add and replace messages. "" for none.
	Dir string
	// Languages are the languages offered, the default first.
	// Default: DefaultLanguages.
	Languages []string
	// Accent is a CSS colour (CheckColour) for links, buttons and focus
	// rings, served as the generated stylesheet theme.css. "" keeps the
	// built-in colours.
	Accent string
}

// Set is a parsed set of page templates, one copy per offered language, and
// the messages and static assets they use.
type Set struct {
	// pages[lang][name]: every language has its own copy of each page, whose
	// functions (t, tn, text, ...) speak that language.
	pages  map[string]map[string]*template.Template
	cat    *catalogue
	static map[string]staticFile
}

// Load is New with only an override directory.
func Load(dir string) (*Set, error) { return New(Options{Dir: dir}) }

// New parses the embedded templates; when opts.Dir is not "", a file there
// with the same name (login.html, error.html, wallet.html, layout.html)
// replaces the embedded one. Static assets stay embedded. A template that
// does not parse is an error naming the file.
//
// Each page is also executed once in every language with sample data, so
// that a template that parses but cannot run (a misspelt field, an unknown
// message, no "content" template) is refused when the configuration loads,
// not when a person opens the page.
func New(opts Options) (*Set, error) {
	dir := opts.Dir
	if dir != "" {
		fi, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("templates: override directory: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("templates: override directory %s: not a directory", dir)
		}
	}
	cat, err := loadCatalogue(dir, opts.Languages)
	if err != nil {
		return nil, err
	}
	files := staticFiles()
	if opts.Accent != "" {
		accent, err := parseColour(opts.Accent)
		if err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
		files["theme.css"] = newStaticFile("theme.css", themeCSS(accent))
	}
	// The functions that speak a language are bound per language below;
	// these stand-ins let the templates parse.
	funcs := langFuncs(cat.langs[0], files)

	src, from, err := source(dir, layoutFile)
	if err != nil {
		return nil, err
	}
	layout, err := template.New(layoutFile).Funcs(funcs).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("templates: parse %s: %w", from, err)
	}

	s := &Set{pages: map[string]map[string]*template.Template{}, cat: cat, static: files}
	for _, name := range pages {
		file := name + ".html"
		src, from, err := source(dir, file)
		if err != nil {
			return nil, err
		}
		t, err := layout.Clone()
		if err != nil {
			return nil, fmt.Errorf("templates: %s: %w", file, err)
		}
		if _, err := t.New(file).Parse(src); err != nil {
			return nil, fmt.Errorf("templates: parse %s: %w", from, err)
		}
		if t.Lookup("content") == nil {
			return nil, fmt.Errorf("templates: %s defines no \"content\" template", from)
		}
		for _, l := range cat.langs {
			lt, err := t.Clone()
			if err != nil {
				return nil, fmt.Errorf("templates: %s: %w", file, err)
			}
			lt.Funcs(langFuncs(l, files))
			for _, data := range samples(name) {
				if err := lt.ExecuteTemplate(io.Discard, layoutFile, s.prepare(data, l)); err != nil {
					return nil, fmt.Errorf("templates: check %s (%s): %w", from, l.Tag, err)
				}
			}
			if s.pages[l.Tag] == nil {
				s.pages[l.Tag] = map[string]*template.Template{}
			}
			s.pages[l.Tag][name] = lt
		}
	}
	return s, nil
}

// langFuncs are the template functions, speaking language l:
//
//	asset "login.js"            a static file's name with its version
//	t "id" ["Key" value]...     message id
//	tn "id" n ["Key" value]...  plural message id for count n
//	tparts "id" "Key" [...]     message id cut at argument Key: [before, after]
//	text s                      a message id, an English text of the Go code
//	                            translated, or s as it is (an operator's label)
//	heading s code              an error heading: text, else the status's
//	message s code              an error message: text, or in another language
//	                            than English a generic one when s is unknown
//	kind k "use"                a text about provider kind k
//	status code                 the heading for an HTTP status
//	script "login"              the texts of a page script, as JSON data
func langFuncs(l *Lang, files map[string]staticFile) template.FuncMap {
	return template.FuncMap{
		"asset": assetFunc(files),
		"t":     l.T,
		"tn":    l.N,
		"tparts": func(id, key string, kv ...any) ([]string, error) {
			const mark = "\x00idv-cut\x00"
			s, err := l.T(id, append(append([]any{}, kv...), key, mark)...)
			if err != nil {
				return nil, err
			}
			before, after, ok := strings.Cut(s, mark)
			if !ok {
				return nil, fmt.Errorf("templates: message %s (%s) does not use {{.%s}}", id, l.Tag, key)
			}
			return []string{before, after}, nil
		},
		"text":    l.Text,
		"message": l.Message,
		"heading": l.Heading,
		"kind":    l.Kind,
		"status":  l.Status,
		"script":  l.Script,
	}
}

// source returns the text of file, from dir when it is there, else embedded,
// and the name to use for it in errors.
func source(dir, file string) (text, from string, err error) {
	if dir != "" {
		p := filepath.Join(dir, file)
		b, err := os.ReadFile(p)
		if err == nil {
			return string(b), p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("templates: read %s: %w", p, err)
		}
	}
	b, err := embedded.ReadFile(file)
	if err != nil {
		return "", "", fmt.Errorf("templates: embedded %s: %w", file, err)
	}
	return string(b), file, nil
}

// samples are data that exercise every branch a page template may take.
func samples(name string) []any {
	page := Page{Title: "Sample", Prefix: "/.idv", Site: "Sample", Logo: "/logo.svg",
		Languages: []Language{{Tag: "en", Name: "English", URL: "?lang=en", Current: true}, {Tag: "et", Name: "Eesti", URL: "?lang=et"}}}
	bare := Page{Prefix: "/.idv"}
	switch name {
	case "login":
		providers := []Provider{
			{Name: "demo", Label: "Demo wallet", Kind: "demo", Flow: "qr", Qualifier: "demo"},
			{Name: "mobileid", Label: "Mobile-ID", Description: "Sample", Kind: "marksign_mobileid", Flow: "form", Fields: []Field{
				{Name: "phone", Label: "Phone number", Type: "tel", Autocomplete: "tel", InputMode: "tel", Pattern: `\+[0-9]{7,15}`, Hint: "With country code"},
			}},
		}
		return []any{
			Login{Page: page, RD: "/", Client: "Sample", Providers: providers},
			Login{Page: bare, RD: "/", Providers: providers[:1]},
			Login{Page: page, RD: "/"},
		}
	case "error":
		return []any{
			Error{Page: page, Status: 500, Heading: "Error", Message: "Sample", RetryURL: "/"},
			Error{Page: bare, Status: 429, RetryAfter: 2},
		}
	default:
		var out []any
		for _, state := range []string{"pending", "approved", "declined", "expired", "unknown"} {
			for _, same := range []bool{false, true} {
				w := Wallet{Page: page, ID: "id", User: "Sample", ExpiresAt: time.Unix(0, 0), State: state, SameDevice: same,
					ApproveURL: "/.idv/demo/wallet/id/approve", DeclineURL: "/.idv/demo/wallet/id/decline"}
				if same {
					w.ReturnURL = "/.idv/login"
				}
				out = append(out, w)
			}
		}
		return out
	}
}

// Render executes page name ("login", "error", "wallet") in language l
// (nil: the default) with data into w. It sets the page's Lang, Dir and
// Theme. It renders into a buffer first, so a failing template never sends
// half a page. It sets no headers: the caller sends Content-Type and the
// Content-Security-Policy the pages are written for.
func (s *Set) Render(w io.Writer, name string, l *Lang, data any) error {
	if l == nil {
		l = s.Default()
	}
	t, ok := s.pages[l.Tag][name]
	if !ok {
		return fmt.Errorf("templates: no page %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, layoutFile, s.prepare(data, l)); err != nil {
		return fmt.Errorf("templates: render %s: %w", name, err)
	}
	_, err := buf.WriteTo(w)
	return err
}

// prepare sets what the Set decides of a page: its language, direction and
// theme stylesheet.
func (s *Set) prepare(data any, l *Lang) any {
	return WithPage(data, func(p *Page) {
		p.Lang, p.Dir = l.Tag, l.Dir
		p.Theme = ""
		if f, ok := s.static["theme.css"]; ok {
			p.Theme = p.Prefix + "/static/theme.css?v=" + f.version
		}
	})
}

// WithPage returns a copy of page data (Login, Error or Wallet, or a
// pointer to one) with f applied to its Page. Other data is returned as it
// is.
func WithPage(data any, f func(*Page)) any {
	switch d := data.(type) {
	case Login:
		f(&d.Page)
		return d
	case *Login:
		c := *d
		f(&c.Page)
		return &c
	case Error:
		f(&d.Page)
		return d
	case *Error:
		c := *d
		f(&c.Page)
		return &c
	case Wallet:
		f(&d.Page)
		return d
	case *Wallet:
		c := *d
		f(&c.Page)
		return &c
	case Page:
		f(&d)
		return d
	case *Page:
		c := *d
		f(&c)
		return &c
	}
	return data
}

// staticFile is one embedded asset, ready to serve.
type staticFile struct {
	body        []byte
	contentType string
	version     string // a prefix of the SHA-256 of body
}

// contentTypes are the types of the asset kinds we ship. They are fixed here
// rather than taken from the system's MIME tables, which differ between hosts.
var contentTypes = map[string]string{
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".webp": "image/webp",
}

// staticFiles reads the embedded assets, keyed by their path relative to
// static/. Only these names are ever served, so no request path can reach
// another file.
func staticFiles() map[string]staticFile {
	files := make(map[string]staticFile)
	root, err := fs.Sub(embedded, "static")
	if err != nil {
		panic("templates: embedded static/ is missing: " + err.Error())
	}
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		files[p] = newStaticFile(p, b)
		return nil
	})
	if err != nil {
		panic("templates: read embedded static/: " + err.Error())
	}
	return files
}

func newStaticFile(name string, body []byte) staticFile {
	ct, ok := contentTypes[path.Ext(name)]
	if !ok {
		ct = "application/octet-stream"
	}
	sum := sha256.Sum256(body)
	return staticFile{body: body, contentType: ct, version: hex.EncodeToString(sum[:6])}
}

// assetFunc is the template function "asset": the name of a static asset
// with its content version as query, such as "login.js?v=0f3a...", so that
// browsers may cache it for a year and still fetch a new version at once.
func assetFunc(files map[string]staticFile) func(string) (string, error) {
	return func(name string) (string, error) {
		f, ok := files[name]
		if !ok {
			return "", fmt.Errorf("templates: no static asset %q", name)
		}
		return name + "?v=" + f.version, nil
	}
}

// Static serves the embedded assets (style.css, login.js, wallet.js). It
// strips nothing: r.URL.Path is the file name relative to static/, such as
// "login.js" (one leading "/" is tolerated); the caller strips its prefix.
// Unknown names, including every path that tries to climb out of static/,
// are 404.
//
// A request whose "v" query matches the asset's content version (the URLs
// the templates build with "asset") may be cached for a year as immutable;
// any other is cached for a day and revalidated by ETag.
func Static() http.Handler { return serveStatic(staticFiles()) }

// Static serves the set's assets: the embedded ones and, with an accent,
// the generated theme.css.
func (s *Set) Static() http.Handler { return serveStatic(s.static) }

func serveStatic(files map[string]staticFile) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/")
		f, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.contentType)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("ETag", `"`+f.version+`"`)
		if r.URL.Query().Get("v") == f.version {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "public, max-age=86400")
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
	})
}
