package caddymodule

import (
	"sync"
	"time"
)

// maxTrackedAddresses bounds the per-address table; past it, the table is
// swept, and if still full new addresses share one overflow bucket, so a
// flood of spoofed addresses costs a fixed amount of memory.
const maxTrackedAddresses = 100000

// limiter is a fixed-window rate limiter per client address and in total.
type limiter struct {
	per, total Rate
	now        func() time.Time

	mu      sync.Mutex
	windows map[string]*window
	all     window
}

type window struct {
	start time.Time
	n     int
}

func newLimiter(c LimitConfig, now func() time.Time) *limiter {
	return &limiter{per: *c.PerAddress, total: *c.Total, now: now, windows: make(map[string]*window)}
}

// allow counts one event for addr and reports whether it is within both
// limits; if not, it returns how long until it would be.
func (l *limiter) allow(addr string) (bool, time.Duration) {
	ok, after, _ := l.allowLimit(addr)
	return ok, after
}

// allowLimit is allow that also names the limit that refused:
// "per_address" or "total".
func (l *limiter) allowLimit(addr string) (bool, time.Duration, string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	perWin, totalWin := time.Duration(l.per.Window), time.Duration(l.total.Window)
	if now.Sub(l.all.start) >= totalWin {
		l.all = window{start: now}
	}
	w := l.windows[addr]
	if w == nil {
		if len(l.windows) >= maxTrackedAddresses {
			l.sweepLocked(now)
		}
		if len(l.windows) >= maxTrackedAddresses {
			addr = "overflow"
			w = l.windows[addr]
		}
		if w == nil {
			w = &window{start: now}
			l.windows[addr] = w
		}
	}
	if now.Sub(w.start) >= perWin {
		*w = window{start: now}
	}
	if w.n >= l.per.N {
		return false, w.start.Add(perWin).Sub(now), "per_address"
	}
	if l.all.n >= l.total.N {
		return false, l.all.start.Add(totalWin).Sub(now), "total"
	}
	w.n++
	l.all.n++
	return true, 0, ""
}

func (l *limiter) sweep() {
	l.mu.Lock()
	l.sweepLocked(l.now())
	l.mu.Unlock()
}

func (l *limiter) sweepLocked(now time.Time) {
	perWin := time.Duration(l.per.Window)
	for k, w := range l.windows {
		if now.Sub(w.start) >= perWin {
			delete(l.windows, k)
		}
	}
}
