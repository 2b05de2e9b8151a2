package token

import (
	"sync"
	"time"
)

// DefaultCacheSize bounds the verified-token cache. At about 2 KiB per entry
// it costs at most ~20 MiB; beyond it entries are evicted, so a flood of
// distinct valid tokens costs CPU, never unbounded memory.
const DefaultCacheSize = 10000

// cache maps the exact bytes of a verified token to its session. Only tokens
// that passed full verification enter it, and an entry never outlives the
// token's exp.
type cache struct {
	max int
	mu  sync.RWMutex
	m   map[string]*Session
}

func newCache(max int) *cache {
	if max <= 0 {
		max = DefaultCacheSize
	}
	return &cache{max: max, m: make(map[string]*Session)}
}

func (c *cache) get(raw string) *Session {
	c.mu.RLock()
	s := c.m[raw]
	c.mu.RUnlock()
	return s
}

func (c *cache) remove(raw string) {
	c.mu.Lock()
	delete(c.m, raw)
	c.mu.Unlock()
}

func (c *cache) put(raw string, s *Session, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		c.evict(now)
	}
	c.m[raw] = s
}

// evict drops expired entries and, if that is not enough, an eighth of the
// rest (Go's map iteration order is random, so this is random eviction).
func (c *cache) evict(now time.Time) {
	for k, s := range c.m {
		if !now.Before(s.Expiry) {
			delete(c.m, k)
		}
	}
	if len(c.m) < c.max {
		return
	}
	n := c.max / 8
	if n < 1 {
		n = 1
	}
	for k := range c.m {
		if n == 0 {
			break
		}
		delete(c.m, k)
		n--
	}
}

func (c *cache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
