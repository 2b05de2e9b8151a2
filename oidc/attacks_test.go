package oidc_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-idv/caddy-idv/oidc"
	"github.com/caddy-idv/caddy-idv/token"
)

// TestAuthorizeAttacks: one case per attack on the authorization endpoint.
// Errors before the client and redirect_uri are established show a page and
// never redirect (open redirector, OpenID Connect Core §3.1.2.6); the rest
// go back to the registered redirect_uri with state and iss.
func TestAuthorizeAttacks(t *testing.T) {
	e := newEnv(t)
	e.login(time.Minute, "demo")
	good := func() map[string]string {
		return map[string]string{"client_id": "spa", "redirect_uri": spaRedirect, "response_type": "code", "scope": "openid",
			"state": "st", "code_challenge": challenge(verifier), "code_challenge_method": "S256"}
	}
	for _, tc := range []struct {
		name   string
		change map[string]string
		raw    string // appended to the query as is
		page   bool   // error page, no redirect
		error  string // else: error code sent to the client
	}{
		{name: "unknown client_id", change: map[string]string{"client_id": "nope"}, page: true},
		{name: "missing client_id", change: map[string]string{"client_id": ""}, page: true},
		{name: "unregistered redirect_uri (open redirect)", change: map[string]string{"redirect_uri": "https://evil.example/cb"}, page: true},
		{name: "redirect_uri prefix match", change: map[string]string{"redirect_uri": spaRedirect + "/../evil"}, page: true},
		{name: "redirect_uri with extra query", change: map[string]string{"redirect_uri": spaRedirect + "?x=1"}, page: true},
		{name: "redirect_uri of another client", change: map[string]string{"redirect_uri": webRedirect}, page: true},
		{name: "repeated redirect_uri", raw: "&redirect_uri=https%3A%2F%2Fevil.example%2F", page: true},
		{name: "missing PKCE for public client", change: map[string]string{"code_challenge": "", "code_challenge_method": ""}, error: "invalid_request"},
		{name: "PKCE plain refused", change: map[string]string{"code_challenge_method": "plain"}, error: "invalid_request"},
		{name: "PKCE method omitted means plain", change: map[string]string{"code_challenge_method": ""}, error: "invalid_request"},
		{name: "PKCE challenge malformed", change: map[string]string{"code_challenge": "short"}, error: "invalid_request"},
		{name: "implicit flow", change: map[string]string{"response_type": "id_token token"}, error: "unsupported_response_type"},
		{name: "hybrid flow", change: map[string]string{"response_type": "code id_token"}, error: "unsupported_response_type"},
		{name: "no openid scope", change: map[string]string{"scope": "profile"}, error: "invalid_scope"},
		{name: "request object", change: map[string]string{"request": "eyJhbGciOiJub25lIn0.e30."}, error: "request_not_supported"},
		{name: "request_uri", change: map[string]string{"request_uri": "https://evil.example/r"}, error: "request_uri_not_supported"},
		{name: "form_post response mode", change: map[string]string{"response_mode": "form_post"}, error: "invalid_request"},
		{name: "repeated scope", raw: "&scope=openid+email", error: "invalid_request"},
		{name: "oversized nonce", change: map[string]string{"nonce": strings.Repeat("n", 5000)}, error: "invalid_request"},
		{name: "negative max_age", change: map[string]string{"max_age": "-1"}, error: "invalid_request"},
		{name: "prompt none with login", change: map[string]string{"prompt": "none login"}, error: "invalid_request"},
		{name: "forged auth_after not a number", change: map[string]string{"idv_auth_after": "soon"}, error: "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := good()
			for k, v := range tc.change {
				if v == "" {
					delete(p, k)
				} else {
					p[k] = v
				}
			}
			resp := e.get(e.authorizeURL(p) + tc.raw)
			b := body(t, resp)
			loc := resp.Header.Get("Location")
			if tc.page {
				if resp.StatusCode != http.StatusBadRequest || loc != "" || !strings.Contains(b, "ERROR") {
					t.Fatalf("want an error page, got %d Location %q", resp.StatusCode, loc)
				}
				return
			}
			u, _ := url.Parse(loc)
			if resp.StatusCode != http.StatusFound || u == nil || !strings.HasPrefix(loc, spaRedirect+"?") {
				t.Fatalf("want a redirect to the client, got %d %q", resp.StatusCode, loc)
			}
			q := u.Query()
			if q.Get("error") != tc.error || q.Get("code") != "" || q.Get("iss") != e.issuer {
				t.Fatalf("error %q (want %q), code %q, iss %q", q.Get("error"), tc.error, q.Get("code"), q.Get("iss"))
			}
			if tc.name != "oversized state" && q.Get("state") != "st" {
				t.Errorf("state %q not echoed", q.Get("state"))
			}
		})
	}
	t.Run("prompt none without session", func(t *testing.T) {
		e.logoutBrowser()
		p := good()
		p["prompt"] = "none"
		resp := e.get(e.authorizeURL(p))
		body(t, resp)
		u, _ := url.Parse(resp.Header.Get("Location"))
		if u.Query().Get("error") != "login_required" {
			t.Errorf("Location %s", u)
		}
	})
	t.Run("no session goes to login", func(t *testing.T) {
		e.logoutBrowser()
		resp := e.get(e.authorizeURL(good()))
		body(t, resp)
		if loc := resp.Header.Get("Location"); resp.StatusCode != 302 || !strings.HasPrefix(loc, "/.idv/login?rd=%2F.idv%2Foidc%2Fauthorize%3F") {
			t.Errorf("Location %q", loc)
		}
	})
}

// TestTokenAttacks: one case per attack on the token endpoint, each
// answered with an RFC 6749 §5.2 error and no-store.
func TestTokenAttacks(t *testing.T) {
	type req struct {
		form        url.Values
		user, pass  string
		contentType string
	}
	for _, tc := range []struct {
		name   string
		build  func(e *env) req
		status int
		error  string
	}{
		{"wrong client secret (basic)", func(e *env) req {
			return req{form: webCode(e), user: "web", pass: "wrong"}
		}, 401, "invalid_client"},
		{"wrong client secret (post)", func(e *env) req {
			f := webCode(e)
			f.Set("client_id", "web")
			f.Set("client_secret", "wrong")
			return req{form: f}
		}, 401, "invalid_client"},
		{"confidential client without secret", func(e *env) req {
			f := webCode(e)
			f.Set("client_id", "web")
			return req{form: f}
		}, 401, "invalid_client"},
		{"unknown client", func(e *env) req { return req{form: webCode(e), user: "ghost", pass: "x"} }, 401, "invalid_client"},
		{"public client sending a secret", func(e *env) req {
			f := spaCode(e)
			f.Set("client_secret", "guess")
			return req{form: f}
		}, 401, "invalid_client"},
		{"two authentication methods", func(e *env) req {
			f := webCode(e)
			f.Set("client_secret", "s3cr3t:with/odd+chars")
			return req{form: f, user: "web", pass: "s3cr3t:with/odd+chars"}
		}, 400, "invalid_request"},
		{"code of another client", func(e *env) req {
			f := spaCode(e)
			f.Del("client_id")
			f.Set("redirect_uri", spaRedirect)
			return req{form: f, user: "web", pass: "s3cr3t:with/odd+chars"}
		}, 400, "invalid_grant"},
		{"wrong PKCE verifier", func(e *env) req {
			f := spaCode(e)
			f.Set("code_verifier", strings.Repeat("a", 43))
			return req{form: f}
		}, 400, "invalid_grant"},
		{"missing PKCE verifier", func(e *env) req {
			f := spaCode(e)
			f.Del("code_verifier")
			return req{form: f}
		}, 400, "invalid_grant"},
		{"verifier for a code without challenge (downgrade)", func(e *env) req {
			f := webCode(e)
			f.Set("code_verifier", verifier)
			return req{form: f, user: "web", pass: "s3cr3t:with/odd+chars"}
		}, 400, "invalid_grant"},
		{"wrong redirect_uri", func(e *env) req {
			f := spaCode(e)
			f.Set("redirect_uri", "http://127.0.0.1/other")
			return req{form: f}
		}, 400, "invalid_grant"},
		{"made-up code", func(e *env) req {
			f := spaCode(e)
			f.Set("code", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
			return req{form: f}
		}, 400, "invalid_grant"},
		{"expired code", func(e *env) req {
			f := spaCode(e)
			e.clock.Advance(61 * time.Second)
			return req{form: f}
		}, 400, "invalid_grant"},
		{"unsupported grant type", func(e *env) req {
			f := spaCode(e)
			f.Set("grant_type", "password")
			return req{form: f}
		}, 400, "unsupported_grant_type"},
		{"client_credentials grant", func(e *env) req {
			return req{form: url.Values{"grant_type": {"client_credentials"}}, user: "web", pass: "s3cr3t:with/odd+chars"}
		}, 400, "unsupported_grant_type"},
		{"repeated parameter", func(e *env) req {
			f := spaCode(e)
			f.Add("code", "other")
			return req{form: f}
		}, 400, "invalid_request"},
		{"JSON body", func(e *env) req { return req{form: spaCode(e), contentType: "application/json"} }, 400, "invalid_request"},
		{"made-up refresh token", func(e *env) req {
			return req{form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}, "client_id": {"spa"}}}
		}, 400, "invalid_grant"},
		{"refresh token of another client", func(e *env) req {
			_, out := e.exchangeSPA(e.codeFor("spa", spaRedirect, "openid offline_access", nil))
			return req{form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {out["refresh_token"].(string)}}, user: "web", pass: "s3cr3t:with/odd+chars"}
		}, 400, "invalid_grant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.login(time.Minute, "demo")
			r := tc.build(e)
			hreq, _ := http.NewRequest(http.MethodPost, e.issuer+"/.idv/oidc/token", strings.NewReader(r.form.Encode()))
			ct := r.contentType
			if ct == "" {
				ct = "application/x-www-form-urlencoded"
			}
			hreq.Header.Set("Content-Type", ct)
			if r.user != "" {
				hreq.SetBasicAuth(url.QueryEscape(r.user), url.QueryEscape(r.pass))
			}
			resp, err := http.DefaultClient.Do(hreq)
			if err != nil {
				t.Fatal(err)
			}
			b := body(t, resp)
			if resp.StatusCode != tc.status || !strings.Contains(b, `"error":"`+tc.error+`"`) {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, b, tc.status, tc.error)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Error("no Cache-Control: no-store")
			}
			if tc.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
				t.Error("no WWW-Authenticate on invalid_client")
			}
		})
	}
}

func spaCode(e *env) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {e.codeFor("spa", spaRedirect, "openid", nil)},
		"redirect_uri": {spaRedirect}, "client_id": {"spa"}, "code_verifier": {verifier}}
}

func webCode(e *env) url.Values {
	return url.Values{"grant_type": {"authorization_code"},
		"code":         {e.codeFor("web", webRedirect, "openid", map[string]string{"code_challenge": "", "code_challenge_method": ""})},
		"redirect_uri": {webRedirect}}
}

// TestUserinfoAttacks: only an unexpired, unrevoked access token of ours is
// accepted; ID tokens, session tokens and forgeries are refused.
func TestUserinfoAttacks(t *testing.T) {
	e := newEnv(t)
	sess := e.login(time.Minute, "demo")
	_, out := e.exchangeSPA(e.codeFor("spa", spaRedirect, "openid profile", nil))
	at, idt := out["access_token"].(string), out["id_token"].(string)
	if st, _ := e.userinfo(at); st != 200 {
		t.Fatalf("valid access token: %d", st)
	}
	parts := strings.Split(at, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"sub":"`, `"sub":"x`, 1))) + "." + parts[2]
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + "."
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": e.issuer, "sub": "x", "aud": []string{"spa", e.issuer},
		"client_id": "spa", "scope": "openid", "sid": "s", "exp": e.clock.Now().Add(time.Hour).Unix()}).SignedString([]byte("k"))
	sessions := e.tokens.Sessions(token.Site{OIDCIssuer: e.issuer, Providers: []token.SiteProvider{{Name: "demo", Kind: "demo"}}}, time.Hour, 0)
	sessionToken, _, err := sessions.Issue(token.Login{Subject: sess.Subject, Provider: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	otherIssuer, err := e.tokens.IssueAccess(token.Grant{Issuer: "https://evil.example", ClientID: "spa", Subject: "x", SID: "s"}, "openid", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"ID token as access token":        idt,
		"session token as access token":   sessionToken,
		"tampered payload":                tampered,
		"alg none":                        none,
		"HS256 forgery":                   hs,
		"signed by us for another issuer": otherIssuer,
		"garbage":                         "abc.def.ghi",
	} {
		t.Run(name, func(t *testing.T) {
			if st, _ := e.userinfo(tok); st != http.StatusUnauthorized {
				t.Errorf("status %d", st)
			}
		})
	}
	t.Run("token in the query", func(t *testing.T) {
		resp := e.get("/.idv/oidc/userinfo?access_token=" + at)
		body(t, resp)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("expired", func(t *testing.T) {
		e.clock.Advance(oidc.AccessTokenLifetime + time.Minute)
		if st, _ := e.userinfo(at); st != http.StatusUnauthorized {
			t.Errorf("status %d", st)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	ok := oidc.Client{ID: "a", RedirectURIs: []string{"https://app.example/cb"}}
	for _, tc := range []struct {
		name string
		cfg  oidc.Config
		want string // "" = valid
	}{
		{"valid", oidc.Config{Issuer: "https://id.example", Clients: []oidc.Client{ok}}, ""},
		{"valid http localhost", oidc.Config{Issuer: "http://localhost:8080/sso"}, ""},
		{"valid native app", oidc.Config{Issuer: "https://id.example", Clients: []oidc.Client{{ID: "n", RedirectURIs: []string{"com.example.app:/cb", "http://127.0.0.1:5000/cb"}}}}, ""},
		{"http issuer", oidc.Config{Issuer: "http://id.example"}, "issuer"},
		{"issuer with query", oidc.Config{Issuer: "https://id.example/?a=b"}, "issuer"},
		{"issuer with fragment", oidc.Config{Issuer: "https://id.example/#x"}, "issuer"},
		{"relative issuer", oidc.Config{Issuer: "/sso"}, "issuer"},
		{"no redirect uri", oidc.Config{Issuer: "https://id.example", Clients: []oidc.Client{{ID: "a"}}}, "redirect_uri"},
		{"duplicate client", oidc.Config{Issuer: "https://id.example", Clients: []oidc.Client{ok, ok}}, "defined twice"},
		{"relative redirect", oidc.Config{Issuer: "https://id.example", Clients: []oidc.Client{{ID: "a", RedirectURIs: []string{"/cb"}}}}, "redirect_uri"},
		{"http redirect", oidc.Config{Issuer: "https://id.example", Clients: []oidc.Client{{ID: "a", RedirectURIs: []string{"http://app.example/cb"}}}}, "redirect_uri"},
		{"fragment redirect", oidc.Config{Issuer: "https://id.example", Clients: []oidc.Client{{ID: "a", RedirectURIs: []string{"https://app.example/cb#x"}}}}, "redirect_uri"},
		{"javascript redirect", oidc.Config{Issuer: "https://id.example", Clients: []oidc.Client{{ID: "a", RedirectURIs: []string{"javascript:alert(1)"}}}}, "redirect_uri"},
		{"bad logout uri", oidc.Config{Issuer: "https://id.example", Clients: []oidc.Client{{ID: "a", RedirectURIs: ok.RedirectURIs, PostLogoutRedirectURIs: []string{"http://app.example/"}}}}, "post_logout_redirect_uri"},
		{"bad subject", oidc.Config{Issuer: "https://id.example", Clients: []oidc.Client{{ID: "a", RedirectURIs: ok.RedirectURIs, Subject: "random"}}}, "subject"},
		{"short secret", oidc.Config{Issuer: "https://id.example", Clients: []oidc.Client{{ID: "a", RedirectURIs: ok.RedirectURIs, Secret: "s"}}}, `client "a": secret is 1 characters; use at least 16`},
		{"16-character secret", oidc.Config{Issuer: "https://id.example", Clients: []oidc.Client{{ID: "a", RedirectURIs: ok.RedirectURIs, Secret: "0123456789abcdef"}}}, ""},
		{"ES256 ID tokens", oidc.Config{Issuer: "https://id.example", Clients: []oidc.Client{{ID: "a", RedirectURIs: ok.RedirectURIs, IDTokenAlg: "ES256"}}}, ""},
		{"HS256 ID tokens", oidc.Config{Issuer: "https://id.example", Clients: []oidc.Client{{ID: "a", RedirectURIs: ok.RedirectURIs, IDTokenAlg: "HS256"}}}, "id_token_signed_response_alg"},
		{"none ID tokens", oidc.Config{Issuer: "https://id.example", Clients: []oidc.Client{{ID: "a", RedirectURIs: ok.RedirectURIs, IDTokenAlg: "none"}}}, "id_token_signed_response_alg"},
		{"backchannel uri", oidc.Config{Issuer: "https://id.example", Clients: []oidc.Client{{ID: "a", RedirectURIs: ok.RedirectURIs, BackchannelLogoutURI: "https://app.example/bcl?x=1"}}}, ""},
		{"http backchannel uri", oidc.Config{Issuer: "https://id.example", Clients: []oidc.Client{{ID: "a", RedirectURIs: ok.RedirectURIs, BackchannelLogoutURI: "http://app.example/bcl"}}}, "backchannel_logout_uri"},
		{"backchannel uri with fragment", oidc.Config{Issuer: "https://id.example", Clients: []oidc.Client{{ID: "a", RedirectURIs: ok.RedirectURIs, BackchannelLogoutURI: "https://app.example/bcl#x"}}}, "backchannel_logout_uri"},
		{"relative backchannel uri", oidc.Config{Issuer: "https://id.example", Clients: []oidc.Client{{ID: "a", RedirectURIs: ok.RedirectURIs, BackchannelLogoutURI: "/bcl"}}}, "backchannel_logout_uri"},
		{"long refresh grace", oidc.Config{Issuer: "https://id.example", RefreshReuseGrace: time.Hour}, "refresh_reuse_grace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}
