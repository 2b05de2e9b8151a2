package uqudo

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"k","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"k","e":"AAAAAAAAAQ","n":""}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		keys, err := parseJWKS(raw)
		if err == nil && len(keys) == 0 {
			t.Fatal("no error and no keys")
		}
	})
}

func FuzzParseCreate(f *testing.F) {
	f.Add([]byte(`{"sessionId":"0b9a3c2e-1f2d-4c5b-8a7e-6d5c4b3a2f10","qrCodeText":"abc","qrCodeTextWithDynamicLink":"https://x.example/q"}`))
	f.Add([]byte(`{"sessionId":"","qrCodeText":"","qrCodeTextWithDynamicLink":"",}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, err := parseCreate(raw)
		if err == nil && (!sessionIDPattern.MatchString(a.SessionID) || a.QRCodeText == "") {
			t.Fatalf("accepted %+v", a)
		}
	})
}

// FuzzIdentity feeds arbitrary result payloads (after a signature would have
// been checked) to the claim mapping: it must never panic and never return
// a completed identity without a subject.
func FuzzIdentity(f *testing.F) {
	f.Add(`{"documents":[{"documentType":"PASSPORT","scan":{"front":{"primaryId":"A<B","secondaryId":"C","dateOfBirth":"800825","documentNumber":"X1"}},"face":{"match":true}}]}`)
	f.Add(`{"documents":[{"documentType":"PASSPORT","reading":{"data":{"mrz":{"documentNumber":"1","dateOfBirth":"99999"}}}}]}`)
	f.Add(`{"documents":[]}`)
	p := &provider{cfg: &sessionConfig{Documents: []docConfig{{"PASSPORT"}}}, claims: []string{"name", "birthdate", "gender", "nationalities", "document_expiry"}}
	p.env.Now = func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	f.Fuzz(func(t *testing.T, data string) {
		c := jwt.MapClaims{"data": jsonAny(data)}
		res, why := p.identity(c)
		if why == "" && (res == nil || res.Identity == nil || res.Identity.Subject == "") {
			t.Fatalf("completed without subject for %q", data)
		}
	})
}

func jsonAny(s string) any {
	var v any
	_ = json.Unmarshal([]byte(s), &v)
	return v
}
