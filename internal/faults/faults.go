// Package faults is the fault injection the fakes of the identity
// providers share: for a named route, an answer in place of the real one (a
// status and a body), a delay, or a hostile mode (internal/hostile), for
// the next few requests or until cleared; and a count of the requests each
// route received.
package faults

import (
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/hostile"
)

// Fault makes requests to one route misbehave.
type Fault struct {
	Status int           // answer this status with Body instead of the real answer
	Body   string        // body for Status; with Status 0, replaces a 200 answer's body
	Delay  time.Duration // wait this long first (or until the client gives up)
	// Hostile spoils the answer (the real one, or Status and Body) in a
	// hostile mode: huge, endless, truncated, malformed, slow or hanging.
	Hostile hostile.Mode
	Times   int // how many requests it applies to; 0 = until cleared
}

// Table holds one fake's faults and request counts. The zero value is
// ready to use.
type Table struct {
	mu     sync.Mutex
	faults map[string]*Fault
	counts map[string]int
}

// Inject makes route misbehave as f says.
func (t *Table) Inject(route string, f Fault) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.faults == nil {
		t.faults = map[string]*Fault{}
	}
	t.faults[route] = &f
}

// Clear removes every injected fault.
func (t *Table) Clear() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.faults = nil
}

// Count reports how many requests route has received.
func (t *Table) Count(route string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[route]
}

// Route counts the requests of route name and applies its fault, if any,
// before (or instead of) h.
func (t *Table) Route(name string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f := t.take(name)
		if f.Delay > 0 {
			select {
			case <-time.After(f.Delay):
			case <-r.Context().Done():
				return
			}
		}
		next := h
		if f.Status != 0 || f.Body != "" {
			next = func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if f.Status != 0 {
					w.WriteHeader(f.Status)
				}
				_, _ = io.WriteString(w, f.Body)
			}
		}
		hostile.Serve(w, r, f.Hostile, next)
	}
}

// take counts a request of route name and returns the fault that applies
// to it (the zero Fault for none), using up one of its Times.
func (t *Table) take(name string) Fault {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts == nil {
		t.counts = map[string]int{}
	}
	t.counts[name]++
	p := t.faults[name]
	if p == nil {
		return Fault{}
	}
	f := *p
	if p.Times > 0 {
		if p.Times--; p.Times == 0 {
			delete(t.faults, name)
		}
	}
	return f
}
