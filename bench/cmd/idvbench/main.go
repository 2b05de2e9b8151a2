// Command idvbench measures caddy-idv through the real binary on loopback
// and prints one table; bench/run builds the binary and runs it. Every
// figure that compares is measured in the same run, interleaved, so that
// the ratios hold on a shared, noisy machine. It sends traffic only to
// 127.0.0.1 and stops by itself.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	caddyBin   = flag.String("caddy", "", "the caddy binary with the idv module (required)")
	serverCPU  = flag.String("server-cpu", "0", "CPU list the servers are pinned to (taskset)")
	loadCPU    = flag.String("load-cpu", "1", "CPU list the load generator is pinned to")
	rounds     = flag.Int("rounds", 3, "interleaved rounds of each wrk scenario")
	duration   = flag.Duration("duration", 3*time.Second, "length of one wrk run")
	pending    = flag.Int("pending", 10000, "logins held pending by long-polls")
	logins     = flag.Int("logins", 100, "logins timed for completion latency")
	exchanges  = flag.Int("exchanges", 3000, "OIDC code exchanges per store")
	skipRedis  = flag.Bool("skip-redis", false, "do not measure with Redis")
	profile    = flag.String("profile", "", "write a CPU profile of the server during the OIDC exchanges to this path prefix")
	parts      = flag.String("parts", "requests,pending,tabs,oidc", "which parts to run")
	workDir    string
	resultRows [][]string
)

func main() {
	flag.Parse()
	if *caddyBin == "" {
		fail(errors.New("-caddy is required"))
	}
	var err error
	workDir, err = os.MkdirTemp("", "idvbench")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(workDir)

	run := map[string]func(){"requests": requestCosts, "pending": pendingLogins, "tabs": tabsAndInstances, "oidc": oidcExchanges}
	for _, p := range strings.Split(*parts, ",") {
		fn, ok := run[strings.TrimSpace(p)]
		if !ok {
			fail(fmt.Errorf("-parts: unknown part %q (known: requests, pending, tabs, oidc)", p))
		}
		fn()
	}
	printTable()
}

// running are the servers started and not yet stopped, stopped by fail
// too, so that a failed run leaves no process behind.
var (
	runningMu sync.Mutex
	running   = map[*server]bool{}
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, "idvbench:", err)
	runningMu.Lock()
	for s := range running {
		_ = s.cmd.Process.Kill()
	}
	runningMu.Unlock()
	os.RemoveAll(workDir)
	os.Exit(1)
}

func row(cells ...string) { resultRows = append(resultRows, cells) }

func printTable() {
	fmt.Println()
	fmt.Println("| measurement | result | target |")
	fmt.Println("|---|---|---|")
	for _, r := range resultRows {
		for len(r) < 3 {
			r = append(r, "")
		}
		fmt.Printf("| %s | %s | %s |\n", r[0], r[1], r[2])
	}
}

// server is one caddy process.
type server struct {
	url   string
	admin string
	cmd   *exec.Cmd
	logs  *bytes.Buffer
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs caddy pinned to the server CPUs with site as its site block.
func start(site, storage string, env ...string) *server {
	port, admin := freePort(), freePort()
	u := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	auto_https off
	persist_config off
	storage file_system %q
	log {
		level WARN
	}
}
%s {
%s
}
`, admin, storage, u, strings.ReplaceAll(site, "{url}", u))
	dir, err := os.MkdirTemp(workDir, "caddy")
	if err != nil {
		fail(err)
	}
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		fail(err)
	}
	cmd := exec.Command("taskset", "-c", *serverCPU, *caddyBin, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir, "GOMAXPROCS=1")
	cmd.Env = append(cmd.Env, env...)
	logs := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	s := &server{url: u, admin: fmt.Sprintf("http://127.0.0.1:%d", admin), cmd: cmd, logs: logs}
	runningMu.Lock()
	running[s] = true
	runningMu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get(u + "/.idv/jwks"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			fail(fmt.Errorf("caddy did not start:\n%s", logs))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

func (s *server) stop() {
	runningMu.Lock()
	delete(running, s)
	runningMu.Unlock()
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// pid is the caddy process (taskset execs it).
func (s *server) pid() int { return s.cmd.Process.Pid }

// cpuSeconds is the process's user and system CPU time so far.
func (s *server) cpuSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.pid()))
	if err != nil {
		fail(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// rssMiB is the process's resident memory, after a garbage collection (the
// admin endpoint's heap profile with gc=1), so that garbage not yet
// collected does not count.
func (s *server) rssMiB() float64 {
	if resp, err := http.Get(s.admin + "/debug/pprof/heap?gc=1"); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid()))
	if err != nil {
		fail(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// goroutines counts the process's goroutines through the admin endpoint.
func (s *server) goroutines() int {
	resp, err := http.Get(s.admin + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	line, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	var n int
	fmt.Sscanf(string(line), "goroutine profile: total %d", &n)
	return n
}

// browser is an HTTP client with cookies that does not follow redirects.
type browser struct{ *http.Client }

func newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{&http.Client{Jar: jar, Timeout: 60 * time.Second,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 64},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, u string, body io.Reader, hdr map[string]string) (int, []byte) {
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		fail(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.Do(req)
	if err != nil {
		fail(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

type started struct {
	ID, QRText string `json:"-"`
	RawID      string `json:"id"`
	RawQR      string `json:"qr_text"`
	StatusURL  string `json:"status_url"`
}

func (b *browser) startLogin(base string) started {
	code, data := b.do(http.MethodPost, base+"/.idv/sessions", strings.NewReader(`{"provider":"demo"}`), map[string]string{"Content-Type": "application/json"})
	if code != http.StatusCreated {
		fail(fmt.Errorf("start login: %d %s", code, data))
	}
	var s started
	if err := json.Unmarshal(data, &s); err != nil {
		fail(err)
	}
	s.ID, s.QRText = s.RawID, s.RawQR
	return s
}

func approve(s started) {
	code, data := newBrowser().do(http.MethodPost, s.QRText+"/approve", nil, nil)
	if code != http.StatusSeeOther {
		fail(fmt.Errorf("approve: %d %s", code, data))
	}
}

func (b *browser) poll(base string, s started, wait int) string {
	code, data := b.do(http.MethodGet, fmt.Sprintf("%s%s?wait=%d", base, s.StatusURL, wait), nil, nil)
	if code != http.StatusOK {
		return fmt.Sprintf("status %d", code)
	}
	var st struct{ State string }
	_ = json.Unmarshal(data, &st)
	return st.State
}

func (b *browser) cookie(base, name string) string {
	u, _ := url.Parse(base + "/")
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// login walks one demo login and returns the browser holding its session.
func login(base string) *browser {
	b := newBrowser()
	s := b.startLogin(base)
	approve(s)
	if st := b.poll(base, s, 10); st != "completed" {
		fail(fmt.Errorf("login: %s", st))
	}
	return b
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func par(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); fn(i) }()
	}
	wg.Wait()
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
