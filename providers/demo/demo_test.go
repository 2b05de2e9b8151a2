package demo

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/store"
	"github.com/caddy-idv/caddy-idv/templates"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type pages struct {
	rendered []string
	last     any // the data of the last page
}

func (p *pages) Render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	p.rendered = append(p.rendered, name)
	p.last = data
	w.WriteHeader(status)
}

type fixture struct {
	pages *pages
	clk   *clock
	p     *provider
	wall  http.Handler
	store store.Store
	same  map[string]bool // login ids whose wallet is opened in the same browser
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{clk: &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}, same: map[string]bool{}, pages: &pages{}}
	f.store = store.NewMemory(f.clk.now)
	impl, err := (&Config{User: "Ada Lovelace"}).Open(providers.Env{
		Name: "demo", Prefix: "/.idv", Store: f.store, Now: f.clk.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.p = impl.(*provider)
	_, f.wall = f.p.Routes(providers.RouteHost{Pages: f.pages,
		SameBrowser: func(_ *http.Request, id string) bool { return f.same[id] }})
	return f
}

const id = "AAAAAAAAAAAAAAAAAAAAAA"

func (f *fixture) start(t *testing.T) providers.Login {
	t.Helper()
	ch, err := f.p.Start(context.Background(), providers.StartRequest{ID: id, BaseURL: "https://app.example/.idv"})
	if err != nil {
		t.Fatal(err)
	}
	if ch.QRText != "https://app.example/.idv/demo/wallet/"+id || ch.DeepLink != ch.QRText {
		t.Fatalf("challenge %+v", ch)
	}
	return providers.Login{ID: id, CreatedAt: f.clk.now(), ExpiresAt: ch.ExpiresAt}
}

func (f *fixture) press(t *testing.T, button string) int {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/demo/wallet/"+id+"/"+button, nil)
	r.Header.Set("Accept", "application/json")
	w := httptest.NewRecorder()
	f.wall.ServeHTTP(w, r)
	_, _ = io.Copy(io.Discard, w.Body)
	return w.Code
}

func (f *fixture) poll(t *testing.T, l providers.Login) *providers.Result {
	t.Helper()
	res, err := providers.ResultOf(f.p.Poll(context.Background(), l))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestApprove(t *testing.T) {
	f := newFixture(t)
	l := f.start(t)
	if res := f.poll(t, l); res.State != providers.Pending {
		t.Fatalf("before approval: %+v", res)
	}
	if code := f.press(t, "approve"); code != http.StatusOK {
		t.Fatalf("approve: %d", code)
	}
	res := f.poll(t, l)
	if res.State != providers.Completed || res.Identity.Claims["name"] != "Ada Lovelace" || res.Identity.ACR != "urn:caddy-idv:demo" {
		t.Fatalf("after approval: %+v", res)
	}
	if amr := res.Identity.AMR; len(amr) != 3 || amr[2] != "mca" {
		t.Fatalf("cross-device amr: %v", amr)
	}
	// The signed result is consumed once: polling again never yields a
	// second identity; the poller is told another one consumed it (and
	// waits for that one's recorded outcome).
	if res, err := f.p.Poll(context.Background(), l); !errors.Is(err, providers.ErrConsumed) || res != nil {
		t.Fatalf("replayed result: %+v, %v", res, err)
	}
	if code := f.press(t, "approve"); code != http.StatusConflict {
		t.Fatalf("second approval: %d", code)
	}
}

func TestSameDeviceHasNoMCA(t *testing.T) {
	f := newFixture(t)
	l := f.start(t)
	f.same[id] = true
	f.press(t, "approve")
	if amr := f.poll(t, l).Identity.AMR; len(amr) != 2 {
		t.Fatalf("same-device amr: %v", amr)
	}
}

// walletPage opens the wallet page as a browser does and returns its data.
func (f *fixture) walletPage(t *testing.T) templates.Wallet {
	t.Helper()
	w := httptest.NewRecorder()
	f.wall.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/demo/wallet/"+id, nil))
	data, ok := f.pages.last.(templates.Wallet)
	if !ok {
		t.Fatalf("the wallet page rendered %T", f.pages.last)
	}
	return data
}

// An answer on the device that started the login takes the person back to
// that login page (which finishes the login), even when that page has
// already finished it and the browser no longer holds its pending cookie by
// the time the outcome page loads; an answer on another device does not.
func TestSameDeviceAnswerReturnsToTheLogin(t *testing.T) {
	for _, button := range []string{"approve", "decline"} {
		t.Run(button, func(t *testing.T) {
			f := newFixture(t)
			f.start(t)
			f.same[id] = true
			if got := f.walletPage(t); !got.SameDevice || got.ReturnURL != "" {
				t.Errorf("pending on the same device: SameDevice %v, ReturnURL %q", got.SameDevice, got.ReturnURL)
			}
			f.press(t, button)
			delete(f.same, id)
			got := f.walletPage(t)
			if want := "/.idv/login#idv-resume=" + id; got.ReturnURL != want || !got.SameDevice {
				t.Errorf("after %s on the same device: ReturnURL %q, SameDevice %v; want %q", button, got.ReturnURL, got.SameDevice, want)
			}

			other := newFixture(t)
			other.start(t)
			other.press(t, button)
			if got := other.walletPage(t); got.ReturnURL != "" || got.SameDevice {
				t.Errorf("after %s on another device: ReturnURL %q, SameDevice %v", button, got.ReturnURL, got.SameDevice)
			}
		})
	}
}

func TestDecline(t *testing.T) {
	f := newFixture(t)
	l := f.start(t)
	if code := f.press(t, "decline"); code != http.StatusOK {
		t.Fatalf("decline: %d", code)
	}
	if res := f.poll(t, l); res.State != providers.Declined || res.Message == "" {
		t.Fatalf("%+v", res)
	}
	if code := f.press(t, "approve"); code != http.StatusConflict {
		t.Fatalf("approve after decline: %d", code)
	}
}

func TestExpiry(t *testing.T) {
	f := newFixture(t)
	l := f.start(t)
	f.clk.add(DefaultLifetime)
	if res := f.poll(t, l); res.State != providers.Expired {
		t.Fatalf("%+v", res)
	}
	if code := f.press(t, "approve"); code != http.StatusGone {
		t.Fatalf("approve after expiry: %d", code)
	}
}

func TestTamperedDecisionFails(t *testing.T) {
	f := newFixture(t)
	l := f.start(t)
	// A decision whose result is not the wallet's signature (written straight
	// into the store by someone who can write there) is refused.
	if err := f.store.Set(context.Background(), decisionKey(id), []byte(`{"approved":true,"result":"eyJhbGciOiJub25lIn0.e30."}`), time.Minute); err != nil {
		t.Fatal(err)
	}
	if res := f.poll(t, l); res.State != providers.Failed {
		t.Fatalf("%+v", res)
	}
}

func TestWalletRefusesBadIDs(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/demo/wallet/short/approve", "/demo/wallet/" + id + "/approve", "/demo/wallet/..%2f..%2fkeys/approve"} {
		r := httptest.NewRequest(http.MethodPost, path, nil)
		r.Header.Set("Accept", "application/json")
		w := httptest.NewRecorder()
		f.wall.ServeHTTP(w, r)
		if w.Code != http.StatusNotFound {
			t.Errorf("%s: %d", path, w.Code)
		}
	}
	if _, err := f.p.Start(context.Background(), providers.StartRequest{ID: "../../keys/signing"}); err == nil {
		t.Fatal("started a login with a path as its id")
	}
}
