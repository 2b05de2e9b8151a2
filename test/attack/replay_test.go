package attack_test

import (
	"bytes"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
	"github.com/caddy-idv/caddy-idv/providers/marksign/fakemarksign"
)

// TestAttackReplay replays what was once valid after it must no longer be:
// session cookies and bearer tokens after every way a session ends,
// authorization codes and refresh tokens after use, at another client or
// with another binding, revoked access tokens, the demo wallet's
// decisions, a completed login's status poll and pending cookie, a
// Mobile-ID answer already consumed, and an old id_token_hint.
func TestAttackReplay(t *testing.T) {
	s := newSuite(t, options{})
	short := newSuite(t, options{idv: "session {\n\t\t\tlifetime 3s\n\t\t}"})
	strict := newGraceOffSuite(t)
	r := &replayRig{s: s, app: confidentialApp(s), spa: publicApp(s)}
	rs := &replayRig{s: short, app: confidentialApp(short)}
	rg := &replayRig{s: strict, app: confidentialApp(strict), spa: publicApp(strict)}

	attacks := []attack{
		// First, so that its clock runs while the others do.
		{"session cookie and bearer token replayed after the session's lifetime and the 30 s skew", func(t *testing.T) {
			b := short.loggedIn(t)
			ref, raw := short.sessionCookie(b), short.bearer(t, b)
			exp := time.Unix(int64(claimsOf(t, raw)["exp"].(float64)), 0)
			if life := time.Until(exp); life > 3*time.Second {
				t.Fatalf("a 3 s session expires in %v", life)
			}
			rs.wantAlive(t, b)
			t.Parallel()
			// Nothing to wait for but the clock: the token's exp plus the
			// skew the module tolerates.
			time.Sleep(time.Until(exp.Add(31 * time.Second)))
			rs.wantCookieRefused(t, ref)
			rs.wantBearerRefused(t, raw)
		}},
		{"session cookie replayed after POST /logout", func(t *testing.T) {
			b := s.loggedIn(t)
			ref := s.sessionCookie(b)
			r.logout(t, b)
			r.wantCookieRefused(t, ref)
			a := send(t, plain(), request(t, http.MethodGet, s.url("/.idv/token"), nil, map[string]string{"Cookie": "idv_session=" + ref, "Sec-Fetch-Site": "same-origin"}))
			wantError(t, a, http.StatusUnauthorized, "unauthenticated")
			// The authorization endpoint does not take it for a session
			// either: prompt=none says login_required.
			q := r.app.authorizeQuery(pkceVerifier())
			q.Set("prompt", "none")
			a = send(t, plain(), request(t, http.MethodGet, s.url("/.idv/oidc/authorize?"+q.Encode()), nil, map[string]string{"Cookie": "idv_session=" + ref, "Accept": "text/html"}))
			want(t, a, http.StatusFound)
			if loc, _ := url.Parse(a.header.Get("Location")); loc == nil || loc.Query().Get("error") != "login_required" || loc.Query().Get("code") != "" {
				t.Fatalf("authorize prompt=none with an ended session: %q", a.header.Get("Location"))
			}
		}},
		{"bearer token replayed after POST /logout, as bearer and as a cookie", func(t *testing.T) {
			b := s.loggedIn(t)
			raw := s.bearer(t, b)
			r.logout(t, b)
			r.wantBearerRefused(t, raw)
			r.wantCookieRefused(t, raw)
		}},
		{"revoked session's token with its ECDSA signature re-encoded (high S)", func(t *testing.T) {
			// (r, n-s) is as valid a signature as (r, s): revocation must
			// not be keyed by the token's bytes.
			b := s.loggedIn(t)
			raw := s.bearer(t, b)
			twin := highS(t, raw)
			if twin == raw {
				t.Fatal("no twin")
			}
			a, _ := r.api(t, map[string]string{"Authorization": "Bearer " + twin})
			echoOf(t, a)
			r.logout(t, b)
			r.wantBearerRefused(t, twin)
			r.wantCookieRefused(t, twin)
		}},
		{"session cookie replayed after a logout made with its bearer token", func(t *testing.T) {
			b := s.loggedIn(t)
			ref, raw := s.sessionCookie(b), s.bearer(t, b)
			// An API client logs out: no cookie, no Origin (not a browser).
			a := send(t, plain(), request(t, http.MethodPost, s.url("/.idv/logout"), nil, map[string]string{"Authorization": "Bearer " + raw}))
			want(t, a, http.StatusSeeOther)
			r.wantCookieRefused(t, ref)
			r.wantBearerRefused(t, raw)
		}},
		{"POST /logout replayed with an ended session's cookie ends no other session", func(t *testing.T) {
			b, other := s.loggedIn(t), s.loggedIn(t)
			ref := s.sessionCookie(b)
			r.logout(t, b)
			h := s.sameOrigin()
			h["Content-Type"] = "application/x-www-form-urlencoded"
			h["Cookie"] = "idv_session=" + ref
			a := send(t, plain(), request(t, http.MethodPost, s.url("/.idv/logout"), nil, h))
			want(t, a, http.StatusSeeOther)
			r.wantAlive(t, other)
		}},
		{"session, access and refresh tokens replayed after end_session with an id_token_hint", func(t *testing.T) {
			b := s.loggedIn(t)
			ref, raw := s.sessionCookie(b), s.bearer(t, b)
			tok := r.app.login(t, b)
			// The application's server logs out: no cookie.
			r.wantLoggedOutPage(t, send(t, plain(), request(t, http.MethodGet, r.hintURL(tok.ID), nil, map[string]string{"Accept": "text/html"})))
			r.wantCookieRefused(t, ref)
			r.wantBearerRefused(t, raw)
			r.wantAccessRefused(t, r.app, tok.Access)
			r.wantRefreshRefused(t, r.app, tok.Refresh, "the session has ended")
		}},
		{"session and access tokens replayed after end_session confirmed in the browser", func(t *testing.T) {
			b := s.loggedIn(t)
			ref := s.sessionCookie(b)
			tok := r.app.login(t, b)
			a := do(t, b, http.MethodGet, s.url("/.idv/oidc/logout?client_id=app"), nil, map[string]string{"Accept": "text/html"})
			want(t, a, http.StatusOK)
			if !strings.Contains(string(a.body), "Log out?") {
				t.Fatalf("end_session without a hint did not ask: %v", a)
			}
			h := s.sameOrigin()
			h["Content-Type"] = "application/x-www-form-urlencoded"
			a = do(t, b, http.MethodPost, s.url("/.idv/oidc/logout"), strings.NewReader("confirm=yes&client_id=app"), h)
			r.wantLoggedOutPage(t, a)
			r.wantCookieRefused(t, ref)
			r.wantAccessRefused(t, r.app, tok.Access)
			r.wantRefreshRefused(t, r.app, tok.Refresh, "the session has ended")
		}},
		{"authorization code used twice: refused, and the first use's tokens revoked", func(t *testing.T) {
			b := s.loggedIn(t)
			v := pkceVerifier()
			code := r.app.code(t, b, r.app.authorizeQuery(v))
			first := tokensOf(t, r.app.exchange(t, code, r.app.redirect, v))
			r.app.wantUserinfoOK(t, first.Access)
			wantGrant(t, r.app.exchange(t, code, r.app.redirect, v), "the code was already used")
			r.wantAccessRefused(t, r.app, first.Access)
			r.wantRefreshRefused(t, r.app, first.Refresh, "the refresh token was revoked")
			// Anyone who saw the code could replay it: the person stays
			// logged in.
			r.wantAlive(t, b)
		}},
		{"authorization code raced by two exchanges at once", func(t *testing.T) {
			b := s.loggedIn(t)
			v := pkceVerifier()
			code := r.app.code(t, b, r.app.authorizeQuery(v))
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {r.app.redirect}, "code_verifier": {v}}
			answers := r.concurrently(t, 2, func() *http.Request {
				req := request(t, http.MethodPost, s.url("/.idv/oidc/token"), strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
				req.SetBasicAuth("app", s.secret)
				return req
			})
			var won *oidcTokens
			for _, a := range answers {
				if a.code == http.StatusOK {
					if won != nil {
						t.Fatal("one code was exchanged twice")
					}
					tok := tokensOf(t, a)
					won = &tok
					continue
				}
				wantGrant(t, a, "the code was already used")
			}
			if won == nil {
				t.Fatalf("no exchange won: %v", answers)
			}
			// The loser's use revoked what the winner got.
			r.wantAccessRefused(t, r.app, won.Access)
		}},
		{"authorization code redeemed by another client", func(t *testing.T) {
			b := s.loggedIn(t)
			v := pkceVerifier()
			code := r.app.code(t, b, r.app.authorizeQuery(v))
			wantGrant(t, r.spa.exchange(t, code, r.app.redirect, v), "the code was issued to another client")
			// Refused before it was consumed: its client still gets it.
			tokensOf(t, r.app.exchange(t, code, r.app.redirect, v))
		}},
		{"authorization code redeemed with another redirect_uri", func(t *testing.T) {
			b := s.loggedIn(t)
			v := pkceVerifier()
			code := r.app.code(t, b, r.app.authorizeQuery(v))
			for _, uri := range []string{s.rp + "/spa", s.rp + "/callback/", s.rp + "/callback?x=1", "https://evil.example/callback"} {
				wantGrant(t, r.app.exchange(t, code, uri, v), "redirect_uri differs from the authorization request")
			}
			wantError(t, r.app.exchange(t, code, "", v), http.StatusBadRequest, "invalid_request")
			tokensOf(t, r.app.exchange(t, code, r.app.redirect, v))
		}},
		{"authorization code redeemed without its PKCE verifier or with another", func(t *testing.T) {
			b := s.loggedIn(t)
			v := pkceVerifier()
			code := r.app.code(t, b, r.app.authorizeQuery(v))
			wantGrant(t, r.app.exchange(t, code, r.app.redirect, ""), "code_verifier is missing or malformed")
			wantGrant(t, r.app.exchange(t, code, r.app.redirect, pkceVerifier()), "code_verifier does not match the code_challenge")
			wantGrant(t, r.app.exchange(t, code, r.app.redirect, pkceChallenge(v)), "code_verifier does not match the code_challenge")
			tokensOf(t, r.app.exchange(t, code, r.app.redirect, v))
		}},
		{"authorization code issued without PKCE redeemed with a verifier (downgrade)", func(t *testing.T) {
			b := s.loggedIn(t)
			code := r.app.code(t, b, r.app.authorizeQuery(""))
			wantGrant(t, r.app.exchange(t, code, r.app.redirect, pkceVerifier()), "code_verifier sent for a code issued without code_challenge")
		}},
		{"authorization code redeemed after its session logged out", func(t *testing.T) {
			b := s.loggedIn(t)
			v := pkceVerifier()
			code := r.app.code(t, b, r.app.authorizeQuery(v))
			r.logout(t, b)
			wantGrant(t, r.app.exchange(t, code, r.app.redirect, v), "the session has ended")
		}},
		{"refresh token replayed after rotation beyond the reuse grace revokes its family", func(t *testing.T) {
			b := strict.loggedIn(t)
			tok := rg.app.login(t, b)
			rotated := tokensOf(t, rg.app.refresh(t, tok.Refresh))
			if rotated.Refresh == "" || rotated.Refresh == tok.Refresh {
				t.Fatalf("refresh did not rotate: %+v", rotated)
			}
			wantGrant(t, rg.app.refresh(t, tok.Refresh), "the refresh token was already used")
			// The whole family ends: the rotated refresh token and every
			// access token issued from the grant.
			rg.wantRefreshRefused(t, rg.app, rotated.Refresh, "the refresh token was revoked")
			rg.wantAccessRefused(t, rg.app, rotated.Access)
			rg.wantAccessRefused(t, rg.app, tok.Access)
			// Nothing else: the person's session and a new grant work.
			rg.wantAlive(t, b)
			rg.app.wantUserinfoOK(t, rg.app.login(t, b).Access)
		}},
		{"rotated refresh token introspected after the reuse grace is inactive", func(t *testing.T) {
			b := strict.loggedIn(t)
			tok := rg.app.login(t, b)
			if !rg.app.active(t, tok.Refresh) {
				t.Fatal("a fresh refresh token is not active")
			}
			tokensOf(t, rg.app.refresh(t, tok.Refresh))
			if rg.app.active(t, tok.Refresh) {
				t.Fatal("a used refresh token is still active")
			}
		}},
		{"refresh token replayed within the reuse grace is answered and revokes nothing", func(t *testing.T) {
			// The documented allowance for applications that refresh from
			// several requests at once (refresh_reuse_grace, 10 s).
			b := s.loggedIn(t)
			tok := r.app.login(t, b)
			one := tokensOf(t, r.app.refresh(t, tok.Refresh))
			two := tokensOf(t, r.app.refresh(t, tok.Refresh))
			if one.Refresh == two.Refresh {
				t.Fatal("the same refresh token was handed out twice")
			}
			r.app.wantUserinfoOK(t, one.Access)
			r.app.wantUserinfoOK(t, two.Access)
			tokensOf(t, r.app.refresh(t, one.Refresh))
		}},
		{"refresh token redeemed by another client", func(t *testing.T) {
			b := s.loggedIn(t)
			tok := r.app.login(t, b)
			wantGrant(t, r.spa.refresh(t, tok.Refresh), "the refresh token was issued to another client")
			// Nor may it ask about it: a public client cannot introspect.
			wantError(t, r.spa.post(t, "introspect", url.Values{"token": {tok.Refresh}}), http.StatusUnauthorized, "invalid_client")
			tokensOf(t, r.app.refresh(t, tok.Refresh))
		}},
		{"refresh token replayed after the session logged out", func(t *testing.T) {
			b := s.loggedIn(t)
			tok := r.app.login(t, b)
			r.logout(t, b)
			r.wantRefreshRefused(t, r.app, tok.Refresh, "the session has ended")
			r.wantAccessRefused(t, r.app, tok.Access)
		}},
		{"refresh token replayed after its revocation (RFC 7009)", func(t *testing.T) {
			b := s.loggedIn(t)
			tok := r.app.login(t, b)
			want(t, r.app.revoke(t, tok.Refresh), http.StatusOK)
			r.wantRefreshRefused(t, r.app, tok.Refresh, "the refresh token was revoked")
			// RFC 7009 §2.1: the grant's access tokens end with it.
			r.wantAccessRefused(t, r.app, tok.Access)
			r.wantAlive(t, b)
		}},
		{"access token replayed after its revocation (RFC 7009)", func(t *testing.T) {
			b := s.loggedIn(t)
			tok := r.app.login(t, b)
			want(t, r.app.revoke(t, tok.Access), http.StatusOK)
			r.wantAccessRefused(t, r.app, tok.Access)
			// It ends alone: the grant refreshes into a working token.
			r.app.wantUserinfoOK(t, tokensOf(t, r.app.refresh(t, tok.Refresh)).Access)
			// Revoking it again is answered like the first time (§2.2).
			want(t, r.app.revoke(t, tok.Access), http.StatusOK)
		}},
		{"access token revoked by another client", func(t *testing.T) {
			b := s.loggedIn(t)
			tok := r.app.login(t, b)
			wantError(t, r.spa.revoke(t, tok.Access), http.StatusBadRequest, "unauthorized_client")
			wantError(t, r.spa.revoke(t, tok.Refresh), http.StatusBadRequest, "unauthorized_client")
			r.app.wantUserinfoOK(t, tok.Access)
			tokensOf(t, r.app.refresh(t, tok.Refresh))
		}},
		{"demo approval replayed", func(t *testing.T) {
			b := e2e.NewBrowser()
			st := s.start(t, b, "/")
			s.approve(t, st)
			r.wantDecided(t, st, "approve", "approved")
			a, out := s.poll(t, b, st, 10)
			if out.State != "completed" || sessionSetCookie(a) == "" {
				t.Fatalf("after a replayed approval: %v", a)
			}
		}},
		{"demo approval after a decline", func(t *testing.T) {
			b := e2e.NewBrowser()
			st := s.start(t, b, "/")
			a := do(t, e2e.NewBrowser(), http.MethodPost, st.QRText+"/decline", nil, map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
			want(t, a, http.StatusSeeOther)
			r.wantDecided(t, st, "approve", "declined")
			a, out := s.poll(t, b, st, 10)
			if out.State != "declined" || sessionSetCookie(a) != "" {
				t.Fatalf("a declined login answered %v", a)
			}
		}},
		{"demo decline after an approval", func(t *testing.T) {
			b := e2e.NewBrowser()
			st := s.start(t, b, "/")
			s.approve(t, st)
			r.wantDecided(t, st, "decline", "approved")
			a, out := s.poll(t, b, st, 10)
			if out.State != "completed" || sessionSetCookie(a) == "" {
				t.Fatalf("after a late decline: %v", a)
			}
		}},
		{"demo approval replayed after the login completed", func(t *testing.T) {
			b := e2e.NewBrowser()
			st := s.start(t, b, "/")
			s.approve(t, st)
			if _, out := s.poll(t, b, st, 10); out.State != "completed" {
				t.Fatalf("login: %+v", out)
			}
			r.wantDecided(t, st, "approve", "approved")
			// And the login hands out nothing more.
			a, _ := s.poll(t, b, st, 0)
			wantError(t, a, http.StatusForbidden, "forbidden")
		}},
		{"completed login's status poll replayed", func(t *testing.T) {
			b := e2e.NewBrowser()
			st := s.start(t, b, "/")
			s.approve(t, st)
			a, out := s.poll(t, b, st, 10)
			if out.State != "completed" || sessionSetCookie(a) == "" {
				t.Fatalf("login: %v", a)
			}
			a, _ = s.poll(t, b, st, 0)
			wantError(t, a, http.StatusForbidden, "forbidden")
			if sc := a.header.Values("Set-Cookie"); len(sc) != 0 {
				t.Fatalf("the replayed poll set %q", sc)
			}
		}},
		{"pending cookie replayed after the login finished", func(t *testing.T) {
			b := e2e.NewBrowser()
			st := s.start(t, b, "/")
			pending := r.pendingCookie(t, b, st)
			s.approve(t, st)
			if a, out := s.poll(t, b, st, 10); out.State != "completed" || sessionSetCookie(a) == "" {
				t.Fatalf("login: %v", a)
			}
			// A copy of the pending cookie, kept from before the end: the
			// state is told again, the session cookie is not handed out.
			for range 2 {
				a := send(t, plain(), request(t, http.MethodGet, s.url(st.StatusURL), nil, map[string]string{"Cookie": pending}))
				want(t, a, http.StatusOK)
				var out e2e.Status
				if json.Unmarshal(a.body, &out) != nil || out.State != "completed" {
					t.Fatalf("replayed pending cookie: %v", a)
				}
				if v := sessionSetCookie(a); v != "" {
					t.Fatalf("a replayed pending cookie got a session cookie %q", v)
				}
			}
		}},
		{"pending cookie polled twice at once when the login completes", func(t *testing.T) {
			b := e2e.NewBrowser()
			st := s.start(t, b, "/")
			pending := r.pendingCookie(t, b, st)
			s.approve(t, st)
			answers := r.concurrently(t, 4, func() *http.Request {
				return request(t, http.MethodGet, s.url(st.StatusURL+"?wait=10"), nil, map[string]string{"Cookie": pending})
			})
			handed := 0
			for _, a := range answers {
				want(t, a, http.StatusOK)
				if sessionSetCookie(a) != "" {
					handed++
				}
			}
			if handed != 1 {
				t.Fatalf("the session cookie was handed out %d times", handed)
			}
		}},
		{"Mobile-ID answer naming another, already consumed session token", func(t *testing.T) {
			first := e2e.NewBrowser()
			st := r.startMobileID(t, first, fakemarksign.DefaultAccounts[0])
			consumed := s.gateway.LastToken()
			if err := s.gateway.Approve(consumed, fakemarksign.Outcome{}); err != nil {
				t.Fatal(err)
			}
			if a, out := s.poll(t, first, st, 15); out.State != "completed" || sessionSetCookie(a) == "" {
				t.Fatalf("first Mobile-ID login: %v", a)
			}
			// The gateway answers the second login with the first one's
			// token (and its own person's certificate).
			second := e2e.NewBrowser()
			st = r.startMobileID(t, second, fakemarksign.DefaultAccounts[0])
			if err := s.gateway.Approve(s.gateway.LastToken(), fakemarksign.Outcome{Token: consumed}); err != nil {
				t.Fatal(err)
			}
			a, out := s.poll(t, second, st, 15)
			if out.State != "failed" || !strings.Contains(out.Error, "did not match") || sessionSetCookie(a) != "" {
				t.Fatalf("an answer for another session token: %v", a)
			}
		}},
		{"Mobile-ID gateway repeating a consumed answer for a second login", func(t *testing.T) {
			acct := fakemarksign.DefaultAccounts[1]
			tok, okAnswer := r.gatewayAnswer(t, acct)
			// Every login the gateway starts now gets that session's token,
			// and every status call its (one-time) ok answer.
			initAnswer := string(jsonOf(map[string]string{"status": "ok", "token": tok, "control_code": "1234", "code": acct.Code}))
			s.gateway.Inject(fakemarksign.RouteLogin, fakemarksign.Fault{Body: initAnswer, Times: 1})
			s.gateway.Inject(fakemarksign.RouteStatus, fakemarksign.Fault{Body: okAnswer})
			defer s.gateway.ClearFaults()
			first := e2e.NewBrowser()
			st := r.startMobileID(t, first, acct)
			if a, out := s.poll(t, first, st, 15); out.State != "completed" || sessionSetCookie(a) == "" {
				t.Fatalf("first login: %v", a)
			}
			const consumed = "answer already consumed"
			before := strings.Count(s.inst.Logs(), consumed)
			s.gateway.Inject(fakemarksign.RouteLogin, fakemarksign.Fault{Body: initAnswer, Times: 1})
			second := e2e.NewBrowser()
			st = r.startMobileID(t, second, acct)
			// Wait until the second login's poller has been given the
			// answer again and found it consumed.
			deadline := time.Now().Add(maxWait)
			for strings.Count(s.inst.Logs(), consumed) == before {
				if time.Now().After(deadline) {
					t.Fatal("the second login's poller never saw the replayed answer")
				}
				a, out := s.poll(t, second, st, 1)
				if out.State != "pending" || sessionSetCookie(a) != "" {
					t.Fatalf("a replayed Mobile-ID answer: %v", a)
				}
			}
			a, out := s.poll(t, second, st, 0)
			if out.State != "pending" || sessionSetCookie(a) != "" {
				t.Fatalf("a replayed Mobile-ID answer: %v", a)
			}
		}},
		{"old id_token_hint replayed after its session ended, without a cookie", func(t *testing.T) {
			b := s.loggedIn(t)
			old := r.app.login(t, b).ID
			r.wantLoggedOutPage(t, send(t, plain(), request(t, http.MethodGet, r.hintURL(old), nil, map[string]string{"Accept": "text/html"})))
			s.login(t, b, "/")
			tok := r.app.login(t, b)
			for range 2 {
				r.wantLoggedOutPage(t, send(t, plain(), request(t, http.MethodGet, r.hintURL(old), nil, map[string]string{"Accept": "text/html"})))
			}
			// The new session and what it issued live on.
			r.wantAlive(t, b)
			r.app.wantUserinfoOK(t, tok.Access)
			tokensOf(t, r.app.refresh(t, tok.Refresh))
		}},
		{"old id_token_hint replayed beside a newer session's cookie", func(t *testing.T) {
			b := s.loggedIn(t)
			old := r.app.login(t, b).ID
			r.logout(t, b)
			s.login(t, b, "/")
			// The hint proves the old session, not this one: the person is
			// asked, and nothing ends.
			a := do(t, b, http.MethodGet, r.hintURL(old), nil, map[string]string{"Accept": "text/html"})
			want(t, a, http.StatusOK)
			if !strings.Contains(string(a.body), "Log out?") {
				t.Fatalf("end_session with another session's hint did not ask: %v", a)
			}
			r.wantAlive(t, b)
		}},
	}
	t.Run("cases", func(t *testing.T) { runClass(t, classReplay, attacks) })
}

// replayRig drives one suite for the replay cases.
type replayRig struct {
	s   *suite
	app *oidcApp // the confidential client
	spa *oidcApp // the public client
	n   atomic.Int64
}

// api sends a protected API request on a path no other request uses.
func (r *replayRig) api(t *testing.T, h map[string]string) (answer, string) {
	t.Helper()
	p := fmt.Sprintf("/replayed/%d", r.n.Add(1))
	h["Accept"] = "application/json"
	return send(t, plain(), request(t, http.MethodGet, r.s.url(p), nil, h)), p
}

// wantCookieRefused: the session cookie value is refused at the gate (a
// navigation is sent to log in, an API call gets 401) and at /me.
func (r *replayRig) wantCookieRefused(t *testing.T, v string) {
	t.Helper()
	p := fmt.Sprintf("/replayed/%d", r.n.Add(1))
	a := send(t, plain(), request(t, http.MethodGet, r.s.url(p), nil, map[string]string{"Cookie": "idv_session=" + v, "Accept": "text/html"}))
	want(t, a, http.StatusFound)
	if loc, w := a.header.Get("Location"), "/.idv/login?rd="+url.QueryEscape(p); loc != w {
		t.Fatalf("Location %q; want %q", loc, w)
	}
	a, p2 := r.api(t, map[string]string{"Cookie": "idv_session=" + v})
	wantError(t, a, http.StatusUnauthorized, "unauthenticated")
	if got := a.header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
		t.Fatalf("WWW-Authenticate %q", got)
	}
	a = send(t, plain(), request(t, http.MethodGet, r.s.url("/.idv/me"), nil, map[string]string{"Cookie": "idv_session=" + v}))
	wantError(t, a, http.StatusUnauthorized, "unauthenticated")
	if r.s.up.reached(p) || r.s.up.reached(p2) {
		t.Fatal("the upstream was reached")
	}
}

// wantBearerRefused: the session token is refused as a bearer token at the
// gate and at /me.
func (r *replayRig) wantBearerRefused(t *testing.T, raw string) {
	t.Helper()
	a, p := r.api(t, map[string]string{"Authorization": "Bearer " + raw})
	wantError(t, a, http.StatusUnauthorized, "unauthenticated")
	if got := a.header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
		t.Fatalf("WWW-Authenticate %q", got)
	}
	if r.s.up.reached(p) {
		t.Fatal("the upstream was reached")
	}
	a = send(t, plain(), request(t, http.MethodGet, r.s.url("/.idv/me"), nil, map[string]string{"Authorization": "Bearer " + raw}))
	wantError(t, a, http.StatusUnauthorized, "unauthenticated")
}

// wantAlive: b's session opens a protected page as its person.
func (r *replayRig) wantAlive(t *testing.T, b *e2e.Browser) {
	t.Helper()
	p := fmt.Sprintf("/replayed/%d", r.n.Add(1))
	a := do(t, b, http.MethodGet, r.s.url(p), nil, map[string]string{"Accept": "application/json"})
	if e := echoOf(t, a); e.Header.Get("X-User") == "" {
		t.Fatalf("the upstream got no identity: %+v", e.Header)
	}
}

// logout logs b out with the logout button.
func (r *replayRig) logout(t *testing.T, b *e2e.Browser) {
	t.Helper()
	h := r.s.sameOrigin()
	h["Content-Type"] = "application/x-www-form-urlencoded"
	a := do(t, b, http.MethodPost, r.s.url("/.idv/logout"), nil, h)
	want(t, a, http.StatusSeeOther)
}

// hintURL is end_session with an id_token_hint.
func (r *replayRig) hintURL(idToken string) string {
	return r.s.url("/.idv/oidc/logout?" + url.Values{"id_token_hint": {idToken}}.Encode())
}

// wantLoggedOutPage: end_session answered its "logged out" page.
func (r *replayRig) wantLoggedOutPage(t *testing.T, a answer) {
	t.Helper()
	want(t, a, http.StatusOK)
	if !strings.Contains(string(a.body), "You have been logged out") {
		t.Fatalf("end_session: %v", a)
	}
}

// wantAccessRefused: userinfo refuses the access token and introspection
// calls it inactive.
func (r *replayRig) wantAccessRefused(t *testing.T, app *oidcApp, access string) {
	t.Helper()
	app.wantUserinfoRefused(t, access)
	if app.active(t, access) {
		t.Fatal("introspection: the access token is active")
	}
}

// wantRefreshRefused: the token endpoint refuses the refresh token with
// invalid_grant and the description, and introspection calls it inactive.
func (r *replayRig) wantRefreshRefused(t *testing.T, app *oidcApp, rt, why string) {
	t.Helper()
	wantGrant(t, app.refresh(t, rt), why)
	if app.active(t, rt) {
		t.Fatal("introspection: the refresh token is active")
	}
}

// wantGrant fails t unless the token endpoint answered invalid_grant with
// the description (RFC 6749 §5.2), not to be stored.
func wantGrant(t *testing.T, a answer, description string) {
	t.Helper()
	wantError(t, a, http.StatusBadRequest, "invalid_grant")
	var e struct {
		Description string `json:"error_description"`
	}
	if json.Unmarshal(a.body, &e) != nil || e.Description != description {
		t.Fatalf("answer %v; want %q", a, description)
	}
	if a.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("token error without Cache-Control: no-store: %v", a.header)
	}
}

// wantDecided: a second decision in the demo wallet is refused with 409
// and the state the first one left.
func (r *replayRig) wantDecided(t *testing.T, st e2e.Started, action, state string) {
	t.Helper()
	a := do(t, e2e.NewBrowser(), http.MethodPost, st.QRText+"/"+action, nil, map[string]string{"Accept": "application/json"})
	wantError(t, a, http.StatusConflict, "already_decided")
	var out struct {
		State string `json:"state"`
	}
	if json.Unmarshal(a.body, &out) != nil || out.State != state {
		t.Fatalf("wallet: %v; want state %q", a, state)
	}
}

// pendingCookie is the pending cookie of st in b, as a Cookie header.
func (r *replayRig) pendingCookie(t *testing.T, b *e2e.Browser, st e2e.Started) string {
	t.Helper()
	u, _ := url.Parse(r.s.url(st.StatusURL))
	name := "idv_session_login_" + st.ID[:10]
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == name {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("no pending cookie %s", name)
	return ""
}

// sessionSetCookie is the session cookie an answer sets, "" for none.
func sessionSetCookie(a answer) string {
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		if c.Name == "idv_session" && c.Value != "" {
			return c.Value
		}
	}
	return ""
}

// concurrently sends n requests made by mk at once and returns the
// answers; the invariants of send are checked for each.
func (r *replayRig) concurrently(t *testing.T, n int, mk func() *http.Request) []answer {
	t.Helper()
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = mk()
	}
	out := make([]answer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := plain().Do(reqs[i])
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			out[i], errs[i] = answer{code: resp.StatusCode, header: resp.Header, body: body}, err
		}()
	}
	close(start)
	wg.Wait()
	for i := range out {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if out[i].code >= 500 {
			t.Fatalf("request %d: %v (a server error is never the answer to an attack)", i, out[i])
		}
	}
	return out
}

// startMobileID starts a Mobile-ID login for acct with b.
func (r *replayRig) startMobileID(t *testing.T, b *e2e.Browser, acct fakemarksign.Account) e2e.Started {
	t.Helper()
	a := do(t, b, http.MethodPost, r.s.url("/.idv/sessions"),
		jsonBody(map[string]string{"provider": "marksign_mobileid", "phone": acct.Phone, "personal_code": acct.Code, "rd": "/"}), r.s.sameOrigin())
	want(t, a, http.StatusCreated)
	var st e2e.Started
	if err := json.Unmarshal(a.body, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// gatewayAnswer has the fake gateway start and approve a session for acct
// on its own (not through the module) and returns its token and the "ok"
// status answer, which the gateway gives once.
func (r *replayRig) gatewayAnswer(t *testing.T, acct fakemarksign.Account) (tok, ok string) {
	t.Helper()
	call := func(path string, body map[string]string) []byte {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(jsonOf(body)))
		req.Header.Set("Content-Type", "application/json")
		r.s.gateway.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("fake gateway %s: %d %s", path, rec.Code, rec.Body)
		}
		return rec.Body.Bytes()
	}
	var started struct{ Token string }
	_ = json.Unmarshal(call("/mobile/login.json", map[string]string{"access_token": r.s.gateway.AccessToken(), "phone": acct.Phone, "code": acct.Code}), &started)
	if started.Token == "" {
		t.Fatal("the fake gateway started no session")
	}
	if err := r.s.gateway.Approve(started.Token, fakemarksign.Outcome{}); err != nil {
		t.Fatal(err)
	}
	answer := call("/mobile/status/"+started.Token+".json", map[string]string{"access_token": r.s.gateway.AccessToken(), "token": started.Token})
	if !bytes.Contains(answer, []byte(`"status":"ok"`)) {
		t.Fatalf("fake gateway status: %s", answer)
	}
	return started.Token, string(answer)
}

// highS re-encodes an ES256 token's signature (r, s) as (r, n-s), which
// verifies as well.
func highS(t *testing.T, raw string) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		t.Fatalf("signature of %q", raw)
	}
	n := elliptic.P256().Params().N
	s := new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:]))
	return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(append(sig[:32:32], s.FillBytes(make([]byte, 32))...))
}

// newGraceOffSuite starts a Caddy like the suite's, but with the demo
// provider only and refresh_reuse_grace off, so that a rotated refresh
// token is refused at its first replay.
func newGraceOffSuite(t *testing.T) *suite {
	t.Helper()
	s := &suite{storage: t.TempDir(), secret: appSecret, rp: "https://app.example"}
	s.up = newUpstream(t)
	site := `
	idv {
		provider demo {
			user "Ada Lovelace"
		}
		header X-User sub
		limit {
			per_address 100000 1m
			total       1000000 1m
		}
		oidc {
			issuer {url}
			refresh_reuse_grace off
			client app {
				secret       {env.APP_SECRET}
				redirect_uri ` + s.rp + `/callback
			}
			client spa {
				redirect_uri ` + s.rp + `/spa
			}
		}
	}
	reverse_proxy ` + strings.TrimPrefix(s.up.URL, "http://") + `
`
	s.inst = e2e.Start(t, site, e2e.Options{Storage: s.storage, Env: []string{"APP_SECRET=" + appSecret}})
	t.Cleanup(func() { s.checkLogs(t) })
	return s
}
