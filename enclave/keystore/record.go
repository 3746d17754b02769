package keystore

import (
	"bytes"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

// Change record format, version 1: a CBOR array
//
//	[version uint, seq uint, op uint, body]
//
// in Core Deterministic Encoding (RFC 8949 §4.2.1), where body is the
// mutation's own fixed-order CBOR array (the *Change types). Arrays, not
// maps, so field order is fixed and no map sorting is needed. Encoding goes
// into buffers this package owns and wipes (MarshalToBuffer), never into the
// library's buffer pool, because a body may hold a key share.
const recordVersion = 1

type opCode uint8

const (
	opPutKey opCode = iota + 1
	opPutIdentity
	opPutPolicy
	opAppendAudit
	opPutIdempotency
	opPurgeIdempotency
	opReserveSpends
	opReleaseSpends
	opPutWorkspace
)

// envelope is the outer record array.
type envelope struct {
	_       struct{} `cbor:",toarray"`
	Version uint8
	Seq     uint64
	Op      opCode
	Body    cbor.RawMessage
}

var (
	encMode = mustEncMode()
	decMode = mustDecMode()
)

func mustEncMode() cbor.UserBufferEncMode {
	em, err := cbor.CoreDetEncOptions().UserBufferEncMode()
	if err != nil {
		panic(err) // static options
	}
	return em
}

// mustDecMode bounds what a record may contain: records are authenticated
// before they reach us, but a decoder still must not trust sizes.
func mustDecMode() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:   8,
		MaxArrayElements:  4096,
		MaxMapPairs:       64,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err) // static options
	}
	return dm
}

// encodeChange builds the record payload for m at seq.
func encodeChange(seq uint64, m mutation) (secret.Bytes, error) {
	var body bytes.Buffer
	body.Grow(4096)
	defer func() { clear(body.Bytes()[:body.Cap()]) }()
	if err := encMode.MarshalToBuffer(m, &body); err != nil {
		return secret.Bytes{}, fmt.Errorf("keystore: encoding change: %w", err)
	}
	var out bytes.Buffer
	out.Grow(body.Len() + 32)
	env := envelope{Version: recordVersion, Seq: seq, Op: m.op(), Body: body.Bytes()}
	if err := encMode.MarshalToBuffer(env, &out); err != nil {
		clear(out.Bytes()[:out.Cap()])
		return secret.Bytes{}, fmt.Errorf("keystore: encoding change: %w", err)
	}
	payload := secret.New(out.Bytes())
	clear(out.Bytes()[:out.Cap()])
	return payload, nil
}

// decodeChange parses a record payload. Every failure wraps ErrBadRecord
// and does not echo the payload.
func decodeChange(payload []byte) (mutation, uint64, error) {
	var env envelope
	if err := decMode.Unmarshal(payload, &env); err != nil {
		return nil, 0, fmt.Errorf("%w: malformed envelope", ErrBadRecord)
	}
	if env.Version != recordVersion {
		return nil, 0, fmt.Errorf("%w: unknown record version %d", ErrBadRecord, env.Version)
	}
	m, err := newMutation(env.Op)
	if err != nil {
		return nil, 0, err
	}
	if err := decMode.Unmarshal(env.Body, m); err != nil {
		return nil, 0, fmt.Errorf("%w: malformed body of op %d", ErrBadRecord, env.Op)
	}
	if err := m.validate(); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	return m, env.Seq, nil
}

// newMutation returns an empty body for op, to decode into.
func newMutation(op opCode) (mutation, error) {
	switch op {
	case opPutKey:
		return new(putKeyChange), nil
	case opPutIdentity:
		return new(putIdentityChange), nil
	case opPutPolicy:
		return new(putPolicyChange), nil
	case opAppendAudit:
		return new(appendAuditChange), nil
	case opPutIdempotency:
		return new(putIdempotencyChange), nil
	case opPurgeIdempotency:
		return new(purgeIdempotencyChange), nil
	case opReserveSpends:
		return new(reserveSpendsChange), nil
	case opReleaseSpends:
		return new(releaseSpendsChange), nil
	case opPutWorkspace:
		return new(putWorkspaceChange), nil
	}
	return nil, fmt.Errorf("%w: unknown op %d", ErrBadRecord, op)
}
