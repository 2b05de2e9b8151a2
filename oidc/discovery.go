package oidc

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/caddy-idv/caddy-idv/token"
)

// Scopes the provider knows; others are ignored (RFC 6749 §3.3 lets the
// server grant less than was asked).
const (
	scopeOpenID  = "openid"
	scopeProfile = "profile"
	scopeEmail   = "email"
	scopeOffline = "offline_access"
)

// knownScopes are the scopes the provider grants, in the order grants list
// them.
var knownScopes = []string{scopeOpenID, scopeProfile, scopeEmail, scopeOffline}

// profileClaims are the standard claims of the profile scope (OpenID Connect
// Core §5.4). Any other non-reserved claim of the session is a claim the
// operator configured for the provider and is released with profile too.
var profileClaims = []string{
	"name", "given_name", "family_name", "middle_name", "nickname", "preferred_username",
	"profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at",
}

var emailClaims = []string{"email", "email_verified"}

// buildDiscovery renders the discovery document once (OpenID Connect
// Discovery 1.0 §3): it lists exactly what the provider supports.
// Back-channel logout (OpenID Connect Back-Channel Logout 1.0 §2.1) is
// offered with sid in every logout token.
//
// The same document answers RFC 8414 metadata requests: every member it
// defines means the same in both, and the OpenID Connect ones are
// extensions there (RFC 8414 §2).
func (p *Provider) buildDiscovery(pairwise bool) error {
	acrs := slices.Clone(p.host.ACRValues())
	slices.Sort(acrs)
	acrs = slices.Compact(acrs)
	if acrs == nil {
		acrs = []string{}
	}
	subjects := []string{SubjectPublic}
	if pairwise {
		subjects = append(subjects, SubjectPairwise)
	}
	claims := append([]string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "azp", "at_hash"}, profileClaims...)
	claims = append(claims, emailClaims...)
	doc := map[string]any{
		"issuer":                                         p.issuer,
		"authorization_endpoint":                         p.endpoint("authorize"),
		"token_endpoint":                                 p.endpoint("token"),
		"userinfo_endpoint":                              p.endpoint("userinfo"),
		"jwks_uri":                                       p.endpoint("jwks"),
		"end_session_endpoint":                           p.endpoint("logout"),
		"response_types_supported":                       []string{"code"},
		"response_modes_supported":                       []string{"query"},
		"grant_types_supported":                          []string{"authorization_code", "refresh_token"},
		"subject_types_supported":                        subjects,
		"id_token_signing_alg_values_supported":          []string{token.RS256, token.ES256},
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint":                            p.endpoint("revoke"),
		"revocation_endpoint_auth_methods_supported":     []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint":                         p.endpoint("introspect"),
		"introspection_endpoint_auth_methods_supported":  []string{"client_secret_basic", "client_secret_post"},
		"backchannel_logout_supported":                   true,
		"backchannel_logout_session_supported":           true,
		"acr_values_supported":                           acrs,
		"code_challenge_methods_supported":               []string{"S256"},
		"scopes_supported":                               []string{scopeOpenID, scopeProfile, scopeEmail, scopeOffline},
		"claims_supported":                               claims,
		"claim_types_supported":                          []string{"normal"},
		"prompt_values_supported":                        []string{"none", "login"},
		"claims_parameter_supported":                     false,
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
		"authorization_response_iss_parameter_supported": true,
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("oidc: discovery: %w", err)
	}
	sum := sha256.Sum256(body)
	p.discoveryBody = body
	p.discoveryETag = `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
	return nil
}

// serveDiscovery answers the discovery document (OpenID Connect Discovery
// 1.0 §4) and the authorization server metadata (RFC 8414 §3), cacheable
// for five minutes.
func (p *Provider) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	writeCached(w, r, p.discoveryBody, p.discoveryETag)
}

// serveJWKS answers the public signing keys (RFC 7517 §5): the ES256 ones,
// which also sign session and access tokens, and the RS256 ones.
func (p *Provider) serveJWKS(w http.ResponseWriter, r *http.Request) {
	body, etag := p.tokens.Keys().JWKS()
	writeCached(w, r, body, etag)
}
