package hostile

import (
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/leaktest"
)

// TestMain fails the package's tests when one leaves a goroutine running.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }
