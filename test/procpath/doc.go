// Package procpath runs MPC sessions between separate operating-system
// processes over the real parent binary and each of the three brokers.
//
// What runs where, for each broker test:
//
//   - the test process: the broker (an embedded nats-server from
//     parent/broker/natsdev, or a kfake Kafka cluster, both on loopback
//     TCP; or goaws, the SQS emulator built by test/goaws, in a process
//     of its own), the attestsim test CA, and the orchestrator, which
//     opens sessions on every enclave helper itself (the engine runs
//     without enclave/coord here; test/e2e covers the coordinator);
//   - one cosigner-parent process per cosigner (the binary built by
//     TestMain, with -race when the tests run with it), running the
//     relay between its enclave link (a unix socket) and the broker, and
//     its health endpoint, which the test polls until the broker and the
//     enclave link are ready;
//   - one "enclave helper" process per cosigner: this test binary run
//     again with NITRO_PROCPATH_HELPER=enclave. It builds the enclave's
//     MPC stack as cosigner-enclave will (identity and encryption keys, an
//     attestsim document bound to them, pkg/wire signer and receiver,
//     enclave/peer, an enclave/link client dialling its parent,
//     mpc.Engine on an in-memory store) and takes orders as one JSON
//     object per line on stdin, answering one per line on stdout.
//
// The helper prints its public member entry first; the orchestrator
// builds the roster from all of them (with the PCRs every helper's
// documents carry) and sends it back, together with the CA, which each
// helper loads from a file. Then it opens every session on every party
// before any party starts it (see enclave/peer), runs FROST 2-of-3
// keygen and a Taproot sign by two of the three, and, without the race
// detector (CMP takes minutes under it), a full CMP sign with the 2-of-3
// test-vector key of enclave/mpc/testdata. Signatures are checked with
// btcec (BIP-340 Schnorr and ECDSA), not with our own code.
//
// Every session has a deadline. A helper exits when its stdin closes; a
// parent stops on SIGTERM and must exit 0. Both are killed if they do not
// stop in time, and, on Linux, when the test process dies.
package procpath
