package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// redisReadyTimeout bounds how long a Redis process may take to say it is
// ready; a loaded CI machine needs far less.
const redisReadyTimeout = 30 * time.Second

// needBinary returns the path of the program name, from the Debian package
// pkg. Without it, it skips tb, or fails it when the CI environment variable
// is set: CI installs the package (scripts/test.sh), so a missing program
// there is a broken setup, not a reason to skip silently.
func needBinary(tb testing.TB, name, pkg string) string {
	tb.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%s is not installed (apt-get install %s): %v", name, pkg, err)
		}
		tb.Skipf("%s is not installed (Debian package %s); the tests that need it fail instead of skipping when CI is set", name, pkg)
	}
	return bin
}

// redisProc is one running redis-server or redis-sentinel.
type redisProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	mu     sync.Mutex
	out    strings.Builder
}

// startRedisProc runs bin with args and returns once the process has
// written a line containing ready. It fails tb with the process's output if
// the process exits first or is not ready in time. The caller kills it.
func startRedisProc(tb testing.TB, bin string, args []string, ready string) *redisProc {
	tb.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = w, w
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		tb.Fatalf("start %s: %v", bin, err)
	}
	w.Close()
	p := &redisProc{cmd: cmd, exited: make(chan struct{})}
	readyCh := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		// Reads until the process exits, so that it never blocks on a
		// full pipe.
		sc := bufio.NewScanner(r)
		signalled := false
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if !signalled && strings.Contains(sc.Text(), ready) {
				signalled = true
				close(readyCh)
			}
		}
		r.Close()
	}()
	go func() {
		_ = cmd.Wait()
		<-readerDone
		close(p.exited)
	}()
	timer := time.NewTimer(redisReadyTimeout)
	defer timer.Stop()
	select {
	case <-readyCh:
	case <-p.exited:
		tb.Fatalf("%s exited at start:\n%s", bin, p.output())
	case <-timer.C:
		p.kill()
		tb.Fatalf("%s did not become ready within %v:\n%s", bin, redisReadyTimeout, p.output())
	}
	return p
}

// kill kills the process, as a crash would, and waits until it has exited.
func (p *redisProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// output is what the process has written so far.
func (p *redisProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}
