//go:build !release

// Package devnet runs a whole nitro-cosigner cluster on one machine, for
// development and end-to-end tests: `cosignerctl devnet up` and test/e2e
// use it. It is a development stand-in and is not compiled into release
// builds (build tag "release").
//
// # What runs
//
// N cosigners (Config.Parties, default 3), each a real cosigner-parent
// process beside a real cosigner-enclave process. The enclave runs the NSM
// simulator with a test CA shared by the whole devnet and fixed, non-zero
// PCR0, PCR1 and PCR2 (so its documents are not debug-mode), and unix
// sockets stand in for vsock: the relay link, the egress proxy, the
// credentials endpoint and the enclave's API. In this process:
//
//   - the broker: an embedded nats-server with JetStream, persisted in
//     DIR/nats (default); kfake for Kafka, persisted in DIR/kafka; or
//     goaws for SQS, a child process built by test/goaws/build.sh, which
//     keeps its queues in memory only (frames in flight are lost when the
//     devnet stops; the parents create their inboxes again at start);
//   - S3: gofakes3 with its bbolt backend (s3bolt), persisted in
//     DIR/s3/s3.bolt, unless Config.S3 names an endpoint (a local MinIO,
//     say; credentials come from AWS_ACCESS_KEY_ID and
//     AWS_SECRET_ACCESS_KEY);
//   - the KMS emulator (pkg/kmsemu), persisted in DIR/kms/keys.json, with
//     one key per cosigner whose policy allows GenerateDataKey and Decrypt
//     only with a Recipient document showing the simulated PCR0-2, and
//     only for an encryption context naming that cosigner;
//   - a sample approval-callback server (HTTPS with its own CA, passed to
//     the enclaves with --approval-ca; ES256 JWTs, the protocol of
//     enclave/approval). It checks each question's signature with the
//     asking cosigner's approval key from the roster, and approves it
//     unless the sign request's note contains "reject" (any case), which
//     it rejects: `--note "please reject"` is how to see a refusal.
//
// Each parent's egress allowlist holds exactly the KMS, S3 and approval
// server host:port; its credentials server hands its enclave the AWS
// credentials of the parent's environment.
//
// # Lifecycle and state
//
// [Start] returns once every cosigner's API answers an attested
// GetAttestation whose identity is the one in DIR/roster.json. The first
// run creates everything: the simulator CA, the client CA and one client
// certificate per role, three policy admin keys, the approval server's
// TLS and signing keys, the KMS keys; it boots each enclave once with
// --init and --member-out to collect its roster entry, writes
// DIR/roster.json (the devnet's record of the entries), bootstraps the
// workspace from them (DIR/workspace.json: version 1, the three admins
// with a quorum of two, one API user per client certificate; the way
// `cosignerctl workspace bootstrap` does), and restarts the enclaves with
// --workspace. A cosigner can join later by pairing ([Devnet.Pair],
// [Devnet.WaitJoined]). Once ready, a
// cosigner without a policy is given DIR/policy.json (approved by two
// devnet admins) through SetPolicy.
//
// A later run on the same DIR reuses roster.json, keys, certificates,
// ports and the KMS key IDs recorded in devnet.json, and starts every
// enclave without --init: each restores its sealed state (identity, keys,
// policy, audit log) from S3 through KMS, and the devnet checks that its
// attested identity is still the one in roster.json. Nothing of an
// enclave's state is kept anywhere else: its --state-dir (DIR/tmp/ID, the
// tmpfs stand-in) is wiped before it starts and after it stops. A first
// run interrupted half way is finished by the next: an enclave whose
// state is already in S3 boots without --init to report its entry.
//
// [Devnet.Stop] stops the enclaves first (SIGTERM, then SIGKILL after
// Config.StopTimeout), while their parents, S3 and KMS still serve, then
// the parents, then the servers of this process. Child processes run in
// their own process group, so a terminal's Ctrl-C reaches only the devnet,
// which stops them in that order; on Linux they are killed if the devnet
// process dies.
//
// # Clients
//
// [Load] reads DIR/devnet.json; [Info.ClientConfig] returns what
// pkg/apiclient needs to dial one cosigner with one role's certificate and
// attest it (the simulator root, the PCRs, the cosigner ID). With
// cosignerctl, --devnet DIR does the same (cosigner 1 unless --cosigner K,
// the role the command needs unless --role):
//
//	cosignerctl --devnet DIR keys list
//
// or, by hand, from the files devnet.json names:
//
//	cosignerctl keys list --addr API --cert DIR/clients/auditor.pem \
//	  --cert-key DIR/clients/auditor-key.pem --root DIR/sim-root.pem --pcr 0=PCR0
//
// # DIR
//
//	devnet.json         what clients need (see Info), rewritten every run
//	roster.json         every cosigner's roster entry (identity keys, PCRs)
//	workspace.json      version 1 of the workspace (--workspace)
//	policy.json         the default policy document
//	sim-ca.pem          the simulator's test CA, private key included
//	sim-root.pem        its root certificate: the attestation root to trust
//	ca.pem, ca-key.pem  the API client CA
//	clients/ROLE.pem, clients/ROLE-key.pem   client certificate per role
//	admins.pem          the workspace admins' public keys
//	admins/admin-N-key.pem                   their private keys
//	approval/           the approval server's CA, TLS and signing keys
//	members/ID.json     each enclave's reported roster entry
//	kms/, s3/, nats/, kafka/                 the stand-ins' persisted state
//	logs/ID-parent.log, logs/ID-enclave.log  the child processes' logs
//	run/                unix sockets; tmp/ enclave state directories
//
// Only one devnet may run on a DIR at a time (DIR/.lock).
package devnet
