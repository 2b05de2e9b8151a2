// Package e2e runs the real Caddy binary of ./cmd/caddy for end-to-end
// tests: each Instance is a separate caddy process on an ephemeral loopback
// port with its own storage directory (or a shared one, to act as a
// cluster), stopped when the test ends.
//
// The binary is built once per test process, or taken from $IDV_CADDY_BIN
// (which .ci/run sets, so that every package's tests reuse one build).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the path of a caddy binary with the idv module.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("IDV_CADDY_BIN"); p != "" {
			binPath = p
			return
		}
		dir, err := os.MkdirTemp("", "idv-caddy-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "caddy")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/caddy")
		cmd.Dir = repoRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building caddy: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// RepoPath returns a path inside the repository.
func RepoPath(parts ...string) string {
	return filepath.Join(append([]string{repoRoot()}, parts...)...)
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	// A port from the kernel's ephemeral range (bind to port 0) can be
	// taken, between this check and the server's own bind, as the source
	// port of any outgoing connection on the machine: with many tests
	// running at once that happened. Ports below the ephemeral range are
	// never handed out that way, so a random free one there stays free
	// unless another test picks the very same.
	for range 200 {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Options configure an instance.
type Options struct {
	// Storage is the file system storage directory; instances given the
	// same one share keys, revocations and one-time values. Default: a new
	// temporary directory.
	Storage string
	// Global is extra text for the global options block.
	Global string
	// Port to listen on; default a free one.
	Port int
	// Env is extra environment for the process (NAME=value).
	Env []string
	// Extra is more Caddyfile text after the site block: other sites of
	// the same process.
	Extra string
	// Admin, when not zero, serves Caddy's admin endpoint on this port of
	// 127.0.0.1 (for reloads); otherwise it is off.
	Admin int
}

// Instance is a running caddy.
type Instance struct {
	URL  string // http://127.0.0.1:<port>
	Port int
	// Config is the Caddyfile the instance started with.
	Config string
	cmd    *exec.Cmd
	logs   *syncBuffer
	done   chan struct{}
}

// Start runs caddy serving site (the body of the site block) at
// http://127.0.0.1:<port>, and waits until it serves. `{url}` in site is
// replaced by the instance's URL.
func Start(t testing.TB, site string, opts Options) *Instance {
	t.Helper()
	inst, ready := launch(t, site, opts)
	select {
	case <-ready:
	case <-inst.done:
		t.Fatalf("caddy exited before serving:\n%s", inst.Logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("caddy did not start within 60s:\n%s", inst.Logs())
	}
	return inst
}

// StartExpectFailure runs caddy as Start does with a configuration it must
// refuse, waits until the process exits and returns everything it logged.
// It fails t when caddy serves the configuration instead, or has not exited
// within 60s.
func StartExpectFailure(t testing.TB, site string, opts Options) string {
	t.Helper()
	inst, ready := launch(t, site, opts)
	select {
	case <-inst.done:
		return inst.Logs()
	case <-ready:
		t.Fatalf("caddy served a configuration it should refuse:\n%s", inst.Logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("caddy neither served nor exited within 60s:\n%s", inst.Logs())
	}
	return ""
}

// launch starts the process; ready is closed once it serves, inst.done
// when it has exited.
func launch(t testing.TB, site string, opts Options) (inst *Instance, ready chan struct{}) {
	t.Helper()
	bin := Binary(t)
	if opts.Storage == "" {
		opts.Storage = t.TempDir()
	}
	if opts.Port == 0 {
		opts.Port = FreePort(t)
	}
	u := fmt.Sprintf("http://127.0.0.1:%d", opts.Port)
	admin := "off"
	if opts.Admin != 0 {
		admin = fmt.Sprintf("127.0.0.1:%d", opts.Admin)
	}
	caddyfile := fmt.Sprintf(`{
	admin %s
	auto_https off
	persist_config off
	storage file_system %q
	%s
}

%s {
%s
}
%s
`, admin, opts.Storage, opts.Global, u, strings.ReplaceAll(site, "{url}", u), opts.Extra)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", cfg, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cmd.Env = append(cmd.Env, opts.Env...)
	inst = &Instance{URL: u, Port: opts.Port, Config: caddyfile, cmd: cmd, logs: &syncBuffer{}, done: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = inst.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready = make(chan struct{})
	go func() {
		defer close(inst.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			inst.logs.Write([]byte(line + "\n"))
			if !signalled && strings.Contains(line, "serving initial configuration") {
				signalled = true
				close(ready)
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() { inst.Stop() })
	return inst, ready
}

// Stop ends the process and waits for it.
func (i *Instance) Stop() {
	if i.cmd.Process == nil {
		return
	}
	_ = i.cmd.Process.Signal(os.Interrupt)
	select {
	case <-i.done:
	case <-time.After(10 * time.Second):
		_ = i.cmd.Process.Kill()
		<-i.done
	}
}

// Logs returns what the process has logged so far.
func (i *Instance) Logs() string { return i.logs.String() }

// AuditLogger is the name of the module's audit logger.
const AuditLogger = "http.handlers.idv.audit"

// AuditEvents returns the audit log lines the process has written so far,
// each decoded from JSON ("msg" is the event's name).
func (i *Instance) AuditEvents() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(i.Logs(), "\n") {
		if !strings.Contains(line, AuditLogger) {
			continue
		}
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) == nil && ev["logger"] == AuditLogger {
			out = append(out, ev)
		}
	}
	return out
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Browser is an HTTP client with its own cookie jar that does not follow
// redirects, so tests see every 302 and Set-Cookie.
type Browser struct {
	*http.Client
	Jar *cookiejar.Jar
	// Host, when set, is sent as the Host of every request, as a load
	// balancer in front of several instances does.
	Host string
}

// Via returns a browser that shares b's cookies and sends host as Host.
func (b *Browser) Via(host string) *Browser {
	return &Browser{Client: b.Client, Jar: b.Jar, Host: host}
}

// NewBrowser returns a fresh browser.
func NewBrowser() *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{
		Client: &http.Client{
			Jar:           jar,
			Timeout:       45 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		Jar: jar,
	}
}

// Do sends a request and returns the status, headers and body.
func (b *Browser) Do(t testing.TB, method, rawURL string, body io.Reader, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, rawURL, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if b.Host != "" {
		req.Host = b.Host
	}
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, data
}

// Started is the answer to POST /sessions.
type Started struct {
	ID          string `json:"id"`
	Provider    string `json:"provider"`
	ExpiresAt   string `json:"expires_at"`
	QRText      string `json:"qr_text"`
	QRSVGURL    string `json:"qr_svg_url"`
	DeepLink    string `json:"deep_link"`
	ControlCode string `json:"control_code"`
	StatusURL   string `json:"status_url"`
}

// Status is the answer to GET /sessions/{id}.
type Status struct {
	State    string `json:"state"`
	Error    string `json:"error"`
	Redirect string `json:"redirect"`
}

// StartLogin posts to <base>/.idv/sessions and requires 201.
func (b *Browser) StartLogin(t testing.TB, base string, fields map[string]string) Started {
	t.Helper()
	body, _ := json.Marshal(fields)
	code, _, data := b.Do(t, http.MethodPost, base+"/.idv/sessions", bytes.NewReader(body), map[string]string{"Content-Type": "application/json"})
	if code != http.StatusCreated {
		t.Fatalf("start login: %d %s", code, data)
	}
	var s Started
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// Poll asks for the login's state, long-polling up to wait seconds, and
// requires 200.
func (b *Browser) Poll(t testing.TB, base string, s Started, wait int) Status {
	t.Helper()
	code, _, data := b.Do(t, http.MethodGet, fmt.Sprintf("%s%s?wait=%d", base, s.StatusURL, wait), nil, nil)
	if code != http.StatusOK {
		t.Fatalf("poll: %d %s", code, data)
	}
	var st Status
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// Cookie returns the value of the named cookie the browser holds for base.
func (b *Browser) Cookie(base, name string) string {
	u, _ := url.Parse(base + "/")
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}
