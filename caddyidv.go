// Package caddyidv registers the caddy-idv Caddy modules: the `idv` HTTP
// handler and every provider kind. It is what
// `xcaddy build --with github.com/caddy-idv/caddy-idv` imports.
package caddyidv

import (
	"github.com/caddy-idv/caddy-idv/caddymodule"
	_ "github.com/caddy-idv/caddy-idv/providers/blockid"
	_ "github.com/caddy-idv/caddy-idv/providers/demo"
	_ "github.com/caddy-idv/caddy-idv/providers/marksign"
	_ "github.com/caddy-idv/caddy-idv/providers/onekosmosidv"
	_ "github.com/caddy-idv/caddy-idv/providers/uqudo"
)

// Version is the version of caddy-idv, without the leading "v" of its Go
// module tag. A "-dev" suffix marks a tree between releases; CHANGELOG.md's
// "Unreleased" section lists what it adds.
//
// A Caddy binary reports the version of the module it was built with in
// `caddy list-modules --versions` and `caddy build-info`: that is the Go
// module version (v0.1.0 for a tagged release, the version given to xcaddy
// for a local tree, see scripts/xcaddy-build.sh), not this constant.
const Version = "0.1.0-dev"

// The handler logs the version at provision; it cannot import this package
// (this package imports it), so the version is handed down.
func init() { caddymodule.Version = Version }
