// Package oidc is caddy-idv's OpenID Connect provider (docs/reference.md,
// "OpenID Connect provider", and oidc/README.md): other
// applications send their users here to log in with the same QR / Mobile-ID
// login that protects Caddy routes, and receive ID tokens signed with the
// same storage-backed key ring as the session tokens (RS256 by default,
// ES256 per client).
//
// It implements the authorization code flow of OpenID Connect Core 1.0
// (https://openid.net/specs/openid-connect-core-1_0.html#CodeFlowAuth) with
// PKCE (RFC 7636, S256 only) and loopback redirect URIs on any port (RFC
// 8252 §7.3), the discovery document of OpenID Connect Discovery 1.0 §4 and
// the same metadata for RFC 8414, refresh tokens with rotation and reuse
// detection with a grace for concurrent refreshes (RFC 9700 §4.14.2), JWT
// access tokens (RFC 9068), token revocation (RFC 7009) and introspection
// (RFC 7662), the issuer parameter in authorization responses (RFC 9207),
// RP-Initiated Logout 1.0 and Back-Channel Logout 1.0.
//
// The package never reads cookies or renders the login itself: the browser's
// caddy-idv session, the login page and logout come from a [Host], which the
// idv Caddy handler implements. State shared between instances (codes,
// refresh tokens, used markers, revocations) goes through [store.Store] and
// [store.Revocations], so codes are single use across every instance that
// shares the store.
//
// Not implemented, on purpose: the implicit and hybrid flows, request
// objects, dynamic client registration, front-channel logout, session
// management (check_session_iframe) and encrypted tokens.
package oidc
