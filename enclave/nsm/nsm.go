// Package nsm is the enclave's source of attestation documents and hardware
// randomness: the Nitro Security Module (NSM) in production, and a simulator
// in development and test builds.
//
// An Attester returns raw attestation documents (untagged COSE_Sign1 bytes,
// as the NSM emits them) binding the caller's user_data, nonce and public
// key; package attestation verifies them. It is also an io.Reader of random
// bytes.
//
// The simulator (NewSimulator) is compiled only into builds without the
// "release" build tag. A release enclave binary therefore cannot produce a
// simulated document even by misconfiguration; asking for one there fails
// with ErrSimulatorNotCompiled. Nothing ever falls back from the device to
// the simulator: choosing the simulator is always an explicit setting.
package nsm

import (
	"errors"
	"fmt"
	"io"
)

// Field size limits of an NSM attestation request (AWS Nitro Enclaves NSM
// API): larger values are refused by the device, so they are refused here
// first, for the device and the simulator alike.
const (
	MaxUserData  = 512
	MaxNonce     = 512
	MaxPublicKey = 1024
)

// Request is what the caller binds into an attestation document. A nil field
// appears in the document as CBOR null.
type Request struct {
	UserData  []byte
	Nonce     []byte
	PublicKey []byte
}

// Attester produces attestation documents and random bytes.
type Attester interface {
	// Attest returns a fresh raw attestation document for r.
	Attest(r Request) ([]byte, error)
	// Read fills p with random bytes or returns an error; it never returns
	// fewer bytes without an error.
	io.Reader
	// Close releases the attester.
	Close() error
}

var (
	// ErrRequest reports a request whose fields exceed the NSM's limits.
	ErrRequest = errors.New("nsm: invalid attestation request")
	// ErrDevice reports a failure of the NSM device or its driver.
	ErrDevice = errors.New("nsm: device error")
	// ErrSimulatorNotCompiled is returned when the simulator is asked for in
	// a release build.
	ErrSimulatorNotCompiled = errors.New("nsm: the NSM simulator is not compiled into release builds")
)

func (r Request) validate() error {
	switch {
	case len(r.UserData) > MaxUserData:
		return fmt.Errorf("%w: user_data is %d bytes, at most %d", ErrRequest, len(r.UserData), MaxUserData)
	case len(r.Nonce) > MaxNonce:
		return fmt.Errorf("%w: nonce is %d bytes, at most %d", ErrRequest, len(r.Nonce), MaxNonce)
	case len(r.PublicKey) > MaxPublicKey:
		return fmt.Errorf("%w: public_key is %d bytes, at most %d", ErrRequest, len(r.PublicKey), MaxPublicKey)
	}
	return nil
}

// SimulatorConfig configures OpenSimulator. It exists in every build so that
// configuration code compiles everywhere; only dev builds can honour it.
type SimulatorConfig struct {
	// ModuleID names the simulated enclave in its documents.
	ModuleID string
	// PCRs are the measurements the simulator reports (index 0..15, 48
	// bytes each); unnamed PCRs are zero.
	PCRs map[int][]byte
	// CA is a test CA saved by attestsim's CA.MarshalPEM, shared by the
	// processes of a devnet so that peers and the KMS emulator trust one
	// root. Nil means a fresh CA for this simulator alone.
	CA []byte
}
