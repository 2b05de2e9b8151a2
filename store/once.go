package store

import (
	"context"
	"errors"
	"time"
)

// LoadOrCreate returns the value under key, creating it with create when
// there is none. Of several instances that create it at once, one wins the
// set-if-absent and all of them return the winner's value: keys and
// secrets that every instance must share are made this way.
func LoadOrCreate(ctx context.Context, s Store, key string, create func() ([]byte, error)) ([]byte, error) {
	raw, err := s.Get(ctx, key)
	if err == nil || !errors.Is(err, ErrNotFound) {
		return raw, err
	}
	fresh, err := create()
	if err != nil {
		return nil, err
	}
	if _, err := s.SetIfAbsent(ctx, key, fresh, 0); err != nil {
		return nil, err
	}
	return s.Get(ctx, key)
}

// Consume marks a one-time value (a result's jti, a session id) as used
// for ttl and reports whether this call was the first to use it, across
// every instance sharing the store.
func Consume(ctx context.Context, s Store, key string, ttl time.Duration) (bool, error) {
	return s.SetIfAbsent(ctx, key, []byte{1}, ttl)
}
