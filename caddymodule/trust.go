package caddymodule

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/caddy-idv/caddy-idv/token"
)

// discoveryRetry bounds how often a trusted issuer whose discovery failed is
// asked again, so that a dead issuer cannot be hammered through us.
const discoveryRetry = 10 * time.Second

// A trusted issuer's server is trusted to sign tokens, not to be
// well-behaved: what it answers is bounded in size and time, and no token a
// client sends can make us fetch its key set more than once per
// keysRefetch.
const (
	maxIssuerBody = 1 << 20
	keysRefetch   = 10 * time.Second
	issuerTimeout = 10 * time.Second
)

// newIssuerClient is the HTTP client for trusted issuers: a bounded time
// per call, no redirects, and bodies cut at maxIssuerBody (a discovery
// document or key set larger than that is refused, not read into memory).
func newIssuerClient() *http.Client {
	c := newProviderClient(issuerTimeout)
	c.Transport = limitedTransport{base: c.Transport, max: maxIssuerBody}
	return c
}

type limitedTransport struct {
	base http.RoundTripper
	max  int64
}

func (l limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > l.max {
		resp.Body.Close()
		return nil, fmt.Errorf("idv: trusted issuer: %s answered %d bytes, more than %d", r.URL.Host, resp.ContentLength, l.max)
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: l.max}
	return resp, nil
}

// limitedBody fails a read past its limit instead of truncating silently.
type limitedBody struct {
	io.ReadCloser
	left int64
}

var errIssuerBodyTooLarge = errors.New("idv: trusted issuer: answer too large")

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errIssuerBodyTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left <= 0 && err == nil {
		// Anything after the limit is refused.
		var one [1]byte
		if m, _ := b.ReadCloser.Read(one[:]); m > 0 {
			return n, errIssuerBodyTooLarge
		}
	}
	return n, err
}

// issuerKeys is a trusted issuer's key set (an oidc.KeySet). Unlike
// go-oidc's RemoteKeySet, which fetches the key set again for every token
// that fails to verify, it fetches for an unknown kid only, at most once
// per keysRefetch, and never for a token whose signature cannot be one of
// the issuer's algorithms (wrong alg, or a signature of the wrong size).
type issuerKeys struct {
	url    string
	client *http.Client
	now    func() time.Time
	algs   []string

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	lastFetch time.Time
}

func (k *issuerKeys) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	var algs []jose.SignatureAlgorithm
	for _, a := range k.algs {
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	jws, err := jose.ParseSignedCompact(raw, algs) // a JWT: compact serialization only
	if err != nil {
		return nil, fmt.Errorf("idv: trusted issuer: malformed token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("idv: trusted issuer: want exactly one signature")
	}
	sig := jws.Signatures[0]
	if !plausibleSignature(sig.Header.Algorithm, len(sig.Signature)) {
		return nil, fmt.Errorf("idv: trusted issuer: a %d-byte signature cannot be %s", len(sig.Signature), sig.Header.Algorithm)
	}
	kid := sig.Header.KeyID
	keys, known := k.cached(kid)
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	if known {
		// The key is there and the signature does not match it: a forgery
		// or a corrupted token, which a fresh key set would not change.
		return nil, errors.New("idv: trusted issuer: signature does not verify")
	}
	keys, err = k.refetch(ctx)
	if err != nil {
		return nil, err
	}
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	return nil, errors.New("idv: trusted issuer: signature does not verify")
}

// plausibleSignature reports whether a signature of n bytes can be alg's
// (RSA: at least 2048 bits; ECDSA: the curve's fixed size).
func plausibleSignature(alg string, n int) bool {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return n >= 256 && n <= 1024
	case "ES256":
		return n == 64
	case "ES384":
		return n == 96
	case "ES512":
		return n == 132
	case "EdDSA":
		return n == 64
	}
	return false
}

func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for i := range keys {
		if kid == "" || keys[i].KeyID == kid {
			if payload, err := jws.Verify(&keys[i]); err == nil {
				return payload, true
			}
		}
	}
	return nil, false
}

func (k *issuerKeys) cached(kid string) ([]jose.JSONWebKey, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	known := false
	for _, key := range k.keys {
		if kid != "" && key.KeyID == kid {
			known = true
		}
	}
	return k.keys, known
}

// refetch fetches the key set unless that was done less than keysRefetch
// ago (then the cached keys are all there is).
func (k *issuerKeys) refetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if !k.lastFetch.IsZero() && now.Sub(k.lastFetch) < keysRefetch {
		return k.keys, nil
	}
	k.lastFetch = now
	ctx, cancel := context.WithTimeout(ctx, issuerTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("idv: trusted issuer: key set: %w", err)
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("idv: trusted issuer: key set: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("idv: trusted issuer: key set: status %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, fmt.Errorf("idv: trusted issuer: key set: %w", err)
	}
	keys := set.Keys[:0]
	for _, key := range set.Keys {
		// Public keys only: a symmetric key in a key set would let
		// whoever can read the set sign tokens.
		if key.Valid() && key.IsPublic() && (key.Use == "" || key.Use == "sig") {
			keys = append(keys, key)
		}
	}
	k.keys = keys
	return keys, nil
}

// trustedIssuer verifies bearer tokens of another OpenID Connect issuer with
// go-oidc: discovery, the issuer's remote key set (cached, refetched for an
// unknown kid), signature, the algorithms the issuer announces (never none
// or HMAC), iss, aud and exp.
type trustedIssuer struct {
	cfg    TrustIssuer
	client *http.Client

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	lastTry  time.Time
	now      func() time.Time
}

func (t *trustedIssuer) get(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.verifier != nil {
		return t.verifier, nil
	}
	if now := t.now(); now.Sub(t.lastTry) < discoveryRetry {
		return nil, errors.New("idv: trusted issuer discovery failed recently")
	} else {
		t.lastTry = now
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, t.client), 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, t.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("idv: trusted issuer %s: %w", t.cfg.Issuer, err)
	}
	algs := signingAlgs(p)
	keys := &issuerKeys{url: jwksURI(p), client: t.client, now: t.now, algs: algs}
	t.verifier = oidc.NewVerifier(t.cfg.Issuer, keys, &oidc.Config{ClientID: t.cfg.Audience, Now: t.now, SupportedSigningAlgs: algs})
	return t.verifier, nil
}

func jwksURI(p *oidc.Provider) string {
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	_ = p.Claims(&meta)
	return meta.JWKSURI
}

// signingAlgs are the asymmetric algorithms the issuer announces.
func signingAlgs(p *oidc.Provider) []string {
	var meta struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	_ = p.Claims(&meta)
	var out []string
	for _, a := range meta.Algs {
		if a != "none" && !strings.HasPrefix(a, "HS") {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = []string{oidc.RS256}
	}
	return out
}

// verifyTrusted checks a bearer token that our own keys did not sign
// against the trusted issuer its iss names.
func (h *Handler) verifyTrusted(ctx context.Context, raw string) (*token.Session, error) {
	iss := unverifiedIssuer(raw)
	for _, t := range h.trusted {
		if t.cfg.Issuer != iss {
			continue
		}
		v, err := t.get(ctx)
		if err != nil {
			return nil, err
		}
		idt, err := v.Verify(ctx, raw)
		if err != nil {
			return nil, err
		}
		claims := map[string]any{}
		if err := idt.Claims(&claims); err != nil {
			return nil, err
		}
		return token.External(raw, t.cfg.Issuer, claims, idt.Expiry)
	}
	return nil, errors.New("idv: token from an issuer that is not trusted")
}

// unverifiedIssuer reads iss from a JWT's payload without checking
// anything: it only picks which trusted issuer will do the checking.
func unverifiedIssuer(raw string) string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || len(parts[1]) > 16<<10 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return ""
	}
	return c.Iss
}
