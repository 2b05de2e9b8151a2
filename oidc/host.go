package oidc

import (
	"net/http"

	"github.com/caddy-idv/caddy-idv/token"
)

// Host is what the idv module gives the OpenID Connect provider: the
// browser's caddy-idv session, and the way to start and end one. The OIDC
// provider never reads cookies or renders the login itself.
type Host interface {
	// Session returns the verified caddy-idv session of r's browser, or nil.
	Session(r *http.Request) *token.Session
	// LoginURL is the local URL of the login page that returns the browser
	// to returnTo (a local path and query) once logged in. provider, when
	// not empty, limits the choice to that provider (acr_values).
	LoginURL(returnTo, provider string) string
	// EndSession revokes r's caddy-idv session, if any, and clears its
	// cookie on w (RP-initiated logout ends the caddy-idv session too). The
	// provider then ends the tokens issued from it (Provider.EndSession);
	// the host calls Provider.EndSession itself when a session ends
	// another way (its own logout endpoint).
	EndSession(w http.ResponseWriter, r *http.Request) error
	// ProviderForACR maps an acr value to the name of a configured provider
	// that yields it ("" and false when none does). Providers' acr values
	// are the ones their sessions carry (for example "urn:caddy-idv:demo").
	ProviderForACR(acr string) (provider string, ok bool)
	// ACRValues are the acr values ProviderForACR knows, for discovery's
	// acr_values_supported.
	ACRValues() []string
	// RenderError shows a readable error page (unknown client, unregistered
	// redirect URI: errors that must never redirect).
	RenderError(w http.ResponseWriter, r *http.Request, status int, message string)
}
