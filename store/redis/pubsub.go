package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-idv/caddy-idv/store"
)

// healthCheckInterval is how often a quiet subscription pings Redis, so that
// a connection that died without a word (a half-open TCP connection) is
// noticed and replaced within seconds.
const healthCheckInterval = 3 * time.Second

// Publish sends msg on channel (the Redis channel Prefix+channel) to the
// subscribers of every instance. Redis does not keep messages: a subscriber
// that is disconnected at that moment misses it, which is why revocations
// are also read back from the store periodically.
func (s *Store) Publish(ctx context.Context, channel string, msg []byte) error {
	if channel == "" {
		return errors.New("redisstore: publish: empty channel name")
	}
	if err := s.client.Publish(ctx, s.prefix+channel, msg).Err(); err != nil {
		return s.fail(ctx, "publish", err)
	}
	s.ok()
	return nil
}

// Subscribe calls fn with the payload of every message on channel, one at a
// time, until ctx is done (it returns ctx's error then) or the Store is
// closed. It returns an error that wraps store.ErrUnavailable, at once, if
// the subscription cannot be made; once it is made, it survives the loss of
// the connection: go-redis reconnects and subscribes again by itself, and
// the messages published meanwhile are lost. It leaves no goroutine behind
// when it returns.
func (s *Store) Subscribe(ctx context.Context, channel string, fn func(msg []byte)) error {
	if channel == "" {
		return errors.New("redisstore: subscribe: empty channel name")
	}
	ps := s.client.Subscribe(ctx, s.prefix+channel)
	// Wait for Redis to confirm, so that a Subscribe that returns no error
	// receives everything published from now on.
	first, err := ps.Receive(ctx)
	if err != nil {
		_ = ps.Close()
		return s.fail(ctx, "subscribe", err)
	}
	// Not s.ok(): a subscription has a connection of its own, which can
	// come back while the pool that every other call uses still answers
	// with its last dial error, and the outage would be logged twice.
	ch := ps.Channel(redis.WithChannelHealthCheckInterval(healthCheckInterval))
	defer func() {
		_ = ps.Close()
		// The channel is closed by go-redis's receiving goroutine as it
		// ends: waiting for that leaves no goroutine behind.
		for range ch {
		}
	}()
	if m, ok := first.(*redis.Message); ok {
		fn([]byte(m.Payload))
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return errors.New("redisstore: subscribe: store closed")
		case m, ok := <-ch:
			if !ok {
				return fmt.Errorf("redisstore: subscribe: %w: subscription closed", store.ErrUnavailable)
			}
			fn([]byte(m.Payload))
		}
	}
}
