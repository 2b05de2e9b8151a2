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

//go:embed *.html static
var embedded embed.FS

// layoutFile is the document every page is rendered in.
const layoutFile = "layout.html"

// pages are the names Render accepts; page p lives in the file p + ".html".
var pages = []string{"login", "error", "wallet"}

// Set is a parsed set of page templates.
type Set struct {
	pages map[string]*template.Template
}

// Load parses the embedded templates; when dir is not "", a file in dir with
// the same name (login.html, error.html, wallet.html, layout.html) replaces
// the embedded one. Static assets stay embedded. A template that does not
// parse is an error naming the file.
//
// Each page is also executed once with sample data, so that a template that
// parses but cannot run (a misspelt field, no "content" template) is refused
// when the configuration loads, not when a person opens the page.
func Load(dir string) (*Set, error) {
	if dir != "" {
		fi, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("templates: override directory: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("templates: override directory %s: not a directory", dir)
		}
	}
	funcs := template.FuncMap{"asset": assetFunc(staticFiles())}

	src, from, err := source(dir, layoutFile)
	if err != nil {
		return nil, err
	}
	layout, err := template.New(layoutFile).Funcs(funcs).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("templates: parse %s: %w", from, err)
	}

	s := &Set{pages: make(map[string]*template.Template, len(pages))}
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
		if err := t.ExecuteTemplate(io.Discard, layoutFile, sample(name)); err != nil {
			return nil, fmt.Errorf("templates: check %s: %w", from, err)
		}
		s.pages[name] = t
	}
	return s, nil
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

// sample is data that exercises every branch a page template may take.
func sample(name string) any {
	page := Page{Title: "Sample", Prefix: "/.idv", Lang: "en"}
	switch name {
	case "login":
		return Login{Page: page, RD: "/", Providers: []Provider{
			{Name: "demo", Label: "Demo wallet", Kind: "demo", Flow: "qr"},
			{Name: "mobileid", Label: "Mobile-ID", Kind: "marksign_mobileid", Flow: "form", Fields: []Field{
				{Name: "phone", Label: "Phone number", Type: "tel", Autocomplete: "tel", Pattern: `\+[0-9]{7,15}`, Hint: "With country code"},
			}},
		}}
	case "error":
		return Error{Page: page, Status: 500, Heading: "Error", Message: "Sample", RetryURL: "/"}
	default:
		return Wallet{Page: page, ID: "id", User: "Sample", ExpiresAt: time.Unix(0, 0), State: "pending",
			ApproveURL: "/.idv/demo/wallet/id/approve", DeclineURL: "/.idv/demo/wallet/id/decline"}
	}
}

// Render executes page name ("login", "error", "wallet") with data into w.
// It renders into a buffer first, so a failing template never sends half a
// page. It sets no headers: the caller sends Content-Type and the
// Content-Security-Policy the pages are written for.
func (s *Set) Render(w io.Writer, name string, data any) error {
	t, ok := s.pages[name]
	if !ok {
		return fmt.Errorf("templates: no page %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, layoutFile, data); err != nil {
		return fmt.Errorf("templates: render %s: %w", name, err)
	}
	_, err := buf.WriteTo(w)
	return err
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
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(b)
		files[p] = staticFile{body: b, contentType: ct, version: hex.EncodeToString(sum[:6])}
		return nil
	})
	if err != nil {
		panic("templates: read embedded static/: " + err.Error())
	}
	return files
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
func Static() http.Handler {
	files := staticFiles()
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
