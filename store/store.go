// Package store is the small interface through which caddy-idv instances share
// state: signing keys, revoked sessions, consumed one-time values (result
// `jti`s, demo approvals, authorization codes), provider key pairs and the
// records of logins in progress.
//
// Two implementations satisfy it: [Caddy] on Caddy's configured storage (the
// default, so a single instance needs nothing else and a cluster can share a
// file system or any storage module), and a Redis one (`store redis <url>`).
// Both pass the same conformance suite in storetest.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by Get for a key that does not exist or has expired.
var ErrNotFound = errors.New("store: not found")

// ErrUnavailable wraps errors of a store that cannot be reached. Callers on the
// request path answer 503 for it and fail closed.
var ErrUnavailable = errors.New("store: unavailable")

// Store is shared, expiring key-value state. Keys are slash-separated paths of
// printable ASCII (for example "revoked/<sid>"); implementations may map them
// to file names, so callers never put raw user input into a key without
// encoding it first.
type Store interface {
	// Get returns the value of key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key. A ttl of 0 keeps it until deleted.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetIfAbsent stores value under key only if no live value is there, and
	// reports whether it did. It is atomic across every instance sharing the
	// store: of many concurrent callers with the same key exactly one gets true.
	// This is "consume once" for one-time values.
	SetIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the keys of the live entries whose key starts with prefix,
	// which must end in "/".
	List(ctx context.Context, prefix string) ([]string, error)
	// Lock takes an exclusive lock shared by all instances, for work that must
	// happen once (creating a signing key). The returned function releases it.
	Lock(ctx context.Context, name string) (unlock func(), err error)
}

// Notifier is implemented by stores that can push messages to every instance
// (Redis publish/subscribe). Without it, instances learn of changes by
// re-reading the store periodically.
type Notifier interface {
	// Publish sends msg to every subscriber of channel, on every instance.
	Publish(ctx context.Context, channel string, msg []byte) error
	// Subscribe calls fn for every message on channel until ctx is done.
	Subscribe(ctx context.Context, channel string, fn func(msg []byte)) error
}
