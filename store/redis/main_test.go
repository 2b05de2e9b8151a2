package redisstore_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// Store, subscription, lock renewal and test server must be stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
