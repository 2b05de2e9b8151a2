package oidc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/caddy-idv/caddy-idv/oidc"
)

// rp is a real relying party: go-oidc and x/oauth2 against the provider.
type rp struct {
	provider *gooidc.Provider
	config   oauth2.Config
	verifier *gooidc.IDTokenVerifier
}

func (e *env) rp(clientID, secret, redirect string, scopes ...string) *rp {
	e.t.Helper()
	ctx := context.Background()
	p, err := gooidc.NewProvider(ctx, e.issuer)
	if err != nil {
		e.t.Fatalf("discovery: %v", err)
	}
	return &rp{
		provider: p,
		config: oauth2.Config{
			ClientID: clientID, ClientSecret: secret, Endpoint: p.Endpoint(), RedirectURL: redirect,
			Scopes: append([]string{gooidc.ScopeOpenID}, scopes...),
		},
		verifier: p.Verifier(&gooidc.Config{ClientID: clientID, Now: e.clock.Now}),
	}
}

// flow runs the whole code flow with PKCE through the browser and returns
// the token and the verified ID token.
func (e *env) flow(r *rp, opts ...oauth2.AuthCodeOption) (*oauth2.Token, *gooidc.IDToken) {
	e.t.Helper()
	ctx := context.Background()
	pkce := oauth2.GenerateVerifier()
	nonce := "n-" + pkce[:10]
	opts = append(opts, oauth2.S256ChallengeOption(pkce), gooidc.Nonce(nonce))
	resp := e.get(r.config.AuthCodeURL("state-123", opts...))
	body(e.t, resp)
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("authorize: status %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), r.config.RedirectURL) {
		e.t.Fatalf("authorize: redirect to %q", loc)
	}
	q := loc.Query()
	if q.Get("state") != "state-123" || q.Get("iss") != e.issuer {
		e.t.Fatalf("authorize: state %q iss %q", q.Get("state"), q.Get("iss"))
	}
	tok, err := r.config.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		e.t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.verifier.Verify(ctx, raw)
	if err != nil {
		e.t.Fatalf("id token: %v", err)
	}
	if idt.Nonce != nonce {
		e.t.Fatalf("nonce %q, want %q", idt.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		e.t.Fatalf("at_hash: %v", err)
	}
	return tok, idt
}

func TestDiscoveryAndJWKS(t *testing.T) {
	e := newEnv(t)
	r := e.rp("spa", "", spaRedirect)
	var meta struct {
		Issuer          string   `json:"issuer"`
		JWKS            string   `json:"jwks_uri"`
		EndSession      string   `json:"end_session_endpoint"`
		Userinfo        string   `json:"userinfo_endpoint"`
		ResponseTypes   []string `json:"response_types_supported"`
		GrantTypes      []string `json:"grant_types_supported"`
		Subjects        []string `json:"subject_types_supported"`
		Algs            []string `json:"id_token_signing_alg_values_supported"`
		AuthMethods     []string `json:"token_endpoint_auth_methods_supported"`
		PKCE            []string `json:"code_challenge_methods_supported"`
		Scopes          []string `json:"scopes_supported"`
		IssParam        bool     `json:"authorization_response_iss_parameter_supported"`
		ClaimsSupported []string `json:"claims_supported"`
	}
	if err := r.provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	if meta.Issuer != e.issuer || meta.JWKS != e.issuer+"/.idv/oidc/jwks" || meta.EndSession != e.issuer+"/.idv/oidc/logout" ||
		meta.Userinfo != e.issuer+"/.idv/oidc/userinfo" || !meta.IssParam {
		t.Errorf("endpoints: %+v", meta)
	}
	for name, pair := range map[string][2][]string{
		"response_types": {meta.ResponseTypes, {"code"}},
		"grant_types":    {meta.GrantTypes, {"authorization_code", "refresh_token"}},
		"subjects":       {meta.Subjects, {"public", "pairwise"}},
		"algs":           {meta.Algs, {"RS256", "ES256"}},
		"auth_methods":   {meta.AuthMethods, {"client_secret_basic", "client_secret_post", "none"}},
		"pkce":           {meta.PKCE, {"S256"}},
		"scopes":         {meta.Scopes, {"openid", "profile", "email", "offline_access"}},
	} {
		if !slices.Equal(pair[0], pair[1]) {
			t.Errorf("%s = %v, want %v", name, pair[0], pair[1])
		}
	}
	for _, path := range []string{"/.well-known/openid-configuration", "/.idv/oidc/jwks"} {
		resp := e.get(path)
		b := body(t, resp)
		etag := resp.Header.Get("ETag")
		if resp.StatusCode != 200 || etag == "" || resp.Header.Get("Cache-Control") != "public, max-age=300" || !json.Valid([]byte(b)) {
			t.Fatalf("%s: status %d etag %q cache %q", path, resp.StatusCode, etag, resp.Header.Get("Cache-Control"))
		}
		req, _ := http.NewRequest(http.MethodGet, e.issuer+path, nil)
		req.Header.Set("If-None-Match", etag)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if b := body(t, resp); resp.StatusCode != http.StatusNotModified || b != "" {
			t.Errorf("%s with If-None-Match: status %d body %q", path, resp.StatusCode, b)
		}
	}
}

func TestCodeFlowPKCEPublicClient(t *testing.T) {
	e := newEnv(t)
	sess := e.login(time.Minute, "demo")
	r := e.rp("spa", "", spaRedirect, "profile", "email")
	tok, idt := e.flow(r)
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != sess.Subject || claims["azp"] != "spa" || claims["sid"] != sess.SID ||
		claims["acr"] != "urn:caddy-idv:demo" || claims["name"] != "Mari Maasikas" || claims["email"] != "mari@example.ee" ||
		claims["country"] != "EE" || claims["auth_time"] != float64(sess.AuthTime.Unix()) {
		t.Errorf("id token claims: %v", claims)
	}
	if _, ok := claims["idv"]; ok {
		t.Error("id token carries the internal idv claim")
	}
	if tok.RefreshToken != "" {
		t.Error("refresh token issued without offline_access")
	}
	ui, err := r.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if ui.Subject != idt.Subject || ui.Email != "mari@example.ee" || !ui.EmailVerified {
		t.Errorf("userinfo: %+v", ui)
	}
	var uiClaims map[string]any
	_ = ui.Claims(&uiClaims)
	if uiClaims["family_name"] != "Maasikas" || uiClaims["sid"] != nil || uiClaims["scope"] != nil {
		t.Errorf("userinfo claims: %v", uiClaims)
	}
}

func TestScopeLimitsClaims(t *testing.T) {
	e := newEnv(t)
	e.login(time.Minute, "demo")
	r := e.rp("spa", "", spaRedirect, "email")
	tok, idt := e.flow(r)
	var claims map[string]any
	_ = idt.Claims(&claims)
	if claims["email"] != "mari@example.ee" || claims["name"] != nil || claims["country"] != nil || claims["birthdate"] != nil {
		t.Errorf("email scope released %v", claims)
	}
	st, ui := e.userinfo(tok.AccessToken)
	if st != 200 || ui["name"] != nil || ui["email"] != "mari@example.ee" {
		t.Errorf("userinfo %d %v", st, ui)
	}
}

func TestConfidentialClient(t *testing.T) {
	for _, style := range []struct {
		name  string
		style oauth2.AuthStyle
	}{{"client_secret_basic", oauth2.AuthStyleInHeader}, {"client_secret_post", oauth2.AuthStyleInParams}} {
		t.Run(style.name, func(t *testing.T) {
			e := newEnv(t)
			e.login(time.Minute, "demo")
			r := e.rp("web", "s3cr3t:with/odd+chars", webRedirect, "profile")
			r.config.Endpoint.AuthStyle = style.style
			_, idt := e.flow(r)
			if idt.Audience[0] != "web" {
				t.Errorf("aud %v", idt.Audience)
			}
		})
	}
}

func TestRedirectURIWithQueryKeepsIt(t *testing.T) {
	e := newEnv(t)
	e.login(time.Minute, "demo")
	resp := e.get(e.authorizeURL(map[string]string{"client_id": "web", "redirect_uri": "https://web.example/cb?tenant=1",
		"response_type": "code", "scope": "openid", "state": "s"}))
	body(t, resp)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Query().Get("tenant") != "1" || loc.Query().Get("code") == "" {
		t.Errorf("redirect %s", loc)
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	e := newEnv(t)
	e.login(time.Minute, "demo")
	r := e.rp("web", "s3cr3t:with/odd+chars", webRedirect, "offline_access", "profile")
	tok, idt := e.flow(r)
	rt1 := tok.RefreshToken
	if rt1 == "" {
		t.Fatal("no refresh token with offline_access")
	}
	// A real RP refreshes through x/oauth2.
	e.clock.Advance(11 * time.Minute)
	tok.Expiry = time.Now().Add(-time.Minute)
	tok2, err := r.config.TokenSource(context.Background(), tok).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	rt2 := tok2.RefreshToken
	if rt2 == "" || rt2 == rt1 || tok2.AccessToken == tok.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	raw, _ := tok2.Extra("id_token").(string)
	idt2, err := r.verifier.Verify(context.Background(), raw)
	if err != nil || idt2.Subject != idt.Subject {
		t.Fatalf("refreshed id token: %v", err)
	}
	if st, _ := e.userinfo(tok2.AccessToken); st != 200 {
		t.Fatalf("userinfo with the refreshed access token: %d", st)
	}
	// Past the reuse grace, the old refresh token is refused, and its reuse
	// revokes the family.
	refresh := func(rt string) (int, map[string]any) {
		st, out, _ := e.tokenReq(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "web", "s3cr3t:with/odd+chars")
		return st, out
	}
	e.clock.Advance(oidc.DefaultRefreshReuseGrace + time.Second)
	if st, out := refresh(rt1); st != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("reused refresh token: %d %v", st, out)
	}
	if st, out := refresh(rt2); st != 400 || out["error"] != "invalid_grant" {
		t.Errorf("the family's newest token after reuse: %d %v", st, out)
	}
	if st, _ := e.userinfo(tok2.AccessToken); st != http.StatusUnauthorized {
		t.Errorf("access token of a revoked family: %d", st)
	}
}

func TestRefreshScopeNarrowing(t *testing.T) {
	e := newEnv(t)
	e.login(time.Minute, "demo")
	code := e.codeFor("spa", spaRedirect, "openid email offline_access", nil)
	st, out := e.exchangeSPA(code)
	if st != 200 {
		t.Fatalf("exchange %d %v", st, out)
	}
	// A scope the provider does not know is ignored, as at authorize.
	st, out, _ = e.tokenReq(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {out["refresh_token"].(string)},
		"client_id": {"spa"}, "scope": {"openid email groups"}}, "", "")
	if st != 200 || out["scope"] != "openid email" {
		t.Fatalf("narrowed refresh: %d %v", st, out)
	}
	// A known scope that was not granted is refused.
	st, out, _ = e.tokenReq(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {out["refresh_token"].(string)},
		"client_id": {"spa"}, "scope": {"openid profile"}}, "", "")
	if st != 400 || out["error"] != "invalid_scope" {
		t.Fatalf("widened refresh: %d %v", st, out)
	}
}

// A reused code revokes what it issued (RFC 6749 §4.1.2), the refresh
// family and the access tokens of that grant, and nothing else: whoever saw
// the code must not be able to log the person out everywhere with it.
func TestCodeReuseRevokesTokens(t *testing.T) {
	e := newEnv(t)
	sess := e.login(time.Minute, "demo")
	other := e.offlineGrant("web", webSecret, webRedirect)
	code := e.codeFor("spa", spaRedirect, "openid offline_access", nil)
	st, first := e.exchangeSPA(code)
	if st != 200 {
		t.Fatalf("first exchange: %d %v", st, first)
	}
	at := first["access_token"].(string)
	if st, _ := e.userinfo(at); st != 200 {
		t.Fatalf("userinfo before reuse: %d", st)
	}
	st, second := e.exchangeSPA(code)
	if st != 400 || second["error"] != "invalid_grant" {
		t.Fatalf("second exchange: %d %v", st, second)
	}
	if st, _ := e.userinfo(at); st != http.StatusUnauthorized {
		t.Errorf("userinfo with the first access token after code reuse: %d", st)
	}
	st, out, _ := e.tokenReq(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first["refresh_token"].(string)}, "client_id": {"spa"}}, "", "")
	if st != 400 || out["error"] != "invalid_grant" {
		t.Errorf("refresh token of a reused code: %d %v", st, out)
	}
	if e.revs.Revoked(sess.SID) {
		t.Error("a reused code ended the person's session")
	}
	if st, _ := e.userinfo(other["access_token"].(string)); st != 200 {
		t.Errorf("another grant's access token after code reuse: %d", st)
	}
}

func TestExpiredCode(t *testing.T) {
	e := newEnv(t)
	e.login(time.Minute, "demo")
	code := e.codeFor("spa", spaRedirect, "openid", nil)
	e.clock.Advance(61 * time.Second)
	if st, out := e.exchangeSPA(code); st != 400 || out["error"] != "invalid_grant" {
		t.Errorf("expired code: %d %v", st, out)
	}
}

func TestPromptLoginForcesLogin(t *testing.T) {
	e := newEnv(t)
	e.login(time.Minute, "demo")
	params := map[string]string{"client_id": "spa", "redirect_uri": spaRedirect, "response_type": "code",
		"scope": "openid", "state": "s", "code_challenge": challenge(verifier), "code_challenge_method": "S256", "prompt": "login"}
	resp := e.get(e.authorizeURL(params))
	body(t, resp)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 302 || !strings.HasPrefix(loc, "/.idv/login?rd=") {
		t.Fatalf("prompt=login with a session: %d %s", resp.StatusCode, loc)
	}
	returnTo := e.host.lastLogin().ReturnTo
	if strings.Contains(returnTo, "prompt=") || !strings.Contains(returnTo, "idv_auth_after=") || !strings.HasPrefix(returnTo, "/.idv/oidc/authorize?") {
		t.Fatalf("returnTo %q", returnTo)
	}
	// Back with the old session: still not fresh enough.
	resp = e.get(returnTo)
	body(t, resp)
	if !strings.HasPrefix(resp.Header.Get("Location"), "/.idv/login") {
		t.Fatalf("old session satisfied prompt=login: %s", resp.Header.Get("Location"))
	}
	// A fresh login satisfies it.
	e.login(0, "demo")
	resp = e.get(returnTo)
	body(t, resp)
	if l, _ := url.Parse(resp.Header.Get("Location")); l == nil || l.Query().Get("code") == "" {
		t.Fatalf("after a fresh login: %s", resp.Header.Get("Location"))
	}
}

func TestMaxAge(t *testing.T) {
	e := newEnv(t)
	e.login(10*time.Minute, "demo")
	base := map[string]string{"client_id": "spa", "redirect_uri": spaRedirect, "response_type": "code",
		"scope": "openid", "code_challenge": challenge(verifier), "code_challenge_method": "S256"}
	base["max_age"] = "60"
	resp := e.get(e.authorizeURL(base))
	body(t, resp)
	if !strings.HasPrefix(resp.Header.Get("Location"), "/.idv/login") {
		t.Fatalf("max_age=60 with a 10-minute-old login: %s", resp.Header.Get("Location"))
	}
	if rt := e.host.lastLogin().ReturnTo; strings.Contains(rt, "max_age") || !strings.Contains(rt, "idv_auth_after") {
		t.Errorf("returnTo %q", rt)
	}
	base["max_age"] = "3600"
	resp = e.get(e.authorizeURL(base))
	body(t, resp)
	if l, _ := url.Parse(resp.Header.Get("Location")); l.Query().Get("code") == "" {
		t.Fatalf("max_age=3600: %s", l)
	}
}

func TestACRValuesSelectsProvider(t *testing.T) {
	e := newEnv(t)
	e.login(time.Minute, "demo")
	params := map[string]string{"client_id": "spa", "redirect_uri": spaRedirect, "response_type": "code",
		"scope": "openid", "code_challenge": challenge(verifier), "code_challenge_method": "S256", "acr_values": "high"}
	resp := e.get(e.authorizeURL(params))
	body(t, resp)
	if !strings.HasPrefix(resp.Header.Get("Location"), "/.idv/login") || e.host.lastLogin().Provider != "mobileid" {
		t.Fatalf("acr_values=high with a demo session: %s, provider %q", resp.Header.Get("Location"), e.host.lastLogin().Provider)
	}
	e.login(0, "mobileid")
	r := e.rp("spa", "", spaRedirect)
	_, idt := e.flow(r, oauth2.SetAuthURLParam("acr_values", "high"))
	var c struct {
		ACR string   `json:"acr"`
		AMR []string `json:"amr"`
	}
	_ = idt.Claims(&c)
	if c.ACR != "urn:caddy-idv:mobileid" || len(c.AMR) == 0 {
		t.Errorf("acr %q amr %v", c.ACR, c.AMR)
	}
	// A value no provider yields is voluntary.
	params["acr_values"] = "urn:unknown"
	resp = e.get(e.authorizeURL(params))
	body(t, resp)
	if l, _ := url.Parse(resp.Header.Get("Location")); l.Query().Get("code") == "" {
		t.Errorf("unknown acr value: %s", l)
	}
}

func TestPairwiseSubject(t *testing.T) {
	e := newEnv(t)
	sess := e.login(time.Minute, "demo")
	sub := func(client, secret, redirect string) (string, string) {
		r := e.rp(client, secret, redirect)
		tok, idt := e.flow(r)
		ui, err := r.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatal(err)
		}
		return idt.Subject, ui.Subject
	}
	a, aui := sub("pw1", pw1Secret, webRedirect)
	b, _ := sub("pw2", pw2Secret, web2Redirect)
	a2, _ := sub("pw1", pw1Secret, webRedirect)
	if a == b || a == sess.Subject || b == sess.Subject {
		t.Errorf("pairwise subs: %q %q (public %q)", a, b, sess.Subject)
	}
	if a != a2 || a != aui {
		t.Errorf("pairwise sub not stable: %q %q userinfo %q", a, a2, aui)
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	sess := e.login(time.Minute, "demo")
	r := e.rp("web", "s3cr3t:with/odd+chars", webRedirect)
	tok, _ := e.flow(r)
	hint, _ := tok.Extra("id_token").(string)

	// Unregistered post_logout_redirect_uri: logged out, no redirect.
	resp := e.get("/.idv/oidc/logout?" + url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example/"}, "state": {"x"}}.Encode())
	b := body(t, resp)
	if resp.StatusCode != 200 || resp.Header.Get("Location") != "" || !strings.Contains(b, "logged out") {
		t.Fatalf("unregistered uri: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := e.host.endedSIDs(); !slices.Equal(got, []string{sess.SID}) {
		t.Fatalf("EndSession calls %v", got)
	}
	if st, _ := e.userinfo(tok.AccessToken); st != http.StatusUnauthorized {
		t.Errorf("access token after logout: %d", st)
	}

	// Registered: 302 with state, also with an expired hint.
	sess2 := e.login(time.Minute, "demo")
	tok2, _ := e.flow(r)
	hint2, _ := tok2.Extra("id_token").(string)
	e.clock.Advance(time.Hour)
	resp = e.get("/.idv/oidc/logout?" + url.Values{"id_token_hint": {hint2}, "post_logout_redirect_uri": {webLogout}, "state": {"st8"}}.Encode())
	body(t, resp)
	if resp.StatusCode != 302 || resp.Header.Get("Location") != webLogout+"?state=st8" {
		t.Fatalf("registered uri: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := e.host.endedSIDs(); len(got) != 2 || got[1] != sess2.SID {
		t.Fatalf("EndSession calls %v", got)
	}
}

func TestLogoutWithoutHintAsksFirst(t *testing.T) {
	e := newEnv(t)
	e.login(time.Minute, "demo")
	resp := e.get("/.idv/oidc/logout?" + url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {webLogout}, "state": {"s"}}.Encode())
	b := body(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(b, `name="confirm" value="yes"`) || len(e.host.endedSIDs()) != 0 {
		t.Fatalf("logout without a hint: %d ended %v", resp.StatusCode, e.host.endedSIDs())
	}
	// A cross-site POST cannot press the button.
	form := url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {webLogout}, "state": {"s"}, "confirm": {"yes"}}
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/.idv/oidc/logout", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, _ = e.browser.Do(req)
	body(t, resp)
	if len(e.host.endedSIDs()) != 0 {
		t.Fatal("cross-site POST logged out")
	}
	req, _ = http.NewRequest(http.MethodPost, e.issuer+"/.idv/oidc/logout", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.issuer)
	resp, _ = e.browser.Do(req)
	body(t, resp)
	if resp.StatusCode != 302 || resp.Header.Get("Location") != webLogout+"?state=s" || len(e.host.endedSIDs()) != 1 {
		t.Fatalf("confirmed logout: %d %q %v", resp.StatusCode, resp.Header.Get("Location"), e.host.endedSIDs())
	}
}
