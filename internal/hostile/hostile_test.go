package hostile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

func TestModeNames(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range append([]Mode{None}, Modes...) {
		name := m.String()
		if seen[name] || strings.HasPrefix(name, "Mode(") {
			t.Errorf("%d: name %q repeated or missing", m, name)
		}
		seen[name] = true
		if got, err := ParseMode(name); err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", name, got, err)
		}
	}
	if len(Modes) != len(names)-1 {
		t.Errorf("Modes lists %d modes, there are %d", len(Modes), len(names)-1)
	}
	if _, err := ParseMode("gentle"); err == nil {
		t.Error("ParseMode accepted an unknown name")
	}
	if Mode(99).String() != "Mode(99)" {
		t.Errorf("Mode(99) = %s", Mode(99))
	}
	for _, m := range Modes {
		want := strings.HasPrefix(names[m], "not-") || m == MalformedTypes || m == MalformedNull ||
			m == MalformedDeep || m == MalformedContentType || m == MalformedUTF8
		if m.Malformed() != want {
			t.Errorf("%s.Malformed() = %v", m, m.Malformed())
		}
	}
}

// realAnswer is the answer the modes spoil in these tests.
const realAnswer = `{"status":"ok","token":"3f2a","code":40020,"ready":true,"cert":{"name":"x"},"list":[1,2],"none":null}`

// server serves realAnswer in mode m and counts the handlers running.
type server struct {
	*httptest.Server
	running sync.WaitGroup
}

func newServer(t *testing.T, m Mode) *server {
	t.Helper()
	s := &server{}
	real := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, realAnswer)
	})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.running.Add(1)
		defer s.running.Done()
		Serve(w, r, m, real)
	}))
	t.Cleanup(s.Close)
	return s
}

// done fails unless every handler has returned shortly after the client
// went away.
func (s *server) done(t *testing.T) {
	t.Helper()
	ch := make(chan struct{})
	go func() { s.running.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("a hostile handler is still running after its client went away")
	}
}

func get(t *testing.T, s *server, timeout time.Duration) (*http.Response, error) {
	t.Helper()
	c := &http.Client{Timeout: timeout}
	t.Cleanup(c.CloseIdleConnections)
	req, _ := http.NewRequest(http.MethodPost, s.URL, strings.NewReader(`{"ask":1}`))
	return c.Do(req)
}

func TestHugeIsAnnouncedAndEndsInTheRealFields(t *testing.T) {
	s := newServer(t, Huge)
	resp, err := get(t, s, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.ContentLength != HugeSize || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, length %d, type %q", resp.StatusCode, resp.ContentLength, resp.Header.Get("Content-Type"))
	}
	head := make([]byte, len(padOpen))
	if _, err := io.ReadFull(resp.Body, head); err != nil || string(head) != padOpen {
		t.Fatalf("head %q, %v", head, err)
	}
	want := `",` + realAnswer[1:]
	tail := &tailWriter{n: len(want)}
	n, err := io.Copy(tail, resp.Body)
	if err != nil || n+int64(len(padOpen)) != HugeSize {
		t.Fatalf("read %d bytes, %v", n, err)
	}
	if string(tail.buf) != want {
		t.Fatalf("tail %q", tail.buf)
	}
	s.done(t)
}

// tailWriter keeps the last n bytes written.
type tailWriter struct {
	n   int
	buf []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if len(w.buf) > w.n {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-w.n:]...)
	}
	return len(p), nil
}

func TestEndlessStopsWhenTheClientLeaves(t *testing.T) {
	s := newServer(t, Endless)
	resp, err := get(t, s, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ContentLength != -1 {
		t.Fatalf("length %d", resp.ContentLength)
	}
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<20))
	if err != nil || n != 4<<20 {
		t.Fatalf("read %d, %v", n, err)
	}
	resp.Body.Close()
	s.done(t)
}

func TestTruncatedEndsEarly(t *testing.T) {
	s := newServer(t, Truncated)
	resp, err := get(t, s, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != int64(len(realAnswer)) {
		t.Fatalf("length %d", resp.ContentLength)
	}
	got, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) || string(got) != realAnswer[:len(realAnswer)/2] {
		t.Fatalf("read %q, %v", got, err)
	}
	s.done(t)
}

func TestMalformed(t *testing.T) {
	checks := map[Mode]func(t *testing.T, ct string, body []byte){
		MalformedNotJSON: func(t *testing.T, ct string, body []byte) {
			if ct != "application/json" || json.Valid(body) {
				t.Errorf("%s %q", ct, body)
			}
		},
		MalformedTypes: func(t *testing.T, ct string, body []byte) {
			var got, was map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			_ = json.Unmarshal([]byte(realAnswer), &was)
			for k, v := range was {
				if kind(got[k]) == kind(v) {
					t.Errorf("%s keeps its type: %v", k, got[k])
				}
			}
		},
		MalformedNull: func(t *testing.T, ct string, body []byte) {
			if string(body) != "null" {
				t.Errorf("%q", body)
			}
		},
		MalformedDeep: func(t *testing.T, ct string, body []byte) {
			var v any
			if len(body) != 2*DeepNesting || json.Unmarshal(body, &v) == nil {
				t.Errorf("%d bytes parse", len(body))
			}
		},
		MalformedContentType: func(t *testing.T, ct string, body []byte) {
			if !strings.HasPrefix(ct, "text/html") || json.Valid(body) {
				t.Errorf("%s %q", ct, body)
			}
		},
		MalformedUTF8: func(t *testing.T, ct string, body []byte) {
			if utf8.Valid(body) || bytes.Count(body, []byte(badBytes)) != 3 {
				t.Errorf("%q", body)
			}
		},
	}
	for _, m := range Modes {
		if !m.Malformed() {
			continue
		}
		t.Run(m.String(), func(t *testing.T) {
			s := newServer(t, m)
			resp, err := get(t, s, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusCreated {
				t.Fatalf("status %d, %v", resp.StatusCode, err)
			}
			checks[m](t, resp.Header.Get("Content-Type"), body)
			s.done(t)
		})
	}
}

func kind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	}
	return "null"
}

func TestSlowNeverCompletes(t *testing.T) {
	s := newServer(t, Slow)
	start := time.Now()
	resp, err := get(t, s, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, os.ErrDeadlineExceeded) && !strings.Contains(err.Error(), "Client.Timeout") {
		t.Fatalf("read %q, %v", got, err)
	}
	if len(got) == 0 || len(got) > int(time.Since(start)/SlowPause)+1 || !strings.HasPrefix(padOpen, string(got[:min(len(got), len(padOpen))])) {
		t.Fatalf("read %d bytes %q in %s", len(got), got, time.Since(start))
	}
	s.done(t)
}

func TestHangSendsNothing(t *testing.T) {
	s := newServer(t, Hang)
	resp, err := get(t, s, 300*time.Millisecond)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got an answer: %d", resp.StatusCode)
	}
	s.done(t)
}

func TestNoneIsTheRealAnswer(t *testing.T) {
	s := newServer(t, None)
	resp, err := get(t, s, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || string(body) != realAnswer {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

// A real answer without a body (204) is answered as 200, which can carry
// the hostile one.
func TestNoContentBecomesOK(t *testing.T) {
	srv := httptest.NewServer(Handler(MalformedNull, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if resp.StatusCode != http.StatusOK || string(body) != "null" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

func TestBody(t *testing.T) {
	for _, m := range Modes {
		ctx, cancel := context.WithCancel(context.Background())
		body, n, ct := Body(ctx, m)
		if ct == "" {
			t.Errorf("%s: no content type", m)
		}
		switch m {
		case Huge:
			got, err := io.Copy(io.Discard, body)
			if err != nil || got != HugeSize || n != HugeSize {
				t.Errorf("huge: %d of %d, %v", got, n, err)
			}
		case Endless:
			got, _ := io.Copy(io.Discard, io.LimitReader(body, 1<<20))
			if got != 1<<20 || n != -1 {
				t.Errorf("endless: %d, length %d", got, n)
			}
		case Truncated:
			got, _ := io.ReadAll(body)
			if int64(len(got)) >= n {
				t.Errorf("truncated: %d of %d", len(got), n)
			}
		case Slow, Hang:
			if m == Slow {
				if b, err := io.ReadAll(io.LimitReader(body, 1)); err != nil || string(b) != padOpen[:1] {
					t.Errorf("slow: first byte %q, %v", b, err)
				}
			}
			done := make(chan error, 1)
			go func() {
				_, err := io.Copy(io.Discard, body)
				done <- err
			}()
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) || n != -1 {
				t.Errorf("%s: %v, length %d", m, err, n)
			}
		default:
			got, _ := io.ReadAll(body)
			if int64(len(got)) != n {
				t.Errorf("%s: %d of %d", m, len(got), n)
			}
		}
		cancel()
	}
}

func TestParseSetting(t *testing.T) {
	known := []string{"login", "status"}
	if r, m, err := ParseSetting("status=hang", known); err != nil || r != "status" || m != Hang {
		t.Fatalf("%q %v %v", r, m, err)
	}
	for _, bad := range []string{"status", "poll=hang", "status=gentle", "=hang"} {
		if _, _, err := ParseSetting(bad, known); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if u := Usage(known); !strings.Contains(u, "login, status") || !strings.Contains(u, "invalid-utf8") {
		t.Errorf("usage %q", u)
	}
}
