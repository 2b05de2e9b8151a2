package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
)

// TestOIDCRelyingParty logs in through caddy-idv with an unmodified go-oidc
// + x/oauth2 relying party against a real Caddy, then uses the access token
// on a second Caddy that trusts the first as an issuer.
func TestOIDCRelyingParty(t *testing.T) {
	rp := fmt.Sprintf("http://127.0.0.1:%d", e2e.FreePort(t))
	port := e2e.FreePort(t)
	issuer := fmt.Sprintf("http://127.0.0.1:%d", port)
	idp := e2e.Start(t, `
	idv {
		provider demo {
			user "Ada Lovelace"
		}
		oidc {
			issuer `+issuer+`
			refresh_reuse_grace off
			client app {
				secret {env.APP_SECRET}
				redirect_uri `+rp+`/callback
				post_logout_redirect_uri `+rp+`/bye
			}
			client spa {
				redirect_uri `+rp+`/spa
			}
		}
	}
	respond "idp"
`, e2e.Options{Port: port, Env: []string{"APP_SECRET=s3cret-value-0123456789"}})

	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := &oauth2.Config{
		ClientID: "app", ClientSecret: "s3cret-value-0123456789", RedirectURL: rp + "/callback",
		Endpoint: provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess},
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: "app"})

	// The first authorization goes through the demo login; later ones reuse
	// the caddy-idv session.
	browser := e2e.NewBrowser()
	pkce := oauth2.GenerateVerifier()
	code := authorize(t, idp, browser, conf, "state-2", "nonce-2", pkce)
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := verifier.Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var claims struct {
		Nonce, Name, ACR, SID string
		AMR                   []string
		AuthTime              int64 `json:"auth_time"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.Nonce != "nonce-2" || claims.Name != "Ada Lovelace" || claims.ACR == "" || len(claims.AMR) == 0 || claims.SID == "" || claims.AuthTime == 0 {
		t.Fatalf("ID token claims: %+v", claims)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Subject != idt.Subject {
		t.Fatalf("userinfo: %v %+v", err, ui)
	}

	// A code is single use.
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(pkce)); err == nil {
		t.Fatal("a code was exchanged twice")
	}

	// The access token from caddy-idv A is accepted by caddy-idv B, which
	// trusts A as an issuer for the audience "app".
	b := e2e.Start(t, `
	idv {
		provider demo
		trust_issuer `+issuer+` app
	}
	respond "hello {http.auth.user.name} from {http.auth.user.iss}"
`, e2e.Options{})
	api := e2e.NewBrowser()
	// The reused code above revoked that grant's tokens; get fresh ones.
	pkce = oauth2.GenerateVerifier()
	code = authorize(t, idp, browser, conf, "state-3", "nonce-3", pkce)
	tok, err = conf.Exchange(ctx, code, oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatal(err)
	}
	st, _, body := api.Do(t, http.MethodGet, b.URL+"/x", nil, map[string]string{"Authorization": "Bearer " + tok.AccessToken})
	if st != 200 || !strings.Contains(string(body), "from "+issuer) {
		t.Fatalf("trusted access token on B: %d %s", st, body)
	}
	st, _, _ = api.Do(t, http.MethodGet, b.URL+"/x", nil, map[string]string{"Authorization": "Bearer " + tok.AccessToken + "x"})
	if st != 401 {
		t.Fatalf("tampered trusted token on B: %d", st)
	}

	// Refresh rotates; the old refresh token is then refused (this
	// instance has no reuse grace).
	newTok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil || newTok.RefreshToken == "" || newTok.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: %v", err)
	}
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("a rotated refresh token was accepted")
	}

	// Errors that must never redirect: an unregistered redirect URI.
	bad := *conf
	bad.RedirectURL = "https://evil.example/callback"
	st, hdr, _ := browser.Do(t, http.MethodGet, bad.AuthCodeURL("s", oauth2.S256ChallengeOption(pkce)), nil, map[string]string{"Accept": "text/html"})
	if st != http.StatusBadRequest || hdr.Get("Location") != "" {
		t.Fatalf("unregistered redirect_uri: %d %q", st, hdr.Get("Location"))
	}
	// A public client without PKCE is sent back with invalid_request.
	spa := &oauth2.Config{ClientID: "spa", RedirectURL: rp + "/spa", Endpoint: provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID}}
	st, hdr, _ = browser.Do(t, http.MethodGet, spa.AuthCodeURL("s"), nil, nil)
	if loc, _ := url.Parse(hdr.Get("Location")); st != http.StatusFound || loc == nil || loc.Query().Get("error") != "invalid_request" {
		t.Fatalf("public client without PKCE: %d %q", st, hdr.Get("Location"))
	}
	// A wrong client secret.
	wrong := *conf
	wrong.ClientSecret = "nope"
	if _, err := wrong.Exchange(ctx, "whatever"); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("wrong secret: %v", err)
	}

	// RP-initiated logout ends the caddy-idv session too.
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = provider.Claims(&meta)
	q := url.Values{"id_token_hint": {rawID}, "post_logout_redirect_uri": {rp + "/bye"}, "state": {"bye-1"}}
	st, hdr, _ = browser.Do(t, http.MethodGet, meta.EndSession+"?"+q.Encode(), nil, nil)
	if st != http.StatusFound || hdr.Get("Location") != rp+"/bye?state=bye-1" {
		t.Fatalf("logout: %d %q", st, hdr.Get("Location"))
	}
	if st, _, _ := browser.Do(t, http.MethodGet, idp.URL+"/", nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("caddy-idv session after RP logout: %d", st)
	}
}

// authorize runs the browser part of the code flow: authorize, the demo
// login it leads to, and back to authorize, which redirects to the client
// with a code.
func authorize(t *testing.T, idp *e2e.Instance, b *e2e.Browser, conf *oauth2.Config, state, nonce, verifier string) string {
	t.Helper()
	authURL := conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
	return authorizeURL(t, idp, b, authURL, conf.RedirectURL, state)
}

// authorizeURL runs the browser part of the code flow for an authorization
// request URL that a relying party built, and returns the code it gets back
// at redirectURL.
func authorizeURL(t *testing.T, idp *e2e.Instance, b *e2e.Browser, authURL, redirectURL, state string) string {
	t.Helper()
	st, hdr, body := b.Do(t, http.MethodGet, authURL, nil, map[string]string{"Accept": "text/html"})
	if st != http.StatusFound {
		t.Fatalf("authorize: %d %s", st, body)
	}
	loc, _ := url.Parse(hdr.Get("Location"))
	if loc.Path == "/.idv/login" {
		rd := loc.Query().Get("rd")
		s := b.StartLogin(t, idp.URL, map[string]string{"provider": "demo", "rd": rd})
		approve(t, e2e.NewBrowser(), s, http.StatusSeeOther)
		done := b.Poll(t, idp.URL, s, 10)
		if done.State != "completed" || done.Redirect != rd {
			t.Fatalf("login: %+v", done)
		}
		st, hdr, body = b.Do(t, http.MethodGet, idp.URL+rd, nil, map[string]string{"Accept": "text/html"})
		if st != http.StatusFound {
			t.Fatalf("authorize after login: %d %s", st, body)
		}
		loc, _ = url.Parse(hdr.Get("Location"))
	}
	if !strings.HasPrefix(loc.String(), redirectURL+"?") || loc.Query().Get("state") != state || loc.Query().Get("code") == "" {
		t.Fatalf("redirect to client: %s", loc)
	}
	return loc.Query().Get("code")
}
