package oidc_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// post sends a form to a provider endpoint as client (basic auth when
// secret is set, else client_id in the form).
func (e *env) post(endpoint, client, secret string, form url.Values) (int, map[string]any, http.Header) {
	e.t.Helper()
	if secret == "" && client != "" {
		form.Set("client_id", client)
	}
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/.idv/oidc/"+endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(url.QueryEscape(client), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	b := body(e.t, resp)
	var out map[string]any
	_ = json.Unmarshal([]byte(b), &out)
	if resp.Header.Get("Cache-Control") != "no-store" {
		e.t.Errorf("%s: Cache-Control %q", endpoint, resp.Header.Get("Cache-Control"))
	}
	return resp.StatusCode, out, resp.Header
}

func (e *env) introspect(tok string) map[string]any {
	e.t.Helper()
	st, out, _ := e.post("introspect", "pw1", pw1Secret, url.Values{"token": {tok}})
	if st != 200 {
		e.t.Fatalf("introspect: %d %v", st, out)
	}
	return out
}

// RFC 7662: a resource server (here the confidential client pw1) learns
// whether an access token is active; revoked or expired, the answer is
// exactly {"active":false}.
func TestIntrospection(t *testing.T) {
	e := newEnv(t)
	e.login(time.Minute, "demo")
	web := e.offlineGrant("web", webSecret, webRedirect)
	at := web["access_token"].(string)
	out := e.introspect(at)
	if out["active"] != true || out["client_id"] != "web" || out["scope"] != "openid profile email offline_access" ||
		out["token_type"] != "Bearer" || out["iss"] != e.issuer || out["sub"] == nil || out["exp"] == nil || out["jti"] == nil {
		t.Errorf("active access token: %v", out)
	}
	// A refresh token: only its own client sees it.
	rt := web["refresh_token"].(string)
	if out := e.introspect(rt); len(out) != 1 || out["active"] != false {
		t.Errorf("another client's refresh token: %v", out)
	}
	st, own, _ := e.post("introspect", "web", webSecret, url.Values{"token": {rt}})
	if st != 200 || own["active"] != true || own["token_type"] != "refresh_token" || own["client_id"] != "web" {
		t.Errorf("own refresh token: %d %v", st, own)
	}
	// Public clients may not introspect.
	if st, out, _ := e.post("introspect", "spa", "", url.Values{"token": {at}}); st != http.StatusUnauthorized {
		t.Errorf("public client: %d %v", st, out)
	}
	// Garbage, an ID token, and an expired access token are inactive.
	for name, tok := range map[string]string{"garbage": "x.y.z", "id token": web["id_token"].(string), "unknown refresh": "abc"} {
		if out := e.introspect(tok); len(out) != 1 || out["active"] != false {
			t.Errorf("%s: %v", name, out)
		}
	}
	e.clock.Advance(11 * time.Minute)
	if out := e.introspect(at); len(out) != 1 || out["active"] != false {
		t.Errorf("expired access token: %v", out)
	}
}

// RFC 7009: revoking an access token ends it (introspection says so, and
// userinfo refuses it); revoking a refresh token ends its family and the
// access tokens of the grant; nothing else ends.
func TestRevocation(t *testing.T) {
	e := newEnv(t)
	sess := e.login(time.Minute, "demo")
	web := e.offlineGrant("web", webSecret, webRedirect)
	spa := e.offlineGrant("spa", "", spaRedirect)

	// Access token.
	at := web["access_token"].(string)
	if st, out, _ := e.post("revoke", "web", webSecret, url.Values{"token": {at}, "token_type_hint": {"access_token"}}); st != 200 {
		t.Fatalf("revoke access token: %d %v", st, out)
	}
	if out := e.introspect(at); len(out) != 1 || out["active"] != false {
		t.Errorf("revoked access token: %v", out)
	}
	if st, _ := e.userinfo(at); st != http.StatusUnauthorized {
		t.Errorf("userinfo with a revoked access token: %d", st)
	}
	st, fresh, _ := e.refreshAs("web", webSecret, web["refresh_token"].(string), "")
	if st != 200 {
		t.Fatalf("the grant after revoking one access token: %d %v", st, fresh)
	}

	// Another client's token is refused and stays valid.
	if st, out, _ := e.post("revoke", "spa", "", url.Values{"token": {fresh["refresh_token"].(string)}}); st != 400 || out["error"] != "unauthorized_client" {
		t.Errorf("revoking another client's refresh token: %d %v", st, out)
	}
	if st, out, _ := e.post("revoke", "spa", "", url.Values{"token": {fresh["access_token"].(string)}}); st != 400 || out["error"] != "unauthorized_client" {
		t.Errorf("revoking another client's access token: %d %v", st, out)
	}

	// Refresh token, by a public client: its family and the grant's
	// access tokens end.
	if st, out, _ := e.post("revoke", "spa", "", url.Values{"token": {spa["refresh_token"].(string)}, "token_type_hint": {"refresh_token"}}); st != 200 {
		t.Fatalf("revoke refresh token: %d %v", st, out)
	}
	if st, out, _ := e.refreshAs("spa", "", spa["refresh_token"].(string), ""); st != 400 || out["error"] != "invalid_grant" {
		t.Errorf("refresh with a revoked refresh token: %d %v", st, out)
	}
	if st, _ := e.userinfo(spa["access_token"].(string)); st != http.StatusUnauthorized {
		t.Errorf("userinfo with an access token of a revoked grant: %d", st)
	}
	// Unknown tokens: 200 (RFC 7009 §2.2).
	if st, out, _ := e.post("revoke", "spa", "", url.Values{"token": {"nonsense"}}); st != 200 {
		t.Errorf("unknown token: %d %v", st, out)
	}
	// Nothing else ended.
	if e.revs.Revoked(sess.SID) {
		t.Error("revocation ended the session")
	}
	if st, _ := e.userinfo(fresh["access_token"].(string)); st != 200 {
		t.Errorf("web's access token after spa revoked its grant: %d", st)
	}
	// A wrong secret at the revocation endpoint is a failed client
	// authentication, like at the token endpoint.
	if st, out, hdr := e.post("revoke", "web", "wrong-secret-0123456789", url.Values{"token": {at}}); st != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") == "" {
		t.Errorf("wrong secret: %d %v", st, out)
	}
}

// A client may ask for ES256 ID tokens (id_token_signed_response_alg);
// access tokens are ES256 whatever the client's choice.
func TestIDTokenAlgPerClient(t *testing.T) {
	e := newEnvWith(t, func(o *optionsHook) {
		for i := range o.cfg.Clients {
			if o.cfg.Clients[i].ID == "pw2" {
				o.cfg.Clients[i].IDTokenAlg = "ES256"
			}
		}
	})
	e.login(time.Minute, "demo")
	tok, _ := e.flow(e.rp("pw2", pw2Secret, web2Redirect))
	raw, _ := tok.Extra("id_token").(string)
	if alg := jwtHeader(t, raw)["alg"]; alg != "ES256" {
		t.Errorf("pw2 ID token alg %v", alg)
	}
	tok, _ = e.flow(e.rp("pw1", pw1Secret, webRedirect))
	raw, _ = tok.Extra("id_token").(string)
	if alg := jwtHeader(t, raw)["alg"]; alg != "RS256" {
		t.Errorf("pw1 ID token alg %v", alg)
	}
	// Either kind is a valid id_token_hint.
	resp := e.get("/.idv/oidc/logout?" + url.Values{"id_token_hint": {raw}}.Encode())
	if b := body(t, resp); resp.StatusCode != 200 || !strings.Contains(b, "logged out") {
		t.Errorf("logout with an RS256 hint: %d", resp.StatusCode)
	}
}

// The discovery document lists the new endpoints and capabilities.
func TestDiscoveryAdvertisesLogoutRevocationIntrospection(t *testing.T) {
	e := newEnv(t)
	var meta map[string]any
	if err := e.rp("spa", "", spaRedirect).provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"revocation_endpoint":                  e.issuer + "/.idv/oidc/revoke",
		"introspection_endpoint":               e.issuer + "/.idv/oidc/introspect",
		"backchannel_logout_supported":         true,
		"backchannel_logout_session_supported": true,
	} {
		if meta[k] != want {
			t.Errorf("%s = %v, want %v", k, meta[k], want)
		}
	}
	if acrs, _ := meta["acr_values_supported"].([]any); len(acrs) != 2 || acrs[0] != "high" {
		t.Errorf("acr_values_supported = %v", meta["acr_values_supported"])
	}
}
