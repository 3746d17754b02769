// Package relaypath holds tests that run both ends of the MPC frame path:
// enclave link clients (enclave/link) talking to parent relays
// (parent/relay) over loopback TCP, the relays talking to each other
// through a real broker (embedded nats-server, kfake, goaws). They import
// enclave/ and parent/ packages together, which only tests under test/ may
// do.
package relaypath
