package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/store"
)

const (
	// defaultLease is how long a lock lives in Redis unless its holder
	// renews it, which it does every lease/3 while it holds it. A holder
	// that dies therefore blocks the others for at most this long.
	defaultLease = 15 * time.Second
	// minLockPoll and maxLockPoll bound the pause between attempts of a
	// waiter for a lock held on another instance; the pause doubles from
	// the first to the second. Waiters for a lock held by this Store are
	// woken at once when it is released.
	minLockPoll = 2 * time.Millisecond
	maxLockPoll = 100 * time.Millisecond
	// unlockTimeout bounds the release of a lock, which runs on a context
	// of its own: the holder's may be done by then.
	unlockTimeout = 5 * time.Second
)

// lockPrefix follows Options.Prefix in lock keys. Entry keys never start
// with "/" (store.CheckKey), so a lock never shares a Redis key with an
// entry.
const lockPrefix = "/lock/"

// unlockScript deletes the lock KEYS[1] if it still holds the token ARGV[1],
// so that a holder whose lease ran out cannot release the next holder's
// lock.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// renewScript extends the lease of lock KEYS[1] to ARGV[2] ms if it still
// holds the token ARGV[1], and returns 1 if it did.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// Lock takes the lock called name, shared by every instance on the same
// Redis, waiting until it is free or ctx is done. A lock is the Redis key
// Prefix+"/lock/"+name set with SET NX PX to a random token, with a lease
// that the holder renews while it holds the lock; the returned function
// releases it only if it still holds that token. Calling the function again
// does nothing.
//
// Exclusion rests on the lease: a holder cut off from Redis for longer than
// the lease (15 s) loses the lock while it still thinks it holds it; the loss
// is logged. Use it for work that must not run twice at once, such as
// creating a signing key, and make that work safe to repeat.
func (s *Store) Lock(ctx context.Context, name string) (unlock func(), err error) {
	if err := store.CheckKey(name); err != nil {
		return nil, fmt.Errorf("redisstore: lock: %w", err)
	}
	key := s.prefix + lockPrefix + name
	token := newToken()
	poll := minLockPoll
	for {
		// Taken before trying, so that a release between the attempt and
		// the wait is not missed.
		released := s.released(name)
		got, err := s.client.SetNX(ctx, key, token, s.lease).Result()
		if err != nil {
			return nil, s.fail(ctx, "lock", err)
		}
		s.ok()
		if got {
			break
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("redisstore: lock: %w", ctx.Err())
		case <-released:
			t.Stop()
		case <-t.C:
			poll = min(2*poll, maxLockPoll)
		}
	}

	// The renewal must not start once Close is waiting for the renewals.
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		_ = unlockScript.Run(context.WithoutCancel(ctx), s.client, []string{key}, token).Err()
		return nil, fmt.Errorf("redisstore: lock: %w: store closed", store.ErrUnavailable)
	}
	s.renewals.Add(1)
	s.closeMu.Unlock()
	stop := make(chan struct{})
	go s.renew(key, token, stop)
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
			defer cancel()
			if err := unlockScript.Run(ctx, s.client, []string{key}, token).Err(); err != nil {
				// The lease ends it anyway.
				s.logger.Warn("redisstore: releasing a lock failed; it expires with its lease",
					zap.String("lock", name), zap.Error(s.fail(ctx, "unlock", err)))
			}
			s.wakeWaiters(name)
		})
	}, nil
}

// renew extends the lease of the lock key while this holder has it, until
// stop is closed or the Store is.
func (s *Store) renew(key, token string, stop <-chan struct{}) {
	defer s.renewals.Done()
	t := time.NewTicker(s.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-s.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.lease/3)
		n, err := renewScript.Run(ctx, s.client, []string{key}, token, s.lease.Milliseconds()).Int()
		cancel()
		switch {
		case err != nil:
			s.logger.Warn("redisstore: renewing a lock failed; trying again", zap.String("lock", key),
				zap.Error(s.fail(context.Background(), "renew lock", err)))
		case n == 0:
			s.logger.Error("redisstore: a lock expired while held (Redis was out of reach for longer than its lease); another instance may hold it now",
				zap.String("lock", key))
			return
		default:
			s.ok()
		}
	}
}

// released returns the channel that is closed when this Store next releases
// the lock called name.
func (s *Store) released(name string) <-chan struct{} {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	ch, ok := s.wake[name]
	if !ok {
		ch = make(chan struct{})
		s.wake[name] = ch
	}
	return ch
}

// wakeWaiters wakes the waiters of this Store for the lock called name. The
// map holds a channel per name that someone waited for since the last
// release, so it stays as small as the set of lock names in use.
func (s *Store) wakeWaiters(name string) {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	if ch, ok := s.wake[name]; ok {
		close(ch)
		delete(s.wake, name)
	}
}

// newToken returns a random lock token.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails.
	return hex.EncodeToString(b[:])
}
