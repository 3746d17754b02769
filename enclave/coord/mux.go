package coord

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// controlQueue bounds control envelopes waiting for the coordinator.
const controlQueue = 256

// Mux splits one transport (the peer) between the engine and the
// coordinator: control frames go to the coordinator, everything else to
// the engine. Sends pass straight through.
type Mux struct {
	tr      mpc.Transport
	engine  chan mpc.Envelope
	control chan mpc.Envelope
	dropped atomic.Uint64
}

// NewMux returns a Mux over tr; Run starts it.
func NewMux(tr mpc.Transport) *Mux {
	return &Mux{tr: tr, engine: make(chan mpc.Envelope), control: make(chan mpc.Envelope, controlQueue)}
}

// Run receives from the transport until ctx ends. The engine's envelopes
// wait for the engine; a control envelope that finds the coordinator's
// queue full is dropped and counted (the sender's session then ends at
// its deadline).
func (m *Mux) Run(ctx context.Context) error {
	for {
		env, err := m.tr.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("coord: receiving: %w", err)
		}
		if !m.route(ctx, env) {
			return nil
		}
	}
}

func (m *Mux) route(ctx context.Context, env mpc.Envelope) bool {
	if env.Session == ControlSession {
		if env.Protocol == Protocol {
			select {
			case m.control <- env:
			default:
				m.dropped.Add(1)
			}
		}
		return true
	}
	select {
	case m.engine <- env:
		return true
	case <-ctx.Done():
		return false
	}
}

// Dropped is how many control envelopes were dropped for a full queue.
func (m *Mux) Dropped() uint64 { return m.dropped.Load() }

// Engine is the transport to give the engine.
func (m *Mux) Engine() mpc.Transport { return engineSide{m} }

type engineSide struct{ m *Mux }

func (e engineSide) Send(ctx context.Context, env mpc.Envelope) error { return e.m.tr.Send(ctx, env) }

func (e engineSide) Receive(ctx context.Context) (mpc.Envelope, error) {
	select {
	case env := <-e.m.engine:
		return env, nil
	case <-ctx.Done():
		return mpc.Envelope{}, ctx.Err()
	}
}
