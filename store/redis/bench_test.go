package redisstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/caddy-idv/caddy-idv/store"
	redisstore "github.com/caddy-idv/caddy-idv/store/redis"
)

// BenchmarkSetIfAbsent measures consume-once operations (a SetIfAbsent of a
// key never used, as for a fresh result jti) per second on the three stores,
// in one run so that the figures compare: Redis (a real redis-server on
// loopback), the in-memory store, and Caddy's file system storage. Each runs
// one caller at a time (sequential) and GOMAXPROCS callers (parallel).
func BenchmarkSetIfAbsent(b *testing.B) {
	stores := []struct {
		name string
		new  func(b *testing.B) store.Store
	}{
		{"redis", func(b *testing.B) store.Store {
			srv := startRedis(b)
			return newStore(b, srv.url(), redisstore.Options{Prefix: newPrefix()})
		}},
		{"memory", func(*testing.B) store.Store { return store.NewMemory(nil) }},
		{"caddy-file", func(b *testing.B) store.Store {
			return store.NewCaddy(&certmagic.FileStorage{Path: b.TempDir()}, nil, nil)
		}},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			s := st.new(b)
			var n atomic.Int64
			consume := func() error {
				key := fmt.Sprintf("jti/bench/%d", n.Add(1))
				ok, err := s.SetIfAbsent(context.Background(), key, []byte("1"), time.Hour)
				if err != nil || !ok {
					return fmt.Errorf("SetIfAbsent(%s) = %v, %v", key, ok, err)
				}
				return nil
			}
			b.Run("sequential", func(b *testing.B) {
				for b.Loop() {
					if err := consume(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})
			b.Run("parallel", func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := consume(); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})
		})
	}
}
