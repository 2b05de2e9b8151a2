// Package hostile writes the answers of a service that has turned against
// its clients: a body far larger than any sane answer, one that never ends,
// one cut off in the middle, malformed ones (not JSON, wrong types, null,
// nesting deeper than any parser allows, the wrong Content-Type, invalid
// UTF-8), one that trickles in a byte at a time, and none at all.
//
// The fakes of the identity providers answer in these modes on demand (a
// Hostile field on their Fault, and a -hostile flag on their commands), so
// that tests can prove every provider client gives up within its call
// timeout and a bounded amount of memory, with an error or a failed login,
// and never takes such an answer for a completed one.
//
// A mode spoils the answer the service would really have given: Serve runs
// the real handler first, into a bounded recorder, with its side effects
// (a session is created, a one-time answer is spent, as when a real answer
// is lost on the way), and keeps its status and Content-Type. A truncated
// answer is the real one cut in half, wrong types are the real fields with
// their types changed, and a huge answer carries the real fields after its
// padding, so that a client reading it whole would be fooled.
//
// Every mode runs in the handler's goroutine and starts no other. It
// returns when its answer is written, when the client goes away (the
// request's context ends or a write fails), or after MaxStall at the
// latest. The huge, endless and deep bodies are written from small fixed
// buffers, never built in memory.
//
// Body gives the same hostility to request bodies, for testing servers.
package hostile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Mode is a way of answering badly. The zero value, None, is the real
// answer.
type Mode int

// The modes.
const (
	// None answers as the real handler does.
	None Mode = iota
	// Huge is a valid-looking JSON object of HugeSize bytes, announced in
	// Content-Length: a padding field, then the real answer's fields.
	Huge
	// Endless is a JSON object whose padding never ends, streamed and
	// flushed as fast as the client reads, with no Content-Length.
	Endless
	// Truncated is the real answer cut in the middle, with the full
	// Content-Length; then the connection is closed.
	Truncated
	// MalformedNotJSON is plain text labelled application/json.
	MalformedNotJSON
	// MalformedTypes is the real answer with every top-level field of
	// another JSON type: objects and arrays become strings, strings,
	// numbers, booleans and null become objects.
	MalformedTypes
	// MalformedNull is the JSON literal null.
	MalformedNull
	// MalformedDeep is DeepNesting nested arrays, deeper than any sane
	// parser goes.
	MalformedDeep
	// MalformedContentType is an HTML error page (text/html), as a proxy,
	// captive portal or firewall in the way would send.
	MalformedContentType
	// MalformedUTF8 is the real answer with invalid UTF-8 in every string
	// value.
	MalformedUTF8
	// Slow sends the headers, then trickles a body that never completes,
	// one byte every SlowPause.
	Slow
	// Hang never sends the headers: it waits until the client gives up.
	Hang
)

// Modes lists every mode but None, for tests to range over.
var Modes = []Mode{
	Huge, Endless, Truncated,
	MalformedNotJSON, MalformedTypes, MalformedNull, MalformedDeep, MalformedContentType, MalformedUTF8,
	Slow, Hang,
}

var names = [...]string{
	None:                 "none",
	Huge:                 "huge",
	Endless:              "endless",
	Truncated:            "truncated",
	MalformedNotJSON:     "not-json",
	MalformedTypes:       "wrong-types",
	MalformedNull:        "null",
	MalformedDeep:        "deep-nesting",
	MalformedContentType: "wrong-content-type",
	MalformedUTF8:        "invalid-utf8",
	Slow:                 "slow",
	Hang:                 "hang",
}

// String is the mode's name, as ParseMode reads it.
func (m Mode) String() string {
	if m >= 0 && int(m) < len(names) {
		return names[m]
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// ParseMode reads a mode's name.
func ParseMode(s string) (Mode, error) {
	for m, n := range names {
		if n == s {
			return Mode(m), nil
		}
	}
	return None, fmt.Errorf("hostile: unknown mode %q (known: %s)", s, strings.Join(names[1:], ", "))
}

// Malformed reports whether m is one of the malformed answers: complete and
// small, but not what the client asked for.
func (m Mode) Malformed() bool { return m >= MalformedNotJSON && m <= MalformedUTF8 }

// Stalls reports whether a client can only get out of m by its own
// timeout: the answer never completes, however little the client reads.
func (m Mode) Stalls() bool { return m == Slow || m == Hang }

// Sizes and pace of the modes.
const (
	// HugeSize is the length of a Huge body: far larger than any answer
	// of the providers' services.
	HugeSize = 64 << 20
	// DeepNesting is how many arrays a MalformedDeep body nests.
	DeepNesting = 100_000
	// SlowPause is the pause between two bytes of a Slow body.
	SlowPause = 100 * time.Millisecond
	// MaxStall bounds how long Endless, Slow and Hang keep a request
	// open when the client never gives up.
	MaxStall = 10 * time.Minute
	// maxRecord bounds the real answer kept for a mode to spoil.
	maxRecord = 1 << 20
	// maxDrain bounds the request body read before a mode answers.
	maxDrain = 1 << 20
)

// Serve answers r in mode m, spoiling the answer of real (see the package
// documentation). real may be nil: the real answer is then 200
// {"status":"ok"}. With m None, real answers as it is.
func Serve(w http.ResponseWriter, r *http.Request, m Mode, real http.Handler) {
	if m == None {
		if real != nil {
			real.ServeHTTP(w, r)
		}
		return
	}
	a := record(r, real)
	// Read what is left of the request, so that the server notices when
	// the client goes away (it watches the connection only once the body
	// is consumed).
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxDrain))
	switch m {
	case Huge:
		huge(w, r, a)
	case Endless:
		endless(w, r, a)
	case Truncated:
		truncated(w, a)
	case MalformedNotJSON:
		a.write(w, "application/json", []byte("upstream connect error or disconnect/reset before headers. reset reason: overflow\n"))
	case MalformedTypes:
		a.write(w, a.contentType, wrongTypes(a.body))
	case MalformedNull:
		a.write(w, "application/json", []byte("null"))
	case MalformedDeep:
		deep(w, r, a)
	case MalformedContentType:
		a.write(w, "text/html; charset=utf-8", []byte(htmlPage))
	case MalformedUTF8:
		a.write(w, a.contentType, invalidUTF8(a.body))
	case Slow:
		slow(w, r, a)
	case Hang:
		hang(r)
	default:
		http.Error(w, "hostile: unknown mode "+m.String(), http.StatusInternalServerError)
	}
}

// Handler is Serve as a handler.
func Handler(m Mode, real http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { Serve(w, r, m, real) })
}

// answer is the real answer a mode spoils.
type answer struct {
	status      int
	contentType string
	body        []byte
}

// record runs real into a bounded recorder.
func record(r *http.Request, real http.Handler) answer {
	a := answer{status: http.StatusOK, contentType: "application/json", body: []byte(`{"status":"ok"}`)}
	if real == nil {
		return a
	}
	rec := &recorder{header: http.Header{}}
	real.ServeHTTP(rec, r)
	if rec.status != 0 {
		a.status = rec.status
	}
	// A status without a body (204, 304, 1xx) could not carry the
	// hostile one.
	if a.status < 200 || a.status == http.StatusNoContent || a.status == http.StatusNotModified {
		a.status = http.StatusOK
	}
	if ct := rec.header.Get("Content-Type"); ct != "" {
		a.contentType = ct
	}
	if rec.body.Len() > 0 {
		a.body = rec.body.Bytes()
	}
	return a
}

// recorder is a ResponseWriter that keeps up to maxRecord bytes.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (rec *recorder) Header() http.Header { return rec.header }

func (rec *recorder) WriteHeader(status int) {
	if rec.status == 0 {
		rec.status = status
	}
}

func (rec *recorder) Write(p []byte) (int, error) {
	rec.WriteHeader(http.StatusOK)
	if rec.body.Len()+len(p) > maxRecord {
		return 0, errors.New("hostile: real answer too large to record")
	}
	return rec.body.Write(p)
}

func (rec *recorder) Flush() {}

// head writes the status and headers; length < 0 sends no Content-Length.
func (a answer) head(w http.ResponseWriter, contentType string, length int64) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Del("Content-Length")
	if length >= 0 {
		h.Set("Content-Length", strconv.FormatInt(length, 10))
	}
	w.WriteHeader(a.status)
}

// write sends a complete small body.
func (a answer) write(w http.ResponseWriter, contentType string, body []byte) {
	a.head(w, contentType, int64(len(body)))
	_, _ = w.Write(body)
}

// padding is what the huge, endless and slow bodies repeat.
var padding = bytes.Repeat([]byte("A"), 32<<10)

const padOpen = `{"padding":"`

// huge writes a HugeSize body: padOpen, padding, and the real answer's
// fields when it is a JSON object.
func huge(w http.ResponseWriter, r *http.Request, a answer) {
	tail := []byte(`"}`)
	if fields, ok := objectFields(a.body); ok {
		tail = append([]byte(`",`), fields...)
	}
	a.head(w, a.contentType, HugeSize)
	if _, err := io.WriteString(w, padOpen); err != nil {
		return
	}
	for left := HugeSize - len(padOpen) - len(tail); left > 0; {
		if r.Context().Err() != nil {
			return
		}
		n, err := w.Write(padding[:min(left, len(padding))])
		if err != nil {
			return
		}
		left -= n
	}
	_, _ = w.Write(tail)
}

// objectFields returns a JSON object's text after its opening brace, when
// it has at least one field.
func objectFields(body []byte) ([]byte, bool) {
	b := bytes.TrimSpace(body)
	if len(b) < 2 || b[0] != '{' || !json.Valid(b) {
		return nil, false
	}
	rest := bytes.TrimSpace(b[1:])
	if len(rest) == 0 || rest[0] == '}' {
		return nil, false
	}
	return rest, true
}

// endless streams padding until the client goes away.
func endless(w http.ResponseWriter, r *http.Request, a answer) {
	rc := http.NewResponseController(w)
	a.head(w, a.contentType, -1)
	if _, err := io.WriteString(w, padOpen); err != nil {
		return
	}
	stop := time.Now().Add(MaxStall)
	for r.Context().Err() == nil && time.Now().Before(stop) {
		if _, err := w.Write(padding); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// truncated sends the first half of the real answer under its full
// Content-Length, then closes the connection.
func truncated(w http.ResponseWriter, a answer) {
	body := a.body
	if len(body) < 2 {
		body = []byte(`{"status":"ok"}`)
	}
	a.head(w, a.contentType, int64(len(body)))
	if _, err := w.Write(body[:len(body)/2]); err != nil {
		return
	}
	abort(w)
}

// abort closes the connection under a response that is not complete.
func abort(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	conn, buf, err := rc.Hijack()
	if err != nil {
		// HTTP/2, or a writer that cannot be hijacked: the server resets
		// the stream or closes the connection.
		panic(http.ErrAbortHandler)
	}
	_ = buf.Flush()
	_ = conn.Close()
}

// deep writes DeepNesting opening brackets, then as many closing ones.
func deep(w http.ResponseWriter, r *http.Request, a answer) {
	open, shut := bytes.Repeat([]byte("["), 4096), bytes.Repeat([]byte("]"), 4096)
	a.head(w, "application/json", 2*DeepNesting)
	for _, buf := range [][]byte{open, shut} {
		for left := DeepNesting; left > 0; {
			if r.Context().Err() != nil {
				return
			}
			n, err := w.Write(buf[:min(left, len(buf))])
			if err != nil {
				return
			}
			left -= n
		}
	}
}

// slow trickles padOpen and padding, a byte per SlowPause, until the client
// goes away.
func slow(w http.ResponseWriter, r *http.Request, a answer) {
	rc := http.NewResponseController(w)
	a.head(w, a.contentType, -1)
	if rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(SlowPause)
	defer tick.Stop()
	stall := time.NewTimer(MaxStall)
	defer stall.Stop()
	for i := 0; ; i++ {
		b := byte('A')
		if i < len(padOpen) {
			b = padOpen[i]
		}
		if _, err := w.Write([]byte{b}); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return
		case <-stall.C:
			return
		}
	}
}

// hang waits until the client goes away without answering.
func hang(r *http.Request) {
	stall := time.NewTimer(MaxStall)
	defer stall.Stop()
	select {
	case <-r.Context().Done():
	case <-stall.C:
	}
}

// wrongTypes gives every top-level field of a JSON object another type. A
// body that is not a JSON object becomes a one-element array of its text.
func wrongTypes(body []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		out, _ := json.Marshal([]string{string(body)})
		return out
	}
	for k, v := range obj {
		switch v.(type) {
		case map[string]any, []any:
			text, _ := json.Marshal(v)
			obj[k] = string(text)
		default:
			obj[k] = map[string]any{"value": v}
		}
	}
	out, _ := json.Marshal(obj)
	return out
}

// badBytes is what MalformedUTF8 puts into strings: a lone continuation
// byte and a byte that never occurs in UTF-8.
const badBytes = "\x80\xff"

// invalidUTF8 puts badBytes into the middle of every string value of a
// JSON answer (not the keys, so that clients find their fields), or into
// the middle of any other body.
func invalidUTF8(body []byte) []byte {
	const marker = "\x01hostile\x01"
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		mid := len(body) / 2
		return append(append(append([]byte{}, body[:mid]...), badBytes...), body[mid:]...)
	}
	out, _ := json.Marshal(mark(v, marker))
	// json.Marshal escapes the marker's control bytes; put the raw bytes
	// where it wrote the escapes.
	return bytes.ReplaceAll(out, []byte(`\u0001hostile\u0001`), []byte(badBytes))
}

func mark(v any, marker string) any {
	switch x := v.(type) {
	case string:
		return x[:len(x)/2] + marker + x[len(x)/2:]
	case []any:
		for i := range x {
			x[i] = mark(x[i], marker)
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = mark(e, marker)
		}
		return x
	}
	return v
}

const htmlPage = `<!DOCTYPE html>
<html><head><title>403 Forbidden</title></head>
<body><h1>Access denied</h1><p>Your request was blocked by the security policy of this network.</p></body></html>
`

// Body returns a request body in mode m, with its length (-1: unknown,
// sent chunked) and Content-Type, for testing servers. Slow and Hang
// bodies stop when ctx ends; Endless never ends by itself. Modes that
// spoil a real answer spoil {"status":"ok"}.
func Body(ctx context.Context, m Mode) (body io.Reader, length int64, contentType string) {
	a := answer{body: []byte(`{"status":"ok"}`)}
	fixed := func(ct string, b []byte) (io.Reader, int64, string) {
		return bytes.NewReader(b), int64(len(b)), ct
	}
	switch m {
	case Huge:
		return io.MultiReader(strings.NewReader(padOpen),
			io.LimitReader(repeat('A'), HugeSize-int64(len(padOpen))-2), strings.NewReader(`"}`)), HugeSize, "application/json"
	case Endless:
		return io.MultiReader(strings.NewReader(padOpen), repeat('A')), -1, "application/json"
	case Truncated:
		// The declared length promises twice what is sent.
		return strings.NewReader(`{"status":`), int64(len(`{"status":`)) * 2, "application/json"
	case MalformedNotJSON:
		return fixed("application/json", []byte("this is not JSON\n"))
	case MalformedTypes:
		return fixed("application/json", wrongTypes(a.body))
	case MalformedNull:
		return fixed("application/json", []byte("null"))
	case MalformedDeep:
		return io.MultiReader(io.LimitReader(repeat('['), DeepNesting), io.LimitReader(repeat(']'), DeepNesting)), 2 * DeepNesting, "application/json"
	case MalformedContentType:
		return fixed("text/html; charset=utf-8", []byte(htmlPage))
	case MalformedUTF8:
		return fixed("application/json", invalidUTF8(a.body))
	case Slow:
		return &slowReader{ctx: ctx}, -1, "application/json"
	case Hang:
		return &hangReader{ctx: ctx}, -1, "application/json"
	}
	return fixed("application/json", a.body)
}

// repeat is an endless reader of c.
type repeat byte

func (c repeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

type slowReader struct {
	ctx context.Context
	n   int
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if s.n > 0 {
		t := time.NewTimer(SlowPause)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.ctx.Done():
			return 0, s.ctx.Err()
		}
	}
	p[0] = 'A'
	if s.n < len(padOpen) {
		p[0] = padOpen[s.n]
	}
	s.n++
	return 1, nil
}

type hangReader struct{ ctx context.Context }

func (h *hangReader) Read([]byte) (int, error) {
	<-h.ctx.Done()
	return 0, h.ctx.Err()
}

// ParseSetting reads a command's "-hostile <route>=<mode>" flag value;
// route must be one of known.
func ParseSetting(s string, known []string) (route string, m Mode, err error) {
	route, name, ok := strings.Cut(s, "=")
	if !ok {
		return "", None, fmt.Errorf("hostile: want <route>=<mode>, got %q", s)
	}
	found := false
	for _, k := range known {
		found = found || k == route
	}
	if !found {
		return "", None, fmt.Errorf("hostile: unknown route %q (known: %s)", route, strings.Join(known, ", "))
	}
	if m, err = ParseMode(name); err != nil {
		return "", None, err
	}
	return route, m, nil
}

// Usage describes the -hostile flag of a command whose routes are known.
func Usage(known []string) string {
	return "answer `route=mode` hostilely, repeatable; routes: " + strings.Join(known, ", ") +
		"; modes: " + strings.Join(names[1:], ", ")
}
