package payload

import (
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
)

// parseRaw accepts exactly DigestSize bytes, for either kind of key.
func parseRaw(req Request, pub []byte) (*Parsed, error) {
	if req.ChainID != 0 {
		return nil, invalid("chain ID does not apply to a raw digest")
	}
	if len(req.Bytes) != DigestSize {
		return nil, invalid("raw digest must be 32 bytes")
	}
	scheme, err := keyScheme(pub)
	if err != nil {
		return nil, err
	}
	p := newParsed(RawDigest, scheme, pub, [DigestSize]byte(req.Bytes))
	p.Summary.Blind = true
	return p, nil
}

// keyScheme tells a compressed ECDSA key from an x-only Schnorr key and
// checks that it is a point on the curve.
func keyScheme(pub []byte) (Scheme, error) {
	switch len(pub) {
	case 33:
		if _, err := btcec.ParsePubKey(pub); err != nil {
			return 0, invalid("key is not a secp256k1 point")
		}
		return SchemeECDSA, nil
	case 32:
		if _, err := schnorr.ParsePubKey(pub); err != nil {
			return 0, invalid("key is not a secp256k1 point")
		}
		return SchemeSchnorr, nil
	}
	return 0, invalid("key must be 33 (compressed) or 32 (x-only) bytes")
}
