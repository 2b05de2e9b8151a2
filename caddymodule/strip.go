package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(StripHeaders{})
}

// StripHeaders deletes identity headers, in every spelling, from every
// request it sees, headers and trailers. The Caddyfile puts one in front
// of an `idv <matcher>` that has `header` rules, for every request of the
// site: requests outside the matcher never reach the idv handler, yet the
// upstream may still trust a header of that name (JSON module
// http.handlers.idv_strip_headers).
type StripHeaders struct {
	// Headers are the header names to delete.
	Headers []string `json:"headers,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (StripHeaders) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.idv_strip_headers",
		New: func() caddy.Module { return new(StripHeaders) },
	}
}

// ServeHTTP deletes the headers and passes the request on.
func (s *StripHeaders) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	stripHeaders(r, s.Headers)
	return next.ServeHTTP(w, r)
}

var _ caddyhttp.MiddlewareHandler = (*StripHeaders)(nil)
