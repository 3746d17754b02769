package approval

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/golang-jwt/jwt/v5"
)

// Bounds on RSA keys, in bits.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// p256Size is the size of a P-256 scalar, and half an ES256 signature.
const p256Size = 32

// methodFor returns the one JWT algorithm of pub (ES256 for P-256, RS256
// for RSA), as the library's verifying method.
func methodFor(pub crypto.PublicKey) (jwt.SigningMethod, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("the ECDSA key is not on P-256")
		}
		if _, err := k.ECDH(); err != nil {
			return nil, errors.New("the ECDSA key is not a valid point")
		}
		return jwt.SigningMethodES256, nil
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits || n > maxRSABits {
			return nil, fmt.Errorf("the RSA key has %d bits, want %d to %d", n, minRSABits, maxRSABits)
		}
		return jwt.SigningMethodRS256, nil
	default:
		return nil, fmt.Errorf("unsupported key type %T", pub)
	}
}

// signerMethod is a jwt.SigningMethod that signs with a crypto.Signer (the
// library's own methods want an *ecdsa.PrivateKey or *rsa.PrivateKey).
// It checks every signature it makes with verify, so a faulty Signer is
// caught before anything is sent. It is never registered with the
// library, so no token can name it.
type signerMethod struct {
	verify jwt.SigningMethod // ES256 or RS256
	pub    crypto.PublicKey
}

func (m signerMethod) Alg() string { return m.verify.Alg() }

func (m signerMethod) Verify(signingString string, sig []byte, key any) error {
	return m.verify.Verify(signingString, sig, key)
}

// Sign signs signingString with key, a crypto.Signer.
func (m signerMethod) Sign(signingString string, key any) ([]byte, error) {
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, jwt.ErrInvalidKeyType
	}
	digest := sha256.Sum256([]byte(signingString))
	sig, err := s.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	if m.verify == jwt.SigningMethodES256 {
		if sig, err = joseECDSA(sig); err != nil {
			return nil, err
		}
	}
	if err := m.verify.Verify(signingString, sig, m.pub); err != nil {
		return nil, errors.New("the signer made a signature that does not verify")
	}
	return sig, nil
}

// joseECDSA turns an ASN.1 ECDSA signature into JOSE's fixed-size r || s.
func joseECDSA(der []byte) ([]byte, error) {
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &rs)
	if err != nil || len(rest) != 0 || rs.R.Sign() <= 0 || rs.S.Sign() <= 0 ||
		rs.R.BitLen() > 8*p256Size || rs.S.BitLen() > 8*p256Size {
		return nil, errors.New("the signer returned a malformed ECDSA signature")
	}
	out := make([]byte, 2*p256Size)
	rs.R.FillBytes(out[:p256Size])
	rs.S.FillBytes(out[p256Size:])
	return out, nil
}

// samePublicKey reports whether a and b are the same key.
func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
