package redisstore_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-idv/caddy-idv/store"
	redisstore "github.com/caddy-idv/caddy-idv/store/redis"
)

// logChildEnv makes TestGoRedisLogChild run, as a child process of
// TestGoRedisLogsThroughZap: "store <url>" or "raw <url>".
const logChildEnv = "IDV_REDIS_LOG_CHILD"

// TestGoRedisLogsThroughZap runs a Redis outage in a child process whose
// only logger writes JSON lines to stderr, as Caddy's does, and checks that
// go-redis's own lines reach stderr as JSON through the store's logger,
// never as plain text. A control child that uses go-redis without the store
// shows that the same outage does make go-redis write plain text.
func TestGoRedisLogsThroughZap(t *testing.T) {
	srv := startRedis(t)

	control := runLogChild(t, srv, "raw")
	if len(control.plain) == 0 {
		t.Fatalf("control: go-redis wrote no plain-text line during the outage, so this test cannot see one; stderr:\n%s", control.stderr)
	}
	t.Logf("control: %d plain-text lines from go-redis, e.g. %q", len(control.plain), control.plain[0])

	got := runLogChild(t, srv, "store")
	if len(got.plain) != 0 {
		t.Errorf("with the store, stderr has %d plain-text lines, e.g. %q", len(got.plain), got.plain[0])
	}
	var routed, unavailable int
	for _, e := range got.entries {
		if strings.HasSuffix(fmt.Sprint(e["logger"]), "go-redis") {
			routed++
			if e["level"] != "warn" {
				t.Errorf("go-redis line at %v, want warn: %v", e["level"], e)
			}
		}
		if strings.Contains(fmt.Sprint(e["msg"]), "Redis is unavailable") {
			unavailable++
		}
	}
	if routed == 0 {
		t.Errorf("no go-redis line reached the store's logger; stderr:\n%s", got.stderr)
	}
	if routed >= len(control.plain) {
		t.Errorf("%d go-redis lines logged, not fewer than the %d go-redis writes by itself: repeats are not held back", routed, len(control.plain))
	}
	if unavailable != 1 {
		t.Errorf("the outage was logged %d times by the store, want once", unavailable)
	}
	t.Logf("with the store: %d go-redis lines as JSON, %d JSON lines in all", routed, len(got.entries))
}

type childLog struct {
	stderr  string
	plain   []string
	entries []map[string]any
}

// runLogChild runs TestGoRedisLogChild in mode against srv, stopping Redis
// when the child says it is up and starting it again when the child says
// its calls failed.
func runLogChild(t *testing.T, srv *redisServer, mode string) childLog {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestGoRedisLogChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), logChildEnv+"="+mode+" "+srv.url())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	expect := func(want string) {
		t.Helper()
		for lines.Scan() {
			if lines.Text() == want {
				return
			}
		}
		_ = cmd.Wait()
		t.Fatalf("child %s ended before %q; stderr:\n%s", mode, want, stderr.String())
	}
	expect("up")
	srv.stop()
	fmt.Fprintln(stdin, "down")
	expect("failed")
	srv.start()
	fmt.Fprintln(stdin, "back")
	_, _ = io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child %s: %v; stderr:\n%s", mode, err, stderr.String())
	}
	out := childLog{stderr: stderr.String()}
	for line := range strings.SplitSeq(strings.TrimSpace(out.stderr), "\n") {
		if line == "" {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			out.plain = append(out.plain, line)
			continue
		}
		out.entries = append(out.entries, e)
	}
	return out
}

// TestGoRedisLogChild is the child process of TestGoRedisLogsThroughZap.
// It talks to the parent through stdin and stdout and logs JSON to stderr.
func TestGoRedisLogChild(t *testing.T) {
	spec := os.Getenv(logChildEnv)
	if spec == "" {
		t.Skip("run by TestGoRedisLogsThroughZap as a child process")
	}
	mode, url, _ := strings.Cut(spec, " ")
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.Lock(os.Stderr), zapcore.DebugLevel))
	defer logger.Sync()
	parent := bufio.NewScanner(os.Stdin)
	await := func(want string) {
		if !parent.Scan() || parent.Text() != want {
			t.Fatalf("parent: want %q, got %q", want, parent.Text())
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var get, set func() error
	var closeAll func()
	switch mode {
	case "store":
		s, err := redisstore.New(ctx, url, redisstore.Options{Logger: logger, Prefix: "logchild:"})
		if err != nil {
			t.Fatal(err)
		}
		r := store.NewRevocations(s, logger, nil)
		var wg sync.WaitGroup
		wg.Go(func() { r.Run(ctx, 100*time.Millisecond) })
		get = func() error { _, err := s.Get(ctx, "keys/x"); return err }
		set = func() error { return s.Set(ctx, "keys/x", []byte("v"), time.Minute) }
		closeAll = func() { cancel(); wg.Wait(); s.Close() }
	case "raw":
		opt, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		opt.DialTimeout, opt.DialerRetries = 2*time.Second, 2
		c := redis.NewClient(opt)
		ps := c.Subscribe(ctx, "logchild")
		get = func() error { return c.Get(ctx, "logchild:x").Err() }
		set = func() error { return c.Set(ctx, "logchild:x", "v", time.Minute).Err() }
		closeAll = func() { ps.Close(); c.Close() }
	default:
		t.Fatalf("mode %q", mode)
	}
	if err := set(); err != nil {
		t.Fatal(err)
	}
	fmt.Println("up")
	await("down")
	failures := 0
	for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline) || failures < 5; {
		if err := get(); err != nil && !errors.Is(err, redis.Nil) {
			failures++
		}
		time.Sleep(20 * time.Millisecond) // calls spread over the outage, as requests would be
	}
	fmt.Println("failed")
	await("back")
	for set() != nil {
		time.Sleep(20 * time.Millisecond) // go-redis reconnects with no signal to await
	}
	closeAll()
}
