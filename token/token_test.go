package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-idv/caddy-idv/store"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const site = "https://app.example"

type fixture struct {
	clk     *clock
	st      store.Store
	svc     *Service
	ss      *Sessions
	revoked map[string]bool
}

var testSite = Site{Origin: site, Providers: []SiteProvider{{Name: "demo", Kind: "demo"}}}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{clk: &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}, revoked: map[string]bool{}}
	f.st = store.NewMemory(f.clk.now)
	keys := NewKeyring(f.st, 8*time.Hour, f.clk.now)
	if err := keys.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	f.svc = NewService(keys, func(sid string) bool { mu.Lock(); defer mu.Unlock(); return f.revoked[sid] }, f.clk.now, 100)
	f.ss = f.svc.Sessions(testSite, 8*time.Hour, 0)
	return f
}

func (f *fixture) claims() jwt.MapClaims {
	now := f.clk.now()
	return jwt.MapClaims{
		"iss": site, "sub": "demo-abc", "aud": site, "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(time.Hour).Unix(), "jti": "j1", "sid": "s1", "auth_time": now.Unix(),
		"acr": "urn:caddy-idv:demo", "amr": []string{"swk", "user"}, "idv": "demo", "name": "Ada Lovelace",
		"groups": []string{"admin", "ops"},
	}
}

func (f *fixture) sign(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	raw, err := f.svc.sign(c, TypSession)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestVerifyRoundTrip(t *testing.T) {
	f := newFixture(t)
	raw := f.sign(t, f.claims())
	for i := 0; i < 2; i++ { // the second answer comes from the cache
		s, err := f.ss.Verify(context.Background(), raw)
		if err != nil {
			t.Fatalf("verify #%d: %v", i, err)
		}
		if s.Subject != "demo-abc" || s.SID != "s1" || s.Provider != "demo" || s.ACR != "urn:caddy-idv:demo" {
			t.Fatalf("session = %+v", s)
		}
		if got := s.Values["groups"]; got != "admin,ops" {
			t.Errorf("groups = %q", got)
		}
		if got := s.Values["name"]; got != "Ada Lovelace" {
			t.Errorf("name = %q", got)
		}
	}
	if f.svc.cache.len() != 1 {
		t.Errorf("cache has %d entries", f.svc.cache.len())
	}
}

// forge builds a token by hand, for the attacks the parser must refuse.
func forge(header, claims map[string]any, sig []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestVerifyRefusesAttacks(t *testing.T) {
	f := newFixture(t)
	good := f.sign(t, f.claims())
	k, _ := f.svc.keys.signer(ES256)
	ecKey := k.private.(*ecdsa.PrivateKey)
	pubDER, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := f.svc.keys.signer(RS256)

	parts := strings.Split(good, ".")
	tamperedClaims := f.claims()
	tamperedClaims["sub"] = "someone-else"
	tc, _ := json.Marshal(tamperedClaims)

	cases := map[string]func() string{
		"crit header naming an extension": func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodES256, f.claims())
			tok.Header["kid"], tok.Header["typ"], tok.Header["crit"], tok.Header["exp-ext"] = k.kid, TypSession, []string{"exp-ext"}, true
			s, _ := tok.SignedString(ecKey)
			return s
		},
		"alg none": func() string {
			return forge(map[string]any{"alg": "none", "kid": k.kid}, f.claims(), nil)
		},
		"alg none without signature part": func() string {
			s := forge(map[string]any{"alg": "none", "kid": k.kid}, f.claims(), nil)
			return strings.TrimSuffix(s, ".")
		},
		// CVE-2015-9235 class: an HMAC keyed with the public key.
		"HS256 with the public key": func() string {
			t := jwt.NewWithClaims(jwt.SigningMethodHS256, f.claims())
			t.Header["kid"] = k.kid
			s, _ := t.SignedString(pubDER)
			return s
		},
		"tampered payload": func() string {
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(tc) + "." + parts[2]
		},
		"signature of another key, same kid": func() string {
			t := jwt.NewWithClaims(jwt.SigningMethodES256, f.claims())
			t.Header["kid"] = k.kid
			s, _ := t.SignedString(other)
			return s
		},
		"unknown kid": func() string {
			t := jwt.NewWithClaims(jwt.SigningMethodES256, f.claims())
			t.Header["kid"] = "nope"
			s, _ := t.SignedString(other)
			return s
		},
		"no kid": func() string {
			t := jwt.NewWithClaims(jwt.SigningMethodES256, f.claims())
			s, _ := t.SignedString(k.private)
			return s
		},
		// Session tokens are ES256 only, even with the ring's own RSA key.
		"RS256 with the ring's RSA key": func() string {
			c, _ := f.svc.signWith(f.claims(), TypSession, RS256)
			return c
		},
		"RS256 header with the EC key's kid": func() string {
			t := jwt.NewWithClaims(jwt.SigningMethodRS256, f.claims())
			t.Header["kid"] = k.kid
			t.Header["typ"] = TypSession
			s, _ := t.SignedString(rk.private)
			return s
		},
		"PS256 with the ring's RSA key": func() string {
			t := jwt.NewWithClaims(jwt.SigningMethodPS256, f.claims())
			t.Header["kid"] = rk.kid
			t.Header["typ"] = TypSession
			s, _ := t.SignedString(rk.private)
			return s
		},
		"ES384": func() string {
			p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			t := jwt.NewWithClaims(jwt.SigningMethodES384, f.claims())
			t.Header["kid"] = k.kid
			s, _ := t.SignedString(p384)
			return s
		},
		"expired":       func() string { c := f.claims(); c["exp"] = f.clk.now().Add(-time.Hour).Unix(); return f.sign(t, c) },
		"no exp":        func() string { c := f.claims(); delete(c, "exp"); return f.sign(t, c) },
		"not yet valid": func() string { c := f.claims(); c["nbf"] = f.clk.now().Add(time.Hour).Unix(); return f.sign(t, c) },
		"issued in future": func() string {
			c := f.claims()
			c["iat"] = f.clk.now().Add(time.Hour).Unix()
			return f.sign(t, c)
		},
		"wrong audience": func() string { c := f.claims(); c["aud"] = "https://other.example"; return f.sign(t, c) },
		"wrong issuer":   func() string { c := f.claims(); c["iss"] = "https://evil.example"; return f.sign(t, c) },
		"no sid":         func() string { c := f.claims(); delete(c, "sid"); return f.sign(t, c) },
		"garbage":        func() string { return "not.a.token" },
		"empty":          func() string { return "" },
		"huge":           func() string { return strings.Repeat("a", maxTokenSize+1) },
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := f.ss.Verify(context.Background(), mk()); !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestCacheHitStillChecksRevocationExpiryAndAudience(t *testing.T) {
	f := newFixture(t)
	raw := f.sign(t, f.claims())
	ctx := context.Background()
	if _, err := f.ss.Verify(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Sessions(Site{Origin: "https://other.example", Providers: testSite.Providers}, time.Hour, 0).Verify(ctx, raw); !errors.Is(err, ErrInvalid) {
		t.Fatalf("other audience on a cache hit: %v", err)
	}
	f.revoked["s1"] = true
	if _, err := f.ss.Verify(ctx, raw); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked on a cache hit: %v", err)
	}
	f.revoked["s1"] = false
	f.clk.add(2 * time.Hour)
	if _, err := f.ss.Verify(ctx, raw); !errors.Is(err, ErrInvalid) {
		t.Fatalf("expired on a cache hit: %v", err)
	}
}

func TestCacheIsBounded(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 1000; i++ {
		c := f.claims()
		c["jti"] = "j" + string(rune('a'+i%26)) + time.Duration(i).String()
		if _, err := f.ss.Verify(context.Background(), f.sign(t, c)); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.svc.cache.len(); n > 100 {
		t.Fatalf("cache grew to %d entries, bound is 100", n)
	}
}

func TestIssuerDomain(t *testing.T) {
	e := Site{Domain: "example.com", Origin: "https://app.example.com"}
	for iss, ok := range map[string]bool{
		"https://example.com": true, "https://app.example.com": true, "https://app.example.com:8443": true,
		DefaultIssuer: true, "https://evilexample.com": false, "https://example.com.evil.net": false, "example.com": false,
		"https://user@evil.net#.example.com": false, "javascript://example.com": false,
	} {
		if e.issuerOK(iss) != ok {
			t.Errorf("issuerOK(%q) = %v", iss, !ok)
		}
	}
}

func TestKeysPersistAndRotate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k1, _ := f.svc.keys.signer(ES256)
	r1, _ := f.svc.keys.signer(RS256)

	// A second instance on the same store signs with the same key.
	keys2 := NewKeyring(f.st, 8*time.Hour, f.clk.now)
	if err := keys2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	k2, _ := keys2.signer(ES256)
	r2, _ := keys2.signer(RS256)
	if k1.kid != k2.kid || r1.kid != r2.kid {
		t.Fatalf("instances disagree on the signing keys: %s vs %s, %s vs %s", k1.kid, k2.kid, r1.kid, r2.kid)
	}

	// Past RotateEvery a new key signs; the old one stays published and
	// accepted until its tokens have expired.
	f.clk.add(RotateEvery + time.Minute)
	if err := f.svc.keys.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	k3, _ := f.svc.keys.signer(ES256)
	r3, _ := f.svc.keys.signer(RS256)
	if k3.kid == k1.kid || r3.kid == r1.kid {
		t.Fatal("signing keys did not rotate")
	}
	jwks, _ := f.svc.keys.JWKS()
	for _, kid := range []string{k1.kid, k3.kid, r1.kid, r3.kid} {
		if !strings.Contains(string(jwks), kid) {
			t.Fatalf("JWKS must publish old and new keys of both algorithms: %s", jwks)
		}
	}
	for _, kid := range []string{k1.kid, r1.kid} {
		if _, err := f.svc.keys.publicKey(ctx, kid); err != nil {
			t.Fatalf("retired key no longer accepted: %v", err)
		}
	}
	// Once the retired key's last token has expired it is gone.
	f.clk.add(8*time.Hour + 2*time.Hour)
	if err := f.svc.keys.Load(ctx); err != nil {
		t.Fatal(err)
	}
	jwks, _ = f.svc.keys.JWKS()
	if strings.Contains(string(jwks), k1.kid) || strings.Contains(string(jwks), r1.kid) {
		t.Fatal("expired key still published")
	}
}

// A key ring stored before RS256 existed (ES256 keys only, under the same
// store key) loads unchanged and gains an RSA key beside them: tokens signed
// before keep verifying, and the ES256 signing key stays the same.
func TestECOnlyRingGainsRSAKeyWithoutInvalidatingAnything(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	st := store.NewMemory(clk.now)
	ctx := context.Background()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(priv)
	kid := thumbprint(&priv.PublicKey)
	created := clk.now().Add(-24 * time.Hour)
	// The JSON the previous version wrote.
	old := `[{"kid":"` + kid + `","der":"` + base64.StdEncoding.EncodeToString(der) + `","created":"` + created.Format(time.RFC3339) +
		`","retire":"` + created.Add(RotateEvery).Format(time.RFC3339) + `","expire":"` + created.Add(RotateEvery+9*time.Hour).Format(time.RFC3339) + `"}]`
	if err := st.Set(ctx, keysKey, []byte(old), 0); err != nil {
		t.Fatal(err)
	}
	// A session token the previous version signed with it.
	c := jwt.MapClaims{"iss": site, "sub": "u", "aud": site, "iat": clk.now().Unix(), "exp": clk.now().Add(time.Hour).Unix(),
		"jti": "j", "sid": "s", "idv": "demo"}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"], tok.Header["typ"] = kid, TypSession
	raw, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}

	keys := NewKeyring(st, 8*time.Hour, clk.now)
	if err := keys.Load(ctx); err != nil {
		t.Fatal(err)
	}
	svc := NewService(keys, nil, clk.now, 10)
	if _, err := svc.Sessions(testSite, 8*time.Hour, 0).Verify(ctx, raw); err != nil {
		t.Fatalf("a token of the old ring: %v", err)
	}
	if k, _ := keys.signer(ES256); k == nil || k.kid != kid {
		t.Fatalf("the ES256 signing key changed")
	}
	rk, err := keys.signer(RS256)
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := st.Get(ctx, keysKey); string(raw) != old {
		t.Fatalf("the ES256 keys were rewritten: %s", raw)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	jwks, _ := keys.JWKS()
	if err := json.Unmarshal(jwks, &set); err != nil || len(set.Keys) != 2 {
		t.Fatalf("JWKS %s", jwks)
	}
	seen := map[string]bool{}
	for _, k := range set.Keys {
		seen[k["kty"]+" "+k["alg"]+" "+k["kid"]] = true
		if k["kty"] == "RSA" && (k["n"] == "" || k["e"] != "AQAB" || k["kid"] != rk.kid) {
			t.Errorf("RSA JWK %v", k)
		}
	}
	if !seen["EC ES256 "+kid] || !seen["RSA RS256 "+rk.kid] {
		t.Fatalf("JWKS keys %v", seen)
	}
	// The RSA key's kid is its RFC 7638 thumbprint.
	if rk.kid != thumbprint(rk.public) {
		t.Error("RSA kid is not its thumbprint")
	}
	// An ID token signed with it verifies as a hint, and only with RS256.
	g := Grant{Issuer: site, ClientID: "c", Subject: "u", SID: "s"}
	id, err := svc.IssueID(g, "", "at", time.Minute, RS256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.VerifyIDTokenHint(ctx, id, site); err != nil {
		t.Fatalf("RS256 ID token: %v", err)
	}
}

// at_hash uses the hash of the ID token's algorithm (OpenID Connect Core
// §3.1.3.6): SHA-256 for both ES256 and RS256.
func TestAtHashFollowsAlgorithm(t *testing.T) {
	f := newFixture(t)
	g := Grant{Issuer: site, ClientID: "c", Subject: "u", SID: "s"}
	sum := sha256.Sum256([]byte("the-access-token"))
	want := base64.RawURLEncoding.EncodeToString(sum[:16])
	for _, alg := range []string{ES256, RS256} {
		raw, err := f.svc.IssueID(g, "", "the-access-token", time.Minute, alg)
		if err != nil {
			t.Fatal(err)
		}
		c, err := f.svc.parse(context.Background(), raw, check{typ: TypID, algs: []string{alg}})
		if err != nil {
			t.Fatal(err)
		}
		if c["at_hash"] != want {
			t.Errorf("%s at_hash %v, want %s", alg, c["at_hash"], want)
		}
	}
	if _, err := f.svc.IssueID(g, "", "x", time.Minute, "HS256"); err == nil {
		t.Error("IssueID signed with HS256")
	}
}

func FuzzVerify(f *testing.F) {
	fx := newFixture(&testing.T{})
	f.Add(fx.sign(&testing.T{}, fx.claims()))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, raw string) {
		s, err := fx.ss.Verify(context.Background(), raw)
		if err == nil && s.Subject == "" {
			t.Fatal("verified a token without a subject")
		}
	})
}
