package oidc

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzAuthorizeParams: no query makes parseAuthorize panic, accept an
// unregistered redirect_uri, or accept a request without openid, without
// S256 PKCE for a public client, or with a response_type other than code.
func FuzzAuthorizeParams(f *testing.F) {
	clients := map[string]*client{
		"spa": {Client: Client{ID: "spa"}, redirects: map[string]bool{"http://127.0.0.1/cb": true}},
		"web": {Client: Client{ID: "web", Secret: "x"}, redirects: map[string]bool{"https://web.example/cb": true}},
	}
	f.Add("client_id=spa&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&response_type=code&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256")
	f.Add("client_id=web&redirect_uri=https%3A%2F%2Fweb.example%2Fcb&response_type=code&scope=openid+profile&max_age=0&prompt=login&acr_values=a+b")
	f.Add("client_id=web&client_id=spa&redirect_uri=x")
	f.Add("client_id=web&redirect_uri=https%3A%2F%2Fweb.example%2Fcb&response_type=code&scope=openid&idv_auth_after=99999999999999999999")
	f.Fuzz(func(t *testing.T, query string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		req, c, aerr := parseAuthorize(v, clients)
		if aerr != nil {
			if aerr.redirect && (c == nil || !c.redirects[req.RedirectURI]) {
				t.Fatalf("error redirects to an unregistered URI: %q", query)
			}
			return
		}
		if c == nil || !c.redirects[req.RedirectURI] || req.ResponseType != "code" {
			t.Fatalf("accepted: %q", query)
		}
		hasOpenID := false
		for _, s := range req.Scope {
			hasOpenID = hasOpenID || s == "openid"
		}
		if !hasOpenID {
			t.Fatalf("accepted without openid: %q", query)
		}
		if c.public() && (req.ChallengeMeth != "S256" || !validChallenge(req.Challenge)) {
			t.Fatalf("public client without S256 PKCE: %q", query)
		}
		if req.Challenge != "" && req.ChallengeMeth != "S256" {
			t.Fatalf("non-S256 challenge accepted: %q", query)
		}
	})
}

// FuzzTokenRequest: no form or Authorization header makes parseTokenRequest
// panic; an accepted request always names a client and one method.
func FuzzTokenRequest(f *testing.F) {
	f.Add("grant_type=authorization_code&code=abc&client_id=spa&code_verifier=x", "")
	f.Add("grant_type=refresh_token&refresh_token=r", "Basic d2ViOnMzY3IzdA==")
	f.Add("grant_type=authorization_code&client_secret=s", "Basic %%%")
	f.Add("grant_type=x", "Bearer abc")
	f.Fuzz(func(t *testing.T, form, authz string) {
		v, err := url.ParseQuery(form)
		if err != nil {
			return
		}
		tr, terr := parseTokenRequest(v, authz)
		if terr != nil {
			return
		}
		if tr.ClientID == "" || tr.GrantType == "" {
			t.Fatalf("accepted without client or grant: %q %q", form, authz)
		}
		switch tr.Method {
		case "none":
			if tr.ClientSecret != "" {
				t.Fatal("method none with a secret")
			}
		case "client_secret_basic":
			if !strings.HasPrefix(strings.ToLower(authz), "basic ") {
				t.Fatal("basic without header")
			}
		case "client_secret_post":
		default:
			t.Fatalf("method %q", tr.Method)
		}
	})
}

// FuzzLogoutParams: parseLogout never panics and bounds what it accepts.
func FuzzLogoutParams(f *testing.F) {
	f.Add("id_token_hint=a.b.c&post_logout_redirect_uri=https%3A%2F%2Fx&state=s")
	f.Fuzz(func(t *testing.T, query string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		if req, ok := parseLogout(v); ok && len(req.IDTokenHint) > maxBody {
			t.Fatal("oversized hint accepted")
		}
	})
}
