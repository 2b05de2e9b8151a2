package store_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// store runs background work (Run, lock waits) that must end with its
// context. certmagic's file storage keeps each lock file fresh from a
// goroutine that notices the release only at its next tick, up to 5 s
// later; that one is certmagic's and ends by itself.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.keepLockfileFresh"))
}
