// Package browser_test drives the login of caddy-idv in a real browser:
// headless Chromium, through the DevTools protocol (chromedp), against the
// real caddy binary that internal/e2e runs. Where the HTTP-level tests of
// caddymodule check the wire, these check what a person sees and does: the
// login page's script starting the login, the QR code image, the link to the
// demo wallet, the wallet's buttons, the long poll that takes the browser
// back to the page it asked for, the outcome messages and "Try again".
//
// Every browser is a separate Chromium process with its own fresh profile
// (user-data-dir), so the "laptop" and the "phone" share no cookies. Every
// tab is watched for console errors, uncaught exceptions, error entries of
// the browser log and Content-Security-Policy violations; any of them fails
// the test (the flow tests only log one known product bug, knownFaviconBug,
// which TestBrowserPagesHaveNoConsoleErrors fails on). Full-page screenshots
// go to $IDV_SCREENSHOTS, default test/browser/screenshots (git-ignored), as
// <page>-<viewport>.png: login, login-dark, wallet, wallet-approved,
// wallet-same-device, wallet-declined, login-declined and login-expired;
// the views in every language (i18n_test.go) as <view>-<lang>-<viewport>.png.
//
// Chromium is /usr/bin/chromium (Debian's package) or $CHROME_BIN. Without
// one the tests skip, except when $CI is set: then they fail, because CI
// must install it.
package browser_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/audits"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
)

// site is a page behind the demo provider that greets the person by the name
// the login found.
const site = `
	idv {
		provider demo {
			user "Ada Lovelace"
		}
	}
	respond "Welcome {http.auth.user.name}"
`

// testTimeout bounds each test's browser work (the caddy build and start
// come before it).
const testTimeout = 60 * time.Second

// repoDir is test/browser, where the screenshots go by default.
var repoDir = func() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Dir(file)
}()

// viewport is the size a tab is laid out at.
type viewport struct {
	name          string
	width, height int64
	mobile        bool
}

var (
	desktop = viewport{name: "desktop", width: 1280, height: 800}
	mobile  = viewport{name: "mobile", width: 390, height: 844, mobile: true}
)

func (v viewport) String() string { return fmt.Sprintf("%s-%dx%d", v.name, v.width, v.height) }

// Selectors and scripts for the pages in templates/.
const (
	approveButton = `form.idv-answer[action$="/approve"] button`
	declineButton = `form.idv-answer[action$="/decline"] button`

	// walletPath is where the demo provider's wallet page lives
	// (docs/reference.md, "The demo provider").
	walletPath = "/.idv/demo/wallet/"
)

// env is one test's caddy and the time its browsers may take.
type env struct {
	inst *e2e.Instance
	ctx  context.Context // cancelled after testTimeout and when the test ends
	exe  string          // Chromium
}

// start finds Chromium (or skips), runs caddy with siteBody and starts the
// test's clock.
func start(t *testing.T, siteBody string) *env {
	t.Helper()
	return startWithin(t, siteBody, testTimeout)
}

// startWithin is start with more time for the browsers' work.
func startWithin(t *testing.T, siteBody string, timeout time.Duration) *env {
	t.Helper()
	exe := chromiumPath(t)
	inst := e2e.Start(t, siteBody, e2e.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return &env{inst: inst, ctx: ctx, exe: exe}
}

// chromiumPath returns $CHROME_BIN or the first Chromium on the machine. With
// none it skips the test, or fails it when $CI is set.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROME_BIN"); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("CHROME_BIN=%q: %v", p, err)
		}
		return path
	}
	names := []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome-stable", "google-chrome"}
	for _, name := range names {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	msg := fmt.Sprintf("no Chromium found (looked for %s); install Debian's chromium package or set CHROME_BIN", strings.Join(names, ", "))
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI must install it")
	}
	t.Skip(msg)
	return ""
}

// browser is one Chromium process: one device with its own cookies.
type browser struct {
	name string
	ctx  context.Context // its first tab
	vp   viewport
	mon  *monitor
}

// newBrowser starts a Chromium with a fresh profile, laid out at vp. When the
// test ends it reports what the monitor saw, closes the browser, checks that
// no Chromium process is left and removes the profile.
func (e *env) newBrowser(t *testing.T, name string, vp viewport) *browser {
	t.Helper()
	dir, err := os.MkdirTemp("", "idv-chromium-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(e.exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// Without these Chromium reaches out to Google's services, which this
		// machine's closed network refuses.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// The pages follow Accept-Language: tests that do not set one get
		// English, whatever the machine's locale.
		chromedp.Flag("lang", "en-US"),
		chromedp.Flag("accept-lang", "en-US,en"),
		chromedp.UserDataDir(dir),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(e.ctx, opts...)
	mon := newMonitor(name)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithListener(mon.listener(name)))
	t.Cleanup(func() {
		mon.report(t)
		cancelCtx()   // closes the tab and the browser
		cancelAlloc() // waits until the browser process has exited
		checkNoLeftovers(t, name, dir)
		removeProfile(t, dir)
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium (%s): %v", name, err)
	}
	prepareTab(t, ctx, vp)
	return &browser{name: name, ctx: ctx, vp: vp, mon: mon}
}

// prepareTab turns on what the monitor needs and lays the tab out at vp.
func prepareTab(t *testing.T, ctx context.Context, vp viewport) {
	t.Helper()
	// Issues (among them CSP violations) are reported only when enabled.
	if _, err := chromedp.Call(ctx, audits.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("Audits.enable: %v", err)
	}
	// A page-side listener for CSP violations, as a second witness. Scripts
	// added through the protocol are not subject to the page's CSP.
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe}); err != nil {
		t.Fatalf("adding the CSP probe: %v", err)
	}
	if err := chromedp.Do(ctx, emulate(vp)); err != nil {
		t.Fatalf("viewport %s: %v", vp, err)
	}
}

func emulate(vp viewport) chromedp.Action[chromedp.Void] {
	if vp.mobile {
		return chromedp.EmulateViewport(vp.width, vp.height, chromedp.EmulateMobile, chromedp.EmulatePortrait, chromedp.EmulateScale(2))
	}
	return chromedp.EmulateViewport(vp.width, vp.height, chromedp.EmulateLandscape)
}

// navigate loads u in the tab and waits for its load event.
func navigate(t *testing.T, ctx context.Context, u string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(u)); err != nil {
		t.Fatalf("navigating to %s: %v\npage: %s", u, err, describe(ctx))
	}
}

// do runs actions in the tab and fails the test on an error.
func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v\npage: %s", what, err, describe(ctx))
	}
}

// eval evaluates a JavaScript expression in the tab.
func eval[T any](t *testing.T, ctx context.Context, expr string, opts ...chromedp.EvaluateOption) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		t.Fatalf("evaluating %s: %v\npage: %s", expr, err, describe(ctx))
	}
	return v
}

// waitJS waits until the JavaScript expression expr is truthy in the tab and
// returns its value. The page polls it every 50 ms (chromedp.Poll); when a
// navigation replaces the document being polled, it polls again in the new
// one, so it can wait for a page that another page leads to.
func waitJS[T any](t *testing.T, ctx context.Context, what, expr string) T {
	t.Helper()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(testTimeout)
	}
	lastErr := errors.New("no time left")
	for attempt := 0; attempt < 200; attempt++ {
		// Keep a few seconds to describe the page when the wait fails.
		budget := time.Until(deadline) - 5*time.Second
		if budget <= 0 {
			break
		}
		v, err := chromedp.Run(ctx, chromedp.Poll[T](expr,
			chromedp.WithPollingInterval(50*time.Millisecond),
			chromedp.WithPollingTimeout(budget)))
		if err == nil {
			return v
		}
		lastErr = err
		if errors.Is(err, chromedp.ErrPollingTimeout) || ctx.Err() != nil {
			break
		}
		// Otherwise the document went away under the poll (a navigation):
		// poll again in the new one.
	}
	t.Fatalf("waiting for %s: %v\npage: %s", what, lastErr, describe(ctx))
	var zero T
	return zero
}

// describe tells where a tab is and what it shows, for failure messages.
func describe(ctx context.Context) string {
	if ctx.Err() != nil {
		return "(the test's time is up)"
	}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	s, err := chromedp.Run(dctx, chromedp.Evaluate[string](`JSON.stringify({
		url: location.href,
		heading: (document.getElementById("idv-progress-heading") || {}).textContent,
		status: (document.getElementById("idv-status") || {}).textContent,
		text: document.body ? document.body.innerText.slice(0, 400) : null
	})`))
	if err != nil {
		return "(cannot read the page: " + err.Error() + ")"
	}
	return s
}

// screenshotDir is where screenshots go: $IDV_SCREENSHOTS, else
// test/browser/screenshots, which git ignores.
func screenshotDir() string {
	if dir := os.Getenv("IDV_SCREENSHOTS"); dir != "" {
		return dir
	}
	return filepath.Join(repoDir, "screenshots")
}

// screenshot saves a full-page PNG of the tab as
// <screenshotDir>/<name>-<viewport>.png, a test artifact. A page taller
// than the screen is laid out on a screen as tall as the page for it:
// Chromium's capture beyond the viewport shifts some right-to-left pages
// sideways, which the page itself does not do.
func screenshot(t *testing.T, ctx context.Context, vp viewport, name string) {
	t.Helper()
	dir := screenshotDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	height := eval[int64](t, ctx, `Math.ceil(document.documentElement.scrollHeight)`)
	tall := height > vp.height
	if tall {
		full := vp
		full.height = height
		if err := chromedp.Do(ctx, emulate(full)); err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
	}
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if tall {
		if err := chromedp.Do(ctx, emulate(vp)); err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
	}
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+"-"+vp.String()+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// The login page (login.html, login.js).

// openLoginPage asks for a protected page, which must redirect the browser to
// the login page with rd set to it.
func openLoginPage(t *testing.T, e *env, ctx context.Context, pathAndQuery string) {
	t.Helper()
	navigate(t, ctx, e.inst.URL+pathAndQuery)
	loc := eval[string](t, ctx, `location.href`)
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != e.inst.URL+"/.idv/login" {
		t.Fatalf("asking for %s landed on %s, want the login page %s/.idv/login", pathAndQuery, loc, e.inst.URL)
	}
	if rd := u.Query().Get("rd"); rd != pathAndQuery {
		t.Fatalf("login page's rd = %q, want %q (%s)", rd, pathAndQuery, loc)
	}
}

// challenge is what the login page shows for a login in progress.
type challenge struct {
	QR     string `json:"qr"`     // the QR image's src
	Href   string `json:"href"`   // the "Open on this device" link
	Target string `json:"target"` // the link's target
}

// waitChallenge waits until the login page shows a QR code that has loaded
// (and is not the one with src notSrc) and returns it with the link. On a
// phone, where the link leads and the QR code waits behind "Use another
// device", it opens that first.
func waitChallenge(t *testing.T, ctx context.Context, notSrc string) challenge {
	t.Helper()
	do(t, ctx, "waiting for the link to be visible", chromedp.WaitVisible(chromedp.ID("idv-open")))
	waitJS[bool](t, ctx, "a new login's link", `(function () {
		var img = document.getElementById("idv-qr");
		return !!img.getAttribute("src") && img.getAttribute("src") !== `+strconv.Quote(notSrc)+`;
	})()`)
	if eval[bool](t, ctx, `!document.getElementById("idv-other-wrap").hidden && document.getElementById("idv-qr-wrap").hidden`) {
		do(t, ctx, "clicking \"Use another device\"", chromedp.Click(chromedp.ID("idv-other")))
	}
	do(t, ctx, "waiting for the QR code to be visible", chromedp.WaitVisible(chromedp.ID("idv-qr")))
	expr := `(function () {
		var img = document.getElementById("idv-qr");
		var wrap = document.getElementById("idv-qr-wrap");
		var src = img && img.getAttribute("src");
		if (!src || src === ` + strconv.Quote(notSrc) + ` || wrap.hidden || !img.complete || img.naturalWidth <= 0) {
			return null;
		}
		var a = document.getElementById("idv-open");
		return {qr: src, href: a.getAttribute("href") || "", target: a.getAttribute("target") || ""};
	})()`
	return waitJS[challenge](t, ctx, "a loaded QR code (naturalWidth > 0)", expr)
}

// checkChallenge checks the QR code and the link against each other and the
// contract: the QR image is <prefix>/sessions/<id>/qr.svg and the link is the
// absolute URL of the demo wallet for the same login.
func checkChallenge(t *testing.T, e *env, c challenge) (id string) {
	t.Helper()
	m := regexp.MustCompile(`^/\.idv/sessions/([A-Za-z0-9_-]+)/qr\.svg$`).FindStringSubmatch(c.QR)
	if m == nil {
		t.Fatalf("QR image src = %q, want /.idv/sessions/<id>/qr.svg", c.QR)
	}
	id = m[1]
	if want := e.inst.URL + walletPath + id; c.Href != want {
		t.Fatalf("\"Open on this device\" href = %q, want the wallet URL %q", c.Href, want)
	}
	if c.Target != "" {
		t.Errorf("\"Open on this device\" target = %q, want none (this site's wallet opens in the tab and sends the person back)", c.Target)
	}
	return id
}

// progress is the state of the login page's progress view.
type progress struct {
	Heading    string `json:"heading"`
	Status     string `json:"status"`
	RetryShown bool   `json:"retryShown"`
	QRShown    bool   `json:"qrShown"`
	LinkShown  bool   `json:"linkShown"`
	TimerShown bool   `json:"timerShown"`
	Countdown  string `json:"countdown"`
	FocusedID  string `json:"focusedId"`
}

const progressExpr = `(function () {
	function shown(id) {
		var el = document.getElementById(id);
		return !!el && !el.hidden && el.getClientRects().length > 0;
	}
	return {
		heading: document.getElementById("idv-progress-heading").textContent,
		status: document.getElementById("idv-status").textContent,
		retryShown: shown("idv-retry"),
		qrShown: shown("idv-qr-wrap"),
		linkShown: shown("idv-open-wrap"),
		timerShown: shown("idv-timer-wrap"),
		countdown: document.getElementById("idv-countdown").textContent,
		focusedId: document.activeElement ? document.activeElement.id : ""
	};
})()`

// waitOutcome waits until the login page shows the outcome heading and a
// visible "Try again" button, and returns the progress view.
func waitOutcome(t *testing.T, ctx context.Context, heading string) progress {
	t.Helper()
	waitJS[bool](t, ctx, "the heading "+strconv.Quote(heading),
		`document.getElementById("idv-progress-heading").textContent === `+strconv.Quote(heading))
	do(t, ctx, "waiting for \"Try again\" to be visible", chromedp.WaitVisible(chromedp.ID("idv-retry")))
	p := eval[progress](t, ctx, progressExpr)
	if p.QRShown || p.LinkShown || p.TimerShown {
		t.Errorf("after %q the QR code, link or timer is still shown: %+v", heading, p)
	}
	if got := eval[string](t, ctx, `document.getElementById("idv-retry").textContent`); got != "Try again" {
		t.Errorf("retry button says %q, want \"Try again\"", got)
	}
	return p
}

// The protected page.

// waitProtected waits until the tab, by itself, has gone to pathAndQuery and
// shows the greeting.
func waitProtected(t *testing.T, e *env, ctx context.Context, pathAndQuery, greeting string) {
	t.Helper()
	waitJS[bool](t, ctx, "the protected page "+pathAndQuery+" with "+strconv.Quote(greeting),
		`location.pathname + location.search === `+strconv.Quote(pathAndQuery)+
			` && !!document.body && document.body.innerText.indexOf(`+strconv.Quote(greeting)+`) >= 0`)
	if loc := eval[string](t, ctx, `location.href`); loc != e.inst.URL+pathAndQuery {
		t.Errorf("protected page at %s, want %s", loc, e.inst.URL+pathAndQuery)
	}
	if body := eval[string](t, ctx, `document.body.innerText.trim()`); body != greeting {
		t.Errorf("protected page says %q, want %q", body, greeting)
	}
}

// checkSessionCookie checks the cookies the browser holds for the site after
// a login: an HttpOnly, SameSite=Lax session cookie for the whole site that
// the page's scripts cannot read, and no pending-login cookie.
func checkSessionCookie(t *testing.T, e *env, ctx context.Context) {
	t.Helper()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{
		URLs: []string{e.inst.URL + "/", e.inst.URL + "/.idv/"},
	})
	if err != nil {
		t.Fatalf("Network.getCookies: %v", err)
	}
	var session *network.Cookie
	for _, c := range res.Cookies {
		switch {
		case c.Name == "idv_session":
			session = c
		case strings.HasPrefix(c.Name, "idv_session_login_"):
			t.Errorf("the pending-login cookie is still there after the login: %+v", c)
		}
	}
	if session == nil {
		t.Fatalf("no idv_session cookie; cookies: %s", cookieNames(res.Cookies))
	}
	if !session.HTTPOnly {
		t.Errorf("idv_session is not HttpOnly: %+v", session)
	}
	if session.SameSite != network.CookieSameSiteLax {
		t.Errorf("idv_session SameSite = %q, want Lax", session.SameSite)
	}
	if session.Path != "/" {
		t.Errorf("idv_session Path = %q, want /", session.Path)
	}
	// The cookie names the session: a 22-character reference, not the
	// token with the person's claims.
	if len(session.Value) != 22 || strings.Contains(session.Value, ".") {
		t.Errorf("idv_session is not a session reference: %q", session.Value)
	}
	if dc := eval[string](t, ctx, `document.cookie`); strings.Contains(dc, "idv_session") {
		t.Errorf("the page's script can read the session cookie: document.cookie = %q", dc)
	}
}

func cookieNames(cs []*network.Cookie) string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return "[" + strings.Join(names, " ") + "]"
}

// noSession checks that a browser holds no session for the site.
func noSession(t *testing.T, e *env, who string, ctx context.Context) {
	t.Helper()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{e.inst.URL + "/"}})
	if err != nil {
		t.Fatalf("Network.getCookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == "idv_session" {
			t.Errorf("the %s got a session cookie too", who)
		}
	}
}

// me is GET /.idv/me as the page's own script sees it.
type me struct {
	Status int            `json:"status"`
	Claims map[string]any `json:"claims"`
}

func fetchMe(t *testing.T, ctx context.Context) me {
	t.Helper()
	return eval[me](t, ctx, `fetch("/.idv/me", {credentials: "same-origin", headers: {"Accept": "application/json"}})
		.then(function (r) { return r.json().then(function (j) { return {status: r.status, claims: j}; }); })`,
		chromedp.EvalAwaitPromise)
}

func amrOf(claims map[string]any) []string {
	switch v := claims["amr"].(type) {
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
		return out
	case string:
		return strings.Split(v, ",")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The demo wallet page (wallet.html, wallet.js).

// waitWallet waits for the wallet page asking to approve a login as user.
func waitWallet(t *testing.T, ctx context.Context, user string) {
	t.Helper()
	do(t, ctx, "waiting for the wallet's Approve button", chromedp.WaitVisible(chromedp.CSS(approveButton)))
	do(t, ctx, "waiting for the wallet's Decline button", chromedp.WaitVisible(chromedp.CSS(declineButton)))
	if h := eval[string](t, ctx, `document.querySelector("h1").textContent`); h != "Log in as "+user+"?" {
		t.Fatalf("wallet heading %q, want %q", h, "Log in as "+user+"?")
	}
}

// answerWallet presses a wallet button and waits for the page that shows the
// outcome (Post/Redirect/Get back to the wallet URL).
func answerWallet(t *testing.T, ctx context.Context, button, heading, text string) {
	t.Helper()
	before := eval[string](t, ctx, `location.href`)
	do(t, ctx, "pressing "+button, chromedp.Click(chromedp.CSS(button)))
	waitJS[bool](t, ctx, "the wallet page "+strconv.Quote(heading),
		`!!document.querySelector("h1") && document.querySelector("h1").textContent === `+strconv.Quote(heading))
	if body := eval[string](t, ctx, `document.querySelector("main").innerText`); !strings.Contains(body, text) {
		t.Errorf("wallet page after %q says %q, want it to contain %q", heading, body, text)
	}
	if after := eval[string](t, ctx, `location.href`); after != before {
		t.Errorf("wallet answer ended at %s, want the wallet URL %s again", after, before)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("form.idv-answer").length`); n != 0 {
		t.Errorf("the decided wallet page still offers %d answer forms", n)
	}
}

// 1. Login with the phone.

func TestBrowserLoginOnAnotherDevice(t *testing.T) {
	e := start(t, site)
	laptop := e.newBrowser(t, "laptop", desktop)
	phone := e.newBrowser(t, "phone", mobile)

	openLoginPage(t, e, laptop.ctx, "/private?x=1")
	c := waitChallenge(t, laptop.ctx, "")
	checkChallenge(t, e, c)
	p := eval[progress](t, laptop.ctx, progressExpr)
	if p.Heading != "Scan the QR code to open the demo wallet" || !p.TimerShown || !regexp.MustCompile(`^\d\d:\d\d$`).MatchString(p.Countdown) || p.RetryShown {
		t.Errorf("login page while waiting: %+v", p)
	}
	if alt := eval[string](t, laptop.ctx, `document.getElementById("idv-qr").alt`); alt == "" {
		t.Error("the QR image has no alt text")
	}

	// The phone opens what the QR code encodes.
	navigate(t, phone.ctx, c.Href)
	waitWallet(t, phone.ctx, "Ada Lovelace")
	if n := eval[int](t, phone.ctx, `document.querySelectorAll("p.notice").length`); n != 0 {
		t.Errorf("the phone's wallet page says it is the same device")
	}
	answerWallet(t, phone.ctx, approveButton, "Login approved", "Approved. You can return to the other screen.")
	screenshot(t, phone.ctx, phone.vp, "wallet-approved")

	// The laptop's long poll sees the approval and goes back by itself.
	waitProtected(t, e, laptop.ctx, "/private?x=1", "Welcome Ada Lovelace")
	checkSessionCookie(t, e, laptop.ctx)
	noSession(t, e, "phone", phone.ctx)

	got := fetchMe(t, laptop.ctx)
	if got.Status != 200 || got.Claims["name"] != "Ada Lovelace" || got.Claims["idv"] != "demo" {
		t.Fatalf("/.idv/me after the login: %+v", got)
	}
	if amr := amrOf(got.Claims); !contains(amr, "mca") {
		t.Errorf("amr of a login approved on another device = %v, want it to include mca", amr)
	}
}

// 2. On the phone itself: the link leads, and the wallet sends the person
// back to the page that started the login.

func TestBrowserLoginSameDevice(t *testing.T) {
	e := start(t, site)
	device := e.newBrowser(t, "device", mobile)

	openLoginPage(t, e, device.ctx, "/private?x=1")
	do(t, device.ctx, "waiting for the link", chromedp.WaitVisible(chromedp.ID("idv-open")))
	lead := eval[map[string]any](t, device.ctx, `(function () {
		var a = document.getElementById("idv-open");
		return {primary: a.classList.contains("primary"), text: a.textContent, target: a.getAttribute("target") || "",
			qrHidden: document.getElementById("idv-qr-wrap").hidden,
			other: !document.getElementById("idv-other-wrap").hidden,
			heading: document.getElementById("idv-progress-heading").textContent};
	})()`)
	if lead["primary"] != true || lead["qrHidden"] != true || lead["other"] != true || lead["target"] != "" ||
		lead["text"] != "Open the demo wallet" || lead["heading"] != "Approve the login in the demo wallet" {
		t.Errorf("on a phone the wallet link must lead, the QR code wait behind \"Use another device\": %v", lead)
	}

	// The wallet opens in this tab, as an app would take over the screen.
	do(t, device.ctx, "clicking \"Open the demo wallet\"", chromedp.Click(chromedp.ID("idv-open")))
	waitWallet(t, device.ctx, "Ada Lovelace")
	if notice := eval[string](t, device.ctx, `(document.querySelector("p.notice") || {}).textContent || ""`); notice != "You are approving on the same device." {
		t.Errorf("same-device notice = %q", notice)
	}
	screenshot(t, device.ctx, device.vp, "wallet-same-device")
	do(t, device.ctx, "pressing Approve", chromedp.Click(chromedp.CSS(approveButton)))

	// Back on the login page, which finishes the login and goes on to the
	// page the person asked for: no "return to the other screen".
	waitProtected(t, e, device.ctx, "/private?x=1", "Welcome Ada Lovelace")
	checkSessionCookie(t, e, device.ctx)
	got := fetchMe(t, device.ctx)
	if got.Status != 200 || got.Claims["name"] != "Ada Lovelace" {
		t.Fatalf("/.idv/me after the login: %+v", got)
	}
	if amr := amrOf(got.Claims); contains(amr, "mca") || !contains(amr, "user") {
		t.Errorf("amr of a same-device login = %v, want user and no mca", amr)
	}
}

// 3. Declined, then "Try again".

func TestBrowserDeclineAndRetry(t *testing.T) {
	e := start(t, site)
	laptop := e.newBrowser(t, "laptop", desktop)
	phone := e.newBrowser(t, "phone", mobile)

	openLoginPage(t, e, laptop.ctx, "/private?x=1")
	first := waitChallenge(t, laptop.ctx, "")
	checkChallenge(t, e, first)

	navigate(t, phone.ctx, first.Href)
	waitWallet(t, phone.ctx, "Ada Lovelace")
	answerWallet(t, phone.ctx, declineButton, "Login declined", "You declined this login.")
	screenshot(t, phone.ctx, phone.vp, "wallet-declined")

	p := waitOutcome(t, laptop.ctx, "Login declined")
	if !strings.Contains(strings.ToLower(p.Status), "declined") {
		t.Errorf("declined status message %q does not say it was declined", p.Status)
	}
	if p.FocusedID != "idv-progress-heading" {
		t.Errorf("focus after the outcome is on #%s, want the heading", p.FocusedID)
	}
	t.Logf("declined: heading %q, status %q", p.Heading, p.Status)
	screenshot(t, laptop.ctx, laptop.vp, "login-declined")

	do(t, laptop.ctx, "clicking \"Try again\"", chromedp.Click(chromedp.ID("idv-retry")))
	second := waitChallenge(t, laptop.ctx, first.QR)
	checkChallenge(t, e, second)
	if second.QR == first.QR || second.Href == first.Href {
		t.Fatalf("Try again shows the same login: %+v then %+v", first, second)
	}
	p = eval[progress](t, laptop.ctx, progressExpr)
	if p.RetryShown || p.Heading != "Scan the QR code to open the demo wallet" {
		t.Errorf("after Try again: %+v", p)
	}

	// The declined login stays declined; the new one works.
	navigate(t, phone.ctx, first.Href)
	if h := eval[string](t, phone.ctx, `document.querySelector("h1").textContent`); h != "Login declined" {
		t.Errorf("the first login's wallet page now says %q", h)
	}
	navigate(t, phone.ctx, second.Href)
	waitWallet(t, phone.ctx, "Ada Lovelace")
	answerWallet(t, phone.ctx, approveButton, "Login approved", "Approved.")
	waitProtected(t, e, laptop.ctx, "/private?x=1", "Welcome Ada Lovelace")
	checkSessionCookie(t, e, laptop.ctx)
}

// 4. The countdown and expiry.

// countdownRecorder keeps every value the visible countdown shows in
// window.__idvCountdown.
const countdownRecorder = `(function () {
	var seen = [];
	window.__idvCountdown = seen;
	new MutationObserver(function () {
		var c = document.getElementById("idv-countdown");
		var w = document.getElementById("idv-timer-wrap");
		if (!c || !w || w.hidden || c.textContent === "") {
			return;
		}
		if (seen[seen.length - 1] !== c.textContent) {
			seen.push(c.textContent);
		}
	}).observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
})();`

func TestBrowserExpiryCountdown(t *testing.T) {
	e := start(t, strings.Replace(site, `user "Ada Lovelace"`, "user \"Ada Lovelace\"\n\t\t\tlifetime 3s", 1))
	laptop := e.newBrowser(t, "laptop", desktop)
	if _, err := chromedp.Call(laptop.ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: countdownRecorder}); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	openLoginPage(t, e, laptop.ctx, "/private?x=1")
	first := waitChallenge(t, laptop.ctx, "")
	checkChallenge(t, e, first)
	do(t, laptop.ctx, "waiting for the countdown", chromedp.WaitVisible(chromedp.ID("idv-countdown")))
	if cd := eval[string](t, laptop.ctx, `document.getElementById("idv-countdown").textContent`); !regexp.MustCompile(`^00:0[0-3]$`).MatchString(cd) {
		t.Errorf("countdown of a 3 s login shows %q", cd)
	}

	p := waitOutcome(t, laptop.ctx, "Login expired")
	took := time.Since(began)
	t.Logf("expired after %v: heading %q, status %q", took.Round(time.Millisecond), p.Heading, p.Status)
	if !strings.Contains(strings.ToLower(p.Status), "expired") {
		t.Errorf("expired status message %q does not say it expired", p.Status)
	}
	if took < 2*time.Second {
		t.Errorf("a 3 s login expired after %v", took)
	}
	seen := eval[[]string](t, laptop.ctx, `window.__idvCountdown`)
	t.Logf("countdown showed %v", seen)
	checkCountdown(t, seen)
	screenshot(t, laptop.ctx, laptop.vp, "login-expired")

	do(t, laptop.ctx, "clicking \"Try again\"", chromedp.Click(chromedp.ID("idv-retry")))
	second := waitChallenge(t, laptop.ctx, first.QR)
	checkChallenge(t, e, second)
	if second.QR == first.QR {
		t.Fatalf("Try again after expiry shows the same QR code %s", first.QR)
	}
	do(t, laptop.ctx, "waiting for the new countdown", chromedp.WaitVisible(chromedp.ID("idv-countdown")))
}

// TestBrowserCountdownDoesNotEndEarly checks that the deadline the login page
// counts down to (expires_at of POST /sessions) is not earlier than the
// login's real expiry. If it is, the page declares the login expired while
// the server and the wallet still accept an approval: the person approves on
// the phone, the wallet says "Login approved", and the laptop says "Login
// expired" and has stopped polling.
func TestBrowserCountdownDoesNotEndEarly(t *testing.T) {
	const lifetime = 2 * time.Minute
	e := start(t, strings.Replace(site, `user "Ada Lovelace"`, "user \"Ada Lovelace\"\n\t\t\tlifetime 2m", 1))
	laptop := e.newBrowser(t, "laptop", desktop)

	// A login started after `before` expires no earlier than
	// before+lifetime, so a deadline before that is too early. To see a
	// deadline cut to whole seconds every time, the login is started just
	// after a whole second of the clock (which the browser and caddy share),
	// so that it is created within that second; when the machine is so slow
	// that the second was over before the answer came, it tries again.
	for attempt := 1; ; attempt++ {
		requests := chromedp.Events(laptop.ctx, network.RequestWillBeSent)
		// This waits for a moment of the clock, not for the product.
		<-time.After(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
		before := time.Now()
		openLoginPage(t, e, laptop.ctx, "/private?x=1")
		checkChallenge(t, e, waitChallenge(t, laptop.ctx, ""))
		after := time.Now()
		deadline, raw := startAnswerDeadline(t, laptop.ctx, requests)
		t.Logf("attempt %d: login started between %s and %s; expires_at %q", attempt,
			before.UTC().Format(time.RFC3339Nano), after.UTC().Format(time.RFC3339Nano), raw)
		if earliest := before.Add(lifetime); deadline.Before(earliest) {
			t.Fatalf("PRODUCT BUG: expires_at %q is at least %v before the login can expire (it was started after %s, with a lifetime of %v), "+
				"so the login page's countdown ends and shows \"Login expired\" up to a second before the server and the wallet do, "+
				"and an approval in that second is lost. Cause: caddymodule/api.go formats expires_at with time.RFC3339, which drops the "+
				"fraction of the second. Fix: send milliseconds (\"2006-01-02T15:04:05.000Z07:00\", still RFC 3339), or round the deadline up",
				raw, earliest.Sub(deadline).Round(time.Millisecond), before.UTC().Format(time.RFC3339Nano), lifetime)
		}
		if deadline.Nanosecond() != 0 || after.Truncate(time.Second).Equal(before.Truncate(time.Second)) || attempt == 5 {
			return
		}
	}
}

// startAnswerDeadline finds the login page's POST /.idv/sessions among the
// tab's requests and returns the expires_at of its answer.
func startAnswerDeadline(t *testing.T, ctx context.Context, requests iter.Seq2[network.EventRequestWillBeSent, error]) (time.Time, string) {
	t.Helper()
	var id network.RequestID
	for ev, err := range requests {
		if err != nil {
			t.Fatalf("no POST /.idv/sessions seen: %v", err)
		}
		if ev.Request != nil && ev.Request.Method == "POST" && strings.HasSuffix(ev.Request.URL, "/.idv/sessions") {
			id = ev.RequestID
			break
		}
	}
	res, err := chromedp.Call(ctx, network.GetResponseBody, network.GetResponseBodyParams{RequestID: id})
	if err != nil {
		t.Fatalf("reading the answer to POST /.idv/sessions: %v", err)
	}
	var started struct {
		ExpiresAt string `json:"expires_at"`
	}
	if err := json.Unmarshal(res.Body, &started); err != nil {
		t.Fatalf("answer to POST /.idv/sessions: %v: %s", err, res.Body)
	}
	deadline, err := time.Parse(time.RFC3339Nano, started.ExpiresAt)
	if err != nil {
		t.Fatalf("expires_at %q: %v", started.ExpiresAt, err)
	}
	return deadline, started.ExpiresAt
}

// checkCountdown checks the countdown's values: from about the login's
// lifetime down, ending at the last second or zero (so a countdown that does
// not tick fails).
func checkCountdown(t *testing.T, seen []string) {
	t.Helper()
	var secs []int
	for _, s := range seen {
		var m, sec int
		if _, err := fmt.Sscanf(s, "%d:%d", &m, &sec); err != nil || len(s) != 5 {
			t.Errorf("countdown value %q is not mm:ss", s)
			return
		}
		secs = append(secs, m*60+sec)
	}
	if len(secs) == 0 {
		t.Errorf("the countdown showed nothing")
		return
	}
	// 00:03 or 00:02 (expires_at is cut to whole seconds); 00:01 only on a
	// machine so slow that the page took a second to show the answer.
	if secs[0] < 1 || secs[0] > 3 {
		t.Errorf("countdown started at %s, want at most 00:03", seen[0])
	}
	for i := 1; i < len(secs); i++ {
		if secs[i] >= secs[i-1] {
			t.Errorf("countdown went from %s to %s", seen[i-1], seen[i])
		}
	}
	if last := secs[len(secs)-1]; last > 1 {
		t.Errorf("countdown stopped at %s before the login expired", seen[len(seen)-1])
	}
}

// 5. The pages, for the eye and for the console.

// TestBrowserPagesHaveNoConsoleErrors shows the login page on a desktop and
// on a phone and the wallet page on a phone, saves screenshots of them, and
// fails on any console error, uncaught exception, browser log error or CSP
// violation, the known favicon bug included.
func TestBrowserPagesHaveNoConsoleErrors(t *testing.T) {
	e := start(t, site)
	laptop := e.newBrowser(t, "laptop", desktop)
	laptop.mon.setStrict()
	phone := e.newBrowser(t, "phone", mobile)
	phone.mon.setStrict()

	openLoginPage(t, e, laptop.ctx, "/private?x=1")
	c := waitChallenge(t, laptop.ctx, "")
	checkChallenge(t, e, c)
	screenshot(t, laptop.ctx, laptop.vp, "login")
	if os.Getenv("IDV_SCREENSHOTS") != "" {
		dark := []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}
		if _, err := chromedp.Call(laptop.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: dark}); err != nil {
			t.Fatal(err)
		}
		screenshot(t, laptop.ctx, laptop.vp, "login-dark")
		if _, err := chromedp.Call(laptop.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
			t.Fatal(err)
		}
	}

	openLoginPage(t, e, phone.ctx, "/private?x=1")
	checkChallenge(t, e, waitChallenge(t, phone.ctx, ""))
	screenshot(t, phone.ctx, phone.vp, "login")

	navigate(t, phone.ctx, c.Href)
	waitWallet(t, phone.ctx, "Ada Lovelace")
	screenshot(t, phone.ctx, phone.vp, "wallet")
	answerWallet(t, phone.ctx, approveButton, "Login approved", "Approved.")
	waitProtected(t, e, laptop.ctx, "/private?x=1", "Welcome Ada Lovelace")
}

// 6. The monitor itself: it must see what it is there to see, or its silence
// in the other tests means nothing.

func TestBrowserMonitorSeesErrors(t *testing.T) {
	e := start(t, site)
	b := e.newBrowser(t, "monitor", desktop)
	openLoginPage(t, e, b.ctx, "/")
	waitChallenge(t, b.ctx, "")
	if b.mon.count() != 0 {
		t.Fatalf("the login page itself had problems: %v", b.mon.take())
	}
	eval[bool](t, b.ctx, `(function () {
		console.error("idv-test: expected console error");
		setTimeout(function () { throw new Error("idv-test: expected uncaught exception"); }, 0);
		var img = new Image();
		img.src = "http://192.0.2.1/idv-test-blocked-by-csp.png";
		return true;
	})()`)
	b.mon.wait(t, e.ctx, "a console error, an uncaught exception and a CSP violation", func(m *monitor) bool {
		return containsAny(m.errors, "console.error: idv-test: expected console error") &&
			containsAny(m.errors, "idv-test: expected uncaught exception") &&
			containsAny(m.csp, "img-src")
	})
	got := b.mon.take()
	t.Logf("the monitor saw, as it should:\n  %s", strings.Join(got, "\n  "))
}

func containsAny(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// monitor collects what a browser's tabs report that a correct page never
// causes: console.error and console.assert calls, uncaught exceptions, error
// entries of the browser log and CSP violations. Other issues that Chrome
// reports (Audits) are logged, not failed.
type monitor struct {
	name string

	mu      sync.Mutex
	strict  bool          // also fail on knownFaviconBug
	errors  []string      // console errors, uncaught exceptions, browser log errors
	csp     []string      // CSP violations
	known   []string      // knownFaviconBug entries, when not strict
	notes   []string      // other issues Chrome reports
	changed chan struct{} // closed and replaced at every new entry
}

// knownFaviconBug tells the browser log entry of a known product bug: the
// module's pages name no icon, so the browser asks for /favicon.ico, which
// the gate answers with 401, and the console shows "Failed to load resource:
// ... 401" on the login page and on the wallet page. The flow tests log it;
// TestBrowserPagesHaveNoConsoleErrors fails on it until it is fixed.
func knownFaviconBug(e *log.Entry) bool {
	return e.Source == log.EntrySourceNetwork && strings.HasSuffix(e.URL, "/favicon.ico") && strings.Contains(e.Text, "401")
}

// cspMarker starts the console message that cspProbe writes.
const cspMarker = "idv-test CSP violation:"

// cspProbe reports every securitypolicyviolation event of a page on the
// console, where the monitor sees it.
const cspProbe = `document.addEventListener("securitypolicyviolation", function (e) {
	console.error("` + cspMarker + ` " + e.violatedDirective + " blocked " + (e.blockedURI || "(inline)") +
		" at " + e.sourceFile + ":" + e.lineNumber + " (" + e.disposition + ")");
}, true);`

func newMonitor(name string) *monitor {
	return &monitor{name: name, changed: make(chan struct{})}
}

// listener returns the function chromedp calls with every event of a tab. It
// runs in chromedp's event loop, so it only records.
func (m *monitor) listener(tab string) func(ev any) {
	return func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			m.add(&m.errors, tab, "uncaught exception: "+exceptionText(ev.ExceptionDetails))
		case *runtime.EventConsoleAPICalled:
			if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
				return
			}
			text := argsText(ev.Args)
			if rest, ok := strings.CutPrefix(text, cspMarker); ok {
				m.add(&m.csp, tab, "securitypolicyviolation:"+rest)
				return
			}
			m.add(&m.errors, tab, "console."+string(ev.Type)+": "+text)
		case *log.EventEntryAdded:
			en := ev.Entry
			if en == nil || en.Level != log.EntryLevelError {
				return
			}
			text := fmt.Sprintf("browser log (%s): %s", en.Source, en.Text)
			if en.URL != "" {
				text += " [" + en.URL + "]"
			}
			if en.Source == log.EntrySourceSecurity || strings.Contains(en.Text, "Content Security Policy") {
				m.add(&m.csp, tab, text)
				return
			}
			if knownFaviconBug(en) && !m.isStrict() {
				m.add(&m.known, tab, text)
				return
			}
			m.add(&m.errors, tab, text)
		case *audits.EventIssueAdded:
			if ev.Issue == nil {
				return
			}
			details, _ := json.Marshal(ev.Issue.Details)
			if ev.Issue.Code == audits.InspectorIssueCodeContentSecurityPolicyIssue {
				d := ev.Issue.Details.ContentSecurityPolicyIssueDetails
				text := "CSP issue: " + string(details)
				if d != nil {
					text = fmt.Sprintf("CSP issue: %s %s blocked %q", d.ContentSecurityPolicyViolationType, d.ViolatedDirective, d.BlockedURL)
				}
				m.add(&m.csp, tab, text)
				return
			}
			if ev.Issue.Code == "PerformanceIssue" && bytes.Contains(details, []byte(`"DocumentCookie"`)) {
				return // the test's own read of document.cookie (checkSessionCookie)
			}
			m.add(&m.notes, tab, fmt.Sprintf("issue %s: %s", ev.Issue.Code, details))
		}
	}
}

func (m *monitor) add(list *[]string, tab, text string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	*list = append(*list, "["+tab+"] "+text)
	close(m.changed)
	m.changed = make(chan struct{})
}

// setStrict makes the monitor fail on knownFaviconBug too.
func (m *monitor) setStrict() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.strict = true
}

func (m *monitor) isStrict() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.strict
}

func (m *monitor) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.errors) + len(m.csp)
}

// take returns and forgets what the monitor has collected.
func (m *monitor) take() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	all := append(append(append(append([]string{}, m.errors...), m.csp...), m.known...), m.notes...)
	m.errors, m.csp, m.known, m.notes = nil, nil, nil, nil
	return all
}

// wait waits until cond holds of what the monitor has collected.
func (m *monitor) wait(t *testing.T, ctx context.Context, what string, cond func(*monitor) bool) {
	t.Helper()
	for {
		m.mu.Lock()
		ok := cond(m)
		changed := m.changed
		m.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("the monitor did not see %s; it saw: %v", what, m.take())
		}
	}
}

// report fails the test for every error and CSP violation, and logs the
// other issues.
func (m *monitor) report(t *testing.T) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	favicon := false
	for _, s := range m.errors {
		t.Errorf("browser %s: %s", m.name, s)
		favicon = favicon || strings.Contains(s, "/favicon.ico")
	}
	if favicon {
		t.Errorf("browser %s: PRODUCT BUG: the module's pages (templates/layout.html) name no icon, so the browser "+
			"requests /favicon.ico, which the gate answers 401, and every login and wallet page shows a console error. "+
			"Fix: give layout.html an icon the CSP allows, e.g. <link rel=\"icon\" href=\"data:,\"> (img-src allows data:) "+
			"or a static icon under the prefix", m.name)
	}
	if len(m.known) > 0 {
		t.Logf("browser %s: %d console errors of the known favicon bug (tolerated here; TestBrowserPagesHaveNoConsoleErrors fails on it): %s",
			m.name, len(m.known), m.known[0])
	}
	for _, s := range m.csp {
		t.Errorf("browser %s: Content-Security-Policy violation: %s", m.name, s)
	}
	for _, s := range m.notes {
		t.Logf("browser %s reported (not a failure): %s", m.name, s)
	}
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "(no details)"
	}
	text := d.Text
	if d.Exception != nil && d.Exception.Description != "" {
		text += " " + d.Exception.Description
	}
	if d.URL != "" {
		text += fmt.Sprintf(" at %s:%d:%d", d.URL, d.LineNumber+1, d.ColumnNumber+1)
	}
	return text
}

func argsText(args []*runtime.RemoteObject) string {
	var parts []string
	for _, a := range args {
		if a == nil {
			continue
		}
		var s string
		if len(a.Value) > 0 && json.Unmarshal(a.Value, &s) == nil {
			parts = append(parts, s)
		} else if len(a.Value) > 0 {
			parts = append(parts, string(a.Value))
		} else if a.Description != "" {
			parts = append(parts, a.Description)
		} else {
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

// Process and profile clean-up.

// checkNoLeftovers fails the test when a Chromium process that used the
// profile dir is still running after the browser was closed (Chromium passes
// --user-data-dir to all its child processes). It gives them 5 s to exit and
// kills what is left, so that no test leaves a browser behind.
func checkNoLeftovers(t *testing.T, name, dir string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids := processesUsing(dir)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Errorf("Chromium (%s) left %d processes running after its contexts were cancelled (killed now): %v", name, len(pids), pids)
			return
		}
		time.Sleep(20 * time.Millisecond) // polling /proc for the processes' exit
	}
}

// processesUsing lists the running (not zombie) processes whose command line
// has --user-data-dir=dir.
func processesUsing(dir string) []int {
	want := []byte("--user-data-dir=" + dir)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, en := range entries {
		pid, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", en.Name(), "cmdline"))
		if err != nil {
			continue
		}
		found := false
		for _, arg := range bytes.Split(cmdline, []byte{0}) {
			if bytes.Equal(arg, want) {
				found = true
				break
			}
		}
		if !found {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", en.Name(), "stat"))
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// removeProfile removes a browser's profile directory. Chromium's last
// writes can race the first attempt, so it tries a few times.
func removeProfile(t *testing.T, dir string) {
	t.Helper()
	var err error
	for i := 0; i < 5; i++ {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("removing the profile %s: %v", dir, err)
}
