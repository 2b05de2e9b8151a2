package oidc_test

import (
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-idv/caddy-idv/oidc"
)

// Events tell of codes and tokens issued, failed client authentication and
// error answers, with pairwise subjects for pairwise clients, and never
// carry a code, token, secret or the caddy-idv subject of a pairwise client.
func TestEventsOfCodesTokensAndErrors(t *testing.T) {
	var mu sync.Mutex
	var got []oidc.Event
	e := newEnvWith(t, func(h *optionsHook) {
		h.opts.Events = func(ev oidc.Event) { mu.Lock(); got = append(got, ev); mu.Unlock() }
	})
	sess := e.login(0, "mobileid")
	code := e.codeFor("pw1", webRedirect, "openid", nil)
	st, out, _ := e.tokenReq(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}, "code_verifier": {verifier}}, "pw1", pw1Secret)
	if st != 200 {
		t.Fatalf("token: %d %v", st, out)
	}
	if st, _, _ := e.tokenReq(url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {webRedirect}}, "web", "wrong"); st != 401 {
		t.Fatalf("wrong secret: %d", st)
	}
	mu.Lock()
	defer mu.Unlock()
	kinds := map[oidc.EventKind]oidc.Event{}
	for _, ev := range got {
		kinds[ev.Kind] = ev
		s := strings.Join([]string{ev.ClientID, ev.Subject, ev.SID, ev.Error, ev.GrantType}, " ")
		for _, secret := range []string{code, pw1Secret, "wrong", sess.Subject, out["access_token"].(string)} {
			if strings.Contains(s, secret) {
				t.Fatalf("event %+v carries %q", ev, secret)
			}
		}
	}
	if ev := kinds[oidc.EventCodeIssued]; ev.ClientID != "pw1" || ev.Subject == "" || ev.SID == "" {
		t.Fatalf("code_issued = %+v", ev)
	}
	if ev := kinds[oidc.EventTokenIssued]; ev.ClientID != "pw1" || ev.GrantType != "authorization_code" || ev.Subject != kinds[oidc.EventCodeIssued].Subject {
		t.Fatalf("token_issued = %+v", ev)
	}
	if ev := kinds[oidc.EventClientAuthFailed]; ev.ClientID != "web" || ev.Endpoint != "token" {
		t.Fatalf("client_auth_failed = %+v", ev)
	}
	if ev := kinds[oidc.EventError]; ev.Endpoint != "token" || ev.Error != "invalid_client" {
		t.Fatalf("error = %+v", ev)
	}
}
