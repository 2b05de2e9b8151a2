// Package caddyidv registers the caddy-idv Caddy modules: the `idv` HTTP
// handler and every provider kind. It is what
// `xcaddy build --with github.com/caddy-idv/caddy-idv` imports.
package caddyidv

import (
	_ "github.com/caddy-idv/caddy-idv/caddymodule"
	_ "github.com/caddy-idv/caddy-idv/providers/blockid"
	_ "github.com/caddy-idv/caddy-idv/providers/demo"
	_ "github.com/caddy-idv/caddy-idv/providers/marksign"
	_ "github.com/caddy-idv/caddy-idv/providers/onekosmosidv"
	_ "github.com/caddy-idv/caddy-idv/providers/uqudo"
)
