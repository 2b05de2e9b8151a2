// Package onekosmosexample checks that the example Caddyfile adapts, with
// the licence key kept as a placeholder in the JSON.
package onekosmosexample

import (
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-idv/caddy-idv/caddymodule"
	_ "github.com/caddy-idv/caddy-idv/providers/blockid"
	_ "github.com/caddy-idv/caddy-idv/providers/onekosmosidv"
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
	for _, want := range []string{`"kind":"blockid"`, `"kind":"onekosmos_idv"`, `"license_key":"{env.ONEKOSMOS_LICENSE}"`, `"dvc_id":"fake_dvcid"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("adapted JSON lacks %s: %s", want, out)
		}
	}
}
