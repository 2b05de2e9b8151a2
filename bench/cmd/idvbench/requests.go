package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-idv/caddy-idv/store"
	"github.com/caddy-idv/caddy-idv/token"
)

// requestSite serves the same response on an open and on a protected
// route, each behind one handle block, so that the two differ by the idv
// handler alone (not by Caddy's routing).
const requestSite = `
	handle /open {
		respond "ok"
	}
	handle {
		idv {
			provider demo {
				user "Load Test"
			}
			limit {
				per_address 1000000 1m
				total 1000000 1m
			}
		}
		respond "ok"
	}
`

// browserHeaders are what a browser sends on a navigation, with two cookies
// of the application: both routes get them, so that the protected route's
// extra cost is only the session cookie and the gate.
var browserHeaders = []string{
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
	"Accept-Language: en-US,en;q=0.9,et;q=0.8",
	"Accept-Encoding: gzip, deflate, br, zstd",
	"Sec-Fetch-Site: same-origin",
	"Sec-Fetch-Mode: navigate",
	"Sec-Fetch-Dest: document",
	"Sec-Fetch-User: ?1",
}

const appCookies = "_ga=GA1.2.1234567890.1712345678; app_pref=theme%3Ddark%26lang%3Den"

type scenario struct {
	name   string
	path   string
	hdr    []string
	script string
}

type wrkResult struct {
	rps      float64
	p50, p99 time.Duration
	requests float64
	cpu      float64 // server CPU seconds
}

// requestCosts runs the wrk scenarios interleaved.
func requestCosts() {
	storage := filepath.Join(workDir, "requests")
	srv := start(requestSite, storage)
	defer srv.stop()
	b := login(srv.url)
	ref := b.cookie(srv.url, "idv_session")
	_, data := b.do("GET", srv.url+"/.idv/token", nil, nil)
	var tok struct{ Token string }
	_ = json.Unmarshal(data, &tok)
	if ref == "" || tok.Token == "" {
		fail(fmt.Errorf("no session: %q %s", ref, data))
	}
	script := firstSeenScript(storage)
	with := func(extra ...string) []string { return append(append([]string(nil), browserHeaders...), extra...) }
	scenarios := []scenario{
		{name: "open route", path: "/open", hdr: with("Cookie: " + appCookies)},
		{name: "protected, session cookie", path: "/private", hdr: with("Cookie: " + appCookies + "; idv_session=" + ref)},
		{name: "protected, bearer token", path: "/private", hdr: with("Cookie: "+appCookies, "Authorization: Bearer "+tok.Token)},
		{name: "protected, token seen for the first time", path: "/private", hdr: with("Cookie: " + appCookies), script: script},
	}
	results := make([][]wrkResult, len(scenarios))
	for r := 0; r < *rounds; r++ {
		for i, sc := range scenarios {
			results[i] = append(results[i], runWrk(srv, sc))
		}
	}
	open := summarize(results[0])
	row("session cookie size", fmt.Sprintf("`idv_session=` + %d bytes (the session token itself: %d bytes)", len(ref), len(tok.Token)), "≤ 128 bytes")
	for i, sc := range scenarios {
		s := summarize(results[i])
		ratio, target := "", ""
		if i > 0 {
			ratio = fmt.Sprintf("; %.3f× the open route, %+.2f µs CPU/request", s.rps/open.rps, s.cpuUS-open.cpuUS)
		}
		if i == 1 {
			target = "≥ 0.97× open, ≤ +1 µs CPU"
		}
		row(sc.name, fmt.Sprintf("%.0f req/s, p50 %s, p99 %s, %.1f µs server CPU/request%s",
			s.rps, us(s.p50), us(s.p99), s.cpuUS, ratio), target)
	}
}

type summary struct {
	rps, cpuUS float64
	p50, p99   time.Duration
}

func summarize(rs []wrkResult) summary {
	var rps []float64
	var p50s, p99s []time.Duration
	var req, cpu float64
	for _, r := range rs {
		rps = append(rps, r.rps)
		p50s = append(p50s, r.p50)
		p99s = append(p99s, r.p99)
		req += r.requests
		cpu += r.cpu
	}
	sort.Float64s(rps)
	return summary{rps: rps[len(rps)/2], cpuUS: cpu / req * 1e6, p50: percentile(p50s, 0.5), p99: percentile(p99s, 0.5)}
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

var (
	reqsRe   = regexp.MustCompile(`(\d+) requests in`)
	rpsRe    = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	pctRe    = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)`)
	non2xxRe = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

func runWrk(srv *server, sc scenario) wrkResult {
	args := []string{"-c", *loadCPU, "wrk", "-t1", "-c16", "-d" + duration.String(), "--latency"}
	for _, h := range sc.hdr {
		args = append(args, "-H", h)
	}
	if sc.script != "" {
		args = append(args, "-s", sc.script)
	}
	args = append(args, srv.url+sc.path)
	before := srv.cpuSeconds()
	out, err := exec.Command("taskset", args...).CombinedOutput()
	cpu := srv.cpuSeconds() - before
	if err != nil {
		fail(fmt.Errorf("wrk: %v\n%s", err, out))
	}
	text := string(out)
	if m := non2xxRe.FindStringSubmatch(text); m != nil {
		fail(fmt.Errorf("%s: %s responses were not 2xx:\n%s", sc.name, m[1], text))
	}
	var r wrkResult
	if m := rpsRe.FindStringSubmatch(text); m != nil {
		r.rps, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reqsRe.FindStringSubmatch(text); m != nil {
		r.requests, _ = strconv.ParseFloat(m[1], 64)
	}
	for _, m := range pctRe.FindAllStringSubmatch(text, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]
		d := time.Duration(v * float64(unit))
		if m[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	r.cpu = cpu
	return r
}

// firstSeenScript writes a wrk script that sends a different valid bearer
// token with every request (signed with the instance's own key, read from
// its storage), so that each is verified in full, and returns its path.
func firstSeenScript(storage string) string {
	st := store.NewCaddy(&certmagic.FileStorage{Path: storage}, nil, nil)
	raw, err := st.Get(context.Background(), "keys/signing")
	if err != nil {
		fail(err)
	}
	var keys []struct {
		KID     string    `json:"kid"`
		DER     []byte    `json:"der"`
		Created time.Time `json:"created"`
	}
	if err := json.Unmarshal(raw, &keys); err != nil || len(keys) == 0 {
		fail(fmt.Errorf("stored keys: %v", err))
	}
	priv, err := x509.ParseECPrivateKey(keys[len(keys)-1].DER)
	if err != nil {
		fail(err)
	}
	aud := token.Site{Prefix: "/.idv", Cookie: "idv_session", Providers: []token.SiteProvider{{Name: "demo", Kind: "demo"}}}.SessionAudience()
	n := int(60000 * duration.Seconds() / 3)
	var sb strings.Builder
	now := time.Now()
	for i := 0; i < n; i++ {
		id := make([]byte, 12)
		_, _ = rand.Read(id)
		t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
			"iss": token.DefaultIssuer, "aud": aud, "sub": "load-" + strconv.Itoa(i), "idv": "demo",
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "auth_time": now.Unix(),
			"jti": base64.RawURLEncoding.EncodeToString(id), "sid": base64.RawURLEncoding.EncodeToString(id),
			"name": "Load Test", "acr": "urn:caddy-idv:demo", "amr": []string{"swk", "user"},
		})
		t.Header["kid"] = keys[len(keys)-1].KID
		t.Header["typ"] = token.TypSession
		s, err := t.SignedString(priv)
		if err != nil {
			fail(err)
		}
		sb.WriteString(s)
		sb.WriteByte('\n')
	}
	tokens := filepath.Join(workDir, "tokens.txt")
	if err := os.WriteFile(tokens, []byte(sb.String()), 0o600); err != nil {
		fail(err)
	}
	script := filepath.Join(workDir, "first-seen.lua")
	lua := `local tokens = {}
for line in io.lines(` + strconv.Quote(tokens) + `) do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i + 1
  if i > #tokens then i = 1 end
  wrk.headers["Authorization"] = "Bearer " .. tokens[i]
  return wrk.format("GET", nil)
end
`
	if err := os.WriteFile(script, []byte(lua), 0o600); err != nil {
		fail(err)
	}
	return script
}
