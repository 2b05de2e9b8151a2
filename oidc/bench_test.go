package oidc_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// BenchmarkCodeExchange measures code exchanges at the token endpoint
// (authenticate, consume the code, record the client of the session, sign
// an ES256 access token and an ID token) through ServeHTTP, with an RS256
// ID token (the default) and with an ES256 one. Codes are created outside
// the timer.
func BenchmarkCodeExchange(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(alg, func(b *testing.B) { benchmarkCodeExchange(b, alg) })
	}
}

func benchmarkCodeExchange(b *testing.B, alg string) {
	e := newEnvWith(b, func(o *optionsHook) {
		for i := range o.cfg.Clients {
			if o.cfg.Clients[i].ID == "spa" {
				o.cfg.Clients[i].IDTokenAlg = alg
			}
		}
	})
	e.login(time.Minute, "demo")
	forms := make([]string, b.N)
	for i := range forms {
		forms[i] = url.Values{"grant_type": {"authorization_code"}, "code": {e.codeFor("spa", spaRedirect, "openid profile", nil)},
			"redirect_uri": {spaRedirect}, "client_id": {"spa"}, "code_verifier": {verifier}}.Encode()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodPost, "/.idv/oidc/token", strings.NewReader(forms[i]))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		e.provider.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkDiscoveryAndJWKS measures one discovery and one JWKS answer, and
// the same with If-None-Match (304).
func BenchmarkDiscoveryAndJWKS(b *testing.B) {
	e := newEnv(b)
	get := func(path, etag string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		rec := httptest.NewRecorder()
		e.provider.ServeHTTP(rec, req)
		return rec
	}
	discETag := get("/.well-known/openid-configuration", "").Header().Get("ETag")
	jwksETag := get("/.idv/oidc/jwks", "").Header().Get("ETag")
	b.Run("200", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if get("/.well-known/openid-configuration", "").Code != 200 || get("/.idv/oidc/jwks", "").Code != 200 {
				b.Fatal("status")
			}
		}
	})
	b.Run("304", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if get("/.well-known/openid-configuration", discETag).Code != 304 || get("/.idv/oidc/jwks", jwksETag).Code != 304 {
				b.Fatal("status")
			}
		}
	})
}
