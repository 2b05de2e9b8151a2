// Package marksignexample checks that the example Caddyfile adapts.
package marksignexample

import (
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-idv/caddy-idv/caddymodule"
	_ "github.com/caddy-idv/caddy-idv/providers/marksign"
)

func TestCaddyfileAdapts(t *testing.T) {
	raw, err := os.ReadFile("Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(raw, map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"kind":"marksign_mobileid"`) || !strings.Contains(string(out), `"access_token":"{env.MARKSIGN_ACCESS_TOKEN}"`) {
		t.Errorf("adapted JSON lacks the provider: %s", out)
	}
}
