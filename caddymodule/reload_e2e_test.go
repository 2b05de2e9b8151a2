package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
)

// TestReloadInTheMiddleOfLogins reloads Caddy's configuration while 50
// logins are in progress, some of them held by long-polls: every one of
// them completes after the reload (the logins live in the browsers'
// pending cookies and the shared store, not in the handler that started
// them).
func TestReloadInTheMiddleOfLogins(t *testing.T) {
	admin := e2e.FreePort(t)
	inst := e2e.Start(t, site, e2e.Options{Admin: admin})
	type login struct {
		b *e2e.Browser
		s e2e.Started
	}
	logins := make([]login, 50)
	for i := range logins {
		b := e2e.NewBrowser()
		logins[i] = login{b, b.StartLogin(t, inst.URL, map[string]string{"provider": "demo", "rd": fmt.Sprintf("/page/%d", i)})}
	}
	// Half of them are waiting in long-polls when the reload comes.
	var wg sync.WaitGroup
	held := make([]e2e.Status, len(logins))
	for i := 0; i < 25; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			held[i] = pollNoFatal(logins[i].b, inst.URL, logins[i].s)
		}()
	}
	for i := 0; i < 10; i++ {
		approve(t, e2e.NewBrowser(), logins[i].s, http.StatusSeeOther)
	}
	// The same configuration, with a change so that Caddy really reloads.
	cfg := strings.Replace(inst.Config, "respond \"user=", "respond \"reloaded user=", 1)
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/load", admin), strings.NewReader(cfg))
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reload: %d", resp.StatusCode)
	}
	// The old server's connections are closed as the new one takes over:
	// wait until the new configuration answers.
	for i := 0; ; i++ {
		resp, err := http.Get(inst.URL + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 100 {
			t.Fatalf("the reloaded configuration does not answer: %v", err)
		}
	}
	for i := 10; i < 50; i++ {
		approve(t, e2e.NewBrowser(), logins[i].s, http.StatusSeeOther)
	}
	wg.Wait()
	for i, l := range logins {
		st := held[i]
		if st.State != "completed" {
			st = l.b.Poll(t, inst.URL, l.s, 10)
		}
		if st.State != "completed" || st.Redirect != fmt.Sprintf("/page/%d", i) {
			t.Fatalf("login %d after the reload: %+v", i, st)
		}
		code, _, body := l.b.Do(t, http.MethodGet, inst.URL+st.Redirect, nil, nil)
		if code != http.StatusOK || !strings.HasPrefix(string(body), "reloaded user=demo-") {
			t.Fatalf("login %d: protected page %d %s", i, code, body)
		}
	}
}
