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

// outcomesSite protects /app with two demo providers: "demo", and
// "quick", whose logins expire after 2 s.
const outcomesSite = `
	idv /app* {
		provider demo {
			user "Ada Lovelace"
		}
		provider demo quick {
			lifetime 2s
		}
	}
	handle /metrics {
		metrics
	}
	handle {
		respond "page user={http.auth.user.id}"
	}
`

// TestEachOutcomeIsAuditedAndCounted: against the real binary, a login, a
// decline, an expiry and a logout each write their audit event (with its
// fields) and move the metrics.
func TestEachOutcomeIsAuditedAndCounted(t *testing.T) {
	inst := e2e.Start(t, outcomesSite, e2e.Options{})
	b := e2e.NewBrowser()

	done, st := login(t, inst, b, nil, "/app")
	if st.State != "completed" {
		t.Fatalf("login: %+v", st)
	}
	declined := b.StartLogin(t, inst.URL, map[string]string{"provider": "demo"})
	if code, _, body := e2e.NewBrowser().Do(t, http.MethodPost, declined.QRText+"/decline", nil, nil); code != http.StatusSeeOther {
		t.Fatalf("decline: %d %s", code, body)
	}
	if st := b.Poll(t, inst.URL, declined, 10); st.State != "declined" {
		t.Fatalf("decline: %+v", st)
	}
	expired := b.StartLogin(t, inst.URL, map[string]string{"provider": "quick"})
	if st := b.Poll(t, inst.URL, expired, 10); st.State != "expired" { // answers at expiry (2 s)
		t.Fatalf("expiry: %+v", st)
	}
	if code, _, body := b.Do(t, http.MethodPost, inst.URL+"/.idv/logout", nil, nil); code != http.StatusSeeOther {
		t.Fatalf("logout: %d %s", code, body)
	}

	code, _, metrics := b.Do(t, http.MethodGet, inst.URL+"/metrics", nil, nil)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	for _, want := range []string{
		`caddy_idv_logins_started_total{provider="demo"} 2`,
		`caddy_idv_logins_started_total{provider="quick"} 1`,
		`caddy_idv_logins_finished_total{provider="demo",state="completed"} 1`,
		`caddy_idv_logins_finished_total{provider="demo",state="declined"} 1`,
		`caddy_idv_logins_finished_total{provider="quick",state="expired"} 1`,
		`caddy_idv_pending_logins{provider="demo"} 0`,
		`caddy_idv_pending_logins{provider="quick"} 0`,
		`caddy_idv_logouts_total 1`,
	} {
		if !strings.Contains(string(metrics), want+"\n") {
			t.Errorf("/metrics has no %q", want)
		}
	}

	// Each event once, for its login, with the fields that make it useful.
	want := []struct {
		event, provider, login string
		fields                 []string
	}{
		{"login_started", "demo", done.ID, nil},
		{"login_completed", "demo", done.ID, []string{"sub", "sid", "acr", "amr"}},
		{"login_started", "demo", declined.ID, nil},
		{"login_declined", "demo", declined.ID, nil},
		{"login_started", "quick", expired.ID, nil},
		{"login_expired", "quick", expired.ID, nil},
		{"logout", "demo", "", []string{"sid", "sub"}},
	}
	events := inst.AuditEvents()
	var sid any
	for _, w := range want {
		var found []map[string]any
		for _, ev := range events {
			if ev["msg"] == w.event && (w.login == "" || ev["login"] == w.login) {
				found = append(found, ev)
			}
		}
		if len(found) != 1 {
			t.Errorf("%d %s events for login %q, want 1", len(found), w.event, w.login)
			continue
		}
		ev := found[0]
		if ev["provider"] != w.provider || ev["level"] != "info" || ev["client_ip"] != "127.0.0.1" {
			t.Errorf("%s: provider %v, level %v, client_ip %v; want %s, info, 127.0.0.1", w.event, ev["provider"], ev["level"], ev["client_ip"], w.provider)
		}
		for _, f := range w.fields {
			if v, ok := ev[f]; !ok || v == "" {
				t.Errorf("%s has no %s", w.event, f)
			}
		}
		switch w.event {
		case "login_completed":
			sid = ev["sid"]
		case "logout":
			if ev["sid"] != sid {
				t.Errorf("logout sid %v, login_completed sid %v", ev["sid"], sid)
			}
		}
	}
	if strings.Contains(inst.Logs(), "Lovelace") {
		t.Error("the log names the person")
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", grepLines(string(metrics), "caddy_idv"))
		t.Logf("audit log:\n%s", grepLines(inst.Logs(), e2e.AuditLogger))
	}
}
