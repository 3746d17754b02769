//go:build !race

package attestation_test

// raceEnabled is true under the race detector, which slows ECDSA down tenfold.
const raceEnabled = false
