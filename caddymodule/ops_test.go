package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-idv/caddy-idv/store"
)

// Two idv handlers of one configuration, and a reload (a new registry),
// register the collectors without an error or a panic.
func TestMetricsRegisterOncePerRegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	for i := 0; i < 2; i++ {
		if err := registerMetrics(reg); err != nil {
			t.Fatalf("handler %d: %v", i, err)
		}
	}
	if err := registerMetrics(prometheus.NewPedanticRegistry()); err != nil {
		t.Fatalf("reload: %v", err)
	}
}

// failingStore fails Get while down, and counts Gets.
type failingStore struct {
	store.Store
	down atomic.Bool
	gets atomic.Int64
}

func (s *failingStore) Get(ctx context.Context, key string) ([]byte, error) {
	s.gets.Add(1)
	if s.down.Load() {
		return nil, errors.New("dial tcp 127.0.0.1:1: connection refused")
	}
	return s.Store.Get(ctx, key)
}

func TestHealth(t *testing.T) {
	clk := &testClock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	fs := &failingStore{}
	h := newTestHandler(t, clk, func(h *Handler) { fs.Store = h.store; h.store = fs })
	get := func() (int, string) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/.idv/health", nil)
		if err := h.ServeHTTP(w, r, okHandler); err != nil {
			t.Fatal(err)
		}
		return w.Code, strings.TrimSpace(w.Body.String())
	}
	if code, body := get(); code != 200 || body != `{"status":"ok"}` {
		t.Fatalf("health: %d %s", code, body)
	}
	before := fs.gets.Load()
	for i := 0; i < 100; i++ {
		get()
	}
	if n := fs.gets.Load() - before; n != 0 {
		t.Fatalf("100 health checks within a second made %d store reads; want the cached answer", n)
	}
	fs.down.Store(true)
	clk.add(2 * time.Second)
	code, body := get()
	if code != 503 || body != `{"failed":["store"],"status":"unavailable"}` {
		t.Fatalf("health with the store down: %d %s", code, body)
	}
	if strings.Contains(body, "127.0.0.1") {
		t.Fatal("health names the store's address")
	}
}
