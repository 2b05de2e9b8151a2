package oidc_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/caddy-idv/caddy-idv/oidc"
)

// logoutRP is a relying party's back-channel logout endpoint: it verifies
// each logout token with go-oidc, as a real RP does (Back-Channel Logout
// 1.0 §2.6), and answers with the status its test chooses.
type logoutRP struct {
	srv *httptest.Server
	// status answers the n-th request (from 1); 200 when nil.
	status func(n int) int
	// hold, when not nil, is waited for before answering.
	hold chan struct{}

	env *env

	mu       sync.Mutex
	n        int
	received chan received
}

type received struct {
	path   string
	claims map[string]any
	header map[string]any
	err    error
}

// newLogoutRP starts the RP; its env is set once the provider exists (it
// is read only when logout tokens arrive, after that).
func newLogoutRP(t *testing.T) *logoutRP {
	rp := &logoutRP{received: make(chan received, 100)}
	rp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rp.mu.Lock()
		rp.n++
		n := rp.n
		rp.mu.Unlock()
		if rp.hold != nil {
			<-rp.hold
		}
		e := rp.env
		got := received{path: r.URL.Path}
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost ||
			r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			got.err = fmt.Errorf("method %s, content type %q, form error %v", r.Method, r.Header.Get("Content-Type"), err)
		}
		raw := r.PostForm.Get("logout_token")
		client := strings.TrimPrefix(r.URL.Path, "/bcl/")
		keys := gooidc.NewRemoteKeySet(context.Background(), e.issuer+"/.idv/oidc/jwks")
		v := gooidc.NewVerifier(e.issuer, keys, &gooidc.Config{ClientID: client, Now: e.clock.Now,
			SupportedSigningAlgs: []string{gooidc.RS256, gooidc.ES256}})
		if _, err := v.Verify(r.Context(), raw); err != nil && got.err == nil {
			got.err = err
		} else if err == nil {
			got.claims, got.header = decodePart(raw, 1), decodePart(raw, 0)
		}
		st := http.StatusOK
		if rp.status != nil {
			st = rp.status(n)
		}
		w.WriteHeader(st)
		rp.received <- got
	}))
	t.Cleanup(rp.srv.Close)
	return rp
}

func decodePart(raw string, i int) map[string]any {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		return nil
	}
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func (rp *logoutRP) next(t *testing.T) received {
	t.Helper()
	select {
	case got := <-rp.received:
		return got
	case <-time.After(10 * time.Second):
		t.Fatal("no logout token arrived within 10 s")
	}
	return received{}
}

func (rp *logoutRP) count() int {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.n
}

// newBackchannelEnv starts a provider whose clients web (RS256) and pw1
// (ES256, pairwise) have a back-channel logout endpoint on a test RP, with
// fast retries. configure may set the RP's answers before anything is sent.
func newBackchannelEnv(t *testing.T, configure func(*logoutRP)) (*env, *logoutRP) {
	return newBackchannelEnvRetry(t, configure, oidc.RetryPolicy{Timeout: 5 * time.Second, First: time.Millisecond, Max: 2 * time.Millisecond, Span: 20 * time.Millisecond})
}

func newBackchannelEnvRetry(t *testing.T, configure func(*logoutRP), retry oidc.RetryPolicy) (*env, *logoutRP) {
	rp := newLogoutRP(t)
	if configure != nil {
		configure(rp)
	}
	e := newEnvWith(t, func(o *optionsHook) {
		for i := range o.cfg.Clients {
			c := &o.cfg.Clients[i]
			switch c.ID {
			case "web":
				c.BackchannelLogoutURI = rp.srv.URL + "/bcl/web"
			case "pw1":
				c.BackchannelLogoutURI = rp.srv.URL + "/bcl/pw1"
				c.IDTokenAlg = "ES256"
			}
		}
		o.opts.BackchannelRetry = retry
	})
	rp.env = e
	return e, rp
}

// OpenID Connect Back-Channel Logout 1.0: when a session ends, every client
// that received tokens in it and registered a backchannel_logout_uri gets a
// logout token, which verifies with go-oidc and has exactly the claims of
// §2.4, the client's own sub and sid, and the client's algorithm.
func TestBackchannelLogoutReachesEveryClientOfTheSession(t *testing.T) {
	e, rp := newBackchannelEnv(t, nil)
	sess := e.login(time.Minute, "demo")
	_, webID := e.flow(e.rp("web", webSecret, webRedirect))
	_, pwID := e.flow(e.rp("pw1", pw1Secret, webRedirect))
	spa := e.offlineGrant("spa", "", spaRedirect)
	var pwClaims struct{ SID string }
	_ = pwID.Claims(&pwClaims)

	// The RP's own back channel: end_session with spa's ID token, no cookie.
	resp, err := http.Get(e.issuer + "/.idv/oidc/logout?" + url.Values{"id_token_hint": {spa["id_token"].(string)}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if b := body(t, resp); resp.StatusCode != 200 {
		t.Fatalf("logout: %d %s", resp.StatusCode, b)
	}
	got := map[string]received{}
	for range 2 {
		r := rp.next(t)
		if r.err != nil {
			t.Fatalf("%s: the logout token does not verify: %v", r.path, r.err)
		}
		got[r.path] = r
	}
	web, pw := got["/bcl/web"], got["/bcl/pw1"]
	if web.claims == nil || pw.claims == nil {
		t.Fatalf("logout tokens reached %v", got)
	}
	for name, tc := range map[string]struct {
		r        received
		sub, sid string
		alg, aud string
	}{
		"web": {web, webID.Subject, sess.SID, "RS256", "web"},
		"pw1": {pw, pwID.Subject, pwClaims.SID, "ES256", "pw1"},
	} {
		c := tc.r.claims
		ev, _ := c["events"].(map[string]any)
		_, hasEvent := ev["http://schemas.openid.net/event/backchannel-logout"]
		if c["iss"] != e.issuer || c["aud"] != tc.aud || c["sub"] != tc.sub || c["sid"] != tc.sid || !hasEvent ||
			c["jti"] == nil || c["iat"] == nil || c["exp"] == nil || c["nonce"] != nil {
			t.Errorf("%s logout token claims %v", name, c)
		}
		if tc.r.header["typ"] != "logout+jwt" || tc.r.header["alg"] != tc.alg {
			t.Errorf("%s logout token header %v", name, tc.r.header)
		}
	}
	if pw.claims["sid"] == sess.SID || pw.claims["sub"] == web.claims["sub"] {
		t.Error("the pairwise client's logout token carries the public sid or sub")
	}
	// The same session ended again sends nothing more.
	if err := e.provider.EndSession(context.Background(), sess.SID); err != nil {
		t.Fatal(err)
	}
	_ = e.provider.Close()
	if n := rp.count(); n != 2 {
		t.Errorf("%d deliveries, want 2", n)
	}
}

// POST <prefix>/logout reaches the provider as EndSession (the module calls
// it): the same logout tokens go out.
func TestBackchannelLogoutFromHostLogout(t *testing.T) {
	e, rp := newBackchannelEnv(t, nil)
	sess := e.login(time.Minute, "demo")
	e.offlineGrant("web", webSecret, webRedirect)
	if err := e.provider.EndSession(context.Background(), sess.SID); err != nil {
		t.Fatal(err)
	}
	if r := rp.next(t); r.err != nil || r.claims["sid"] != sess.SID {
		t.Fatalf("logout token %v %v", r.claims, r.err)
	}
}

// A relying party that answers 5xx is tried again; one that hangs does not
// delay the person's logout answer.
func TestBackchannelLogoutRetriesAndNeverDelaysLogout(t *testing.T) {
	hold := make(chan struct{})
	e, rp := newBackchannelEnv(t, func(rp *logoutRP) {
		rp.hold = hold
		rp.status = func(n int) int {
			if n < 3 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		}
	})
	e.login(time.Minute, "demo")
	web := e.offlineGrant("web", webSecret, webRedirect)
	// The RP holds every request until released: the logout answers anyway.
	resp, err := http.Get(e.issuer + "/.idv/oidc/logout?" + url.Values{"id_token_hint": {web["id_token"].(string)}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if b := body(t, resp); resp.StatusCode != 200 {
		t.Fatalf("logout: %d %s", resp.StatusCode, b)
	}
	close(hold)
	for i := range 3 {
		if r := rp.next(t); r.err != nil {
			t.Fatalf("attempt %d: %v", i+1, r.err)
		}
	}
	_ = e.provider.Close()
	if n := rp.count(); n != 3 {
		t.Errorf("%d attempts, want 3 (two 503, then 200)", n)
	}
}

// A 4xx answer is final (Back-Channel Logout 1.0 §2.8); Close stops
// deliveries that are waiting to be retried.
func TestBackchannelLogoutFinalAnswerAndClose(t *testing.T) {
	e, rp := newBackchannelEnv(t, func(rp *logoutRP) {
		rp.status = func(int) int { return http.StatusBadRequest }
	})
	sess := e.login(time.Minute, "demo")
	e.offlineGrant("web", webSecret, webRedirect)
	if err := e.provider.EndSession(context.Background(), sess.SID); err != nil {
		t.Fatal(err)
	}
	rp.next(t)
	_ = e.provider.Close()
	if n := rp.count(); n != 1 {
		t.Errorf("%d attempts after a 400, want 1", n)
	}

	// An RP that fails, with an hour before the retry: Close returns
	// without waiting for it, and nothing more is sent.
	e2, rp2 := newBackchannelEnvRetry(t, func(rp *logoutRP) {
		rp.status = func(int) int { return http.StatusBadGateway }
	}, oidc.RetryPolicy{First: time.Hour, Span: 2 * time.Hour})
	sess2 := e2.login(time.Minute, "demo")
	e2.offlineGrant("web", webSecret, webRedirect)
	if err := e2.provider.EndSession(context.Background(), sess2.SID); err != nil {
		t.Fatal(err)
	}
	rp2.next(t)
	closed := make(chan struct{})
	go func() { _ = e2.provider.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a delivery's retry")
	}
	if n := rp2.count(); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
	// A closed provider sends nothing.
	sess3 := e2.login(time.Minute, "demo")
	e2.offlineGrant("web", webSecret, webRedirect)
	if err := e2.provider.EndSession(context.Background(), sess3.SID); err != nil {
		t.Fatal(err)
	}
	if n := rp2.count(); n != 1 {
		t.Errorf("a closed provider delivered a logout token")
	}
}
