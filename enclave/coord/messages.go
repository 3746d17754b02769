package coord

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// Protocol is the protocol name of control frames.
const Protocol = "nitro-cosigner/coord/v1"

// ControlSession is the session every control frame travels in. Its
// parties are the whole roster; open it on the peer at boot.
var ControlSession = mpc.SessionID(sha256.Sum256([]byte("nitro-cosigner control session v1")))

// Limits on what a proposal may carry.
const (
	// MaxRequest bounds Proposal.Request.
	MaxRequest = 256 << 10
	// MaxSigns bounds the signatures of one sign (PSBT inputs).
	MaxSigns = 256
	// MaxDeadline is the furthest in the future a proposal's deadline may
	// be when it arrives.
	MaxDeadline = 10 * time.Minute
)

// Op is the operation a proposal asks for.
type Op uint8

// Operations.
const (
	OpKeygen      Op = iota + 1 // CMP ECDSA keygen
	OpFROSTKeygen               // FROST Taproot keygen
	OpRefresh                   // CMP refresh
	OpSign                      // ECDSA or Taproot sign
	OpPresign                   // CMP presignature for a pool
)

func (o Op) String() string {
	switch o {
	case OpKeygen:
		return "keygen"
	case OpFROSTKeygen:
		return "frost-keygen"
	case OpRefresh:
		return "refresh"
	case OpSign:
		return "sign"
	case OpPresign:
		return "presign"
	}
	return "unknown-op"
}

// Proposal is what an initiator asks the parties to run.
type Proposal struct {
	_         struct{} `cbor:",toarray"`
	Session   mpc.SessionID
	Op        Op
	Parties   []mpc.PartyID // the session's parties, initiator included
	Threshold int           // keygen: parties needed to sign
	Key       mpc.KeyID     // refresh and sign
	Epoch     uint64        // refresh and sign
	// Signs is how many signatures a sign makes (one per digest of the
	// payload: a PSBT has one per input); every party checks that its own
	// parse of Request gives as many.
	Signs uint16
	// Presignature, for an ECDSA sign of one digest, is the presignature
	// every signer uses; the initiator claims it from the pool. Zero runs a
	// full sign.
	Presignature mpc.PresignatureID
	// Request is the Judge's business: for a sign, the caller's typed
	// payload and derivation path, which every party parses itself.
	Request []byte
	// Deadline ends the session everywhere.
	Deadline time.Time
}

// ErrInvalid wraps every reason a proposal is refused as malformed.
var ErrInvalid = errors.New("coord: invalid proposal")

// check validates p as seen by self, proposed by from, at now.
func (p *Proposal) check(self, from mpc.PartyID, now time.Time) error {
	switch {
	case p.Session.IsZero() || p.Session == ControlSession:
		return fmt.Errorf("%w: session ID", ErrInvalid)
	case p.Op < OpKeygen || p.Op > OpPresign:
		return fmt.Errorf("%w: unknown operation", ErrInvalid)
	case len(p.Parties) < mpc.MinParties || len(p.Parties) > mpc.MaxParties:
		return fmt.Errorf("%w: party count", ErrInvalid)
	case !slices.Contains(p.Parties, self) || !slices.Contains(p.Parties, from):
		return fmt.Errorf("%w: party set", ErrInvalid)
	case hasDuplicates(p.Parties):
		return fmt.Errorf("%w: repeated party", ErrInvalid)
	case len(p.Request) > MaxRequest:
		return fmt.Errorf("%w: request too large", ErrInvalid)
	case !p.Deadline.After(now) || p.Deadline.After(now.Add(MaxDeadline)):
		return fmt.Errorf("%w: deadline", ErrInvalid)
	case (p.Op == OpSign) != (p.Signs > 0) || p.Signs > MaxSigns:
		return fmt.Errorf("%w: signature count", ErrInvalid)
	case !p.Presignature.IsZero() && p.Signs != 1:
		return fmt.Errorf("%w: a presignature serves one signature", ErrInvalid)
	}
	return nil
}

func hasDuplicates(ps []mpc.PartyID) bool {
	s := slices.Clone(ps)
	slices.Sort(s)
	return len(slices.Compact(s)) != len(ps)
}

// SubSession is the engine session of a sign's i-th signature: the
// proposal's own ID for the first, a hash of it and i for the others.
func SubSession(session mpc.SessionID, i int) mpc.SessionID {
	if i == 0 {
		return session
	}
	h := sha256.New()
	h.Write([]byte("nitro-cosigner sub-session v1"))
	h.Write(session[:])
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(i)))
	return mpc.SessionID(h.Sum(nil))
}

// spec is the engine's view of p.
func (p *Proposal) spec() mpc.SessionSpec {
	return mpc.SessionSpec{ID: p.Session, Parties: slices.Clone(p.Parties), Deadline: p.Deadline}
}

// msgType is a control message's kind.
type msgType uint8

const (
	msgPropose msgType = iota + 1
	msgAccept
	msgRefuse
	msgGo
	msgCancel
	// msgStored: a party's new key or epoch is durable (keygen, refresh).
	msgStored
)

// message is a control frame's payload. Session names the session it is
// about; Proposal is set on msgPropose only, Code on msgRefuse only.
type message struct {
	_        struct{} `cbor:",toarray"`
	Type     msgType
	Session  mpc.SessionID
	Proposal *Proposal
	Code     Code
}

var (
	encMode = mustEncMode()
	decMode = mustDecMode()
)

func mustEncMode() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err) // static options; unreachable
	}
	return em
}

func mustDecMode() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  6,
		MaxArrayElements: 64,
		MaxMapPairs:      16,
		TimeTag:          cbor.DecTagOptional,
	}.DecMode()
	if err != nil {
		panic(err) // static options; unreachable
	}
	return dm
}

func encode(m message) ([]byte, error) { return encMode.Marshal(&m) }

// decode parses a control payload strictly: the shape must match its type.
func decode(b []byte) (message, error) {
	var m message
	if err := decMode.Unmarshal(b, &m); err != nil {
		return message{}, errMalformed
	}
	want := m.Type == msgPropose
	if m.Type < msgPropose || m.Type > msgStored || (m.Proposal != nil) != want ||
		(want && m.Proposal.Session != m.Session) || (m.Type != msgRefuse && m.Code != 0) {
		return message{}, errMalformed
	}
	return m, nil
}

var errMalformed = errors.New("coord: malformed control message")
