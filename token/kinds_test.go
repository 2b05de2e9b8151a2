package token

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEachVerifierAcceptsOnlyItsKind is the token-confusion matrix: a token
// of every kind the service signs, presented to every verifier. Only the
// diagonal verifies. The issuer of the OIDC tokens is deliberately the
// site's own origin and the site's audience is in the access token's aud,
// the situation of a single sign-on site, where nothing but the kind tells
// the tokens apart.
func TestEachVerifierAcceptsOnlyItsKind(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	session, _, err := f.ss.Issue(Login{Subject: "u1", Provider: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	g := Grant{Issuer: site, ClientID: site, Subject: "u1", SID: "s1", AuthTime: f.clk.now().Unix()}
	access, err := f.svc.IssueAccess(g, "openid", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{"session": session, "access": access}
	for _, alg := range []string{ES256, RS256} {
		id, err := f.svc.IssueID(g, "n", access, time.Hour, alg)
		if err != nil {
			t.Fatal(err)
		}
		kinds["id "+alg] = id
		// A logout token is never accepted here: relying parties verify it.
		logout, err := f.svc.IssueLogout(Logout{Issuer: site, ClientID: site, Subject: "u1", SID: "s1"}, alg)
		if err != nil {
			t.Fatal(err)
		}
		kinds["logout "+alg] = logout
	}
	verifiers := map[string]func(string) error{
		"session": func(raw string) error { _, err := f.ss.Verify(ctx, raw); return err },
		"access":  func(raw string) error { _, err := f.svc.VerifyAccess(ctx, raw, site); return err },
		"id":      func(raw string) error { _, err := f.svc.VerifyIDTokenHint(ctx, raw, site); return err },
	}
	for kind, raw := range kinds {
		for place, verify := range verifiers {
			err := verify(raw)
			if strings.HasPrefix(kind, place) && err != nil {
				t.Errorf("%s token at the %s verifier: %v", kind, place, err)
			}
			if !strings.HasPrefix(kind, place) && !errors.Is(err, ErrInvalid) {
				t.Errorf("%s token at the %s verifier: err = %v, want ErrInvalid", kind, place, err)
			}
		}
	}
}

func TestSessionOfAnotherSiteOrProviderIsRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	weak := f.svc.Sessions(Site{Prefix: "/.idv", Cookie: "idv_session", Providers: []SiteProvider{{Name: "demo", Kind: "demo"}}}, time.Hour, 0)
	strong := f.svc.Sessions(Site{Prefix: "/.idv", Cookie: "idv_session", Providers: []SiteProvider{{Name: "uqudo", Kind: "uqudo"}}}, time.Hour, 0)
	raw, _, err := weak.Issue(Login{Subject: "u", Provider: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strong.Verify(ctx, raw); !errors.Is(err, ErrWrongAudience) {
		t.Fatalf("a session of a handler with other providers: %v", err)
	}
	// Same audience (set by hand), but a provider the strong site does not
	// offer: still refused.
	weak2 := f.svc.Sessions(Site{Audience: "shared", Providers: []SiteProvider{{Name: "demo", Kind: "demo"}}}, time.Hour, 0)
	strong2 := f.svc.Sessions(Site{Audience: "shared", Providers: []SiteProvider{{Name: "uqudo", Kind: "uqudo"}}}, time.Hour, 0)
	raw, _, _ = weak2.Issue(Login{Subject: "u", Provider: "demo"})
	if _, err := strong2.Verify(ctx, raw); !errors.Is(err, ErrWrongAudience) {
		t.Fatalf("a provider the site does not offer: %v", err)
	}
	if _, _, err := strong2.Issue(Login{Subject: "u", Provider: "demo"}); err == nil {
		t.Fatal("issued a session for a provider the site does not offer")
	}
	// Two instances with the same configuration accept each other's tokens.
	twin := f.svc.Sessions(Site{Prefix: "/.idv", Cookie: "idv_session", Providers: []SiteProvider{{Name: "demo", Kind: "demo"}}}, time.Hour, 0)
	raw, _, _ = weak.Issue(Login{Subject: "u", Provider: "demo"})
	if _, err := twin.Verify(ctx, raw); err != nil {
		t.Fatalf("same configuration: %v", err)
	}
}

func TestSessionAudienceComesFromConfiguration(t *testing.T) {
	base := Site{Prefix: "/.idv", Cookie: "idv_session", Providers: []SiteProvider{{Name: "a", Kind: "demo"}, {Name: "b", Kind: "uqudo"}}}
	reordered := base
	reordered.Providers = []SiteProvider{base.Providers[1], base.Providers[0]}
	if base.SessionAudience() != reordered.SessionAudience() {
		t.Error("provider order changes the audience")
	}
	if !strings.HasPrefix(base.SessionAudience(), "urn:caddy-idv:site:") {
		t.Errorf("derived audience %q", base.SessionAudience())
	}
	for name, other := range map[string]Site{
		"prefix":        {Prefix: "/auth", Cookie: base.Cookie, Providers: base.Providers},
		"cookie":        {Prefix: base.Prefix, Cookie: "x", Providers: base.Providers},
		"provider kind": {Prefix: base.Prefix, Cookie: base.Cookie, Providers: []SiteProvider{{Name: "a", Kind: "demo"}, {Name: "b", Kind: "blockid"}}},
		"provider name": {Prefix: base.Prefix, Cookie: base.Cookie, Providers: []SiteProvider{{Name: "a", Kind: "demo"}, {Name: "c", Kind: "uqudo"}}},
	} {
		if other.SessionAudience() == base.SessionAudience() {
			t.Errorf("%s does not change the audience", name)
		}
	}
	for _, c := range []struct {
		site     Site
		aud, iss string
	}{
		{Site{Origin: "https://app.example"}, "https://app.example", "https://app.example"},
		{Site{Origin: "https://app.example", Domain: "example"}, "example", "https://app.example"},
		{Site{Origin: "https://app.example", Audience: "api"}, "api", "https://app.example"},
		{Site{Origin: "https://app.example", OIDCIssuer: "https://sso.example"}, "https://app.example", "https://sso.example"},
		{Site{}, Site{}.SessionAudience(), DefaultIssuer},
	} {
		if got := c.site.SessionAudience(); got != c.aud {
			t.Errorf("%+v: aud %q, want %q", c.site, got, c.aud)
		}
		if got := c.site.SessionIssuer(); got != c.iss {
			t.Errorf("%+v: iss %q, want %q", c.site, got, c.iss)
		}
	}
}

func TestParseOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://App.Example.com":      "https://app.example.com",
		"https://app.example.com/":     "https://app.example.com",
		"http://127.0.0.1:8080":        "http://127.0.0.1:8080",
		"https://app.example.com/path": "",
		"https://u@app.example.com":    "",
		"ftp://app.example.com":        "",
		"app.example.com":              "",
		"https://app.example.com?x":    "",
		"https://app.example.com#x":    "",
		"https://":                     "",
	} {
		got, err := ParseOrigin(in)
		if want == "" && err == nil {
			t.Errorf("ParseOrigin(%q) = %q, want an error", in, got)
		}
		if want != "" && (err != nil || got != want) {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestExternalSessionIsQualified(t *testing.T) {
	s, err := External("raw", "https://idp.example", map[string]any{"sub": "alice", "idv": "demo", "acr": "high"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if s.Subject != "https://idp.example#alice" || s.Values["sub"] != s.Subject {
		t.Errorf("subject %q / %q", s.Subject, s.Values["sub"])
	}
	if s.Provider != "https://idp.example" || s.Values["idv"] != "https://idp.example" || !s.External {
		t.Errorf("idv %q / %q", s.Provider, s.Values["idv"])
	}
	if _, err := External("raw", "https://idp.example", map[string]any{}, time.Now()); err == nil {
		t.Error("a token without sub")
	}
}

func TestRenewKeepsSessionAndSlides(t *testing.T) {
	f := newFixture(t)
	ss := f.svc.Sessions(testSite, 8*time.Hour, time.Hour)
	raw, exp, err := ss.Issue(Login{Subject: "u", Provider: "demo", Claims: map[string]any{"name": "Ada", "sid": "forged"}})
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(f.clk.now().Add(time.Hour)) {
		t.Fatalf("exp %v", exp)
	}
	sess, err := ss.Verify(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if sess.SID == "forged" || sess.Values["name"] != "Ada" {
		t.Fatalf("claims: %v", sess.Values)
	}
	if r, _, _ := ss.Renew(sess); r != "" {
		t.Fatal("renewed a fresh session")
	}
	f.clk.add(40 * time.Minute)
	r, exp2, err := ss.Renew(sess)
	if err != nil || r == "" || !exp2.After(exp) {
		t.Fatalf("renew: %q %v %v", r, exp2, err)
	}
	sess2, err := ss.Verify(context.Background(), r)
	if err != nil || sess2.SID != sess.SID || sess2.ID == sess.ID {
		t.Fatalf("renewed session: %+v %v", sess2, err)
	}
}

// A logout token has exactly the claims of Back-Channel Logout 1.0 §2.4,
// typ logout+jwt, and no nonce.
func TestLogoutTokenClaims(t *testing.T) {
	f := newFixture(t)
	raw, err := f.svc.IssueLogout(Logout{Issuer: site, ClientID: "app", Subject: "u1", SID: "s1"}, RS256)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.parse(context.Background(), raw, check{typ: TypLogout, algs: []string{RS256}})
	if err != nil {
		t.Fatal(err)
	}
	now := f.clk.now().Unix()
	if c["iss"] != site || c["aud"] != "app" || c["sub"] != "u1" || c["sid"] != "s1" || c["jti"] == "" ||
		c["iat"] != json.Number(strconv.FormatInt(now, 10)) || c["exp"] != json.Number(strconv.FormatInt(now+120, 10)) {
		t.Errorf("claims %v", c)
	}
	ev, _ := c["events"].(map[string]any)
	if _, ok := ev[BackchannelLogoutEvent].(map[string]any); !ok || len(ev) != 1 {
		t.Errorf("events %v", c["events"])
	}
	if _, ok := c["nonce"]; ok || len(c) != 8 {
		t.Errorf("claims %v: want exactly iss aud iat exp jti sub sid events", c)
	}
	if _, err := f.svc.IssueLogout(Logout{Issuer: site, ClientID: "app"}, RS256); err == nil {
		t.Error("a logout token without sub and sid")
	}
}

func FuzzParseOrigin(f *testing.F) {
	for _, s := range []string{"https://app.example", "http://127.0.0.1:8080/", "https://a@b", "javascript://x", "https://x/%2e%2e", "HTTPS://X:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		o, err := ParseOrigin(in)
		if err != nil {
			return
		}
		if !strings.HasPrefix(o, "https://") && !strings.HasPrefix(o, "http://") || strings.ContainsAny(o[8:], "/?#@") {
			t.Fatalf("ParseOrigin(%q) = %q", in, o)
		}
		if again, err := ParseOrigin(o); err != nil || again != o {
			t.Fatalf("ParseOrigin(%q) = %q is not stable: %q %v", in, o, again, err)
		}
	})
}
