package mpc

import (
	"context"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
	"github.com/taurusgroup/multi-party-sig/pkg/party"
	"github.com/taurusgroup/multi-party-sig/pkg/protocol"
)

// MaxPayload bounds one message's payload. The largest message the engine
// sends (CMP keygen round 3, with its Paillier and Pedersen proofs) is about
// 70 KB.
const MaxPayload = 1 << 20

// Envelope is one message between two parties: routing in the clear, payload
// opaque. The wire layer signs and verifies all of it; the engine trusts
// From only because the Transport vouches for it.
type Envelope struct {
	Session SessionID
	// From is the sender, To the single recipient. A broadcast is sent as
	// one envelope per recipient, each with Broadcast set and the same
	// payload, so the wire layer can check all recipients saw the same
	// bytes.
	From, To PartyID
	// Protocol and Round name the step: the library's protocol ID and
	// round number, or one of the engine's two control protocols (a
	// presign proposal, an abort notice) with round 0.
	Protocol  string
	Round     uint16
	Broadcast bool
	Payload   []byte
}

// Transport carries envelopes between engines. The signed wire envelope and
// the broker relay implement it; mpctest has an in-process one.
type Transport interface {
	// Send delivers env to env.To. It may return before delivery; a nil
	// error does not promise the peer got it. It must return when ctx
	// ends, and may be called from several goroutines at once.
	Send(ctx context.Context, env Envelope) error
	// Receive returns the next envelope addressed to this party, whose
	// From the transport has authenticated. It returns an error once ctx
	// ends or the transport is closed.
	Receive(ctx context.Context) (Envelope, error)
}

var decMode = mustDecMode()

func mustDecMode() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   8,
		MaxArrayElements:  1024,
		MaxMapPairs:       64,
	}.DecMode()
	if err != nil {
		panic(err) // static options; unreachable
	}
	return dm
}

// wireMessage mirrors the fields protocol.Message marshals. The library's
// UnmarshalBinary swallows decoding errors, so the engine decodes strictly
// itself.
type wireMessage struct {
	SSID                  []byte
	From                  party.ID
	To                    party.ID
	Protocol              string
	RoundNumber           uint16
	Data                  []byte
	Broadcast             bool
	BroadcastVerification []byte
}

var errMalformed = errors.New("malformed message")

// decodeMessage parses a payload into a library message.
func decodeMessage(payload []byte) (*protocol.Message, error) {
	var w wireMessage
	if len(payload) > MaxPayload {
		return nil, errMalformed
	}
	if err := decMode.Unmarshal(payload, &w); err != nil {
		return nil, errMalformed
	}
	m := &protocol.Message{
		SSID: w.SSID, From: w.From, To: w.To, Protocol: w.Protocol,
		Data: w.Data, Broadcast: w.Broadcast, BroadcastVerification: w.BroadcastVerification,
	}
	setRound(&m.RoundNumber, w.RoundNumber)
	return m, nil
}

// setRound sets a field of the library's internal round-number type.
func setRound[T ~uint16](dst *T, v uint16) { *dst = T(v) }

// checkRouting verifies that the authenticated envelope and the payload
// agree, so a peer cannot speak for another party or smuggle a different
// round past the wire layer's checks.
func checkRouting(env Envelope, m *protocol.Message) error {
	switch {
	case PartyID(m.From) != env.From,
		m.To != "" && PartyID(m.To) != env.To,
		m.Broadcast != env.Broadcast,
		m.Protocol != env.Protocol,
		uint16(m.RoundNumber) != env.Round:
		return fmt.Errorf("%w: envelope and payload disagree", errMalformed)
	}
	return nil
}
