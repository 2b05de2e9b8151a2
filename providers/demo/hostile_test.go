package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/hostile"
	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/templates"
)

// bodyGuards says what each mode's cases guard against; it names them.
var bodyGuards = map[hostile.Mode]string{
	hostile.Huge:                 "huge body is refused before it is read",
	hostile.Endless:              "endless body is refused before it is read",
	hostile.Truncated:            "body shorter than announced is refused before it is read",
	hostile.MalformedNotJSON:     "body that is not JSON is refused",
	hostile.MalformedTypes:       "JSON body of the wrong types is refused",
	hostile.MalformedNull:        "null body is refused",
	hostile.MalformedDeep:        "deeply nested body is refused",
	hostile.MalformedContentType: "HTML body is refused",
	hostile.MalformedUTF8:        "body of invalid UTF-8 is refused",
	hostile.Slow:                 "trickling body is refused without waiting for it",
	hostile.Hang:                 "body that never comes is refused without waiting for it",
}

// TestHostileWallet sends the wallet's Approve and Decline hostile request
// bodies (internal/hostile). Its buttons post an empty form: a request with
// a body must get a clear 4xx at once, without the body being read or
// waited for, and must decide nothing.
func TestHostileWallet(t *testing.T) {
	for _, button := range []string{"approve", "decline"} {
		for _, m := range hostile.Modes {
			t.Run(button+"/"+bodyGuards[m], func(t *testing.T) {
				f := newFixture(t)
				l := f.start(t)
				srv := httptest.NewServer(f.wall)
				t.Cleanup(srv.Close)

				start := time.Now()
				status, body := postHostile(t, srv, "/demo/wallet/"+id+"/"+button, m)
				if took := time.Since(start); took > 2*time.Second {
					t.Errorf("answered after %s", took)
				}
				if status != http.StatusRequestEntityTooLarge {
					t.Errorf("status %d, want 413; body %q", status, body)
				}
				var ans struct{ Error, Message string }
				if err := json.Unmarshal(body, &ans); err != nil || ans.Error != "body_not_allowed" || ans.Message == "" {
					t.Errorf("answer %q: %v", body, err)
				}
				// Nothing was decided: the login waits, and the button
				// still works.
				if res := f.poll(t, l); res.State != providers.Pending {
					t.Fatalf("after the hostile %s: %+v", button, res)
				}
				if code := f.press(t, button); code != http.StatusOK {
					t.Fatalf("%s after the hostile one: %d", button, code)
				}
			})
		}
	}
}

// A browser that posts a body gets the error page, not JSON.
func TestWalletBodyErrorPage(t *testing.T) {
	f := newFixture(t)
	f.start(t)
	r := httptest.NewRequest(http.MethodPost, "/demo/wallet/"+id+"/approve", strings.NewReader("a=b"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	f.wall.ServeHTTP(w, r)
	page, ok := f.pages.last.(templates.Error)
	if w.Code != http.StatusRequestEntityTooLarge || !ok || page.Status != http.StatusRequestEntityTooLarge || page.Message == "" {
		t.Fatalf("%d, page %#v", w.Code, f.pages.last)
	}
	if w.Header().Get("Connection") != "close" {
		t.Error("the connection stays open for the rest of the body")
	}
}

// postHostile posts a body in mode m over a connection of its own, so that
// the request is sent exactly as the mode says (an announced length that
// is never reached, a body that never ends), and returns the answer.
func postHostile(t *testing.T, srv *httptest.Server, path string, m hostile.Mode) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	body, n, ct := hostile.Body(ctx, m)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	sent := make(chan struct{})
	defer func() {
		cancel()
		_ = conn.Close()
		<-sent
	}()
	framing := "Transfer-Encoding: chunked"
	if n >= 0 {
		framing = fmt.Sprintf("Content-Length: %d", n)
	}
	go func() {
		defer close(sent)
		if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\nContent-Type: %s\r\n%s\r\n\r\n",
			path, srv.Listener.Addr(), ct, framing); err != nil {
			return
		}
		if n >= 0 {
			_, _ = io.Copy(conn, body)
			return
		}
		cw := httputil.NewChunkedWriter(conn)
		if _, err := io.Copy(cw, body); err == nil {
			_ = cw.Close()
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	got, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, got
}
