package redisstore_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
)

// redisServer is the shared test redis-server (internal/e2e), with the
// short names these tests use.
type redisServer struct {
	*e2e.Redis
	tb testing.TB
}

func startRedis(tb testing.TB) *redisServer { return &redisServer{Redis: e2e.StartRedis(tb), tb: tb} }

func (s *redisServer) url() string { return s.URL() }
func (s *redisServer) start()      { s.Start() }
func (s *redisServer) stop()       { s.Stop() }

// client returns a plain go-redis client of the server, for what the tests
// check behind the store's back.
func (s *redisServer) client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	s.tb.Cleanup(func() { c.Close() })
	return c
}
