package providers

import (
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// ResolveSecret replaces the global placeholders ({env.*}, {file.*}) in raw,
// the configured text of the secret option named option (client_secret,
// license_key, access_token), and trims surrounding white space. An empty
// result is an error that names the option and, when raw has placeholders,
// raw itself, never a value: `client_secret: {env.UQUDO_SECRET} is empty`.
// Unknown placeholders are left as they are, so a secret written literally
// may contain braces. The module prefixes the provider: return the error as
// it is.
func ResolveSecret(option, raw string) (string, error) {
	out := strings.TrimSpace(caddy.NewReplacer().ReplaceKnown(raw, ""))
	switch {
	case out != "":
		return out, nil
	case strings.TrimSpace(raw) == "":
		return "", fmt.Errorf("missing option %s", option)
	default: // only placeholders can make a non-blank raw empty
		return "", fmt.Errorf("%s: %s is empty", option, strings.TrimSpace(raw))
	}
}
