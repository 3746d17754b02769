package wire

import (
	"crypto/ecdh"
	"crypto/hpke"
	"errors"
)

// The HPKE suite of direct payloads (RFC 9180, base mode):
// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.
var (
	hpkeKDF  = hpke.HKDFSHA256()
	hpkeAEAD = hpke.ChaCha20Poly1305()
)

// hpkeInfo separates this use of the recipient's key from any other.
const hpkeInfo = "nitro-cosigner wire v1 direct payload"

// errOpen is the one error for every failure to open a direct payload.
var errOpen = errors.New("wire: direct payload does not open")

// sealDirect encrypts plaintext to the recipient's key, bound to aad (the
// frame header). It returns the encapsulated key and the ciphertext.
func sealDirect(to hpke.PublicKey, aad, plaintext []byte) (enc, ciphertext []byte, err error) {
	enc, s, err := hpke.NewSender(to, hpkeKDF, hpkeAEAD, []byte(hpkeInfo))
	if err != nil {
		return nil, nil, err
	}
	ciphertext, err = s.Seal(aad, plaintext)
	if err != nil {
		return nil, nil, err
	}
	return enc, ciphertext, nil
}

// openDirect decrypts a direct payload with our key.
func openDirect(k hpke.PrivateKey, enc, aad, ciphertext []byte) ([]byte, error) {
	r, err := hpke.NewRecipient(enc, k, hpkeKDF, hpkeAEAD, []byte(hpkeInfo))
	if err != nil {
		return nil, errOpen
	}
	pt, err := r.Open(aad, ciphertext)
	if err != nil {
		return nil, errOpen
	}
	return pt, nil
}

// hpkePrivate adapts our X25519 key for HPKE.
func hpkePrivate(k *ecdh.PrivateKey) (hpke.PrivateKey, error) {
	return hpke.NewDHKEMPrivateKey(k)
}
