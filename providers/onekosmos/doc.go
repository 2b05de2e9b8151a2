// Package onekosmos is the client core shared by the two 1Kosmos provider
// kinds, blockid (UWL 2.0 QR sessions) and onekosmos_idv (document
// verification): the tenant bootstrap (community info, service discovery,
// service public keys, cached with an expiry), the request headers that
// carry the encrypted licence key, and the crypto described in
// docs/providers/blockid.md, "Encryption": secp256k1 ECDH whose raw
// x-coordinate is the AES-256 key, and AES-GCM with a 16-byte nonce, on the
// wire as base64(nonce‖ciphertext‖tag).
//
// Nothing in the 1Kosmos protocols is signed. What this package proves is
// that a blob was sealed by someone who shares the ECDH key with us; the
// provider packages decide which peer key they trust.
package onekosmos
