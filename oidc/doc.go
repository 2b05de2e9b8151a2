// Package oidc is caddy-idv's OpenID Connect provider (docs/reference.md,
// "OpenID Connect provider", and oidc/README.md): other
// applications send their users here to log in with the same QR / Mobile-ID
// login that protects Caddy routes, and receive ID tokens signed with the
// same storage-backed ES256 keys as the session tokens.
//
// It implements the authorization code flow of OpenID Connect Core 1.0
// (https://openid.net/specs/openid-connect-core-1_0.html#CodeFlowAuth) with
// PKCE (RFC 7636, S256 only), the discovery document of OpenID Connect
// Discovery 1.0 §4, refresh tokens with rotation and reuse detection
// (RFC 9700 §4.14.2), JWT access tokens (RFC 9068), the issuer parameter in
// authorization responses (RFC 9207) and RP-Initiated Logout 1.0.
//
// The package never reads cookies or renders the login itself: the browser's
// caddy-idv session, the login page and logout come from a [Host], which the
// idv Caddy handler implements. State shared between instances (codes,
// refresh tokens, used markers, revocations) goes through [store.Store] and
// [store.Revocations], so codes are single use across every instance that
// shares the store.
//
// Not implemented, on purpose: the implicit and hybrid flows, request
// objects, dynamic client registration, front- and back-channel logout and
// encrypted tokens.
package oidc
