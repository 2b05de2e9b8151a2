package redisstore

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestLogRouter(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	r := newLogRouter(func() time.Time { return now })
	ctx := context.Background()
	r.Printf(ctx, "dropped while no store is open %d", 1)

	oldCore, oldLogs := observer.New(zapcore.DebugLevel)
	newCore, newLogs := observer.New(zapcore.DebugLevel)
	older, newer := zap.New(oldCore), zap.New(newCore)
	r.add(older)
	r.add(newer)
	r.Printf(ctx, "redis: connection pool: failed to dial after %d attempts: %v", 2, "refused")
	r.Printf(ctx, "redis: connection pool: failed to dial after %d attempts: %v", 2, "refused")
	r.Printf(ctx, "sentinel: new master=%q addr=%q", "idv", "127.0.0.1:1")
	if oldLogs.Len() != 0 {
		t.Errorf("the older store's logger got %d lines", oldLogs.Len())
	}
	got := newLogs.TakeAll()
	if len(got) != 2 {
		t.Fatalf("newest store's logger got %d lines, want 2 (the repeat held back): %v", len(got), got)
	}
	if got[0].Level != zapcore.WarnLevel || got[0].Message != "go-redis: redis: connection pool: failed to dial after 2 attempts: refused" {
		t.Errorf("dial failure logged as %v %q", got[0].Level, got[0].Message)
	}
	if got[1].Level != zapcore.InfoLevel {
		t.Errorf("new master logged at %v, want info", got[1].Level)
	}

	// After the window, the repeat is logged with the number held back.
	now = now.Add(repeatWindow)
	r.Printf(ctx, "redis: connection pool: failed to dial after %d attempts: %v", 2, "refused")
	got = newLogs.TakeAll()
	if len(got) != 1 || got[0].ContextMap()["repeats_not_logged"] != int64(1) {
		t.Fatalf("repeat after the window: %v", got)
	}

	// Closing the newest store routes to the one before it; closing both
	// drops the lines.
	r.remove(newer)
	r.Printf(ctx, "pubsub: %s", "x")
	if oldLogs.Len() != 1 || newLogs.Len() != 0 {
		t.Errorf("after the newest closed: older %d lines, newer %d", oldLogs.Len(), newLogs.Len())
	}
	r.remove(older)
	r.Printf(ctx, "pubsub: %s %s", "y", "z")
	if oldLogs.Len() != 1 {
		t.Errorf("a line reached a closed store's logger")
	}
}
