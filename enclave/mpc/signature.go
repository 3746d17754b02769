package mpc

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/taurusgroup/multi-party-sig/pkg/ecdsa"
	"github.com/taurusgroup/multi-party-sig/pkg/math/curve"
	"github.com/taurusgroup/multi-party-sig/pkg/taproot"
)

// Signature is a finished signature over a 32-byte digest.
type Signature struct {
	Scheme Scheme
	// ECDSA: r and s, with s normalised to the lower half of the group
	// order (BIP-62, EIP-2). Taproot: the BIP-340 R.x and s.
	R, S [32]byte
	// RecoveryID (ECDSA only) is 0 to 3: bit 0 is R's Y parity after
	// normalisation, bit 1 says R.x overflowed the group order.
	RecoveryID byte
	// PublicKey is the (derived) key the signature verifies under, in the
	// key's format.
	PublicKey []byte
}

// Bytes returns r||s, the 64-byte compact form (BIP-340 for Taproot).
func (s Signature) Bytes() []byte {
	out := make([]byte, 0, 64)
	out = append(out, s.R[:]...)
	return append(out, s.S[:]...)
}

var errBadSignature = errors.New("mpc: library returned an unusable signature")

// secp256k1N is the group order, big-endian.
var secp256k1N = [32]byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
	0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
}

// ecdsaSignature converts and low-S-normalises a library signature.
func ecdsaSignature(sig *ecdsa.Signature, pub []byte) (Signature, error) {
	if sig == nil || sig.R == nil || sig.S == nil || sig.R.IsIdentity() || sig.S.IsZero() {
		return Signature{}, errBadSignature
	}
	rPoint, err := sig.R.MarshalBinary()
	if err != nil || len(rPoint) != 33 {
		return Signature{}, errBadSignature
	}
	out := Signature{Scheme: SchemeECDSA, PublicKey: bytes.Clone(pub)}
	out.RecoveryID = rPoint[0] & 1
	if bytes.Compare(rPoint[1:], secp256k1N[:]) >= 0 {
		out.RecoveryID |= 2
	}
	if err := scalarInto(&out.R, sig.R.XScalar()); err != nil {
		return Signature{}, err
	}
	s := curve.Secp256k1{}.NewScalar().Set(sig.S)
	if s.IsOverHalfOrder() {
		s.Negate()
		out.RecoveryID ^= 1
	}
	return out, scalarInto(&out.S, s)
}

func scalarInto(dst *[32]byte, s curve.Scalar) error {
	b, err := s.MarshalBinary()
	if err != nil || len(b) != 32 {
		return errBadSignature
	}
	copy(dst[:], b)
	return nil
}

// taprootSignature converts a BIP-340 signature from the library.
func taprootSignature(sig taproot.Signature, pub []byte) (Signature, error) {
	if len(sig) != taproot.SignatureLen {
		return Signature{}, fmt.Errorf("%w: %d bytes", errBadSignature, len(sig))
	}
	out := Signature{Scheme: SchemeTaproot, PublicKey: bytes.Clone(pub)}
	copy(out.R[:], sig[:32])
	copy(out.S[:], sig[32:])
	return out, nil
}
