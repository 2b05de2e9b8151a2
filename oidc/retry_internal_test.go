package oidc

import (
	"testing"
	"time"
)

// The default back-channel retries go on for at least 30 s after the first
// attempt, each delay doubling up to the maximum.
func TestDefaultBackchannelRetrySpan(t *testing.T) {
	d := DefaultBackchannelRetry.withDefaults().delays()
	var total time.Duration
	for i, x := range d {
		total += x
		if i > 0 && x != min(2*d[i-1], DefaultBackchannelRetry.Max) {
			t.Errorf("delay %d = %s after %s", i, x, d[i-1])
		}
	}
	if total < 30*time.Second || d[0] != time.Second {
		t.Errorf("delays %v: %s in all, want at least 30 s starting at 1 s", d, total)
	}
	if total > 2*time.Minute {
		t.Errorf("delays %v: %s in all, longer than a logout token lives", d, total)
	}
}

func TestLoopbackParts(t *testing.T) {
	for raw, want := range map[string]string{
		"http://127.0.0.1:8080/cb":      "http://127.0.0.1 /cb",
		"http://127.0.0.1/cb?x=1":       "http://127.0.0.1 /cb?x=1",
		"http://[::1]:1/":               "http://[::1] /",
		"http://127.0.0.1":              "http://127.0.0.1 ",
		"http://127.0.0.1:65535":        "http://127.0.0.1 ",
		"http://127.0.0.1:65536/cb":     "",
		"http://127.0.0.1:/cb":          "",
		"http://127.0.0.1:80@evil/cb":   "",
		"http://127.0.0.10/cb":          "",
		"http://127.0.0.1.evil.com/cb":  "",
		"https://127.0.0.1:8080/cb":     "",
		"http://localhost:8080/cb":      "",
		"http://[::1]:8080#frag":        "",
		"http://127.0.0.1:123456/cb":    "",
		"http://127.0.0.1:8080\\@x/cb":  "",
		"HTTP://127.0.0.1:8080/cb":      "",
		"http://127.0.0.1:0x50/cb":      "",
		"http://127.0.0.1:8080/cb#frag": "http://127.0.0.1 /cb#frag",
	} {
		h, rest, ok := loopbackParts(raw)
		got := ""
		if ok {
			got = h + " " + rest
		}
		if got != want {
			t.Errorf("loopbackParts(%q) = %q, want %q", raw, got, want)
		}
	}
}
