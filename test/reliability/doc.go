// Package reliability holds the reliability suites of issue 8: crash
// anywhere, hostile broker, rollback, hostile peer, overload, fuzz seeds
// and no secret escapes. docs/reliability.md says what each suite proves,
// how, and what it does not.
//
// Every suite has a short version that runs in `make test` (with the race
// detector, FROST keys only where CMP would take minutes) and a long
// version behind the "soak" build tag that `make soak` runs: more crash
// points, more sessions, CMP keys with presignatures and refresh. At the
// end of a run TestMain prints a summary table (points crashed, sessions
// run, faults injected, keys checked, presignature reuses found, forged
// frames accepted), and writes it to the file NITRO_RELIABILITY_SUMMARY
// names, if set.
//
// The devnet suites (crash anywhere, rollback) build cosigner-parent and
// cosigner-enclave once (with -race when the tests run with it) and run
// them under cmd/cosignerctl/devnet; the others run the enclave's packages
// in process.
package reliability
