// Package uqudoexample checks that the example Caddyfile adapts.
package uqudoexample

import (
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-idv/caddy-idv/caddymodule"
	_ "github.com/caddy-idv/caddy-idv/providers/uqudo"
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
	if !strings.Contains(string(out), `"kind":"uqudo"`) || !strings.Contains(string(out), `"client_secret":"{env.UQUDO_CLIENT_SECRET}"`) {
		t.Errorf("adapted JSON lacks the provider: %s", out)
	}
}
