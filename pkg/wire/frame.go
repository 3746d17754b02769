package wire

import (
	"bytes"
	"crypto/sha256"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
)

// Version is the envelope version this package writes and accepts.
// Version 2 requires every frame, broadcasts included, to name its
// recipient; version 1 broadcasts named none (see the package
// documentation).
const Version = 2

// Size limits. A frame larger than MaxFrameSize is refused before any
// decoding.
const (
	// MaxPayloadSize is the largest payload (plaintext or, for a direct
	// frame, ciphertext) a frame carries. CMP keygen messages with their
	// Paillier proofs are the largest, well under this.
	MaxPayloadSize = 1 << 20
	// MaxFrameSize is the largest encoded frame: a full payload, an attached
	// attestation document and the envelope.
	MaxFrameSize = MaxPayloadSize + attestation.MaxDocumentSize + 1024
)

const (
	digestSize = sha256.Size
	encSize    = 32 // HPKE DHKEM(X25519) encapsulated key
)

var (
	// protectedEdDSA is the protected header {1: -8} (alg EdDSA) as the
	// byte string the COSE_Sign1 array carries.
	protectedEdDSA = []byte{0x43, 0xa1, 0x01, 0x27}
	// emptyMap is the unprotected header: an empty map.
	emptyMap = []byte{0xa0}
)

// body is the COSE_Sign1 payload: every header field and the payload, in a
// CBOR map with small integer keys, encoded in core deterministic form.
type body struct {
	Version     uint64 `cbor:"1,keyasint"`
	Session     []byte `cbor:"2,keyasint"`
	Protocol    string `cbor:"3,keyasint"`
	Round       uint16 `cbor:"4,keyasint"`
	From        string `cbor:"5,keyasint"`
	To          string `cbor:"6,keyasint"`
	Broadcast   bool   `cbor:"7,keyasint"`
	Seq         uint64 `cbor:"8,keyasint"`
	TimeMS      uint64 `cbor:"9,keyasint"`
	AttDigest   []byte `cbor:"10,keyasint"`
	Enc         []byte `cbor:"11,keyasint,omitempty"`
	Payload     []byte `cbor:"12,keyasint"`
	Attestation []byte `cbor:"13,keyasint,omitempty"`
}

// versionProbe reads only the version, so that a frame of another version
// is named as such rather than as malformed.
type versionProbe struct {
	Version uint64 `cbor:"1,keyasint"`
}

var (
	// decMode is strict: no duplicate keys, no unknown fields, no
	// indefinite lengths, no tags, valid UTF-8, shallow and small.
	decMode = mustDecMode(cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   4,
		MaxArrayElements:  16,
		MaxMapPairs:       16,
		UTF8:              cbor.UTF8RejectInvalid,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	})
	// probeMode is decMode without the unknown-field error.
	probeMode = mustDecMode(cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  4,
		MaxArrayElements: 16,
		MaxMapPairs:      16,
		UTF8:             cbor.UTF8RejectInvalid,
	})
	// outerMode checks the well-formedness of the whole COSE_Sign1 (tag
	// 18 allowed) before go-cose decodes it.
	outerMode = mustDecMode(cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		MaxNestedLevels:  4,
		MaxArrayElements: 16,
		MaxMapPairs:      16,
	})
	encMode = mustEncMode(coreDetNoNull())
)

// coreDetNoNull is core deterministic encoding in which a nil byte string
// is encoded as an empty one, so that "no bytes" has one form.
func coreDetNoNull() cbor.EncOptions {
	opts := cbor.CoreDetEncOptions()
	opts.NilContainers = cbor.NilContainerAsEmpty
	return opts
}

// mustDecMode and mustEncMode only see the constant options above, so they
// fail at init or never.
func mustDecMode(opts cbor.DecOptions) cbor.DecMode {
	m, err := opts.DecMode()
	if err != nil {
		panic("wire: bad CBOR decoding options: " + err.Error())
	}
	return m
}

func mustEncMode(opts cbor.EncOptions) cbor.EncMode {
	m, err := opts.EncMode()
	if err != nil {
		panic("wire: bad CBOR encoding options: " + err.Error())
	}
	return m
}

// frame is a parsed, not yet verified, envelope.
type frame struct {
	msg  *cose.Sign1Message
	body body
}

// parseFrame runs the structural checks of Receive: size, COSE_Sign1 shape,
// canonical encoding, version, field types and limits. It does not verify
// the signature. Failures are DropMalformed or DropVersion.
func parseFrame(raw []byte) (*frame, error) {
	msg, err := parseSign1(raw)
	if err != nil {
		return nil, err
	}
	b, err := parseBody(msg.Payload)
	if err != nil {
		return nil, err
	}
	return &frame{msg: msg, body: *b}, nil
}

func parseSign1(raw []byte) (*cose.Sign1Message, error) {
	if len(raw) == 0 || len(raw) > MaxFrameSize {
		return nil, drop(DropMalformed)
	}
	if outerMode.Wellformed(raw) != nil {
		return nil, drop(DropMalformed)
	}
	var msg cose.Sign1Message
	if msg.UnmarshalCBOR(raw) != nil {
		return nil, drop(DropMalformed)
	}
	if !bytes.Equal(msg.Headers.RawProtected, protectedEdDSA) ||
		!bytes.Equal(msg.Headers.RawUnprotected, emptyMap) ||
		len(msg.Signature) != 64 {
		return nil, drop(DropMalformed)
	}
	// Only the canonical encoding is accepted, so that a frame has one
	// byte form (go-cose accepts non-minimal lengths).
	again, err := msg.MarshalCBOR()
	if err != nil || !bytes.Equal(again, raw) {
		return nil, drop(DropMalformed)
	}
	return &msg, nil
}

func parseBody(payload []byte) (*body, error) {
	var probe versionProbe
	if probeMode.Unmarshal(payload, &probe) != nil {
		return nil, drop(DropMalformed)
	}
	if probe.Version != Version {
		return nil, drop(DropVersion)
	}
	var b body
	if decMode.Unmarshal(payload, &b) != nil {
		return nil, drop(DropMalformed)
	}
	again, err := encMode.Marshal(&b)
	if err != nil || !bytes.Equal(again, payload) || !b.valid() {
		return nil, drop(DropMalformed)
	}
	return &b, nil
}

// valid checks every field's size and the coherence of the recipient
// fields: every frame names its recipient; a direct frame also has an
// encapsulated key, a broadcast (signed only) has none.
func (b *body) valid() bool {
	return len(b.Session) == len(SessionID{}) &&
		validName(b.Protocol, MaxProtocolSize) &&
		validName(b.From, MaxIDSize) &&
		validName(b.To, MaxIDSize) &&
		(b.Broadcast && b.Enc == nil || !b.Broadcast && len(b.Enc) == encSize) &&
		b.Seq > 0 && b.TimeMS > 0 && b.TimeMS <= maxTimeMS &&
		len(b.AttDigest) == digestSize &&
		len(b.Payload) <= MaxPayloadSize &&
		len(b.Attestation) <= attestation.MaxDocumentSize
}

// maxTimeMS keeps timestamps within time.Time's comfortable range (year
// 2262, the int64 nanosecond limit).
const maxTimeMS = 1<<63/1_000_000 - 1

// header returns the canonical encoding of every field but the payload, the
// encapsulated key and the attached document: the associated data a direct
// payload is sealed with. The attestation digest is in it.
func (b *body) header() ([]byte, error) {
	h := *b
	h.Enc, h.Payload, h.Attestation = nil, nil, nil
	return encMode.Marshal(&h)
}

// encode returns the canonical encoding of b.
func (b *body) encode() ([]byte, error) {
	return encMode.Marshal(b)
}

func (b *body) session() SessionID {
	var s SessionID
	copy(s[:], b.Session)
	return s
}
