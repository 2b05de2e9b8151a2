// Command caddy is a Caddy binary with Caddy's standard modules and the idv
// module, so that `go run ./cmd/caddy run --config Caddyfile.example` works
// from a fresh clone. Operators who build their own Caddy use
// `xcaddy build --with github.com/caddy-idv/caddy-idv` instead.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-idv/caddy-idv"
)

func main() {
	caddycmd.Main()
}
