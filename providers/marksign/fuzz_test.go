package marksign

import (
	"encoding/base64"
	"testing"
)

func FuzzParseAnswer(f *testing.F) {
	f.Add([]byte(`{"status":"waiting"}`))
	f.Add([]byte(`{"status":"error","message":"x","error_code":40402}`))
	f.Add([]byte(`{"status":"error","error_code":"50001"}`))
	f.Add([]byte(`{"status":"ok","country":"EE","certificate":{"subject":{"serial_number":"PNOEE-60001017705"},"value":"TUlJ"},"code":"60001017705"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, err := parseAnswer(raw)
		if err == nil && a.Status == "" {
			t.Fatal("accepted an answer without status")
		}
		if err == nil {
			_ = errorResult(a.ErrorCode.int(), false)
		}
	})
}

func FuzzDecodeCertificate(f *testing.F) {
	f.Add("TUlJRnRUQ0NBNTJnQXdJQkFnSVFYb1VT")
	f.Add(base64.StdEncoding.EncodeToString([]byte{0x30, 0x03, 0x02, 0x01, 0x01}))
	f.Add("")
	f.Fuzz(func(t *testing.T, value string) {
		cert, err := decodeCertificate(value)
		if err == nil && cert == nil {
			t.Fatal("nil certificate without error")
		}
	})
}

func FuzzInput(f *testing.F) {
	f.Add("+372 5123 4567", "60001017705")
	f.Add("0037060000666", "50001018865")
	f.Fuzz(func(t *testing.T, phone, code string) {
		if e164, country, ok := normalizePhone(phone); ok && (len(e164) < 11 || countryCallingCodes[country] != e164[:4]) {
			t.Fatalf("normalizePhone(%q) = %q %q", phone, e164, country)
		}
		if validPersonalCode(code) {
			if _, ok := birthdate(code); !ok || gender(code) == "" {
				t.Fatalf("valid code %q without birthdate or gender", code)
			}
		}
	})
}
