package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	_ "github.com/caddy-idv/caddy-idv"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

var update = flag.Bool("update", false, "rewrite the adapt golden files")

func adapt(t *testing.T, file string) ([]byte, error) {
	t.Helper()
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": "Caddyfile"})
	return out, err
}

// TestAdaptGolden adapts every Caddyfile form to JSON and compares it with
// its golden file (go test -run TestAdaptGolden -update rewrites them).
func TestAdaptGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/adapt/*.caddyfile")
	if len(files) == 0 {
		t.Fatal("no adapt cases")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			out, err := adapt(t, f)
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, out, "", "\t"); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden := strings.TrimSuffix(f, ".caddyfile") + ".json"
			if *update {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Fatalf("adapted JSON differs from %s:\n%s", golden, pretty.String())
			}
		})
	}
}

// TestAdaptErrors checks that every mistake is reported with the file, the
// line and what is wrong (caddy validate prints the same error).
func TestAdaptErrors(t *testing.T) {
	cases := map[string]struct {
		line int
		want string
	}{
		"unknown-option":            {4, `unknown option "colour"`},
		"unknown-kind":              {3, `unknown kind "keycloak" (available: blockid, demo, marksign_mobileid, onekosmos_idv, uqudo)`},
		"bad-duration":              {5, `session lifetime: bad duration "forever"`},
		"no-provider":               {4, "at least one `provider <kind>` is required"},
		"duplicate-name":            {4, `the name "demo" is used twice`},
		"bad-provider-option":       {4, `provider demo: unknown option "usr" (known: user, lifetime, base_url, timeout, give_up, autostart, claims, label, description)`},
		"bad-accent":                {4, `accent "bright-blue": want a CSS colour`},
		"bad-languages":             {4, `languages: "1234" is not a language tag`},
		"bad-timeout":               {4, `timeout: bad duration "-5s"`},
		"bad-same-site":             {5, `same_site: "sometimes" must be lax, strict or none`},
		"bad-limit":                 {5, `limit per_address: "many" is not a positive count`},
		"short-ban":                 {5, `limit per_identity: bad ban time "1m" (a duration no shorter than the window)`},
		"bad-header":                {4, `header: "X User" is not a valid header name`},
		"idle-longer-than-lifetime": {7, "idle (2h0m0s) is longer than lifetime (1h0m0s)"},
		"bad-prefix":                {4, `prefix "auth": must be a path`},
		"bad-store":                 {4, "store: want `store redis <url>`"},
		"bad-store-option":          {5, `store: unknown option "encryption_passphrase"`},
		"store-without-key":         {6, "store: without redis it only takes encryption_key"},
		"http-issuer":               {5, `must use https (http is allowed only for localhost and 127.0.0.1)`},
		"client-without-redirect":   {8, `oidc client "app": needs at least one redirect_uri`},
		"duplicate-client":          {9, `oidc client "app": defined twice`},
		"short-client-secret":       {8, `oidc client "app": secret is 5 characters; use at least 16`},
		"bad-site":                  {4, `site: "https://app.example.com/path": want only scheme://host[:port]`},
		"bad-require-option":        {5, `require: unknown option "from" (known: issuer)`},
		"templates-missing":         {4, `templates "./no-such-templates": no such directory`},
		"templates-not-a-directory": {7, `templates "testdata/invalid/templates-not-a-directory.caddyfile": not a directory`},
	}
	files, _ := filepath.Glob("testdata/invalid/*.caddyfile")
	if len(files) != len(cases) {
		t.Fatalf("%d invalid files, %d cases", len(files), len(cases))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".caddyfile")
		tc, ok := cases[name]
		if !ok {
			t.Fatalf("no case for %s", f)
		}
		t.Run(name, func(t *testing.T) {
			_, err := adapt(t, f)
			if err == nil {
				t.Fatal("adapted without error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not say %q", msg, tc.want)
			}
			if !strings.Contains(msg, "Caddyfile:"+strconv.Itoa(tc.line)) {
				t.Errorf("error %q does not name Caddyfile:%d", msg, tc.line)
			}
		})
	}
}
