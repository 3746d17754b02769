//go:build release

package nsm

// SimulatorCompiled reports whether this build contains the simulator.
const SimulatorCompiled = false

// Simulator does not exist in release builds; the type is declared so that
// callers compile, and OpenSimulator always fails.
type Simulator struct{ Attester }

// RootPEM is never reached in release builds.
func (s *Simulator) RootPEM() []byte { return nil }

// OpenSimulator always fails in release builds.
func OpenSimulator(SimulatorConfig) (*Simulator, error) { return nil, ErrSimulatorNotCompiled }
