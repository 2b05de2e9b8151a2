package caddymodule

import (
	"net/netip"
	"sync"
	"time"
)

// maxTrackedAddresses bounds the per-address table; past it, the table is
// swept, and if still full new addresses share one overflow bucket, so a
// flood of spoofed addresses costs a fixed amount of memory.
const maxTrackedAddresses = 100000

// limiter is a fixed-window rate limiter per client address and in total.
//
// The total limit must never lock everyone out: when it is reached, an
// address may still start a login while it has used less than a fair share
// of the total (the total divided by the addresses active in the window),
// so the addresses using the most are shed first and a person who arrives
// during a flood still gets in. A hard ceiling of twice the total bounds
// what the flood and the newcomers together can start.
//
// Addresses are counted by network: IPv6 per /64 (one subscriber's
// allocation, in which an attacker can pick any address), IPv4 per
// address. Counts are per instance.
type limiter struct {
	per, total Rate
	now        func() time.Time

	mu      sync.Mutex
	windows map[string]*window
	all     window
}

type window struct {
	start  time.Time
	n      int
	banned time.Time // refused until then (Rate.Ban)
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
	addr = addressKey(addr)
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
	if now.Before(w.banned) {
		return false, w.banned.Sub(now), "per_address"
	}
	if now.Sub(w.start) >= perWin {
		*w = window{start: now}
	}
	if w.n >= l.per.N {
		if ban := time.Duration(l.per.Ban); ban > 0 {
			w.banned = now.Add(ban)
			return false, ban, "per_address"
		}
		return false, w.start.Add(perWin).Sub(now), "per_address"
	}
	if l.all.n >= l.total.N {
		fair := l.total.N / max(len(l.windows), 1)
		if w.n >= fair || l.all.n >= 2*l.total.N {
			return false, l.all.start.Add(totalWin).Sub(now), "total"
		}
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
		if now.Sub(w.start) >= perWin && !now.Before(w.banned) {
			delete(l.windows, k)
		}
	}
}

// addressKey is the bucket of a client address: its /64 for IPv6, the
// address itself for IPv4 (and anything that does not parse).
func addressKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil || ip.Is4() {
		return addr
	}
	if ip.Is4In6() {
		// ::ffff:192.0.2.1 is 192.0.2.1, however the listener spells it.
		return ip.Unmap().String()
	}
	p, err := ip.Prefix(64)
	if err != nil {
		return addr
	}
	return p.String()
}

// Limits on long-polls held at once. A poll beyond them is answered at
// once (with the current state) instead of being held, so a client can
// neither pin connections nor the server's memory by opening many polls.
// Per address generously (an office behind one NAT address has many
// people logging in), per login tightly (a page holds one, a few tabs a
// few).
const (
	maxHeldPerAddress = 256
	maxHeldPerLogin   = 8
)

// holds counts the long-polls held at once per address and per login.
type holds struct {
	perAddress int // maxHeldPerAddress unless configured
	mu         sync.Mutex
	byAddr     map[string]int
	byLogin    map[string]int
}

// take reserves a held poll for addr and login and returns its release,
// or false when either is at its limit.
func (h *holds) take(addr, login string) (func(), bool) {
	addr = addressKey(addr)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byAddr == nil {
		h.byAddr, h.byLogin = map[string]int{}, map[string]int{}
	}
	perAddress := h.perAddress
	if perAddress <= 0 {
		perAddress = maxHeldPerAddress
	}
	if h.byAddr[addr] >= perAddress || h.byLogin[login] >= maxHeldPerLogin {
		metrics.rateLimited.WithLabelValues("long_poll").Inc()
		return nil, false
	}
	h.byAddr[addr]++
	h.byLogin[login]++
	metrics.heldPolls.Inc()
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		metrics.heldPolls.Dec()
		if h.byAddr[addr]--; h.byAddr[addr] <= 0 {
			delete(h.byAddr, addr)
		}
		if h.byLogin[login]--; h.byLogin[login] <= 0 {
			delete(h.byLogin, login)
		}
	}, true
}
