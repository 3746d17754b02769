// Command cosigner-parent is the nitro-cosigner process on the (untrusted)
// host beside the enclave: the relay between the enclave and the message
// broker, the egress proxy, the AWS credentials server, the API ingress
// forwarder and the health endpoints. See docs/operations.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nitro-cosigner/nitro-cosigner/parent/app"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/cliflag"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/logging"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usageHead = `Usage: cosigner-parent [flags]

Runs the nitro-cosigner host process beside the enclave. Each component runs
when its address is set:

  relay     --broker, --enclave-link, --cosigner-id: MPC frames between the
            enclave's link and this cosigner's broker inbox
  egress    --egress-listen, --egress-allow: CONNECT proxy, deny by default
  creds     --creds-listen: the host's AWS credentials for the enclave
  ingress   --ingress-listen, --ingress-enclave: the public API port,
            forwarded at layer 4
  health    --health-listen: /healthz and /readyz
  metrics   --metrics-listen: GET /metrics, the parent's series and, with
            --enclave-metrics, the enclave's (fetched on each scrape)
  enclave-logs --enclave-logs-listen: the enclave's log lines, logged again
  supervise --enclave-eif, --enclave-cpus, --enclave-memory: start the
            enclave with nitro-cli, refuse an image whose PCRs differ from
            --expect-pcr, probe it, restart it with backoff, terminate it
            on shutdown (off without --enclave-eif)

Addresses are vsock://CID:PORT, tcp://HOST:PORT or unix:///PATH.
--broker-prefix is the NATS subject prefix (up to 128 bytes of dot-separated
tokens of [A-Za-z0-9_-]), the Kafka topic prefix (up to 64 of [A-Za-z0-9._-])
or the SQS queue prefix (up to 32 of [A-Za-z0-9_-]).

On SIGINT or SIGTERM every component stops, within --shutdown-timeout; a
second signal ends the process at once. Exit status: 0 stopped by a signal,
1 failure (at start or while running), 2 usage error.

Flags:
`

// run parses args, runs the parent until SIGINT or SIGTERM and returns
// the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, logCfg, showVer, err := parseFlags(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		return 2
	case showVer:
		fmt.Fprintln(stdout, "cosigner-parent", version.String())
		return 0
	}
	log, err := logging.New(stderr, logCfg)
	if err != nil {
		fmt.Fprintln(stderr, "cosigner-parent:", err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "cosigner-parent:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Once stopping, a second signal ends the process at once.
	context.AfterFunc(ctx, stop)
	log.Info("cosigner-parent starting", "version", version.String())
	if err := app.Run(ctx, cfg, log); err != nil {
		log.Error("cosigner-parent failed", "err", err)
		if errors.Is(err, app.ErrConfig) {
			return 2
		}
		return 1
	}
	return 0
}

// parseFlags parses args. Errors are already reported on stderr.
func parseFlags(args []string, stderr io.Writer) (app.Config, logging.Config, bool, error) {
	var (
		cfg     app.Config
		logCfg  logging.Config
		showVer bool
		seeds   string
		allow   stringList
	)
	fs := flag.NewFlagSet("cosigner-parent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		cliflag.PrintDefaults(fs)
	}
	fs.StringVar(&cfg.CosignerID, "cosigner-id", "", "this cosigner's `ID`: its broker inbox (required with --broker)")
	fs.StringVar(&cfg.EnclaveLink, "enclave-link", "", "`addr` the relay listens on for the enclave's link (vsock://4294967295:PORT on EC2; required with --broker)")
	fs.StringVar(&cfg.Broker, "broker", "", "`kind` of message broker for the MPC frames: nats, kafka or sqs (empty: no relay)")
	fs.StringVar(&cfg.NATSURL, "nats-url", "", "NATS server `URLs`, comma-separated nats:// or tls:// (--broker nats)")
	fs.StringVar(&seeds, "kafka-brokers", "", "Kafka seed brokers, comma-separated `HOST:PORT` (--broker kafka)")
	fs.StringVar(&cfg.SQSEndpoint, "sqs-endpoint", "", "SQS endpoint `URL` (goaws, localstack; empty: AWS's). Credentials come from the host's default AWS chain")
	fs.StringVar(&cfg.SQSRegion, "sqs-region", "", "SQS `region` (empty: from the AWS configuration)")
	fs.StringVar(&cfg.BrokerPrefix, "broker-prefix", "", "inbox name `prefix` (empty: the adapter's default; see above)")
	fs.BoolVar(&cfg.BrokerProvision, "broker-provision", false, "create this cosigner's inbox at start if it does not exist")
	fs.StringVar(&cfg.EgressListen, "egress-listen", "", "`addr` of the egress CONNECT proxy for the enclave (empty: off)")
	fs.Var(&allow, "egress-allow", "allow CONNECT to this exact `HOST:PORT` (repeatable; nothing else is allowed)")
	fs.StringVar(&cfg.CredsListen, "creds-listen", "", "`addr` of the AWS credentials server for the enclave (empty: off)")
	fs.StringVar(&cfg.IngressListen, "ingress-listen", "", "public tcp:// `addr` forwarded to --ingress-enclave (empty: off)")
	fs.StringVar(&cfg.IngressEnclave, "ingress-enclave", "", "the enclave's API `addr` (vsock://CID:PORT on EC2)")
	fs.StringVar(&cfg.HealthListen, "health-listen", "", "tcp:// `addr` of /healthz and /readyz (empty: off)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", app.DefaultShutdownTimeout, "how long components may take to stop after SIGINT or SIGTERM")
	enclaveFlags(fs, &cfg)
	fs.StringVar(&logCfg.Format, "log-format", "json", "log format: json or text")
	fs.StringVar(&logCfg.Level, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&showVer, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return cfg, logCfg, false, err
	}
	if len(cfg.ExpectPCRs) == 0 {
		cfg.ExpectPCRs = nil
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cosigner-parent: unexpected argument %q\n", fs.Arg(0))
		return cfg, logCfg, false, errors.New("unexpected argument")
	}
	cfg.KafkaBrokers, cfg.EgressAllow = splitList(seeds), allow
	return cfg, logCfg, showVer, nil
}

// splitList splits a comma-separated flag value. Empty elements stay, so
// that validation refuses them.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	out := strings.Split(s, ",")
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out
}

// stringList is a repeatable string flag.
type stringList []string

// String implements flag.Value.
func (l *stringList) String() string { return strings.Join(*l, ",") }

// Set implements flag.Value.
func (l *stringList) Set(s string) error {
	if s == "" {
		return errors.New("empty value")
	}
	*l = append(*l, s)
	return nil
}
