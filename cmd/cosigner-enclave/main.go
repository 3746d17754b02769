// Command cosigner-enclave is the nitro-cosigner process that runs inside an
// AWS Nitro Enclave. See README.md and docs/architecture.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/app"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/nsm"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/cliflag"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/logging"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/version"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		cfg     app.Config
		logCfg  logging.Config
		showVer bool
		simPCRs = cliflag.PCRs{}
		simCA   string
		logFwd  string
	)
	fs := flag.NewFlagSet("cosigner-enclave", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: cosigner-enclave [flags]\n\nRuns the nitro-cosigner enclave process.\n\nFlags:\n")
		cliflag.PrintDefaults(fs)
	}
	fs.StringVar(&cfg.NSM, "nsm", app.NSMDevice, "attester: 'device' (/dev/nsm) or 'simulator' (development builds only; never a fallback)")
	fs.StringVar(&cfg.Simulator.ModuleID, "sim-module-id", "i-simulated-enc", "simulator: module_id reported in documents")
	fs.Var(simPCRs, "sim-pcr", "simulator: PCR value as N=HEX (repeatable); unset PCRs are zero, which makes a debug-mode document")
	fs.StringVar(&cfg.SimulatorRootOut, "sim-root-out", "", "simulator: write the test CA root certificate (PEM) to this file")
	fs.StringVar(&simCA, "sim-ca", "", "simulator: use the saved test CA in this `file` (shared by a devnet's enclaves and KMS emulator) instead of a fresh one")
	st := &cfg.State
	fs.StringVar(&st.CosignerID, "cosigner-id", "", "this cosigner's ID (KMS encryption context, S3 layout)")
	fs.BoolVar(&st.Init, "init", false, "first boot: create the sealed state (refused if it exists); without it a missing state is an error")
	fs.StringVar(&st.Dir, "state-dir", "/dev/shm/nitro-cosigner", "tmpfs `directory` for the sealed database")
	fs.StringVar(&st.Region, "aws-region", "us-east-1", "AWS region of KMS and S3")
	fs.StringVar(&st.KMSEndpoint, "kms-endpoint", "", "KMS endpoint `URL` (empty: AWS's; the KMS emulator in development)")
	fs.StringVar(&st.KMSKeyID, "kms-key-id", "", "KMS key that wraps the data key (key ID or ARN, spelt the same on every boot)")
	fs.StringVar(&st.S3Endpoint, "s3-endpoint", "", "S3 endpoint `URL` (empty: AWS's); path-style addressing when set")
	fs.StringVar(&st.Bucket, "s3-bucket", "", "S3 bucket of the sealed state; empty runs without sealed state")
	fs.StringVar(&st.EgressProxy, "egress-proxy", "", "the parent's CONNECT proxy for KMS and S3 (`addr`: vsock://3:PORT in an enclave); empty dials directly (development)")
	fs.StringVar(&st.CredentialsFrom, "credentials-from", "", "the parent's AWS credentials endpoint (`addr`: vsock://3:PORT in an enclave); empty reads AWS_ACCESS_KEY_ID etc. (development)")
	fs.StringVar(&st.Prefix, "s3-prefix", "", "S3 key prefix of this cosigner's state (\"\" or ending in /)")
	co := &cfg.Cosigner
	fs.StringVar(&co.Workspace, "workspace", "", "bootstrap `file` of a new workspace (version 1, from cosignerctl workspace bootstrap); this cosigner must be a member")
	fs.StringVar(&co.Pair, "pair", "", "pairing `token` (from cosignerctl workspace invite) to join a running workspace; ignored once joined")
	fs.StringVar(&co.MemberOut, "member-out", "", "write this cosigner's roster entry (public keys and PCRs, for workspace bootstrap) to this `file`")
	fs.StringVar(&co.ParentLink, "parent-link", "vsock://3:5000", "the parent relay's link `addr` for MPC frames")
	fs.StringVar(&co.APIListen, "api-listen", "vsock://4294967295:8443", "`addr` the gRPC API listens on (TLS ends inside the enclave)")
	fs.StringVar(&co.ClientCA, "client-ca", "", "PEM `file` of a CA that must also issue API users' client certificates (optional: users are the workspace's, by public key)")
	fs.StringVar(&co.ApprovalURL, "approval-url", "", "approval callback `URL` (https; through the egress proxy); empty: no callback")
	fs.StringVar(&co.ApprovalHandlerKey, "approval-handler-key", "", "PEM `file` of the approval handler's pinned public key (P-256 or RSA)")
	fs.StringVar(&co.ApprovalAudience, "approval-audience", "approval-handler", "the approval handler's name (JWT audience)")
	fs.StringVar(&co.ApprovalCA, "approval-ca", "", "PEM `file` of the roots the approval handler's TLS certificate chains to (default: system roots)")
	fs.StringVar(&co.MetricsListen, "metrics-listen", "", "`addr` serving GET /metrics for the parent to relay (vsock://4294967295:PORT in an enclave; empty: off)")
	fs.IntVar(&co.Pools.Target, "presig-pool-target", 0, "`presignatures` a CMP signer set's pool is refilled to (0: 8)")
	fs.IntVar(&co.Pools.LowWater, "presig-pool-low-water", 0, "pool depth below which refills start (0: the smaller of 4 and the target)")
	fs.IntVar(&co.Pools.Concurrent, "presig-pool-concurrency", 0, "presign sessions one pool's refill runs at once (0: 1)")
	fs.StringVar(&logCfg.Format, "log-format", "json", "log format: json or text")
	fs.StringVar(&logCfg.Level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&logFwd, "log-forward", "", "also send log lines to the parent at this `addr` (its --enclave-logs-listen; vsock://3:PORT in an enclave, which has no console); empty: stderr only")
	fs.BoolVar(&showVer, "version", false, "print the version and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "cosigner-enclave: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if showVer {
		fmt.Printf("cosigner-enclave %s (NSM simulator compiled in: %v)\n", version.String(), nsm.SimulatorCompiled)
		return 0
	}
	cfg.Simulator.PCRs = simPCRs
	if simCA != "" {
		b, err := os.ReadFile(simCA)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cosigner-enclave: --sim-ca:", err)
			return 2
		}
		cfg.Simulator.CA = b
	}
	logOut, stopLog, err := logOutput(logFwd)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cosigner-enclave:", err)
		return 2
	}
	defer stopLog()
	log, err := logging.New(logOut, logCfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cosigner-enclave:", err)
		return 2
	}
	if err := armFailpoints(log); err != nil {
		fmt.Fprintln(os.Stderr, "cosigner-enclave:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("cosigner-enclave starting", "version", version.String(), "simulator_compiled", nsm.SimulatorCompiled)
	if err := app.Run(ctx, cfg, log); err != nil {
		log.Error("cosigner-enclave failed", "err", err)
		if errors.Is(err, app.ErrConfig) || errors.Is(err, nsm.ErrSimulatorNotCompiled) {
			return 2
		}
		return 1
	}
	return 0
}
