package browser_test

import (
	"context"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/caddy-idv/caddy-idv/providers/marksign/fakemarksign"
)

// phone is the narrowest screen the pages are made for.
var phone = viewport{name: "phone", width: 320, height: 640, mobile: true}

// languages are the languages the module ships, with their direction.
var languages = []struct{ tag, dir string }{
	{"en", "ltr"}, {"et", "ltr"}, {"lt", "ltr"}, {"lv", "ltr"}, {"ru", "ltr"}, {"ar", "rtl"},
}

// englishWords are English words none of the other languages uses: one on
// a page in another language is an untranslated text.
var englishWords = regexp.MustCompile(`(?i)\b(the|and|your|you|this|with|please|login|log in|try again|scan|phone|approve|decline|wallet|choose|continue|error|expired|declined)\b`)

// messageID matches a message id shown instead of its text.
var messageID = regexp.MustCompile(`\b(?:login|layout|script|kind|error|status|wallet|msg|language)\.[a-z0-9_]+\b`)

// newContext opens a tab in a browser context of its own (its own cookies:
// another device), laid out at vp, whose requests ask for acceptLanguage.
func (b *browser) newContext(t *testing.T, name string, vp viewport, acceptLanguage string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(b.mon.listener(name)))
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab (%s): %v", name, err)
	}
	prepareTab(t, ctx, vp)
	if acceptLanguage != "" {
		if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Accept-Language": acceptLanguage},
		}); err != nil {
			t.Fatalf("Accept-Language: %v", err)
		}
	}
	return ctx
}

// pageState is what checkView reads of a page.
type pageState struct {
	Lang       string  `json:"lang"`
	Dir        string  `json:"dir"`
	Title      string  `json:"title"`
	Text       string  `json:"text"`
	Overflow   float64 `json:"overflow"`
	BrandGap   float64 `json:"brandGap"`
	HeadingGap float64 `json:"headingGap"`
	SameLine   bool    `json:"sameLine"`
	Mirrored   bool    `json:"mirrored"`
}

// pageStateExpr measures a page: how far it is wider than the screen, and
// how far the header's brand and the heading's text are from the start
// edge of their boxes (0 when laid out from the start: the left in ltr, the
// right in rtl), and whether the brand and the language switcher are in
// the order of the page's direction when they share a line.
const pageStateExpr = `(function () {
	var rtl = document.documentElement.dir === "rtl";
	var header = document.querySelector(".site-header");
	var hs = getComputedStyle(header);
	var hr = header.getBoundingClientRect();
	var brand = document.querySelector(".brand").getBoundingClientRect();
	var start = rtl ? hr.right - parseFloat(hs.paddingRight) : hr.left + parseFloat(hs.paddingLeft);
	var nav = document.querySelector("nav.languages");
	var nr = nav ? nav.getBoundingClientRect() : null;
	var sameLine = !!nr && Math.abs(nr.top - brand.top) < brand.height;
	var h1 = document.querySelector("h1");
	var range = document.createRange();
	range.selectNodeContents(h1);
	var text = range.getBoundingClientRect();
	var box = h1.getBoundingClientRect();
	return {
		lang: document.documentElement.lang,
		dir: document.documentElement.dir,
		title: document.title,
		text: document.body.innerText,
		overflow: document.documentElement.scrollWidth - window.innerWidth,
		brandGap: Math.abs(rtl ? start - brand.right : brand.left - start),
		headingGap: Math.abs(rtl ? box.right - text.right : text.left - box.left),
		sameLine: sameLine,
		mirrored: sameLine ? (rtl ? brand.left >= nr.right - 1 : brand.right <= nr.left + 1) : true
	};
})()`

// checkView checks the page a tab shows as view, in language tag: its lang
// and dir, that it fits the screen, that it names the site, that it shows
// no message id and, in another language than English, no English; that
// it is laid out from the start edge of its direction (mirrored for
// Arabic); and WCAG 2.1 AA with axe. It saves a screenshot.
func checkView(t *testing.T, ctx context.Context, axe string, vp viewport, tag, dir, view string) {
	t.Helper()
	st := eval[pageState](t, ctx, pageStateExpr)
	what := view + " (" + tag + ", " + vp.String() + ")"
	if st.Lang != tag || st.Dir != dir {
		t.Errorf("%s: lang %q dir %q, want %q %q", what, st.Lang, st.Dir, tag, dir)
	}
	if st.Overflow > 0 {
		t.Errorf("%s: the page is %.0f px wider than the screen", what, st.Overflow)
	}
	if !strings.Contains(st.Title, "Kaubamaja") || !strings.Contains(st.Text, "Kaubamaja") {
		t.Errorf("%s: the title %q or the header does not name the site", what, st.Title)
	}
	if m := messageID.FindString(st.Text); m != "" {
		t.Errorf("%s: message id %q shown", what, m)
	}
	if tag != "en" {
		if m := englishWords.FindString(st.Text); m != "" {
			t.Errorf("%s: English word %q on the page:\n%s", what, m, st.Text)
		}
	}
	if st.BrandGap > 2 || st.HeadingGap > 2 || !st.Mirrored {
		t.Errorf("%s: not laid out from the %s edge: brand %.1f px and heading %.1f px from it, brand before the languages: %v",
			what, map[string]string{"ltr": "left", "rtl": "right"}[dir], st.BrandGap, st.HeadingGap, st.Mirrored)
	}
	checkA11y(t, ctx, axe, what)
	screenshot(t, ctx, vp, view+"-"+tag)
}

// noShiftExpr puts every status text of the page's language (with a two-
// digit count) into the status line of the login in progress and reports
// how far the buttons under it moved: the line keeps room for them.
const noShiftExpr = `(function () {
	var status = document.getElementById("idv-status");
	var below = document.querySelector("#idv-progress .actions");
	var top = below.getBoundingClientRect().top;
	var texts = JSON.parse(document.getElementById("idv-text").textContent).text;
	var msgs = [];
	["starting", "waiting", "connection_lost", "busy", "resuming"].forEach(function (k) {
		var v = texts[k];
		(typeof v === "string" ? [v] : Object.keys(v).map(function (f) { return v[f]; })).forEach(function (s) {
			msgs.push(s.replace(/\{\{\s*\.Count\s*\}\}/g, "10"));
		});
	});
	var saved = status.textContent, worst = 0, worstText = "";
	msgs.forEach(function (m) {
		status.textContent = m;
		var d = Math.abs(below.getBoundingClientRect().top - top);
		if (d > worst) {
			worst = d;
			worstText = m;
		}
	});
	status.textContent = saved;
	return {shift: worst, text: worstText, count: msgs.length};
})()`

type shift struct {
	Shift float64 `json:"shift"`
	Text  string  `json:"text"`
	Count int     `json:"count"`
}

// TestBrowserEveryViewInEveryLanguage shows every view a person sees (the
// provider choice, the Mobile-ID form, the QR view, the demo wallet, its
// outcome and the error page) in every language the module ships, on a
// 320 px phone and on a desktop, in one browser: each language and size in
// a tab of its own (a browser context: its own cookies), whose requests ask
// for that language. Each view is checked by checkView (axe-core WCAG 2.1
// AA, the language and direction, Arabic mirrored, no English, no overflow)
// and saved as a screenshot; the QR view also keeps its layout when the
// status line changes.
func TestBrowserEveryViewInEveryLanguage(t *testing.T) {
	axe := loadAxe(t)
	fake, err := fakemarksign.New(fakemarksign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(fake)
	defer gw.Close()
	e := startWithin(t, `
	idv {
		provider demo {
			user "Ada Lovelace"
		}
		provider marksign_mobileid {
			base_url     `+gw.URL+`
			access_token `+fake.AccessToken()+`
		}
		site_name Kaubamaja
		accent "#0a7d4f"
		# Every tab starts logins from 127.0.0.1.
		limit {
			per_address 600 1m
		}
	}
	respond "Welcome {http.auth.user.name}"
`, 5*time.Minute)
	b := e.newBrowser(t, "views", desktop)
	began := time.Now()
	n := 0
	for _, vp := range []viewport{phone, desktop} {
		for _, l := range languages {
			t.Run(vp.name+"/"+l.tag, func(t *testing.T) {
				n += viewsIn(t, e, b, axe, vp, l.tag, l.dir)
			})
		}
	}
	t.Logf("%d views (6 views × %d languages × 2 sizes) checked in %v; screenshots in %s",
		n, len(languages), time.Since(began).Round(time.Second), screenshotDir())
	navigate(t, b.ctx, e.inst.URL+"/.idv/login")
	axeControl(t, b.ctx, axe)
	b.mon.take() // the control's nameless input
}

// viewsIn walks every view in language tag at vp and returns how many it
// checked.
func viewsIn(t *testing.T, e *env, b *browser, axe string, vp viewport, tag, dir string) int {
	ctx := b.newContext(t, "views-"+tag+"-"+vp.name, vp, tag)
	check := func(ctx context.Context, view string) { checkView(t, ctx, axe, vp, tag, dir, view) }

	openLoginPage(t, e, ctx, "/private")
	do(t, ctx, "waiting for the provider choice", chromedp.WaitVisible(chromedp.ID("idv-choose")))
	check(ctx, "choice")

	do(t, ctx, "choosing Mobile-ID", chromedp.Click(chromedp.CSS(`button.idv-choice[data-provider="marksign_mobileid"]`)))
	do(t, ctx, "waiting for the form", chromedp.WaitVisible(chromedp.CSS(`form.idv-form[data-provider="marksign_mobileid"]`)))
	modes := eval[map[string]string](t, ctx, `(function () {
		var out = {};
		document.querySelectorAll("form.idv-form input").forEach(function (i) { out[i.name] = i.inputMode + " " + i.autocomplete; });
		return out;
	})()`)
	if modes["phone"] != "tel tel" || modes["personal_code"] != "numeric off" {
		t.Errorf("the form's keyboards (inputmode, autocomplete): %v", modes)
	}
	check(ctx, "form")

	do(t, ctx, "going back to the choice", chromedp.Click(chromedp.CSS(`form.idv-form .idv-back`)))
	do(t, ctx, "choosing the demo wallet", chromedp.Click(chromedp.CSS(`button.idv-choice[data-provider="demo"]`)))
	do(t, ctx, "waiting for the link", chromedp.WaitVisible(chromedp.ID("idv-open")))
	lead := eval[map[string]bool](t, ctx, `(function () {
		return {primary: document.getElementById("idv-open").classList.contains("primary"),
			qr: !document.getElementById("idv-qr-wrap").hidden,
			other: !document.getElementById("idv-other-wrap").hidden};
	})()`)
	if vp.mobile && (!lead["primary"] || lead["qr"] || !lead["other"]) {
		t.Errorf("on a phone the link must lead and the QR code wait behind \"Use another device\": %v", lead)
	}
	if !vp.mobile && (lead["primary"] || !lead["qr"] || lead["other"]) {
		t.Errorf("on a desktop the QR code must lead: %v", lead)
	}
	if !vp.mobile {
		waitJS[bool](t, ctx, "the QR code", `document.getElementById("idv-qr").complete && document.getElementById("idv-qr").naturalWidth > 0`)
	}
	if s := eval[shift](t, ctx, noShiftExpr); s.Shift > 0 || s.Count < 5 {
		t.Errorf("the status line %q moved what is under it by %.1f px (%d texts tried)", s.Text, s.Shift, s.Count)
	}
	check(ctx, "qr")
	if vp.mobile {
		do(t, ctx, "clicking \"Use another device\"", chromedp.Click(chromedp.ID("idv-other")))
		waitJS[bool](t, ctx, "the QR code after \"Use another device\"",
			`!document.getElementById("idv-qr-wrap").hidden && document.getElementById("idv-qr").naturalWidth > 0 &&
			 document.getElementById("idv-other").getAttribute("aria-expanded") === "true"`)
	}
	href := eval[string](t, ctx, `document.getElementById("idv-open").href`)

	// The wallet, on another device in the same language.
	other := b.newContext(t, "views-"+tag+"-"+vp.name+"-wallet", vp, tag)
	navigate(t, other, href)
	do(t, other, "waiting for the wallet's Approve button", chromedp.WaitVisible(chromedp.CSS(approveButton)))
	check(other, "wallet")
	do(t, other, "pressing Approve", chromedp.Click(chromedp.CSS(approveButton)))
	waitJS[bool](t, other, "the wallet's outcome", `location.pathname.indexOf("/approve") < 0 && document.readyState === "complete" &&
		document.querySelectorAll("form.idv-answer").length === 0 && !!document.querySelector("h1")`)
	check(other, "wallet-approved")
	waitProtected(t, e, ctx, "/private", "Welcome Ada Lovelace")

	navigate(t, ctx, e.inst.URL+"/.idv/no-such-page")
	check(ctx, "error")
	// What the browser logs here is expected: the page's own 404.
	for _, got := range b.mon.take() {
		if !strings.Contains(got, "404") || !strings.Contains(got, "/.idv/no-such-page") {
			t.Errorf("unexpected browser error: %s", got)
		}
	}
	return 6
}

// TestBrowserLanguageSwitcher follows the switcher: the page, its script
// and what comes after speak the chosen language, which a cookie remembers.
func TestBrowserLanguageSwitcher(t *testing.T) {
	e := start(t, site)
	b := e.newBrowser(t, "switcher", desktop)
	openLoginPage(t, e, b.ctx, "/private?x=1")
	waitChallenge(t, b.ctx, "")
	if lang := eval[string](t, b.ctx, `document.documentElement.lang`); lang != "en" {
		t.Fatalf("a browser asking for English got %q", lang)
	}
	do(t, b.ctx, "choosing Eesti", chromedp.Click(chromedp.CSS(`nav.languages a[hreflang="et"]`)))
	waitJS[bool](t, b.ctx, "the Estonian page", `document.documentElement.lang === "et"`)
	if q := eval[string](t, b.ctx, `location.search`); !strings.Contains(q, "rd=%2Fprivate%3Fx%3D1") || !strings.Contains(q, "lang=et") {
		t.Errorf("the switcher lost the page's rd: %s", q)
	}
	// login.js speaks Estonian too.
	waitJS[bool](t, b.ctx, "the Estonian heading and status",
		`document.getElementById("idv-progress-heading").textContent === "Skanni QR-kood, et avada demorahakott" &&
		 document.getElementById("idv-status").textContent === "Ootan, et kinnitaksid sisselogimise oma telefonis…"`)
	if cur := eval[string](t, b.ctx, `document.querySelector('nav.languages a[aria-current="true"]').getAttribute("hreflang")`); cur != "et" {
		t.Errorf("the switcher marks %q as current", cur)
	}
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{e.inst.URL + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	var lang *network.Cookie
	for _, c := range res.Cookies {
		if c.Name == "idv_lang" {
			lang = c
		}
	}
	if lang == nil || lang.Value != "et" || lang.Path != "/" || lang.SameSite != network.CookieSameSiteLax {
		t.Fatalf("language cookie %+v", lang)
	}
	// Remembered: the next login page, without ?lang=, is Estonian.
	openLoginPage(t, e, b.ctx, "/elsewhere")
	if lang := eval[string](t, b.ctx, `document.documentElement.lang`); lang != "et" {
		t.Errorf("the next page after choosing Estonian is %q", lang)
	}
	c := waitChallenge(t, b.ctx, "")
	navigate(t, b.ctx, c.Href)
	if h := eval[string](t, b.ctx, `document.querySelector("h1").textContent`); h != "Kas logida sisse kasutajana Ada Lovelace?" {
		t.Errorf("the wallet in the chosen language says %q", h)
	}
	do(t, b.ctx, "choosing العربية", chromedp.Click(chromedp.CSS(`nav.languages a[hreflang="ar"]`)))
	waitJS[bool](t, b.ctx, "the Arabic wallet", `document.documentElement.lang === "ar" && document.documentElement.dir === "rtl" &&
		document.querySelector("h1").textContent === "هل تريد تسجيل الدخول باسم Ada Lovelace؟"`)
}
