package login

import (
	"sync"
	"time"
)

// bucket caps the calls per second to one provider, shared by all of its
// logins: a token bucket of one second's worth. A login that finds it empty
// is told when the next token comes and tries again then, so logins take
// turns.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second; 0 is no cap
	tokens float64
	last   time.Time
}

func newBucket(perSecond float64) *bucket {
	return &bucket{rate: perSecond, tokens: max(perSecond, 1)}
}

// take takes a token, or says how long until one is there.
func (b *bucket) take(now time.Time) (bool, time.Duration) {
	if b == nil || b.rate <= 0 {
		return true, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(max(b.rate, 1), b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}
