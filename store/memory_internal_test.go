package store

import (
	"fmt"
	"testing"
	"time"
)

// TestMemorySweep checks that expired entries that are never read again do
// not accumulate.
func TestMemorySweep(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewMemory(func() time.Time { return now })
	ctx := t.Context()
	for round := range 20 {
		for i := range 1000 {
			if _, err := m.SetIfAbsent(ctx, fmt.Sprintf("jti/%d/%d", round, i), nil, time.Second); err != nil {
				t.Fatal(err)
			}
		}
		now = now.Add(2 * time.Second)
	}
	m.mu.RLock()
	n := len(m.m)
	m.mu.RUnlock()
	if n > 4*minSweep {
		t.Errorf("%d entries kept after 20,000 expired writes, want at most %d", n, 4*minSweep)
	}
}
