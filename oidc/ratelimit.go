package oidc

import (
	"sync"
	"time"
)

// Limits on failed client authentication at the token, revocation and
// introspection endpoints. Secrets are long enough that guessing one online
// is hopeless anyway (MinSecretLength); the limits keep a guessing client
// from costing CPU and log volume, and make it visible.
const (
	// authFailureWindow is the fixed window the failures are counted in.
	authFailureWindow = time.Minute
	// authFailuresPerAddress is how many failures one address may have in
	// a window; past it, the address is answered 429 until the window ends.
	authFailuresPerAddress = 10
	// authFailuresPerClient is the same for one registered client_id, from
	// any address: higher, since every address of a deployment shares it
	// and a lower one would let anyone lock a client out more easily.
	authFailuresPerClient = 30
	// maxTrackedAuthKeys bounds each table; past it, expired windows are
	// swept, and if it is still full new keys share one overflow window, so
	// a flood of addresses costs a fixed amount of memory.
	maxTrackedAuthKeys = 10000
)

// authLimiter counts failed client authentications per address and per
// registered client_id in fixed windows.
type authLimiter struct {
	now func() time.Time

	mu       sync.Mutex
	byAddr   map[string]*window
	byClient map[string]*window
}

type window struct {
	start time.Time
	n     int
}

func newAuthLimiter(now func() time.Time) *authLimiter {
	return &authLimiter{now: now, byAddr: map[string]*window{}, byClient: map[string]*window{}}
}

// wait reports how long addr, or the registered client clientID ("" when the
// client is unknown), must wait before trying again; 0 when it may now.
func (l *authLimiter) wait(clientID, addr string) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var d time.Duration
	w := l.byAddr[addr]
	if w == nil && len(l.byAddr) >= maxTrackedAuthKeys {
		w = l.byAddr["overflow"]
	}
	if w != nil && now.Sub(w.start) < authFailureWindow && w.n >= authFailuresPerAddress {
		d = w.start.Add(authFailureWindow).Sub(now)
	}
	if clientID != "" {
		if w := l.byClient[clientID]; w != nil && now.Sub(w.start) < authFailureWindow && w.n >= authFailuresPerClient {
			d = max(d, w.start.Add(authFailureWindow).Sub(now))
		}
	}
	return d
}

// fail counts a failed authentication from addr, and for clientID when it
// is a registered client (unknown ids are not tracked: they would let
// anyone grow the table).
func (l *authLimiter) fail(clientID, addr string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	count(l.byAddr, addr, now)
	if clientID != "" {
		count(l.byClient, clientID, now)
	}
}

func count(m map[string]*window, key string, now time.Time) {
	w := m[key]
	if w == nil {
		if len(m) >= maxTrackedAuthKeys {
			for k, old := range m {
				if now.Sub(old.start) >= authFailureWindow {
					delete(m, k)
				}
			}
		}
		if len(m) >= maxTrackedAuthKeys {
			key = "overflow"
			w = m[key]
		}
		if w == nil {
			w = &window{start: now}
			m[key] = w
		}
	}
	if now.Sub(w.start) >= authFailureWindow {
		*w = window{start: now}
	}
	w.n++
}
