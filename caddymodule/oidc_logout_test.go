package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/providers/demo"
	"github.com/caddy-idv/caddy-idv/store"
)

const (
	oidcTestIssuer   = "http://127.0.0.1:8443"
	oidcTestSecret   = "app-secret-0123456789"
	oidcTestRedirect = "https://app.example/cb"
)

func withOIDC(h *Handler) {
	h.OIDC = &OIDCConfig{Issuer: oidcTestIssuer, Clients: []OIDCClient{{
		ID: "app", Secret: oidcTestSecret, RedirectURIs: []string{oidcTestRedirect},
	}}}
}

// oidcGrant runs the code flow for client app with the session cookie and
// returns the token response.
func oidcGrant(t *testing.T, h *Handler, cookie *http.Cookie) map[string]any {
	t.Helper()
	q := url.Values{"client_id": {"app"}, "redirect_uri": {oidcTestRedirect}, "response_type": {"code"},
		"scope": {"openid offline_access"}, "state": {"s"}}
	r := httptest.NewRequest(http.MethodGet, oidcTestIssuer+"/.idv/oidc/authorize?"+q.Encode(), nil)
	r.AddCookie(cookie)
	w, _, _ := serve(t, h, r, nil)
	loc, _ := url.Parse(w.Header().Get("Location"))
	code := loc.Query().Get("code")
	if w.Code != http.StatusFound || code == "" {
		t.Fatalf("authorize: %d %q %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	st, out := oidcToken(t, h, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {oidcTestRedirect}})
	if st != 200 || out["refresh_token"] == nil {
		t.Fatalf("exchange: %d %v", st, out)
	}
	return out
}

func oidcToken(t *testing.T, h *Handler, form url.Values) (int, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, oidcTestIssuer+"/.idv/oidc/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("app", oidcTestSecret)
	w, _, _ := serve(t, h, r, nil)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return w.Code, out
}

// Finding 3 of issue 10: POST <prefix>/logout revoked the session only
// until its session token would have expired; the refresh tokens issued
// from it (30 days) worked again after that. They must stay dead.
func TestOIDCLogoutEndsRefreshTokensForGood(t *testing.T) {
	clk := &testClock{t: time.Now()}
	h := newTestHandler(t, clk, withOIDC)
	cookie := &http.Cookie{Name: h.sc.Cookie, Value: sessionToken(t, h, "")}
	grant := oidcGrant(t, h, cookie)

	r := httptest.NewRequest(http.MethodPost, oidcTestIssuer+"/.idv/logout", nil)
	r.AddCookie(cookie)
	if w, _, _ := serve(t, h, r, nil); w.Code != http.StatusSeeOther {
		t.Fatalf("logout: %d %s", w.Code, w.Body)
	}
	// The first refresh comes after the session token (8 hours) and its
	// revocation have expired; then later, up to the family's end.
	for _, d := range []time.Duration{9 * time.Hour, 7 * 24 * time.Hour, 20 * 24 * time.Hour} {
		clk.add(d)
		if err := h.tokens.Keys().Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := h.revoked.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		st, out := oidcToken(t, h, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {grant["refresh_token"].(string)}})
		if st != http.StatusBadRequest || out["error"] != "invalid_grant" {
			t.Fatalf("refresh %s after logout: %d %v", d, st, out)
		}
	}
}

// Finding 8 of issue 10: RFC 8414 metadata is served, never gated.
func TestOIDCAuthorizationServerMetadataIsNotGated(t *testing.T) {
	clk := &testClock{t: time.Now()}
	for _, tc := range []struct{ issuer, path string }{
		{oidcTestIssuer, "/.well-known/oauth-authorization-server"},
		{oidcTestIssuer + "/sso", "/.well-known/oauth-authorization-server/sso"},
	} {
		h := newTestHandler(t, clk, func(h *Handler) {
			withOIDC(h)
			h.OIDC.Issuer = tc.issuer
		})
		w, upstream, _ := serve(t, h, httptest.NewRequest(http.MethodGet, oidcTestIssuer+tc.path, nil), nil)
		var meta map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &meta); w.Code != 200 || upstream != nil || err != nil || meta["issuer"] != tc.issuer {
			t.Errorf("%s: %d %s", tc.path, w.Code, w.Body)
		}
	}
}

// Finding 9 of issue 10: a client whose secret placeholder resolves to
// nothing silently became a public client. Caddy must refuse to start,
// naming the client and its secret option.
func TestOIDCSecretEmptyAfterPlaceholdersRefusesToStart(t *testing.T) {
	os.Unsetenv("IDV_TEST_UNSET_SECRET")
	clk := &testClock{t: time.Now()}
	h := &Handler{store: store.NewMemory(clk.now), now: clk.now}
	withOIDC(h)
	h.OIDC.Clients[0].Secret = "{env.IDV_TEST_UNSET_SECRET}"
	err := h.setup(context.Background(), []providers.Config{&demo.Config{User: "Ada Lovelace"}})
	t.Cleanup(func() { _ = h.Cleanup() })
	if err == nil || !strings.Contains(err.Error(), `client "app"`) || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("setup with an empty secret: %v", err)
	}
}
