package caddymodule_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/client/rs"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
)

// TestZitadelRelyingParty runs an independent relying party, the zitadel/oidc
// rp package, unmodified against the real binary: discovery, the code flow
// with PKCE and nonce, ID token verification with its default RS256, userinfo,
// refresh (ten at once, as RPs do from parallel requests), introspection
// and revocation with its rs package, and EndSession from the RP's own
// server (no browser cookie), which must end the caddy-idv session and every
// token of it, and send a back-channel logout token.
func TestZitadelRelyingParty(t *testing.T) {
	rpURL := fmt.Sprintf("http://127.0.0.1:%d", e2e.FreePort(t))
	port := e2e.FreePort(t)
	issuer := fmt.Sprintf("http://127.0.0.1:%d", port)
	const secret = "zitadel-secret-0123456789"

	logoutTokens := make(chan string, 10)
	bcl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		logoutTokens <- r.PostForm.Get("logout_token")
	}))
	t.Cleanup(bcl.Close)

	idp := e2e.Start(t, `
	idv {
		provider demo {
			user "Ada Lovelace"
		}
		oidc {
			issuer `+issuer+`
			client zitadel {
				name "Zitadel test app"
				secret {env.ZITADEL_SECRET}
				redirect_uri `+rpURL+`/callback
				post_logout_redirect_uri `+rpURL+`/bye
				backchannel_logout_uri `+bcl.URL+`/backchannel
			}
		}
	}
	respond "idp"
`, e2e.Options{Port: port, Env: []string{"ZITADEL_SECRET=" + secret}})

	ctx := context.Background()
	var nonce atomic.Value
	nonce.Store("")
	relying, err := rp.NewRelyingPartyOIDC(ctx, issuer, "zitadel", secret, rpURL+"/callback",
		[]string{zoidc.ScopeOpenID, zoidc.ScopeProfile, zoidc.ScopeOfflineAccess},
		rp.WithVerifierOpts(rp.WithNonce(func(context.Context) string { return nonce.Load().(string) })))
	if err != nil {
		t.Fatalf("zitadel discovery: %v", err)
	}

	// Code flow with PKCE S256 and a nonce, through the demo login.
	verifier := randomString(t)
	n := randomString(t)
	nonce.Store(n)
	withNonce := func() []oauth2.AuthCodeOption { return []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("nonce", n)} }
	authURL := rp.AuthURL("state-z", relying, rp.WithCodeChallenge(zoidc.NewSHACodeChallenge(verifier)), withNonce)
	browser := e2e.NewBrowser()
	code := authorizeURL(t, idp, browser, authURL, rpURL+"/callback", "state-z")
	tokens, err := rp.CodeExchange[*zoidc.IDTokenClaims](ctx, code, relying, rp.WithCodeVerifier(verifier))
	if err != nil {
		t.Fatalf("zitadel code exchange: %v", err)
	}
	claims := tokens.IDTokenClaims
	if claims.GetSubject() == "" || claims.Nonce != n || claims.SessionID == "" || tokens.RefreshToken == "" {
		t.Fatalf("ID token claims %+v, refresh token %q", claims, tokens.RefreshToken)
	}
	if alg := claims.GetSignatureAlgorithm(); alg != "RS256" {
		t.Errorf("ID token alg %s, want RS256 (the default)", alg)
	}

	info, err := rp.Userinfo[*zoidc.UserInfo](ctx, tokens.AccessToken, tokens.TokenType, claims.GetSubject(), relying)
	if err != nil || info.Name != "Ada Lovelace" {
		t.Fatalf("zitadel userinfo: %v %+v", err, info)
	}

	// Refresh: an ID token without nonce (OpenID Connect Core §12.2).
	nonce.Store("")
	refreshed, err := rp.RefreshTokens[*zoidc.IDTokenClaims](ctx, relying, tokens.RefreshToken, "", "")
	if err != nil || refreshed.RefreshToken == "" || refreshed.RefreshToken == tokens.RefreshToken {
		t.Fatalf("zitadel refresh: %v", err)
	}
	if refreshed.IDTokenClaims == nil || refreshed.IDTokenClaims.GetSubject() != claims.GetSubject() {
		t.Fatalf("refreshed ID token %+v", refreshed.IDTokenClaims)
	}
	// Ten refreshes of one refresh token at once: all answered, nothing
	// revoked (the default reuse grace).
	var wg sync.WaitGroup
	latest := make([]string, 10)
	errs := make([]error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := rp.RefreshTokens[*zoidc.IDTokenClaims](ctx, relying, refreshed.RefreshToken, "", "")
			errs[i] = err
			if err == nil {
				latest[i] = tok.RefreshToken
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("parallel refresh %d: %v", i, err)
		}
	}
	if st, _, _ := browser.Do(t, http.MethodGet, idp.URL+"/", nil, nil); st != http.StatusOK {
		t.Fatalf("caddy-idv session after parallel refreshes: %d", st)
	}

	// Introspection and revocation (RFC 7662, RFC 7009).
	server, err := rs.NewResourceServerClientCredentials(ctx, issuer, "zitadel", secret)
	if err != nil {
		t.Fatal(err)
	}
	active, err := rs.Introspect[*zoidc.IntrospectionResponse](ctx, server, refreshed.AccessToken)
	if err != nil || !active.Active || active.ClientID != "zitadel" || active.Subject != claims.GetSubject() {
		t.Fatalf("introspection: %v %+v", err, active)
	}
	if err := rp.RevokeToken(ctx, relying, refreshed.AccessToken, "access_token"); err != nil {
		t.Fatalf("zitadel revoke: %v", err)
	}
	if gone, err := rs.Introspect[*zoidc.IntrospectionResponse](ctx, server, refreshed.AccessToken); err != nil || gone.Active {
		t.Fatalf("introspection of a revoked access token: %v %+v", err, gone)
	}

	// EndSession from the RP's server: no cookie, the ID token as hint.
	loc, err := rp.EndSession(ctx, relying, tokens.IDToken, rpURL+"/bye", "bye-z", "", nil)
	if err != nil || loc == nil || loc.String() != rpURL+"/bye?state=bye-z" {
		t.Fatalf("zitadel EndSession: %v %v", err, loc)
	}
	if st, _, _ := browser.Do(t, http.MethodGet, idp.URL+"/", nil, nil); st != http.StatusUnauthorized {
		t.Errorf("the browser's caddy-idv session after EndSession: %d", st)
	}
	if _, err := rp.RefreshTokens[*zoidc.IDTokenClaims](ctx, relying, latest[0], "", ""); err == nil {
		t.Error("a refresh token worked after EndSession")
	}
	if _, err := rp.Userinfo[*zoidc.UserInfo](ctx, tokens.AccessToken, tokens.TokenType, claims.GetSubject(), relying); err == nil {
		t.Error("an access token worked after EndSession")
	}

	// The back-channel logout token, verified by go-oidc (RS256, the
	// client's ID token algorithm).
	var raw string
	select {
	case raw = <-logoutTokens:
	case <-time.After(15 * time.Second):
		t.Fatal("no back-channel logout token within 15 s")
	}
	keys := gooidc.NewRemoteKeySet(ctx, issuer+"/.idv/oidc/jwks")
	lt, err := gooidc.NewVerifier(issuer, keys, &gooidc.Config{ClientID: "zitadel"}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("logout token: %v", err)
	}
	var lc zoidc.LogoutTokenClaims
	if err := lt.Claims(&lc); err != nil || lc.SessionID != claims.SessionID || lc.Subject != claims.GetSubject() ||
		lc.Events["http://schemas.openid.net/event/backchannel-logout"] == nil || lc.JWTID == "" {
		t.Fatalf("logout token claims %+v: %v", lc, err)
	}
	if strings.Contains(raw, "nonce") {
		t.Error("the logout token has a nonce")
	}
}

func randomString(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
