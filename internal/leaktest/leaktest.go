// Package leaktest fails a package's tests when one leaves a goroutine
// running, with the exceptions every caddy-idv package shares.
package leaktest

import (
	"go.uber.org/goleak"
)

// VerifyTestMain runs the tests, then fails if goroutines are left. The
// idle keep-alive connections of HTTP clients are not leaks: they end with
// their idle timeout. m is a *testing.M, or one that wraps it.
func VerifyTestMain(m goleak.TestingM) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}
