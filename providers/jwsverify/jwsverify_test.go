package jwsverify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-idv/caddy-idv/store"
)

var now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

func newValidator(t *testing.T, alg string, pub any) *Validator {
	t.Helper()
	return &Validator{
		Algorithm: alg, Keys: StaticKeys{"k1": pub}, Issuer: "https://issuer.example", Audience: "client-1",
		Store: store.NewMemory(clock), Namespace: "test", Now: clock,
	}
}

func claims(jti string) jwt.MapClaims {
	return jwt.MapClaims{"iss": "https://issuer.example", "aud": "client-1", "jti": jti,
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(), "sub": "p1"}
}

func sign(t *testing.T, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestValidate(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaPubDER := x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	cases := []struct {
		name    string
		alg     string
		pub     any
		token   func() string
		session string
		want    error
	}{
		{"valid ES256", "ES256", &ec.PublicKey, func() string { return sign(t, jwt.SigningMethodES256, ec, "k1", claims("s1")) }, "s1", nil},
		{"valid RS256", "RS256", &rsaKey.PublicKey, func() string { return sign(t, jwt.SigningMethodRS256, rsaKey, "k1", claims("s1")) }, "s1", nil},
		{"alg none", "ES256", &ec.PublicKey, func() string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims("s1")).SignedString(jwt.UnsafeAllowNoneSignatureType)
			return s
		}, "s1", ErrAlgorithm},
		// alg confusion: HS256 keyed with the RSA public key.
		{"HS256 keyed with the public key", "RS256", &rsaKey.PublicKey, func() string { return sign(t, jwt.SigningMethodHS256, rsaPubDER, "k1", claims("s1")) }, "s1", ErrAlgorithm},
		{"RS256 when ES256 is pinned", "ES256", &ec.PublicKey, func() string { return sign(t, jwt.SigningMethodRS256, rsaKey, "k1", claims("s1")) }, "s1", ErrAlgorithm},
		{"wrong key", "ES256", &ec.PublicKey, func() string { return sign(t, jwt.SigningMethodES256, other, "k1", claims("s1")) }, "s1", ErrSignature},
		{"unknown kid", "ES256", &ec.PublicKey, func() string { return sign(t, jwt.SigningMethodES256, ec, "k2", claims("s1")) }, "s1", ErrKey},
		{"no kid", "ES256", &ec.PublicKey, func() string { return sign(t, jwt.SigningMethodES256, ec, "", claims("s1")) }, "s1", ErrKey},
		{"crit header naming an extension", "ES256", &ec.PublicKey, func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims("s1"))
			tok.Header["kid"], tok.Header["crit"], tok.Header["exp-ext"] = "k1", []string{"exp-ext"}, true
			s, _ := tok.SignedString(ec)
			return s
		}, "s1", ErrMalformed},
		{"jti is another session", "ES256", &ec.PublicKey, func() string { return sign(t, jwt.SigningMethodES256, ec, "k1", claims("s2")) }, "s1", ErrSession},
		{"expired", "ES256", &ec.PublicKey, func() string {
			c := claims("s1")
			c["exp"] = now.Add(-time.Hour).Unix()
			return sign(t, jwt.SigningMethodES256, ec, "k1", c)
		}, "s1", ErrExpired},
		{"issued in the future", "ES256", &ec.PublicKey, func() string {
			c := claims("s1")
			c["iat"] = now.Add(time.Hour).Unix()
			return sign(t, jwt.SigningMethodES256, ec, "k1", c)
		}, "s1", ErrClaims},
		{"wrong audience", "ES256", &ec.PublicKey, func() string {
			c := claims("s1")
			c["aud"] = "client-2"
			return sign(t, jwt.SigningMethodES256, ec, "k1", c)
		}, "s1", ErrClaims},
		{"wrong issuer", "ES256", &ec.PublicKey, func() string {
			c := claims("s1")
			c["iss"] = "https://evil.example"
			return sign(t, jwt.SigningMethodES256, ec, "k1", c)
		}, "s1", ErrClaims},
		{"not a JWS", "ES256", &ec.PublicKey, func() string { return "hello" }, "s1", ErrMalformed},
		{"bad header", "ES256", &ec.PublicKey, func() string { return "!!!.e30.sig" }, "s1", ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newValidator(t, tc.alg, tc.pub)
			_, err := v.Validate(context.Background(), tc.token(), tc.session)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestValidateConsumesJTIOnce(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v := newValidator(t, "ES256", &ec.PublicKey)
	tok := sign(t, jwt.SigningMethodES256, ec, "k1", claims("s1"))
	var ok, replay atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.Validate(context.Background(), tok, "s1")
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrReplay):
				replay.Add(1)
			default:
				t.Errorf("unexpected error %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || replay.Load() != 19 {
		t.Fatalf("accepted %d times, replays %d", ok.Load(), replay.Load())
	}
}

func FuzzValidate(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good, _ := func() (string, error) {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims("s1"))
		tok.Header["kid"] = "k1"
		return tok.SignedString(ec)
	}()
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("..")
	f.Fuzz(func(t *testing.T, s string) {
		v := &Validator{Algorithm: "ES256", Keys: StaticKeys{"k1": &ec.PublicKey}, Store: store.NewMemory(clock), Namespace: "f", Now: clock}
		c, err := v.Validate(context.Background(), s, "s1")
		if err == nil && c["jti"] != "s1" {
			t.Fatalf("accepted a token about another session: %v", c)
		}
	})
}
