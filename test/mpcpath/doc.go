// Package mpcpath tests the MPC engine end to end across the path frames
// take in production: engine → enclave/peer (pkg/wire signer, attestation
// documents bound to identity keys) → enclave/link → parent/relay → broker
// → relay → link → peer (wire receiver) → engine, with three cosigners in
// one process, each with its own stack, over loopback TCP.
package mpcpath
