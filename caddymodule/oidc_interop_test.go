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

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

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

// The oidc block's options of issue 10, and the mistakes in them, each
// reported at its line.
func TestOIDCCaddyfileOptions(t *testing.T) {
	parse := func(block string) (*Handler, error) {
		h := &Handler{}
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("idv {\n\tprovider demo\n\toidc {\n\t\tissuer https://sso.example.com\n" + block + "\n\t}\n}"))
		return h, err
	}
	h, err := parse(`
		refresh_reuse_grace 30s
		client app {
			name Example App
			secret 0123456789abcdef
			redirect_uri https://app.example.com/cb
			backchannel_logout_uri https://app.example.com/bcl?x=1
			id_token_signed_response_alg ES256
		}
		client cli {
			secret {env.CLI_SECRET}
			redirect_uri http://127.0.0.1/cb
		}`)
	if err != nil {
		t.Fatal(err)
	}
	c := h.OIDC.Clients[0]
	if c.Name != "Example App" || c.BackchannelLogoutURI != "https://app.example.com/bcl?x=1" || c.IDTokenSignedResponseAlg != "ES256" ||
		h.OIDC.RefreshReuseGrace == nil || time.Duration(*h.OIDC.RefreshReuseGrace) != 30*time.Second {
		t.Errorf("parsed %+v grace %v", c, h.OIDC.RefreshReuseGrace)
	}
	raw, _ := json.Marshal(h.OIDC)
	for _, want := range []string{`"refresh_reuse_grace":30000000000`, `"name":"Example App"`, `"backchannel_logout_uri":`, `"id_token_signed_response_alg":"ES256"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("JSON %s lacks %s", raw, want)
		}
	}
	if h, err := parse("refresh_reuse_grace off\nclient a {\nredirect_uri https://a.example/cb\n}"); err != nil || *h.OIDC.RefreshReuseGrace != 0 {
		t.Errorf("refresh_reuse_grace off: %v", err)
	}
	for name, tc := range map[string]struct{ block, want string }{
		"short secret":         {"client a {\nredirect_uri https://a.example/cb\nsecret abc\n}", `oidc client "a": secret is 3 characters; use at least 16`},
		"HS256":                {"client a {\nredirect_uri https://a.example/cb\nid_token_signed_response_alg HS256\n}", `id_token_signed_response_alg "HS256" must be RS256 or ES256`},
		"http back-channel":    {"client a {\nredirect_uri https://a.example/cb\nbackchannel_logout_uri http://a.example/bcl\n}", "backchannel_logout_uri"},
		"back-channel with #":  {"client a {\nredirect_uri https://a.example/cb\nbackchannel_logout_uri https://a.example/bcl#x\n}", "backchannel_logout_uri"},
		"long grace":           {"refresh_reuse_grace 1h", "refresh_reuse_grace"},
		"negative grace":       {"refresh_reuse_grace -1s", "refresh_reuse_grace"},
		"grace not a duration": {"refresh_reuse_grace soon", "refresh_reuse_grace"},
		"name without a value": {"client a {\nredirect_uri https://a.example/cb\nname\n}", "wrong argument count"},
	} {
		if _, err := parse(tc.block); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
