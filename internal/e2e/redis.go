package e2e

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
)

// Redis is a real redis-server started for a test on a free port of
// 127.0.0.1, without persistence, in a directory of its own. It is killed
// when the test ends.
type Redis struct {
	tb   testing.TB
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	proc *redisProc
}

// StartRedis starts a redis-server for tb. Without the binary it skips tb,
// or fails it when the CI environment variable is set, since CI installs
// the redis-server package (scripts/test.sh) and must not skip silently.
func StartRedis(tb testing.TB) *Redis {
	tb.Helper()
	bin := needBinary(tb, "redis-server", "redis-server")
	s := &Redis{tb: tb, bin: bin, dir: tb.TempDir(), port: FreePort(tb)}
	tb.Cleanup(s.Stop)
	s.Start()
	return s
}

// URL is the store URL of the server (database 0).
func (s *Redis) URL() string {
	return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port)
}

// Start starts the server (again) on its port, empty, and returns once it
// has written that it accepts connections.
func (s *Redis) Start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proc = startRedisProc(s.tb, s.bin, []string{"--save", "", "--appendonly", "no",
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir},
		"Ready to accept connections")
}

// Stop kills the server, as a crash would, and waits for it to exit.
func (s *Redis) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	s.proc.kill()
	s.proc = nil
}

// Addr is host:port of the server.
func (s *Redis) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }
