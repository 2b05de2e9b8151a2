package redisstore_test

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-idv/caddy-idv/store"
	redisstore "github.com/caddy-idv/caddy-idv/store/redis"
)

// TestReplicaAcksWithoutReplica asks for a replica's confirmation of each
// write from a server that has none: writes fail (closed) at first, as they
// must while a failover may be moving the master away, and are accepted
// unconfirmed once the master has had no replica for a few seconds; a value
// that was there already is refused without error. Each phase is logged
// once, and none as an outage.
func TestReplicaAcksWithoutReplica(t *testing.T) {
	srv := startRedis(t)
	core, logs := observer.New(zapcore.InfoLevel)
	prefix := newPrefix()
	s := newStore(t, srv.url()+"?replica_acks=1&replica_ack_timeout=50ms", redisstore.Options{Prefix: prefix, Logger: zap.New(core)})
	ctx := t.Context()

	start := time.Now()
	ok, err := s.SetIfAbsent(ctx, "jti/a", []byte("x"), time.Hour)
	if !errors.Is(err, store.ErrUnavailable) || ok {
		t.Fatalf("unconfirmed SetIfAbsent = %v, %v; want ErrUnavailable", ok, err)
	}
	if err := s.Set(ctx, "revoked/a", []byte("x"), time.Hour); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("unconfirmed Set = %v; want ErrUnavailable", err)
	}
	// The unconfirmed jti/a was taken back: it is not consumed.
	if _, err := s.Get(ctx, "jti/a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an unconfirmed SetIfAbsent left its value: %v", err)
	}
	// A value that is there is refused at once, without error: nothing
	// was written that a failover could lose.
	if err := srv.client().Set(ctx, prefix+"jti/b", "0\nx", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.SetIfAbsent(ctx, "jti/b", []byte("x"), time.Hour); ok || err != nil {
		t.Fatalf("SetIfAbsent of a value that is there = %v, %v; want false, nil", ok, err)
	}
	took := waitFor(t, 10*time.Second, "writes accepted unconfirmed", func() bool {
		return s.Set(ctx, "revoked/b", []byte("x"), time.Hour) == nil
	})
	t.Logf("writes accepted without a replica %v after the first unconfirmed one", time.Since(start).Round(time.Millisecond))
	if time.Since(start) < 2*time.Second {
		t.Errorf("unconfirmed writes accepted after %v, before the grace", took)
	}
	quick := time.Now()
	for i := range 10 {
		if _, err := s.SetIfAbsent(ctx, "jti/more/"+string(rune('a'+i)), []byte("x"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if per := time.Since(quick) / 10; per > 40*time.Millisecond {
		t.Errorf("a write without replica takes %v once accepted unconfirmed", per)
	}
	for snippet, want := range map[string]int{
		"not confirmed by the Redis replicas": 1,
		"accepted unconfirmed":                1,
		"Redis is unavailable":                0,
	} {
		if n := logs.FilterMessageSnippet(snippet).Len(); n != want {
			t.Errorf("%q logged %d times, want %d", snippet, n, want)
		}
	}
}
