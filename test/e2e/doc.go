// Package e2e holds end-to-end tests of a whole devnet: real
// cosigner-parent and cosigner-enclave processes, built by TestMain (with
// the race detector when the tests run with it), started and stopped by
// cmd/cosignerctl/devnet in a temporary directory, and cosignerctl's
// `devnet up` command itself. Clients reach the cosigners the way
// operators do: through pkg/apiclient, attesting each enclave against the
// devnet's simulator root and PCRs, with the client certificates of
// devnet.json.
package e2e
