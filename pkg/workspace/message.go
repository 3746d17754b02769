package workspace

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Messages between cosigners about the workspace travel through the
// parent's relay and the broker beside MPC frames, which are COSE_Sign1
// (first byte 0xd2). A workspace message starts with Magic instead, then a
// kind byte, then JSON. Messages need no transport authentication: a
// pairing request is signed and attested by its sender, and a version
// carries its admin quorum.
var Magic = []byte("NCWS\x01")

// Kinds of message.
const (
	// KindPair is a SignedRequest from a cosigner that wants to join.
	KindPair byte = 1
	// KindVersions is an Update: consecutive versions, oldest first.
	KindVersions byte = 2
	// KindHello is a Hello: the version the sender holds, so that a
	// member holding newer ones sends them.
	KindHello byte = 3
)

// MaxMessage bounds a workspace message.
const MaxMessage = 4 << 20

// Update carries consecutive signed versions, oldest first.
type Update struct {
	// From names the sender, unauthenticated: only where to ask for
	// missing versions.
	From     string   `json:"from"`
	Versions []Signed `json:"versions"`
}

// Hello says which version its sender holds.
type Hello struct {
	From    string `json:"from"`
	Version uint64 `json:"version"`
}

// IsMessage reports whether a frame from the link is a workspace message.
func IsMessage(frame []byte) bool { return bytes.HasPrefix(frame, Magic) }

// EncodeMessage frames a message of kind k.
func EncodeMessage(k byte, v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(Magic)+1+len(body))
	out = append(append(append(out, Magic...), k), body...)
	if len(out) > MaxMessage {
		return nil, fmt.Errorf("%w: message larger than %d bytes", ErrMalformed, MaxMessage)
	}
	return out, nil
}

// DecodeMessage returns a message's kind and decodes its body into the
// type of that kind (*SignedRequest, *Update or *Hello).
func DecodeMessage(frame []byte) (byte, any, error) {
	bad := fmt.Errorf("%w: workspace message does not parse", ErrMalformed)
	if !IsMessage(frame) || len(frame) > MaxMessage || len(frame) < len(Magic)+1 {
		return 0, nil, bad
	}
	k, body := frame[len(Magic)], frame[len(Magic)+1:]
	var v any
	switch k {
	case KindPair:
		v = &SignedRequest{}
	case KindVersions:
		v = &Update{}
	case KindHello:
		v = &Hello{}
	default:
		return 0, nil, bad
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if dec.Decode(v) != nil || dec.More() {
		return 0, nil, bad
	}
	return k, v, nil
}
