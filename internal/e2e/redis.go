package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Redis is a real redis-server started for a test on a free port of
// 127.0.0.1, without persistence, in a directory of its own. It is killed
// when the test ends.
type Redis struct {
	tb   testing.TB
	bin  string
	dir  string
	port int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartRedis starts a redis-server for tb. Without the binary it skips tb,
// or fails it when the CI environment variable is set, since CI installs
// the redis-server package (scripts/test.sh) and must not skip silently.
func StartRedis(tb testing.TB) *Redis {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("redis-server is not installed (apt-get install redis-server): %v", err)
		}
		tb.Skip("redis-server is not installed; the Redis tests need it (they fail instead of skipping when CI is set)")
	}
	s := &Redis{tb: tb, bin: bin, dir: tb.TempDir(), port: FreePort(tb)}
	tb.Cleanup(s.Stop)
	s.Start()
	return s
}

// URL is the store URL of the server (database 0).
func (s *Redis) URL() string {
	return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port)
}

// Start starts the server (again) on its port and returns once it has
// written that it accepts connections.
func (s *Redis) Start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	r, w, err := os.Pipe()
	if err != nil {
		s.tb.Fatal(err)
	}
	cmd := exec.Command(s.bin, "--save", "", "--appendonly", "no",
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	w.Close()
	ready := make(chan struct{})
	var out strings.Builder
	var outMu sync.Mutex
	go func() {
		// Reads until the server exits, so that it never blocks on a
		// full pipe.
		sc := bufio.NewScanner(r)
		signalled := false
		for sc.Scan() {
			outMu.Lock()
			out.WriteString(sc.Text() + "\n")
			outMu.Unlock()
			if !signalled && strings.Contains(sc.Text(), "Ready to accept connections") {
				signalled = true
				close(ready)
			}
		}
		r.Close()
	}()
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case <-ready:
	case <-exited:
		outMu.Lock()
		defer outMu.Unlock()
		s.tb.Fatalf("redis-server exited at start:\n%s", out.String())
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		s.tb.Fatal("redis-server did not become ready within 30 s")
	}
	s.cmd, s.exited = cmd, exited
}

// Stop kills the server, as a crash would, and waits for it to exit.
func (s *Redis) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Addr is host:port of the server.
func (s *Redis) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }
