package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Memory is a [Store] held in this process only: for tests, benchmarks and
// single-instance setups that need no persistence. Expired entries are
// dropped when read, by List, and in bulk once the map has doubled since the
// last sweep, so memory stays bounded by the live entries. Lock is an
// in-process lock per name.
//
// Memory is safe for concurrent use. The zero value is not; use [NewMemory].
type Memory struct {
	now   func() time.Time
	locks keyedMutex

	mu sync.RWMutex
	m  map[string]memoryEntry
	// sweepAt is the map size at which writes next drop expired entries.
	sweepAt int
}

type memoryEntry struct {
	value   []byte
	expires time.Time // zero: never
}

// minSweep is the smallest map size that triggers a sweep.
const minSweep = 1024

// NewMemory returns an empty in-memory store that reads the time from now
// (time.Now when nil).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, m: make(map[string]memoryEntry), sweepAt: minSweep}
}

func (e memoryEntry) live(now time.Time) bool {
	return e.expires.IsZero() || now.Before(e.expires)
}

func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl == 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

// Get returns a copy of the value of key, or ErrNotFound.
func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("store: get: %w", err)
	}
	now := m.now()
	m.mu.RLock()
	e, ok := m.m[key]
	m.mu.RUnlock()
	if !ok {
		return nil, ErrNotFound
	}
	if !e.live(now) {
		m.mu.Lock()
		// Another writer may have replaced it since the read lock was let go.
		if cur, ok := m.m[key]; ok && !cur.live(now) {
			delete(m.m, key)
		}
		m.mu.Unlock()
		return nil, ErrNotFound
	}
	// Values are never modified in place, so copying outside the lock is safe.
	return slices.Clone(e.value), nil
}

// Set stores a copy of value under key. A ttl of 0 keeps it until deleted.
func (m *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("store: set: %w", err)
	}
	if err := checkTTL(ttl); err != nil {
		return fmt.Errorf("store: set %q: %w", key, err)
	}
	now := m.now()
	e := memoryEntry{value: cloneNonNil(value), expires: expiry(now, ttl)}
	m.mu.Lock()
	m.m[key] = e
	m.maybeSweep(now)
	m.mu.Unlock()
	return nil
}

// SetIfAbsent stores a copy of value under key unless a live value is there,
// and reports whether it did.
func (m *Memory) SetIfAbsent(_ context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, fmt.Errorf("store: set if absent: %w", err)
	}
	if err := checkTTL(ttl); err != nil {
		return false, fmt.Errorf("store: set if absent %q: %w", key, err)
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.m[key]; ok && e.live(now) {
		return false, nil
	}
	m.m[key] = memoryEntry{value: cloneNonNil(value), expires: expiry(now, ttl)}
	m.maybeSweep(now)
	return true, nil
}

// Delete removes key; deleting a missing key is not an error.
func (m *Memory) Delete(_ context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("store: delete: %w", err)
	}
	m.mu.Lock()
	delete(m.m, key)
	m.mu.Unlock()
	return nil
}

// List returns, sorted, the keys of the live entries under prefix, which
// must end in "/". It drops the expired entries it meets.
func (m *Memory) List(_ context.Context, prefix string) ([]string, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	now := m.now()
	var keys []string
	m.mu.Lock()
	for k, e := range m.m {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if !e.live(now) {
			delete(m.m, k)
			continue
		}
		keys = append(keys, k)
	}
	m.mu.Unlock()
	slices.Sort(keys)
	return keys, nil
}

// Lock takes the in-process lock called name, waiting until it is free or
// ctx is done. The returned function releases it; calling it again does
// nothing.
func (m *Memory) Lock(ctx context.Context, name string) (unlock func(), err error) {
	if err := checkKey(name); err != nil {
		return nil, fmt.Errorf("store: lock: %w", err)
	}
	unlock, err = m.locks.lock(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("store: lock %q: %w", name, err)
	}
	return unlock, nil
}

// maybeSweep drops every expired entry once the map has grown to sweepAt,
// then sets the next threshold to twice the live size, so the cost is
// amortised over the writes that made the map grow. m.mu must be held.
func (m *Memory) maybeSweep(now time.Time) {
	if len(m.m) < m.sweepAt {
		return
	}
	for k, e := range m.m {
		if !e.live(now) {
			delete(m.m, k)
		}
	}
	m.sweepAt = max(2*len(m.m), minSweep)
}

// cloneNonNil copies b, returning an empty non-nil slice for an empty b so
// that a stored empty value reads back as a value, not as nothing.
func cloneNonNil(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}

var _ Store = (*Memory)(nil)
