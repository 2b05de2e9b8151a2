package oidc_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/token"
)

// TestIDTokenHintAcceptsOnlyIDTokens: an access token or a session token of
// this issuer, validly signed, is not an id_token_hint: the logout asks
// first (no hint proves the RP holds an ID token of this session) and the
// bad hint is refused.
func TestIDTokenHintAcceptsOnlyIDTokens(t *testing.T) {
	e := newEnv(t)
	sess := e.login(time.Minute, "demo")
	r := e.rp("web", "s3cr3t:with/odd+chars", webRedirect)
	tok, _ := e.flow(r)
	sessions := e.tokens.Sessions(token.Site{OIDCIssuer: e.issuer, Providers: []token.SiteProvider{{Name: "demo", Kind: "demo"}}}, time.Hour, 0)
	sessionToken, _, err := sessions.Issue(token.Login{Subject: sess.Subject, Provider: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	for kind, raw := range map[string]string{"access token": tok.AccessToken, "session token": sessionToken} {
		t.Run(kind, func(t *testing.T) {
			resp := e.get("/.idv/oidc/logout?" + url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {webLogout}, "state": {"s"}}.Encode())
			b := body(t, resp)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(b, "not issued here") {
				t.Fatalf("logout with a %s as id_token_hint: %d %q", kind, resp.StatusCode, resp.Header.Get("Location"))
			}
			if n := len(e.host.endedSIDs()); n != 0 {
				t.Fatalf("a %s as hint ended %d sessions", kind, n)
			}
		})
	}
}
