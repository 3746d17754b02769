// Package supervise starts, watches and stops the enclave through
// nitro-cli, on the parent host.
//
// # What a Supervisor does
//
// Run loops until its context ends:
//
//  1. Before every start it reads the image's measurements with
//     `nitro-cli describe-eif --eif-path EIF` and compares each expected
//     PCR (Config.ExpectPCRs) with the one reported. A PCR that differs, or
//     is not reported, is ErrPCRMismatch: Run returns it and starts
//     nothing. Without ExpectPCRs the image is not checked (logged as a
//     warning).
//  2. It starts the enclave: `nitro-cli run-enclave --eif-path EIF
//     --cpu-count N --memory MIB --enclave-name NAME [--enclave-cid CID]
//     [--debug-mode]` (debug mode only when Config.Debug says so) and
//     reads the enclave ID and CID from its JSON.
//  3. If `nitro-cli describe-enclaves` reports the running enclave's
//     measurements, they are checked again (the file may have changed
//     since step 1); a mismatch terminates it and is ErrPCRMismatch.
//  4. It watches the enclave every ProbeEvery: describe-enclaves must still
//     list it as running, and Probe (the parent's health check of the
//     enclave: its link to the relay, its API port) must pass. An enclave
//     that has never passed Probe within BootTimeout, that fails it
//     Unhealthy times in a row after passing, or that is no longer listed
//     is terminated and started again after a backoff that doubles from
//     MinBackoff up to MaxBackoff and resets once an enclave stayed up
//     for StableAfter.
//  5. When the context ends it terminates the enclave
//     (`nitro-cli terminate-enclave --enclave-id ID`) and returns nil.
//
// At start Run terminates enclaves named Config.Name that a previous run
// left behind (a parent that crashed), so names must be unique per host.
//
// # What it is not
//
// The parent is untrusted (docs/threat-model.md): checking PCRs here keeps
// an operator from running the wrong image by mistake, it is not what
// protects the keys. KMS releases the data key, and peers accept frames,
// only for documents whose PCRs their own policies name.
//
// # Logs
//
// A production enclave has no console: `nitro-cli console` works only for
// enclaves started in debug mode. For those (Config.Debug), the
// Supervisor forwards the console to its own log: JSON lines that the
// enclave's slog wrote are logged again at their level with
// source=enclave and their attributes; other lines (the kernel's) at
// debug level. The enclave redacts secrets by type before anything is
// written, and debug mode is for development only (its attestation
// documents have zero PCRs, which no production policy accepts).
package supervise
