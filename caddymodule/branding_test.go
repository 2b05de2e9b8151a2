package caddymodule

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/providers/demo"
	"github.com/caddy-idv/caddy-idv/providers/marksign"
	"github.com/caddy-idv/caddy-idv/store"
	"github.com/caddy-idv/caddy-idv/templates"
)

// brandedHandler is a handler with every provider of the login page: two
// demo wallets without labels of their own, one with, and Mobile-ID.
func brandedHandler(t *testing.T, mutate func(*Handler)) *Handler {
	t.Helper()
	clk := &testClock{t: time.Now()}
	h := &Handler{store: store.NewMemory(clk.now), now: clk.now}
	if mutate != nil {
		mutate(h)
	}
	staff := &demo.Config{User: "Ada Lovelace"}
	staff.Name = "staff"
	guests := &demo.Config{User: "Guest"}
	guests.Name = "guests"
	named := &demo.Config{User: "Grace Hopper"}
	named.Name = "office"
	named.Label = "{idv.test.office} wallet"
	named.Description = "For the office in {idv.test.office}"
	mid := &marksign.Config{AccessToken: "token"}
	mid.BaseURL = "http://127.0.0.1:9"
	if err := h.setup(context.Background(), []providers.Config{staff, guests, named, mid}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Cleanup() })
	return h
}

// get fetches target from h as a browser navigation, with headers.
func get(t *testing.T, h *Handler, target string, headers map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.Header.Set("Accept", "text/html,*/*")
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	if strings.HasPrefix(target, "https://") {
		r.TLS = &tls.ConnectionState{}
	}
	r, repl := caddyRequest(r)
	repl.Set("idv.test.office", "Tartu")
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, okHandler); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestLoginPageLanguage(t *testing.T) {
	h := brandedHandler(t, nil)
	w := get(t, h, "http://app.example/.idv/login?rd=/reports", map[string]string{"Accept-Language": "et-EE,et;q=0.9,en;q=0.5"})
	body := w.Body.String()
	if w.Code != 200 || !strings.Contains(body, `<html lang="et" dir="ltr">`) || !strings.Contains(body, "Vali, kuidas sisse logida") {
		t.Fatalf("Estonian login page: %d\n%s", w.Code, body)
	}
	if got := w.Header().Get("Content-Language"); got != "et" {
		t.Errorf("Content-Language %q", got)
	}
	if len(w.Result().Cookies()) != 0 {
		t.Errorf("Accept-Language alone set a cookie: %v", w.Result().Cookies())
	}
	// The switcher keeps the page's query and names each language in itself.
	for _, want := range []string{
		`<a href="?lang=et&amp;rd=%2Freports" lang="et" hreflang="et" aria-current="true">Eesti</a>`,
		`<a href="?lang=ar&amp;rd=%2Freports" lang="ar" hreflang="ar">العربية</a>`,
		`<nav class="languages" aria-label="Keel">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}

	// ?lang= wins and is remembered, on https with Secure.
	w = get(t, h, "https://app.example/.idv/login?rd=/reports&lang=ar", map[string]string{"Accept-Language": "et"})
	if !strings.Contains(w.Body.String(), `<html lang="ar" dir="rtl">`) {
		t.Fatalf("?lang=ar: %s", w.Body)
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 {
		t.Fatalf("cookies %v", cs)
	}
	c := cs[0]
	if c.Name != templates.LanguageCookie || c.Value != "ar" || c.Path != "/" || c.SameSite != http.SameSiteLaxMode || !c.Secure || c.MaxAge < 86400 {
		t.Errorf("language cookie %+v", c)
	}
	w = get(t, h, "http://app.example/.idv/login?lang=lv", nil)
	if c := w.Result().Cookies(); len(c) != 1 || c[0].Secure {
		t.Errorf("language cookie over http: %+v", c)
	}
	w = get(t, h, "http://app.example/.idv/login", map[string]string{"Accept-Language": "et", "Cookie": templates.LanguageCookie + "=ru"})
	if !strings.Contains(w.Body.String(), `<html lang="ru" dir="ltr">`) {
		t.Errorf("the cookie did not choose Russian")
	}
	// An unknown ?lang= is ignored and not remembered.
	w = get(t, h, "http://app.example/.idv/login?lang=fi", map[string]string{"Accept-Language": "lt"})
	if !strings.Contains(w.Body.String(), `<html lang="lt"`) || len(w.Result().Cookies()) != 0 {
		t.Errorf("?lang=fi: cookies %v", w.Result().Cookies())
	}
}

func TestLanguagesOption(t *testing.T) {
	h := brandedHandler(t, func(h *Handler) { h.Languages = []string{"lt", "en"} })
	w := get(t, h, "http://app.example/.idv/login", map[string]string{"Accept-Language": "fi"})
	body := w.Body.String()
	if !strings.Contains(body, `<html lang="lt"`) || strings.Contains(body, `hreflang="et"`) || !strings.Contains(body, `hreflang="en"`) {
		t.Errorf("languages lt en: %s", body)
	}
	w = get(t, h, "http://app.example/.idv/login?lang=ru", nil)
	if !strings.Contains(w.Body.String(), `<html lang="lt"`) {
		t.Error("a language not offered was chosen with ?lang=")
	}
	one := brandedHandler(t, func(h *Handler) { h.Languages = []string{"et"} })
	if body := get(t, one, "http://app.example/.idv/login", nil).Body.String(); strings.Contains(body, `class="languages"`) {
		t.Error("a switcher with one language")
	}
}

func TestBranding(t *testing.T) {
	t.Setenv("IDV_TEST_LOGO", "/brand/logo.svg")
	h := brandedHandler(t, func(h *Handler) {
		h.SiteName = "Kaubamaja {idv.test.office}"
		h.Logo = "{env.IDV_TEST_LOGO}"
		h.Accent = "darkgreen"
	})
	w := get(t, h, "http://app.example/.idv/login", nil)
	body := w.Body.String()
	for _, want := range []string{
		`<title>Log in – Kaubamaja Tartu</title>`,
		`<img class="logo" src="/brand/logo.svg" alt="" height="32"><span class="site-name">Kaubamaja Tartu</span>`,
		`<h1>Log in to Kaubamaja Tartu</h1>`,
		`/.idv/static/theme.css?v=`,
		// Two providers of one kind without labels are told apart.
		`Demo wallet <span class="choice-qualifier">(staff)</span>`,
		`Demo wallet <span class="choice-qualifier">(guests)</span>`,
		`<span class="choice-label">Tartu wallet</span>`,
		`<span class="choice-desc">For the office in Tartu</span>`,
		`<span class="choice-desc">Mobile-ID: you will be asked for your PIN1</span>`,
		// Numeric keyboards for the phone number and the personal code.
		`name="phone" type="tel" autocomplete="tel"`,
		`inputmode="tel" dir="ltr"`,
		`name="personal_code" type="text" autocomplete="off" pattern="[0-9]{11}" inputmode="numeric" dir="ltr"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	m := regexp.MustCompile(`href="(/\.idv/static/theme\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no theme stylesheet")
	}
	css := get(t, h, "http://app.example"+m[1], nil)
	if css.Code != 200 || !strings.Contains(css.Body.String(), "--accent: #006400;") {
		t.Errorf("theme.css: %d %s", css.Code, css.Body)
	}

	// Without site_name the pages name the site's host.
	plain := brandedHandler(t, nil)
	if body := get(t, plain, "http://app.example:8080/.idv/login", nil).Body.String(); !strings.Contains(body, `<span class="site-name">app.example:8080</span>`) {
		t.Errorf("default site name: %s", body)
	}
	if strings.Contains(get(t, plain, "http://app.example/.idv/login", nil).Body.String(), "theme.css") {
		t.Error("a theme without an accent")
	}
}

func TestBrandingOptionsAreChecked(t *testing.T) {
	bad := map[string]func(*Handler){
		"logo on another site":     func(h *Handler) { h.Logo = "https://cdn.example/logo.png" },
		"protocol-relative logo":   func(h *Handler) { h.Logo = "//cdn.example/logo.png" },
		"logo on another origin":   func(h *Handler) { h.Site = "https://app.example"; h.Logo = "https://app.example:8443/logo.png" },
		"script logo":              func(h *Handler) { h.Logo = "javascript:alert(1)" },
		"logo without a path":      func(h *Handler) { h.Logo = "logo.png" },
		"accent that is no colour": func(h *Handler) { h.Accent = "red; } body { display: none" },
		"language without texts":   func(h *Handler) { h.Languages = []string{"fi"} },
	}
	for name, mutate := range bad {
		t.Run(name, func(t *testing.T) {
			clk := &testClock{t: time.Now()}
			h := &Handler{store: store.NewMemory(clk.now), now: clk.now}
			mutate(h)
			err := h.setup(context.Background(), []providers.Config{&demo.Config{}})
			if err == nil {
				_ = h.Cleanup()
				t.Fatal("accepted")
			}
			t.Log(err)
		})
	}
	ok := brandedHandler(t, func(h *Handler) { h.Site = "https://app.example"; h.Logo = "https://app.example/logo.png" })
	if !strings.Contains(get(t, ok, "https://app.example/.idv/login", nil).Body.String(), `src="https://app.example/logo.png"`) {
		t.Error("a logo URL on the site's origin was not shown")
	}
}

// A login that the OpenID Connect provider started names the application by
// its configured name, looked up by client_id; nothing else from the
// request is shown.
func TestLoginNamesTheApplication(t *testing.T) {
	h := brandedHandler(t, func(h *Handler) {
		h.SiteName = "Kaubamaja"
		h.OIDC = &OIDCConfig{Issuer: "https://app.example", Clients: []OIDCClient{
			{ID: "grafana", Name: "Grafana dashboards", RedirectURIs: []string{"https://grafana.example/cb"}},
			{ID: "wiki", RedirectURIs: []string{"https://wiki.example/cb"}},
		}}
	})
	login := func(rd, lang string) string {
		return get(t, h, "http://app.example/.idv/login?lang="+lang+"&rd="+strings.ReplaceAll(rd, "&", "%26"), nil).Body.String()
	}
	rd := "/.idv/oidc/authorize?client_id=grafana&redirect_uri=https%3A%2F%2Fgrafana.example%2Fcb&response_type=code&scope=openid"
	if body := login(strings.ReplaceAll(rd, "%", "%25"), "en"); !strings.Contains(body, "<h1>Log in to Grafana dashboards</h1>") ||
		!strings.Contains(body, `<p class="lead">Kaubamaja confirms who you are for Grafana dashboards.</p>`) {
		t.Errorf("login for grafana:\n%s", body)
	}
	if body := login("/.idv/oidc/authorize?client_id=grafana", "ru"); !strings.Contains(body, "<h1>Вход в приложение Grafana dashboards</h1>") {
		t.Errorf("Russian login for grafana:\n%s", body)
	}
	if body := login("/.idv/oidc/authorize?client_id=wiki", "en"); !strings.Contains(body, "<h1>Log in to wiki</h1>") {
		t.Errorf("a client without a name is named by its id:\n%s", body)
	}
	for _, rd := range []string{
		"/.idv/oidc/authorize?client_id=Evil%20Corp",
		"/.idv/oidc/authorize?client_id=",
		"/elsewhere?client_id=grafana",
	} {
		if body := login(rd, "en"); !strings.Contains(body, "<h1>Log in to Kaubamaja</h1>") || strings.Contains(body, "confirms who you are") {
			t.Errorf("rd %s:\n%s", rd, body)
		}
	}
}

// Error pages speak the person's language; the JSON API keeps its English
// for programs (the login page translates what it shows).
func TestErrorsInTheLanguage(t *testing.T) {
	h := brandedHandler(t, nil)
	w := get(t, h, "http://app.example/.idv/no-such-page", map[string]string{"Accept-Language": "lv"})
	body := w.Body.String()
	if w.Code != 404 || !strings.Contains(body, "<h1>Nav atrasts</h1>") || !strings.Contains(body, "<p>Šeit nekā nav.</p>") || !strings.Contains(body, "Kļūda 404") {
		t.Errorf("Latvian 404 page: %d\n%s", w.Code, body)
	}
	r := httptest.NewRequest(http.MethodGet, "http://app.example/.idv/no-such-page", nil)
	r.Header.Set("Accept", "application/json")
	r.Header.Set("Accept-Language", "lv")
	r, _ = caddyRequest(r)
	jw := httptest.NewRecorder()
	if err := h.ServeHTTP(jw, r, okHandler); err != nil {
		t.Fatal(err)
	}
	var e map[string]string
	if err := json.Unmarshal(jw.Body.Bytes(), &e); err != nil || e["message"] != "There is nothing here." {
		t.Errorf("JSON error: %s", jw.Body)
	}

	// A rate-limit page says how long to wait, with the right plural.
	rw := httptest.NewRecorder()
	rr := httptest.NewRequest(http.MethodGet, "http://app.example/.idv/login", nil)
	rr.Header.Set("Accept", "text/html")
	rr.Header.Set("Accept-Language", "ru")
	h.tooMany(rw, rr, 5*time.Second)
	if !strings.Contains(rw.Body.String(), "Попробуйте снова через 5 секунд.") {
		t.Errorf("Russian rate-limit page:\n%s", rw.Body)
	}
	// A message the catalogue does not know is not shown in English on a
	// page in another language.
	ew := httptest.NewRecorder()
	h.writeError(ew, rr, errorf(http.StatusBadGateway, "provider_error", "Something only English speakers read."))
	if b := ew.Body.String(); strings.Contains(b, "Something only") || !strings.Contains(b, "На нашей стороне произошла ошибка.") {
		t.Errorf("unknown message on a Russian page:\n%s", b)
	}
}

// The demo wallet names the site that asks, in the phone's language.
func TestWalletNamesTheSite(t *testing.T) {
	h := brandedHandler(t, func(h *Handler) { h.SiteName = "Kaubamaja" })
	id := "AAAAAAAAAAAAAAAAAAAAAA"
	p := h.byName["staff"]
	if _, err := p.impl.Start(context.Background(), providers.StartRequest{ID: id, BaseURL: "http://app.example/.idv"}); err != nil {
		t.Fatal(err)
	}
	body := get(t, h, "http://app.example/.idv/demo/wallet/"+id, map[string]string{"Accept-Language": "lt"}).Body.String()
	for _, want := range []string{`<html lang="lt"`, "<title>Demonstracinė piniginė – Kaubamaja</title>", "Kaubamaja prašo patvirtinti šį prisijungimą.", "Prisijungti kaip Ada Lovelace?"} {
		if !strings.Contains(body, want) {
			t.Errorf("wallet page lacks %q:\n%s", want, body)
		}
	}
	// The switcher links to the wallet page itself.
	if !strings.Contains(body, `href="?lang=et"`) {
		t.Errorf("wallet page's switcher:\n%s", body)
	}
}
