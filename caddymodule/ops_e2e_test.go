package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
)

// partSite protects /admin only; / and /metrics stay public.
const partSite = `
	idv /admin* {
		provider demo {
			user "Ada Lovelace"
		}
	}
	handle /metrics {
		metrics
	}
	handle {
		respond "page user={http.auth.user.id}"
	}
`

// TestProtectPartOfASite: with `idv /admin*` the login page, API and the
// demo wallet under /.idv still reach the handler, the login completes,
// /admin is protected and / is public. The same run checks that a login
// and a logout move the metrics, write the audit events, and that
// /.idv/health answers.
func TestProtectPartOfASite(t *testing.T) {
	inst := e2e.Start(t, partSite, e2e.Options{})
	b := e2e.NewBrowser()
	if code, _, body := b.Do(t, http.MethodGet, inst.URL+"/", nil, nil); code != http.StatusOK || !strings.HasPrefix(string(body), "page user=") {
		t.Fatalf("GET /: %d %s; want the public page", code, body)
	}
	if code, _, body := b.Do(t, http.MethodGet, inst.URL+"/admin", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("GET /admin without a session: %d %s; want 401", code, body)
	}
	if code, _, body := b.Do(t, http.MethodGet, inst.URL+"/.idv/login", nil, nil); code != http.StatusOK || strings.HasPrefix(string(body), "page") {
		t.Fatalf("GET /.idv/login: %d %.80s; want the login page", code, body)
	}
	if code, _, body := b.Do(t, http.MethodGet, inst.URL+"/.idv/health", nil, nil); code != http.StatusOK || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
		t.Fatalf("GET /.idv/health: %d %s", code, body)
	}
	_, st := login(t, inst, b, nil, "/admin")
	if st.State != "completed" {
		t.Fatalf("login: %+v", st)
	}
	if code, _, body := b.Do(t, http.MethodGet, inst.URL+"/admin", nil, nil); code != http.StatusOK || !strings.Contains(string(body), "user=demo") {
		t.Fatalf("GET /admin with a session: %d %s", code, body)
	}
	if code, _, body := b.Do(t, http.MethodPost, inst.URL+"/.idv/logout", nil, nil); code != http.StatusSeeOther {
		t.Fatalf("logout: %d %s", code, body)
	}
	code, _, body := b.Do(t, http.MethodGet, inst.URL+"/metrics", nil, nil)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	for _, want := range []string{
		`caddy_idv_logins_started_total{provider="demo"} 1`,
		`caddy_idv_logins_finished_total{provider="demo",state="completed"} 1`,
		`caddy_idv_login_duration_seconds_count{provider="demo",state="completed"} 1`,
		`caddy_idv_pending_logins{provider="demo"} 0`,
		`caddy_idv_provider_requests_total{operation="start",provider="demo",result="ok"} 1`,
		`caddy_idv_token_checks_total{result="ok"}`,
		`caddy_idv_logouts_total 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics has no %q", want)
		}
	}
	logs := inst.Logs()
	for _, ev := range []string{`"msg":"login_started"`, `"msg":"login_completed"`, `"msg":"logout"`} {
		if !strings.Contains(logs, `"logger":"http.handlers.idv.audit",`+ev) {
			t.Errorf("no audit event %s in the log", ev)
		}
	}
	if strings.Contains(logs, "Lovelace") {
		t.Error("the log names the person")
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", grepLines(string(body), "caddy_idv"))
		t.Logf("logs:\n%s", logs)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
