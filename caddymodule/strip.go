package caddymodule

import (
	"net/http"
	"slices"

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

// ServeHTTP deletes the headers and passes the request on. Names an idv
// handler has already handled for this request (deleted, then set from
// the session) are left alone: the Caddyfile puts this handler first, but
// a JSON configuration may order the two the other way.
func (s *StripHeaders) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	names := s.Headers
	if h, _ := caddyhttp.GetVar(r.Context(), handledVar).(*[]string); h != nil && len(*h) > 0 {
		handled := *h
		names = make([]string, 0, len(s.Headers))
		for _, n := range s.Headers {
			if !slices.ContainsFunc(handled, func(h string) bool { return sameHeader(h, n) }) {
				names = append(names, n)
			}
		}
	}
	stripHeaders(r, names)
	return next.ServeHTTP(w, r)
}

// handledVar is the request variable that lists the identity header names
// an idv handler has deleted from the request and then set from its
// session.
const handledVar = "idv.identity_headers"

// markHandled records that the names *names were deleted from r and set by
// an idv handler, so that a StripHeaders after it keeps the values. It
// stores the pointer: a slice in an interface would cost an allocation on
// every request.
func markHandled(r *http.Request, names *[]string) {
	if len(*names) == 0 {
		return
	}
	prev, _ := caddyhttp.GetVar(r.Context(), handledVar).(*[]string)
	if prev == nil || len(*prev) == 0 {
		// The common case, one idv handler: *names is never written to.
		caddyhttp.SetVar(r.Context(), handledVar, names)
		return
	}
	merged := append(slices.Clip(*prev), *names...)
	caddyhttp.SetVar(r.Context(), handledVar, &merged)
}

var _ caddyhttp.MiddlewareHandler = (*StripHeaders)(nil)
