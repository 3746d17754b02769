package attestation

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha512"
	"fmt"
	"math/big"

	"github.com/fxamacker/cbor/v2"
)

const (
	// tagSign1 is the one-byte head of CBOR tag 18 (COSE_Sign1, RFC 9052).
	tagSign1 = 0xd2
	// algES384 is the COSE algorithm identifier of ECDSA P-384 with SHA-384.
	algES384 = -35
	// headerAlg is the COSE header label of the algorithm.
	headerAlg = 1
)

var (
	// protectedES384 is {1: -35}, the protected header Nitro emits.
	protectedES384 = []byte{0xa1, 0x01, 0x38, 0x22}
	// emptyMap is the unprotected header Nitro emits.
	emptyMap = []byte{0xa0}
)

// sign1 is an untagged COSE_Sign1 structure.
type sign1 struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected cbor.RawMessage
	Payload     []byte
	Signature   []byte
}

// sigStructure is the COSE Sig_structure for COSE_Sign1 (RFC 9052, 4.4).
type sigStructure struct {
	_           struct{} `cbor:",toarray"`
	Context     string
	Protected   []byte
	ExternalAAD []byte
	Payload     []byte
}

// parseSign1 runs checks 2 to 5 of Verify.
func parseSign1(raw []byte) (*sign1, error) {
	if len(raw) > MaxDocumentSize {
		return nil, malformed(fmt.Sprintf("larger than %d bytes", MaxDocumentSize))
	}
	if len(raw) > 0 && raw[0] == tagSign1 {
		raw = raw[1:]
	}
	var msg sign1
	if err := decMode.Unmarshal(raw, &msg); err != nil {
		return nil, malformed("COSE_Sign1: " + cborProblem(err))
	}
	if err := msg.checkShape(); err != nil {
		return nil, err
	}
	return &msg, nil
}

func (m *sign1) checkShape() error {
	if !isES384(m.Protected) {
		return malformed("protected header: not {1: -35} (ES384)")
	}
	if !isEmptyMap(m.Unprotected) {
		return malformed("unprotected header: not an empty map")
	}
	if len(m.Payload) == 0 || len(m.Payload) > maxPayloadSize {
		return malformed(fmt.Sprintf("payload: not 1..%d bytes", maxPayloadSize))
	}
	if len(m.Signature) != signatureSize {
		return malformed(fmt.Sprintf("signature: not %d bytes", signatureSize))
	}
	return nil
}

// isES384 reports whether a protected header holds exactly {1: -35}.
func isES384(protected []byte) bool {
	var h map[int64]int64
	if decodeAs(protected, majorMap, &h) != nil {
		return false
	}
	return len(h) == 1 && h[headerAlg] == algES384
}

// isEmptyMap reports whether raw is an empty CBOR map, definite or not.
func isEmptyMap(raw []byte) bool {
	return bytes.Equal(raw, emptyMap) || bytes.Equal(raw, []byte{0xbf, 0xff})
}

// digest returns the SHA-384 of the Sig_structure, the hash ES384 signs.
func (m *sign1) digest() ([]byte, error) {
	tbs, err := encMode.Marshal(sigStructure{
		Context:     "Signature1",
		Protected:   m.Protected,
		ExternalAAD: []byte{},
		Payload:     m.Payload,
	})
	if err != nil {
		return nil, fmt.Errorf("attestation: encoding Sig_structure: %w", err)
	}
	h := sha512.Sum384(tbs)
	return h[:], nil
}

// verify runs check 13 of Verify.
func (m *sign1) verify(key *ecdsa.PublicKey) error {
	h, err := m.digest()
	if err != nil {
		return err
	}
	half := signatureSize / 2
	r := new(big.Int).SetBytes(m.Signature[:half])
	s := new(big.Int).SetBytes(m.Signature[half:])
	if !ecdsa.Verify(key, h, r, s) {
		return fmt.Errorf("%w: COSE signature does not verify with the leaf key", ErrSignature)
	}
	return nil
}

// sign fills m.Signature with an ES384 signature by key.
func (m *sign1) sign(key *ecdsa.PrivateKey) error {
	h, err := m.digest()
	if err != nil {
		return err
	}
	r, s, err := ecdsa.Sign(rand.Reader, key, h)
	if err != nil {
		return fmt.Errorf("attestation: signing: %w", err)
	}
	half := signatureSize / 2
	m.Signature = make([]byte, signatureSize)
	r.FillBytes(m.Signature[:half])
	s.FillBytes(m.Signature[half:])
	return nil
}

// encode returns m as an untagged COSE_Sign1.
func (m *sign1) encode() ([]byte, error) {
	out, err := encMode.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("attestation: encoding COSE_Sign1: %w", err)
	}
	return out, nil
}
