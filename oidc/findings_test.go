package oidc_test

// One test (or more) per numbered finding of issue 10, each written before
// the change and seen failing against it.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// refreshAs redeems a refresh token for a client; safe to call from several
// goroutines (it does not call t.Fatal).
func (e *env) refreshAs(client, secret, rt, scope string) (int, map[string]any, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if scope != "" {
		form.Set("scope", scope)
	}
	if secret == "" {
		form.Set("client_id", client)
	}
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/.idv/oidc/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(url.QueryEscape(client), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, out, nil
}

// offlineGrant runs the code flow for a client with offline_access and
// returns the token response.
func (e *env) offlineGrant(client, secret, redirect string) map[string]any {
	e.t.Helper()
	code := e.codeFor(client, redirect, "openid profile email offline_access", nil)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
	user := client
	if secret == "" {
		form.Set("client_id", client)
		user = ""
	}
	st, out, _ := e.tokenReq(form, user, secret)
	if st != 200 || out["refresh_token"] == nil {
		e.t.Fatalf("code exchange for %s: %d %v", client, st, out)
	}
	return out
}

// Finding 1: parallel refreshes of one refresh token (oauth2-proxy, SPAs)
// must not log the person out. Within the reuse grace every use gets a
// valid answer, every refresh token handed out stays usable, and nothing is
// revoked: not the session, not this grant, not another client's.
func TestFinding1ParallelRefreshesKeepLogin(t *testing.T) {
	e := newEnv(t)
	sess := e.login(time.Minute, "demo")
	web := e.offlineGrant("web", webSecret, webRedirect)
	other := e.offlineGrant("spa", "", spaRedirect)
	rt := web["refresh_token"].(string)

	const n = 10
	var wg sync.WaitGroup
	type result struct {
		status int
		out    map[string]any
		err    error
	}
	results := make([]result, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			st, out, err := e.refreshAs("web", webSecret, rt, "")
			results[i] = result{st, out, err}
		}()
	}
	close(start)
	wg.Wait()
	for i, r := range results {
		if r.err != nil || r.status != 200 || r.out["access_token"] == nil || r.out["refresh_token"] == nil {
			t.Fatalf("parallel refresh %d: %d %v %v", i, r.status, r.out, r.err)
		}
	}
	if e.revs.Revoked(sess.SID) {
		t.Fatal("parallel refreshes revoked the person's session")
	}
	// Every refresh token handed out is usable, and so are the access
	// tokens, the first grant's and the other client's.
	for i, r := range results {
		if st, _ := e.userinfo(r.out["access_token"].(string)); st != 200 {
			t.Errorf("access token %d: userinfo %d", i, st)
		}
		if st, out, err := e.refreshAs("web", webSecret, r.out["refresh_token"].(string), ""); st != 200 || err != nil {
			t.Errorf("refresh token %d handed out in the window: %d %v %v", i, st, out, err)
		}
	}
	if st, _ := e.userinfo(web["access_token"].(string)); st != 200 {
		t.Errorf("the first access token after parallel refreshes: %d", st)
	}
	if st, out, err := e.refreshAs("spa", "", other["refresh_token"].(string), ""); st != 200 {
		t.Errorf("the other client's grant after parallel refreshes: %d %v %v", st, out, err)
	}
}

// Finding 1, the other half: a refresh token used again after the grace
// window revokes that client's refresh family, and nothing else.
func TestFinding1ReuseAfterGraceRevokesOnlyTheFamily(t *testing.T) {
	e := newEnv(t)
	sess := e.login(time.Minute, "demo")
	web := e.offlineGrant("web", webSecret, webRedirect)
	other := e.offlineGrant("spa", "", spaRedirect)
	rt1 := web["refresh_token"].(string)
	st, second, _ := e.refreshAs("web", webSecret, rt1, "")
	if st != 200 {
		t.Fatalf("first refresh: %d %v", st, second)
	}
	e.clock.Advance(11 * time.Second)
	if st, out, _ := e.refreshAs("web", webSecret, rt1, ""); st != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("reuse after the grace: %d %v", st, out)
	}
	if st, out, _ := e.refreshAs("web", webSecret, second["refresh_token"].(string), ""); st != 400 || out["error"] != "invalid_grant" {
		t.Errorf("the family's newest token after reuse: %d %v", st, out)
	}
	if st, _ := e.userinfo(second["access_token"].(string)); st != http.StatusUnauthorized {
		t.Errorf("an access token of the revoked family: userinfo %d", st)
	}
	if e.revs.Revoked(sess.SID) {
		t.Error("reuse revoked the person's session")
	}
	if st, out, _ := e.refreshAs("spa", "", other["refresh_token"].(string), ""); st != 200 {
		t.Errorf("another client's grant after reuse: %d %v", st, out)
	}
	if st, _ := e.userinfo(other["access_token"].(string)); st != 200 {
		t.Errorf("another client's access token after reuse: %d", st)
	}
}

// Finding 2: end_session with a valid id_token_hint and no cookie (the
// RP's back channel: zitadel's rp.EndSession, oauth2-proxy's
// --backend-logout-url) ends the session and everything issued from it.
func TestFinding2EndSessionWithHintAndNoCookie(t *testing.T) {
	e := newEnv(t)
	sess := e.login(time.Minute, "demo")
	web := e.offlineGrant("web", webSecret, webRedirect)
	other := e.offlineGrant("spa", "", spaRedirect)
	resp, err := http.Get(e.issuer + "/.idv/oidc/logout?" + url.Values{"id_token_hint": {web["id_token"].(string)}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	b := body(t, resp)
	if resp.StatusCode != 200 || strings.Contains(b, `name="confirm"`) {
		t.Fatalf("back-channel logout: %d %s", resp.StatusCode, b)
	}
	if !e.revs.Revoked(sess.SID) {
		t.Error("the session was not revoked")
	}
	for name, g := range map[string]map[string]any{"web": web, "spa": other} {
		if st, _ := e.userinfo(g["access_token"].(string)); st != http.StatusUnauthorized {
			t.Errorf("%s access token after logout: %d", name, st)
		}
	}
	if st, out, _ := e.refreshAs("web", webSecret, web["refresh_token"].(string), ""); st != 400 {
		t.Errorf("web refresh token after logout: %d %v", st, out)
	}
	if st, out, _ := e.refreshAs("spa", "", other["refresh_token"].(string), ""); st != 400 {
		t.Errorf("spa refresh token after logout: %d %v", st, out)
	}
	// The browser's next visit is not a silent login.
	if resp := e.get(e.authorizeURL(map[string]string{"client_id": "spa", "redirect_uri": spaRedirect, "response_type": "code",
		"scope": "openid", "code_challenge": challenge(verifier), "code_challenge_method": "S256", "prompt": "none"})); !strings.Contains(resp.Header.Get("Location"), "error=login_required") {
		body(t, resp)
		t.Errorf("authorize after back-channel logout: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// Finding 3, through end_session (this passed before: the finding is about
// POST <prefix>/logout, see caddymodule): refresh tokens issued from a session that was
// logged out stay dead after every revocation of the session itself would
// have expired, up to the end of the refresh family.
func TestRefreshTokensDoNotOutliveEndSession(t *testing.T) {
	e := newEnv(t)
	e.login(time.Minute, "demo")
	web := e.offlineGrant("web", webSecret, webRedirect)
	hint := web["id_token"].(string)
	resp := e.get("/.idv/oidc/logout?" + url.Values{"id_token_hint": {hint}}.Encode())
	body(t, resp)
	for _, d := range []time.Duration{9 * time.Hour, 48 * time.Hour, 29 * 24 * time.Hour} {
		e.clock.Advance(d)
		// Keep the signing keys fresh, as the module's background loop does.
		_ = e.tokens.Keys().Refresh(context.Background())
		_ = e.revs.Sync(context.Background())
		if st, out, _ := e.refreshAs("web", webSecret, web["refresh_token"].(string), ""); st != 400 {
			t.Fatalf("refresh %s after logout: %d %v", d, st, out)
		}
	}
}

// Finding 4: RS256, which OpenID Connect requires (Core §15.1), is offered
// and is the default for ID tokens, so an RP that assumes it works.
func TestFinding4RS256IDTokens(t *testing.T) {
	e := newEnv(t)
	e.login(time.Minute, "demo")
	r := e.rp("web", webSecret, webRedirect)
	var meta struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := r.provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(meta.Algs, "RS256") || !slices.Contains(meta.Algs, "ES256") {
		t.Fatalf("id_token_signing_alg_values_supported = %v", meta.Algs)
	}
	tok, _ := e.flow(r)
	raw, _ := tok.Extra("id_token").(string)
	if alg := jwtHeader(t, raw)["alg"]; alg != "RS256" {
		t.Fatalf("ID token alg %v, want RS256 by default", alg)
	}
	// An RP that knows only RS256 (go-oidc's default without discovery).
	keys := gooidc.NewRemoteKeySet(context.Background(), e.issuer+"/.idv/oidc/jwks")
	v := gooidc.NewVerifier(e.issuer, keys, &gooidc.Config{ClientID: "web", Now: e.clock.Now})
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatalf("an RS256-only RP: %v", err)
	}
	if alg := jwtHeader(t, tok.AccessToken)["alg"]; alg != "ES256" {
		t.Errorf("access token alg %v, want ES256", alg)
	}
}

func jwtHeader(t *testing.T, raw string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func jwtClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// Finding 5: a narrower scope on refresh narrows the new access token only
// (RFC 6749 §6: the refresh token keeps the original grant); narrowing
// away offline_access does not end the family.
func TestFinding5NarrowerScopeKeepsTheGrant(t *testing.T) {
	e := newEnv(t)
	e.login(time.Minute, "demo")
	web := e.offlineGrant("web", webSecret, webRedirect)
	st, narrow, _ := e.refreshAs("web", webSecret, web["refresh_token"].(string), "openid email")
	if st != 200 || narrow["scope"] != "openid email" {
		t.Fatalf("narrowed refresh: %d %v", st, narrow)
	}
	if at := jwtClaims(t, narrow["access_token"].(string)); at["scope"] != "openid email" {
		t.Errorf("narrowed access token scope %v", at["scope"])
	}
	rt, _ := narrow["refresh_token"].(string)
	if rt == "" {
		t.Fatal("narrowing away offline_access ended the refresh family")
	}
	st, full, _ := e.refreshAs("web", webSecret, rt, "")
	if st != 200 || full["scope"] != "openid profile email offline_access" {
		t.Fatalf("refresh after a narrowed one: %d %v (want the original grant)", st, full)
	}
	st, wide, _ := e.refreshAs("web", webSecret, full["refresh_token"].(string), "openid profile")
	if st != 200 || wide["scope"] != "openid profile" {
		t.Fatalf("another narrower scope within the grant: %d %v", st, wide)
	}
}

// Finding 6: loopback redirect URIs match any port (RFC 8252 §7.3).
func TestFinding6LoopbackRedirectAnyPort(t *testing.T) {
	e := newEnv(t)
	e.login(time.Minute, "demo")
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"http://127.0.0.1:49152/spa/callback", true},
		{"http://127.0.0.1:1/spa/callback", true},
		{"http://127.0.0.1/spa/callback", true},
		{"http://[::1]:50000/native/cb", true},
		{"http://127.0.0.1:49152/spa/callback?x=1", false},
		{"http://127.0.0.1:49152/spa/other", false},
		{"http://127.0.0.1:49152@evil.example/spa/callback", false},
		{"http://127.0.0.1:0/spa/callback", false},
		{"http://127.0.0.1:70000/spa/callback", false},
		{"http://127.0.0.1:+80/spa/callback", false},
		{"http://localhost:49152/spa/callback", false},
		{"https://127.0.0.1:49152/spa/callback", false},
		{"http://127.0.0.2:49152/spa/callback", false},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			resp := e.get(e.authorizeURL(map[string]string{"client_id": "spa", "redirect_uri": tc.uri, "response_type": "code",
				"scope": "openid", "state": "s", "code_challenge": challenge(verifier), "code_challenge_method": "S256"}))
			body(t, resp)
			loc := resp.Header.Get("Location")
			if tc.ok != (resp.StatusCode == http.StatusFound && strings.HasPrefix(loc, tc.uri+"?code=")) {
				t.Fatalf("status %d Location %q", resp.StatusCode, loc)
			}
			if !tc.ok {
				return
			}
			u, _ := url.Parse(loc)
			st, out, _ := e.tokenReq(url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")},
				"redirect_uri": {tc.uri}, "client_id": {"spa"}, "code_verifier": {verifier}}, "", "")
			if st != 200 {
				t.Fatalf("exchange: %d %v", st, out)
			}
		})
	}
}

// Finding 7: a pairwise client's sid is its own, stable within the
// session, so sid cannot join pairwise subjects across clients.
func TestFinding7PairwiseSID(t *testing.T) {
	e := newEnv(t)
	sess := e.login(time.Minute, "demo")
	sid := func(client, secret, redirect string) string {
		tok, idt := e.flow(e.rp(client, secret, redirect))
		var c struct{ SID string }
		_ = idt.Claims(&c)
		if at := jwtClaims(t, tok.AccessToken); at["sid"] != c.SID {
			t.Errorf("%s: access token sid %v, ID token sid %q", client, at["sid"], c.SID)
		}
		return c.SID
	}
	a, b, a2 := sid("pw1", pw1Secret, webRedirect), sid("pw2", pw2Secret, web2Redirect), sid("pw1", pw1Secret, webRedirect)
	pub := sid("web", webSecret, webRedirect)
	if a == "" || a == b || a == sess.SID || b == sess.SID {
		t.Errorf("pairwise sids %q %q, session %q", a, b, sess.SID)
	}
	if a != a2 {
		t.Errorf("pairwise sid not stable within the session: %q %q", a, a2)
	}
	if pub != sess.SID {
		t.Errorf("public client sid %q, want the session's %q", pub, sess.SID)
	}
}

// Finding 8: error codes, discovery fields and RFC 8414 metadata.
func TestFinding8ErrorCodesAndMetadata(t *testing.T) {
	e := newEnv(t)
	e.login(time.Minute, "demo")
	resp := e.get(e.authorizeURL(map[string]string{"client_id": "spa", "redirect_uri": spaRedirect, "scope": "openid",
		"state": "s", "code_challenge": challenge(verifier), "code_challenge_method": "S256"}))
	body(t, resp)
	if u, _ := url.Parse(resp.Header.Get("Location")); u == nil || u.Query().Get("error") != "invalid_request" {
		t.Errorf("missing response_type: %s", resp.Header.Get("Location"))
	}
	code := e.codeFor("spa", spaRedirect, "openid", nil)
	if st, out, _ := e.tokenReq(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {"spa"},
		"code_verifier": {verifier}}, "", ""); st != 400 || out["error"] != "invalid_request" {
		t.Errorf("missing redirect_uri at the token endpoint: %d %v", st, out)
	}
	var meta map[string]any
	if err := e.rp("spa", "", spaRedirect).provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	if acrs, _ := meta["acr_values_supported"].([]any); len(acrs) == 0 {
		t.Errorf("acr_values_supported = %v", meta["acr_values_supported"])
	}
	if !e.provider.Handles("/.well-known/oauth-authorization-server") {
		t.Error("RFC 8414 metadata is not handled by the provider")
	}
	resp = e.get("/.well-known/oauth-authorization-server")
	var as map[string]any
	if err := json.Unmarshal([]byte(body(t, resp)), &as); resp.StatusCode != 200 || err != nil || as["issuer"] != e.issuer ||
		as["token_endpoint"] != meta["token_endpoint"] {
		t.Errorf("RFC 8414 metadata: %d %v", resp.StatusCode, as)
	}
}

// Finding 9: failed client authentication is logged (client id and
// address, never the secret) and limited per client id and per address
// with 429 and Retry-After.
func TestFinding9ClientAuthenticationFailuresLimitedAndLogged(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	e := newEnvWith(t, func(o *optionsHook) { o.logger = zap.New(core) })
	bad := func(client, secret string) (int, http.Header) {
		st, _, hdr := e.tokenReq(url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {webRedirect}}, client, secret)
		return st, hdr
	}
	limited := false
	var retry string
	for i := range 40 {
		st, hdr := bad("web", fmt.Sprintf("wrong-secret-%d", i))
		if st == http.StatusTooManyRequests {
			limited, retry = true, hdr.Get("Retry-After")
			break
		}
		if st != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, st)
		}
	}
	if !limited {
		t.Fatal("40 failed authentications were never limited")
	}
	if n, err := strconv.Atoi(retry); err != nil || n <= 0 || n > 60 {
		t.Errorf("Retry-After %q", retry)
	}
	entries := logs.FilterMessageSnippet("client authentication failed").All()
	if len(entries) == 0 {
		t.Fatal("failed client authentication was not logged")
	}
	f := entries[0].ContextMap()
	if f["client_id"] != "web" || f["client_address"] != "127.0.0.1" {
		t.Errorf("log fields %v", f)
	}
	for _, en := range logs.All() {
		if strings.Contains(fmt.Sprint(en.ContextMap()), "wrong-secret") || strings.Contains(en.Message, "wrong-secret") {
			t.Fatalf("a secret was logged: %v", en)
		}
	}
	// The window passes: the right secret works again.
	e.clock.Advance(2 * time.Minute)
	if st, _ := bad("web", webSecret); st != http.StatusBadRequest {
		t.Errorf("after the window: %d", st)
	}
}

// Finding 10: the README's oauth2-proxy advice names the current options.
func TestFinding10ReadmeOAuth2ProxyAdvice(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, want := range []string{"oidc_email_claim", "offline_access", "cookie_refresh", "insecure_oidc_allow_unverified_email", "backend_logout_url"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README does not mention %s", want)
		}
	}
	if strings.Contains(readme, `user_id_claim = "sub"`) {
		t.Error("README recommends the deprecated user_id_claim")
	}
}

// A valid id_token_hint of one session ends that session at once; the
// browser's own session, when it is another one, ends only when the person
// confirms.
func TestLogoutHintOfAnotherSessionAsksAboutTheBrowsers(t *testing.T) {
	e := newEnv(t)
	old := e.login(time.Minute, "demo")
	web := e.offlineGrant("web", webSecret, webRedirect)
	current := e.login(time.Minute, "demo")
	resp := e.get("/.idv/oidc/logout?" + url.Values{"id_token_hint": {web["id_token"].(string)}}.Encode())
	b := body(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(b, `name="confirm" value="yes"`) {
		t.Fatalf("logout with another session's hint: %d", resp.StatusCode)
	}
	if !e.revs.Revoked(old.SID) || e.revs.Revoked(current.SID) || len(e.host.endedSIDs()) != 0 {
		t.Errorf("hinted session revoked %v, browser's %v, EndSession calls %v", e.revs.Revoked(old.SID), e.revs.Revoked(current.SID), e.host.endedSIDs())
	}
}

// TestOneCredentialOneWay: a request that carries a credential twice
// (two Authorization headers, or a bearer header and an access_token form
// field) is refused with invalid_request, never judged by the first one
// while something downstream might read the other (RFC 6749 §2.3, RFC 6750
// §2). Found by the attack suite.
func TestOneCredentialOneWay(t *testing.T) {
	e := newEnv(t)
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(user)+":"+url.QueryEscape(pass)))
	}
	for _, c := range []struct {
		name, path, form string
		auth             []string
	}{
		{"token endpoint, two Basic headers", "/.idv/oidc/token", "grant_type=authorization_code&code=x&redirect_uri=" + url.QueryEscape(webRedirect),
			[]string{basic("web", "wrong-secret-0123456789"), basic("web", webSecret)}},
		{"revocation, two Basic headers", "/.idv/oidc/revoke", "token=x", []string{basic("web", webSecret), basic("spa", "")}},
		{"introspection, two Basic headers", "/.idv/oidc/introspect", "token=x", []string{basic("web", webSecret), basic("web", "other-secret-0123456789")}},
		{"userinfo, a bearer header and an access_token field", "/.idv/oidc/userinfo", "access_token=y", []string{"Bearer x"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.issuer+c.path, strings.NewReader(c.form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for _, a := range c.auth {
				req.Header.Add("Authorization", a)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b := body(t, resp)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(b, `"error":"invalid_request"`) {
				t.Fatalf("%d %s; want 400 invalid_request", resp.StatusCode, b)
			}
		})
	}
}
