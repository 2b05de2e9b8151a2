package browser_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/caddy-idv/caddy-idv/providers/marksign/fakemarksign"
)

// axePath finds axe-core's browser build: $AXE_JS, or where scripts/test.sh
// installs it (npm, pinned, into test/browser/.axe). Without it the test
// skips, or fails when CI is set, since CI installs it.
func axePath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("AXE_JS"); p != "" {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), ".axe", "node_modules", "axe-core", "axe.min.js")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("axe-core is not installed at %s (scripts/test.sh installs it with npm): %v", p, err)
		}
		t.Skipf("axe-core is not installed (%s); scripts/test.sh installs it with npm", p)
	}
	return p
}

// checkA11y runs axe-core in the tab against WCAG 2.1 A and AA and fails
// the test for every violation: missing labels and names, contrast below
// AA, landmarks, language, focusable hidden elements, and so on. axe is
// added through the DevTools protocol, which the page's CSP does not cover.
func checkA11y(t *testing.T, ctx context.Context, axe, what string) {
	t.Helper()
	violations := axeViolations(t, ctx, axe)
	for _, v := range violations {
		t.Errorf("%s: %s", what, v)
	}
	if len(violations) == 0 {
		t.Logf("%s: no WCAG 2.1 A/AA violations", what)
	}
}

func axeViolations(t *testing.T, ctx context.Context, axe string) []string {
	t.Helper()
	eval[bool](t, ctx, axe+";true")
	expr := `axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
		.then(function (r) {
			return JSON.stringify(r.violations.map(function (v) {
				return v.id + " (" + v.impact + "): " + v.help + " — " + v.nodes.map(function (n) { return n.target.join(" "); }).join(", ");
			}));
		})`
	raw := eval[string](t, ctx, expr, chromedp.EvalAwaitPromise)
	var violations []string
	if err := json.Unmarshal([]byte(raw), &violations); err != nil {
		t.Fatalf("axe result: %v: %s", err, raw)
	}
	return violations
}

// TestBrowserAccessibility checks every view a person sees: the provider
// choice, the QR view, the Mobile-ID form, the demo wallet, its outcome and
// the error page, on a phone and on a desktop.
func TestBrowserAccessibility(t *testing.T) {
	axeFile := axePath(t)
	src, err := os.ReadFile(axeFile)
	if err != nil {
		t.Fatal(err)
	}
	axe := string(src)
	fake, err := fakemarksign.New(fakemarksign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(fake)
	defer gw.Close()
	e := start(t, `
	idv {
		provider demo {
			user "Ada Lovelace"
		}
		provider marksign_mobileid {
			base_url     `+gw.URL+`
			access_token `+fake.AccessToken()+`
		}
	}
	respond "Welcome {http.auth.user.name}"
`)
	for _, vp := range []viewport{mobile, desktop} {
		t.Run(vp.name, func(t *testing.T) {
			b := e.newBrowser(t, "a11y-"+vp.name, vp)
			openLoginPage(t, e, b.ctx, "/private")
			do(t, b.ctx, "waiting for the provider choice", chromedp.WaitVisible(chromedp.ID("idv-choose")))
			checkA11y(t, b.ctx, axe, "login page, provider choice")

			do(t, b.ctx, "choosing Mobile-ID", chromedp.Click(chromedp.CSS(`button.idv-choice[data-provider="marksign_mobileid"]`)))
			do(t, b.ctx, "waiting for the form", chromedp.WaitVisible(chromedp.CSS(`form.idv-form[data-provider="marksign_mobileid"]`)))
			checkA11y(t, b.ctx, axe, "login page, Mobile-ID form")

			openLoginPage(t, e, b.ctx, "/private")
			do(t, b.ctx, "waiting for the provider choice", chromedp.WaitVisible(chromedp.ID("idv-choose")))
			do(t, b.ctx, "choosing the demo wallet", chromedp.Click(chromedp.CSS(`button.idv-choice[data-provider="demo"]`)))
			c := waitChallenge(t, b.ctx, "")
			checkA11y(t, b.ctx, axe, "login page, QR code")

			navigate(t, b.ctx, c.Href)
			waitWallet(t, b.ctx, "Ada Lovelace")
			checkA11y(t, b.ctx, axe, "demo wallet")
			answerWallet(t, b.ctx, approveButton, "Login approved", "Approved.")
			checkA11y(t, b.ctx, axe, "demo wallet, approved")

			navigate(t, b.ctx, e.inst.URL+"/.idv/no-such-page")
			checkA11y(t, b.ctx, axe, "error page")
			// The control: axe must see a violation when there is one, or its
			// silence above means nothing.
			eval[bool](t, b.ctx, `document.querySelector("main").appendChild(document.createElement("input")) && true`)
			if v := axeViolations(t, b.ctx, axe); len(v) == 0 || !strings.Contains(strings.Join(v, "\n"), "label") {
				t.Fatalf("axe did not report an unlabelled input: %v", v)
			}
			// What the browser logs here is expected: the page's own 404, and
			// Chrome's note about the control's nameless input.
			for _, got := range b.mon.take() {
				page404 := strings.Contains(got, "404") && strings.Contains(got, "/.idv/no-such-page")
				control := strings.Contains(got, "FormEmptyIdAndNameAttributesForInputError")
				if !page404 && !control {
					t.Errorf("unexpected browser error: %s", got)
				}
			}
		})
	}
}
