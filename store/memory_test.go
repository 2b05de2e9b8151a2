package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/store"
	"github.com/caddy-idv/caddy-idv/store/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock *storetest.Clock) store.Store {
		return store.NewMemory(clock.Now)
	})
}

// newClock returns a test clock at a fixed time.
func newClock() *storetest.Clock {
	return storetest.NewClock(time.Date(2030, time.January, 2, 3, 4, 5, 0, time.UTC))
}

func TestMemoryNegativeTTL(t *testing.T) {
	m := store.NewMemory(nil)
	if err := m.Set(t.Context(), "k", []byte("v"), -time.Second); err == nil {
		t.Errorf("Set with negative ttl succeeded")
	}
	if _, err := m.SetIfAbsent(t.Context(), "k", []byte("v"), -time.Second); err == nil {
		t.Errorf("SetIfAbsent with negative ttl succeeded")
	}
	if _, err := m.Get(t.Context(), "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after refused writes = %v, want ErrNotFound", err)
	}
}

func BenchmarkMemorySetIfAbsent(b *testing.B) {
	m := store.NewMemory(nil)
	ctx := b.Context()
	value := []byte("1")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := m.SetIfAbsent(ctx, fmt.Sprintf("jti/bench/%d", i), value, time.Minute); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkMemoryGet(b *testing.B) {
	m := store.NewMemory(nil)
	ctx := b.Context()
	if err := m.Set(ctx, "keys/signing", []byte("0123456789abcdef"), 0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Get(ctx, "keys/signing"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
