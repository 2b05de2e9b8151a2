package browser_test

import (
	"net/url"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserRedirectStaysOnTheSite logs in with rd values whose dot
// segments a browser removes into //evil.example, and checks that the page
// lands on the site itself. Before the server canonicalised rd and the page
// stopped rebuilding it, the page navigated to //evil.example.
func TestBrowserRedirectStaysOnTheSite(t *testing.T) {
	e := start(t, site)
	laptop := e.newBrowser(t, "laptop", desktop)
	phone := e.newBrowser(t, "phone", mobile)
	for _, rd := range []string{"/.//evil.example", "/..//evil.example", "/%2e//evil.example", "/a/..//evil.example"} {
		navigate(t, laptop.ctx, e.inst.URL+"/.idv/login?rd="+url.QueryEscape(rd))
		c := waitChallenge(t, laptop.ctx, "")
		navigate(t, phone.ctx, c.Href)
		do(t, phone.ctx, "waiting for the wallet's Approve button", chromedp.WaitVisible(chromedp.CSS(approveButton)))
		do(t, phone.ctx, "pressing Approve", chromedp.Click(chromedp.CSS(approveButton)))
		want := e.inst.URL + "/"
		waitJS[bool](t, laptop.ctx, "the site's own / after the login with rd="+rd,
			`location.href === `+strconv.Quote(want)+` && !!document.body && document.body.innerText.indexOf("Welcome") >= 0`)
		if loc := eval[string](t, laptop.ctx, `location.href`); loc != want {
			t.Fatalf("rd=%q: landed on %s, want %s", rd, loc, want)
		}
	}
}
