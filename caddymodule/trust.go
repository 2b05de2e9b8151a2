package caddymodule

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/caddy-idv/caddy-idv/token"
)

// discoveryRetry bounds how often a trusted issuer whose discovery failed is
// asked again, so that a dead issuer cannot be hammered through us.
const discoveryRetry = 10 * time.Second

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
	// The key set must outlive this request's context.
	keys := oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), t.client), jwksURI(p))
	t.verifier = oidc.NewVerifier(t.cfg.Issuer, keys, &oidc.Config{ClientID: t.cfg.Audience, Now: t.now, SupportedSigningAlgs: signingAlgs(p)})
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
