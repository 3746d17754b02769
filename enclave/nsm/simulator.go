//go:build !release

package nsm

import (
	"crypto/rand"
	"fmt"
	"maps"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
)

// SimulatorCompiled reports whether this build contains the simulator.
const SimulatorCompiled = true

// Simulator is a development and test stand-in for the NSM: it mints
// documents in the real format, with chosen PCRs, signed by a test CA
// (attestsim) that no production verifier trusts. Its randomness comes from
// crypto/rand.
type Simulator struct {
	ca       *attestsim.CA
	moduleID string
	pcrs     map[int][]byte
	now      func() time.Time
}

var _ Attester = (*Simulator)(nil)

// NewSimulator returns a simulator signing with ca and reporting pcrs
// (PCRs not named are 48 zero bytes, as on an enclave that never extended
// them). moduleID names the simulated enclave in its documents.
func NewSimulator(ca *attestsim.CA, moduleID string, pcrs map[int][]byte) (*Simulator, error) {
	if ca == nil {
		return nil, fmt.Errorf("%w: simulator needs a CA", ErrRequest)
	}
	return &Simulator{ca: ca, moduleID: moduleID, pcrs: maps.Clone(pcrs), now: time.Now}, nil
}

// Attest mints a document binding r, timestamped now.
func (s *Simulator) Attest(r Request) ([]byte, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	return s.ca.Attest(attestsim.Request{
		ModuleID:  s.moduleID,
		PCRs:      s.pcrs,
		UserData:  r.UserData,
		Nonce:     r.Nonce,
		PublicKey: r.PublicKey,
		Time:      s.now(),
	})
}

// Read fills p from crypto/rand.
func (s *Simulator) Read(p []byte) (int, error) { return rand.Read(p) }

// Close does nothing.
func (s *Simulator) Close() error { return nil }

// OpenSimulator returns a simulator configured by cfg: with the saved test
// CA cfg.CA, or a fresh one. Its root certificate (RootPEM) is what a
// verifier must be told to trust.
func OpenSimulator(cfg SimulatorConfig) (*Simulator, error) {
	ca, err := simulatorCA(cfg.CA)
	if err != nil {
		return nil, err
	}
	return NewSimulator(ca, cfg.ModuleID, cfg.PCRs)
}

func simulatorCA(saved []byte) (*attestsim.CA, error) {
	if saved != nil {
		return attestsim.LoadCA(saved)
	}
	ca, err := attestsim.NewCA()
	if err != nil {
		return nil, fmt.Errorf("creating simulator CA: %w", err)
	}
	return ca, nil
}

// RootPEM returns the PEM of the simulator CA's root certificate.
func (s *Simulator) RootPEM() []byte { return s.ca.RootPEM() }
