package store

import (
	"context"
	"sync"
	"sync/atomic"
)

// keyedMutex is a set of in-process mutexes, one per name, that exist only
// while someone holds or waits for them. Waiting respects context
// cancellation, which sync.Mutex does not. The zero value is ready to use.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	// token holds one value while the mutex is held; waiters block sending
	// into it, and channel senders are served in FIFO order.
	token chan struct{}
	// refs counts holders and waiters, under keyedMutex.mu.
	refs int
}

// lock takes the mutex for name, waiting until it is free or ctx is done. The
// returned function releases it; calling it again does nothing.
func (k *keyedMutex) lock(ctx context.Context, name string) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k.mu.Lock()
	if k.m == nil {
		k.m = make(map[string]*keyedEntry)
	}
	e := k.m[name]
	if e == nil {
		e = &keyedEntry{token: make(chan struct{}, 1)}
		k.m[name] = e
	}
	e.refs++
	k.mu.Unlock()

	select {
	case e.token <- struct{}{}:
	default:
		select {
		case e.token <- struct{}{}:
		case <-ctx.Done():
			k.release(name, e)
			return nil, ctx.Err()
		}
	}
	var done atomic.Bool
	return func() {
		if done.Swap(true) {
			return
		}
		<-e.token
		k.release(name, e)
	}, nil
}

// release drops one reference to e and forgets it when nobody uses it, so
// the map holds only names that are in use.
func (k *keyedMutex) release(name string, e *keyedEntry) {
	k.mu.Lock()
	e.refs--
	if e.refs == 0 {
		delete(k.m, name)
	}
	k.mu.Unlock()
}
