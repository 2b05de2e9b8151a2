package onekosmos

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// The known-answer test of docs/providers/onekosmos_idv.md, "Known-answer
// test": the vendor's published demo
// key pair and the first poll sample of its Postman collection.
const (
	katPrivate   = "cGB/g7jd/jw1v4z8FDfoeppYQ6y1IJAYzPPkzKkCc4w="
	katPublic    = "os9skQhJpyJIz7g5xgopwlN3N7eqMR9XMupvIIZf+CkB0V5ADDDdQ0wfA8KqH98NuFch4cIm6qwfuLGwoPCk+A=="
	katService   = "4tW63RBUPYX7Vo0pUUCbgacZd1kCbq18mbSKJskOFGqmegPjRqIZg5Z+3JJNQCDWCo0CMDI/RDke+cKyWKx2nw=="
	katShared    = "33d825c6ecd5a5012d7cd2c88e131c01e2d69e8e32c7d3b10684e26dd2c76365"
	katData      = "vlTj05byMjznI/UuAcQt8um1mlHPh4cvSabjsKOyPuYYaXimOUCHMSPKy6T/5rcsHu5CN7AmHbAseP2MA96I+1YOt0iSeFi/qneFAFJBy2i3XpefqkyO+M/bj0tusgHi48y59W7DiRs37d4="
	katPlaintext = `{"responseStatus":"INPROGRESS","id":"4f7daced-f8d8-4309-961a-c80f8e8d5829"}`
)

func TestKnownAnswer(t *testing.T) {
	kp, err := ParsePrivateKey(katPrivate)
	if err != nil {
		t.Fatal(err)
	}
	if got := kp.Public().String(); got != katPublic {
		t.Fatalf("public key = %s, want %s", got, katPublic)
	}
	if got := kp.PrivateBase64(); got != katPrivate {
		t.Fatalf("private key round trip = %s", got)
	}
	svc, err := ParsePublicKey(katService)
	if err != nil {
		t.Fatal(err)
	}
	key := kp.SharedKey(svc)
	if got := hex.EncodeToString(key[:]); got != katShared {
		t.Fatalf("shared key = %s, want %s", got, katShared)
	}
	plain, err := Decrypt(key, katData)
	if err != nil {
		t.Fatal(err)
	}
	if string(plain) != katPlaintext {
		t.Fatalf("plaintext = %s", plain)
	}
	// Re-encrypting with the sample's own nonce must give the sample back:
	// this pins the layout nonce‖ciphertext‖tag.
	raw, _ := decodeBase64(katData)
	again, err := EncryptWithNonce(key, raw[:NonceSize], plain)
	if err != nil {
		t.Fatal(err)
	}
	if again != katData {
		t.Fatalf("re-encryption differs:\n%s\n%s", again, katData)
	}
}

func TestSharedKeyIsSymmetric(t *testing.T) {
	a, _ := GenerateKey()
	b, _ := GenerateKey()
	if a.SharedKey(b.Public()) != b.SharedKey(a.Public()) {
		t.Fatal("ECDH is not symmetric")
	}
	msg := []byte(`{"did":"x"}`)
	ct, err := Encrypt(a.SharedKey(b.Public()), msg)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := Decrypt(b.SharedKey(a.Public()), ct)
	if err != nil || !bytes.Equal(pt, msg) {
		t.Fatalf("round trip: %q %v", pt, err)
	}
}

func TestDecryptRejects(t *testing.T) {
	kp, _ := ParsePrivateKey(katPrivate)
	svc, _ := ParsePublicKey(katService)
	key := kp.SharedKey(svc)
	other, _ := GenerateKey()
	raw, _ := decodeBase64(katData)
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)-1] ^= 1
	cases := []struct {
		name string
		key  [32]byte
		data string
	}{
		{"wrong key (answer made for another relying party)", other.SharedKey(svc), katData},
		{"tampered tag", key, b64(flipped)},
		{"truncated base64", key, katData[:40]},
		{"not base64", key, "!!!!"},
		{"too short for nonce and tag", key, b64(raw[:20])},
		{"empty", key, ""},
		{"nonce cut to 12 bytes", key, b64(raw[4:])},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Decrypt(c.key, c.data); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("err = %v, want ErrDecrypt", err)
			}
		})
	}
}

func TestParsePublicKeyRejects(t *testing.T) {
	cases := map[string]string{
		"not base64":          "%%%",
		"short":               b64(make([]byte, 32)),
		"not on curve":        b64(bytes.Repeat([]byte{1}, 64)),
		"compressed prefix":   b64(append([]byte{0x02}, make([]byte, 64)...)),
		"P-256 generator X‖Y": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpZP40Li/hp/m47n60p8D54WK84zV2sxXs7LtkBoN79R9Q==",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := ParsePublicKey(in); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestParsePrivateKeyForms(t *testing.T) {
	kp, _ := ParsePrivateKey(katPrivate)
	raw, _ := decodeBase64(katPrivate)
	javaSigned := b64(append([]byte{0}, raw...))
	k2, err := ParsePrivateKey(javaSigned)
	if err != nil || !k2.Public().Equal(kp.Public()) {
		t.Fatalf("33-byte Java form: %v", err)
	}
	for _, bad := range []string{"", b64(make([]byte, 32)), b64(bytes.Repeat([]byte{0xff}, 32)), b64(make([]byte, 40)), "???"} {
		if _, err := ParsePrivateKey(bad); err == nil {
			t.Fatalf("accepted %q", bad)
		}
	}
	if !strings.HasSuffix(kp.Public().String(), "==") {
		t.Fatal("public key must be padded base64")
	}
}

func FuzzDecrypt(f *testing.F) {
	kp, _ := ParsePrivateKey(katPrivate)
	svc, _ := ParsePublicKey(katService)
	key := kp.SharedKey(svc)
	f.Add(katData)
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		plain, err := Decrypt(key, s)
		if err == nil {
			// Anything that decrypts must re-encrypt to the same bytes.
			raw, _ := decodeBase64(s)
			again, _ := EncryptWithNonce(key, raw[:NonceSize], plain)
			r2, _ := decodeBase64(again)
			if !bytes.Equal(raw, r2) {
				t.Fatal("decrypt/encrypt mismatch")
			}
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	f.Add(katService)
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePublicKey(s)
		if err == nil {
			q, err := ParsePublicKey(p.String())
			if err != nil || !p.Equal(q) {
				t.Fatal("round trip")
			}
		}
	})
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
