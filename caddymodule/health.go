package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/caddy-idv/caddy-idv/store"
)

// Version is the caddy-idv version, logged at provision. The root package
// sets it (it imports this one, so this one cannot import it).
var Version = "unknown"

// healthKey is a key every handler writes at setup (the seal key), so a
// Get of it is a real round trip to the store that finds something.
const healthKey = sealKey

// healthTTL is how long a store check is reused: a flood of health checks
// costs the store one Get per second per instance.
const healthTTL = time.Second

// healthTimeout bounds the store check.
const healthTimeout = 2 * time.Second

type healthCache struct {
	mu      sync.Mutex
	at      time.Time
	ok      bool
	running chan struct{} // closed when the check in progress ends
}

// storeOK reports whether the store answered a Get of healthKey, checking
// at most once per healthTTL; concurrent callers share one check.
func (h *Handler) storeOK(ctx context.Context) bool {
	c := h.health
	c.mu.Lock()
	now := h.now()
	if !c.at.IsZero() && now.Sub(c.at) < healthTTL {
		ok := c.ok
		c.mu.Unlock()
		return ok
	}
	if c.running != nil {
		wait := c.running
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return false
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.ok
	}
	done := make(chan struct{})
	c.running = done
	c.mu.Unlock()

	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), healthTimeout)
	_, err := h.store.Get(cctx, healthKey)
	cancel()
	ok := err == nil || errors.Is(err, store.ErrNotFound) // it answered
	c.mu.Lock()
	c.at, c.ok, c.running = h.now(), ok, nil
	c.mu.Unlock()
	close(done)
	return ok
}

// serveHealth is GET <prefix>/health: 200 {"status":"ok"} when the store
// answers and signing keys are loaded, else 503 naming what failed. It is
// never gated nor rate-limited, and says nothing of why (no addresses,
// no errors).
func (h *Handler) serveHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	var failed []string
	if !h.storeOK(r.Context()) {
		failed = append(failed, "store")
	}
	if h.tokens == nil || !h.tokens.Keys().Loaded() {
		failed = append(failed, "keys")
	}
	if len(failed) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "failed": failed})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
