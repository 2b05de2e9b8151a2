package caddyidv_test

import (
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-idv/caddy-idv"
)

// TestExampleCaddyfilesAdapt checks that every Caddyfile the README and the
// examples tell users to run adapts, and that secrets stay placeholders in
// the JSON (resolved only when the module starts).
func TestExampleCaddyfilesAdapt(t *testing.T) {
	cases := map[string][]string{
		"Caddyfile.example":           {`"handler":"idv"`, `"kind":"demo"`, `"host":["localhost"]`, `"listen":[":8080"]`},
		"examples/1kosmos/Caddyfile":  {`"kind":"blockid"`, `"kind":"onekosmos_idv"`, `"license_key":"{env.ONEKOSMOS_LICENSE}"`, `"dvc_id":"fake_dvcid"`},
		"examples/uqudo/Caddyfile":    {`"kind":"uqudo"`, `"client_secret":"{env.UQUDO_CLIENT_SECRET}"`},
		"examples/marksign/Caddyfile": {`"kind":"marksign_mobileid"`, `"access_token":"{env.MARKSIGN_ACCESS_TOKEN}"`},
	}
	for file, wants := range cases {
		t.Run(file, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(raw, map[string]any{"filename": file})
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range wants {
				if !strings.Contains(string(out), want) {
					t.Errorf("adapted JSON lacks %s: %s", want, out)
				}
			}
		})
	}
}

// TestQuickStartOnTheLAN checks that the quick start serves the address in
// IDV_SITE, so that a phone on the same network can open the QR code's
// link (the QR code encodes the address the login page was opened with).
func TestQuickStartOnTheLAN(t *testing.T) {
	t.Setenv("IDV_SITE", "http://192.168.1.20:8080")
	raw, err := os.ReadFile("Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(raw, map[string]any{"filename": "Caddyfile.example"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"host":["192.168.1.20"]`, `"listen":[":8080"]`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("with IDV_SITE=http://192.168.1.20:8080 the adapted JSON lacks %s: %s", want, out)
		}
	}
	if strings.Contains(string(out), "localhost:8080") || strings.Contains(string(out), `"localhost"]`) {
		t.Errorf("the LAN quick start still names localhost: %s", out)
	}
}
