package caddymodule_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
)

// TestProvisionErrorsNameTheOption starts the real binary with
// configurations that adapt but cannot start, and checks that Caddy exits
// with an error naming the option (and the provider, the placeholder or the
// address), never a secret's value. Mistakes the Caddyfile can see are
// refused with their line by TestAdaptErrors.
func TestProvisionErrorsNameTheOption(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-templates")
	redisPort := e2e.FreePort(t) // nothing listens there
	cases := []struct {
		name  string
		site  string
		env   []string
		want  []string
		never []string
	}{{
		name: "templates placeholder names no directory",
		site: `idv {
			provider demo
			templates {env.IDV_TEMPLATES}
		}`,
		env:  []string{"IDV_TEMPLATES=" + missing},
		want: []string{fmt.Sprintf(`idv: templates "{env.IDV_TEMPLATES}" (%q once its placeholders are replaced): no such directory`, missing)},
	}, {
		name: "uqudo client_secret empty",
		site: `idv {
			provider uqudo {
				client_id     app
				client_secret {env.UQUDO_SECRET}
			}
		}`,
		env:  []string{"UQUDO_SECRET="},
		want: []string{`idv: provider uqudo: client_secret: {env.UQUDO_SECRET} is empty`},
	}, {
		name: "marksign access_token empty",
		site: `idv {
			provider marksign_mobileid mobile {
				access_token {env.MARKSIGN_TOKEN}
			}
		}`,
		env:  []string{"MARKSIGN_TOKEN=  "},
		want: []string{`idv: provider mobile: access_token: {env.MARKSIGN_TOKEN} is empty`},
	}, {
		name: "blockid license_key empty",
		site: `idv {
			provider blockid {
				dns         acme.1kosmos.net
				community   default
				license_key {env.LICENSE}
			}
		}`,
		env:  []string{"LICENSE="},
		want: []string{`idv: provider blockid: license_key: {env.LICENSE} is empty`},
	}, {
		name: "redis cannot be reached",
		site: fmt.Sprintf(`idv {
			provider demo
			store redis redis://idv:s3cret-pass@127.0.0.1:%d/0
		}`, redisPort),
		want:  []string{fmt.Sprintf(`idv: store redis 127.0.0.1:%d cannot be reached`, redisPort)},
		never: []string{"s3cret-pass"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			logs := e2e.StartExpectFailure(t, tc.site, e2e.Options{Env: tc.env})
			plain := strings.ReplaceAll(logs, `\"`, `"`) // the JSON log escapes quotes
			for _, w := range tc.want {
				if !strings.Contains(plain, w) {
					t.Errorf("the log does not say %s", w)
				}
			}
			for _, n := range tc.never {
				if strings.Contains(logs, n) {
					t.Errorf("the log holds %q", n)
				}
			}
			if t.Failed() {
				t.Logf("log:\n%s", logs)
			}
		})
	}
}
