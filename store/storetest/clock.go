package storetest

import (
	"sync"
	"time"
)

// Clock is a manual clock for tests: it stands still until Advance moves it.
// It is safe for concurrent use.
type Clock struct {
	mu    sync.Mutex
	now   time.Time
	hooks []func(time.Duration)
}

// NewClock returns a clock that reads start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now returns the clock's time. Pass the method value (clock.Now) to the
// store as its time source.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and then calls every function given to
// OnAdvance with d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	hooks := append([]func(time.Duration){}, c.hooks...)
	c.mu.Unlock()
	for _, fn := range hooks {
		fn(d)
	}
}

// OnAdvance registers fn to be called with d after each Advance(d). A store
// whose expiry is kept by a server (for example an in-process fake Redis)
// uses it to move the server's clock along.
func (c *Clock) OnAdvance(fn func(d time.Duration)) {
	c.mu.Lock()
	c.hooks = append(c.hooks, fn)
	c.mu.Unlock()
}
