package onekosmos

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// NonceSize is the AES-GCM nonce length of every 1Kosmos SDK: 16 bytes, not
// the usual 12 (docs/providers/blockid.md, "Encryption").
const NonceSize = 16

// tagSize is the GCM tag length.
const tagSize = 16

// PublicKey is a secp256k1 public key as 1Kosmos exchanges it.
type PublicKey struct{ k *secp256k1.PublicKey }

// KeyPair is a secp256k1 key pair of a caller (the relying party, a fake
// service, a simulated wallet).
type KeyPair struct {
	priv *secp256k1.PrivateKey
	pub  PublicKey
}

// GenerateKey makes a new random key pair.
func GenerateKey() (*KeyPair, error) {
	priv, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		return nil, fmt.Errorf("onekosmos: generate key: %w", err)
	}
	return &KeyPair{priv: priv, pub: PublicKey{priv.PubKey()}}, nil
}

// ParsePrivateKey reads a private key in the SDKs' form: the big-endian
// scalar, base64. Java may emit a leading sign byte or drop leading zeros,
// so any length up to 33 bytes whose value fits 32 bytes is accepted.
func ParsePrivateKey(b64 string) (*KeyPair, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("onekosmos: private key: %w", err)
	}
	if len(raw) == 33 && raw[0] == 0 {
		raw = raw[1:]
	}
	if len(raw) == 0 || len(raw) > 32 {
		return nil, errors.New("onekosmos: private key: bad length")
	}
	var s secp256k1.ModNScalar
	var buf [32]byte
	copy(buf[32-len(raw):], raw)
	if overflow := s.SetBytes(&buf); overflow != 0 || s.IsZero() {
		return nil, errors.New("onekosmos: private key: out of range")
	}
	priv := secp256k1.NewPrivateKey(&s)
	return &KeyPair{priv: priv, pub: PublicKey{priv.PubKey()}}, nil
}

// PrivateBase64 is the private scalar, 32 bytes big-endian, base64: the form
// kept in the shared store. It is a secret.
func (k *KeyPair) PrivateBase64() string {
	b := k.priv.Key.Bytes()
	return base64.StdEncoding.EncodeToString(b[:])
}

// Public returns the public half.
func (k *KeyPair) Public() PublicKey { return k.pub }

// SharedKey is the AES-256 key k shares with peer: the raw x-coordinate of
// the ECDH point, with no KDF, exactly as every 1Kosmos SDK derives it.
func (k *KeyPair) SharedKey(peer PublicKey) [32]byte {
	var out [32]byte
	// GenerateSharedSecret returns the 32-byte, zero-padded x-coordinate;
	// keeping all 32 bytes avoids the PHP helper's 31-byte key bug.
	copy(out[:], secp256k1.GenerateSharedSecret(k.priv, peer.k))
	return out
}

// ParsePublicKey reads a public key in the wire form: base64 of the raw
// 64-byte X‖Y point without the 0x04 prefix. A 65-byte uncompressed point
// is accepted too. The point must lie on secp256k1.
func ParsePublicKey(b64 string) (PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return PublicKey{}, fmt.Errorf("onekosmos: public key: %w", err)
	}
	switch len(raw) {
	case 64:
		raw = append([]byte{0x04}, raw...)
	case 65:
		if raw[0] != 0x04 {
			return PublicKey{}, errors.New("onekosmos: public key: not an uncompressed point")
		}
	default:
		return PublicKey{}, fmt.Errorf("onekosmos: public key: %d bytes, want 64", len(raw))
	}
	pk, err := secp256k1.ParsePubKey(raw)
	if err != nil {
		return PublicKey{}, fmt.Errorf("onekosmos: public key: %w", err)
	}
	return PublicKey{pk}, nil
}

// IsZero reports whether p holds no key.
func (p PublicKey) IsZero() bool { return p.k == nil }

// String is the wire form: base64 of the 64-byte X‖Y point.
func (p PublicKey) String() string {
	if p.k == nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(p.k.SerializeUncompressed()[1:])
}

// Equal reports whether p and q are the same point, in constant time.
func (p PublicKey) Equal(q PublicKey) bool {
	if p.k == nil || q.k == nil {
		return false
	}
	return subtle.ConstantTimeCompare(p.k.SerializeUncompressed(), q.k.SerializeUncompressed()) == 1
}

func newGCM(key [32]byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithNonceSize(block, NonceSize)
}

// Encrypt seals plaintext under key with a random 16-byte nonce and returns
// base64(nonce‖ciphertext‖tag).
func Encrypt(key [32]byte, plaintext []byte) (string, error) {
	nonce := make([]byte, NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("onekosmos: encrypt: %w", err)
	}
	return EncryptWithNonce(key, nonce, plaintext)
}

// EncryptWithNonce is Encrypt with a given nonce, for known-answer tests and
// for fakes that imitate the Java SDK's ASCII-hex nonces. Never reuse a
// nonce under one key.
func EncryptWithNonce(key [32]byte, nonce, plaintext []byte) (string, error) {
	if len(nonce) != NonceSize {
		return "", errors.New("onekosmos: encrypt: nonce must be 16 bytes")
	}
	aead, err := newGCM(key)
	if err != nil {
		return "", fmt.Errorf("onekosmos: encrypt: %w", err)
	}
	out := make([]byte, 0, NonceSize+len(plaintext)+tagSize)
	out = append(out, nonce...)
	out = aead.Seal(out, nonce, plaintext, nil)
	return base64.StdEncoding.EncodeToString(out), nil
}

// ErrDecrypt is returned when a blob is not base64(nonce‖ciphertext‖tag)
// sealed under the key: the answer was made for another key pair, or was
// altered.
var ErrDecrypt = errors.New("onekosmos: cannot decrypt")

// Decrypt opens base64(nonce‖ciphertext‖tag) under key. The nonce is
// treated as opaque bytes (the Java SDK and the BlockID app use ASCII hex).
// Surrounding white space and a missing base64 padding are tolerated.
func Decrypt(key [32]byte, b64 string) ([]byte, error) {
	raw, err := decodeBase64(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: base64: %v", ErrDecrypt, err)
	}
	if len(raw) < NonceSize+tagSize {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrDecrypt, len(raw))
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	plain, err := aead.Open(nil, raw[:NonceSize], raw[NonceSize:], nil)
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", ErrDecrypt)
	}
	return plain, nil
}

func decodeBase64(s string) ([]byte, error) {
	b := []byte(s)
	// Trim ASCII white space only; base64 never contains other spaces.
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	if len(b)%4 != 0 {
		return base64.RawStdEncoding.DecodeString(string(b))
	}
	return base64.StdEncoding.DecodeString(string(b))
}
