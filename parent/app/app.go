// Package app wires the cosigner-parent process together: the untrusted
// host side beside the enclave. main parses flags into a Config and calls
// Run.
//
// # What runs
//
// Each component runs when its address is configured, and is logged as
// off otherwise:
//
//   - the relay (parent/relay) between the enclave's link (EnclaveLink)
//     and one broker (NATS JetStream, Kafka or SQS) that carries this
//     cosigner's inbox; with BrokerProvision, the inbox is created at
//     start if missing;
//   - the egress CONNECT proxy (parent/egress) with a deny-by-default
//     allowlist of exact HOST:PORT targets;
//   - the AWS credentials server (parent/creds), serving the host's
//     default credential chain to the enclave;
//   - the layer-4 ingress forwarder (parent/ingress) from the public TCP
//     port to the enclave's API address;
//   - the enclave supervisor (parent/supervise, with EnclaveEIF): starts
//     the enclave with nitro-cli after checking the image's PCRs, probes it
//     (its link to the relay, its API address), restarts it with backoff,
//     and terminates it on shutdown;
//   - the health endpoints (parent/health): /healthz, and /readyz with the
//     checks that apply: "broker" (the broker answers), "enclave-link" (the
//     enclave's link to the relay is up), "enclave-api" (the ingress
//     target accepts connections) and "enclave" (the supervised enclave
//     runs and passes its probe);
//   - GET /metrics (parent/metrics, MetricsListen): the parent's private
//     registry and, with EnclaveMetrics, the enclave's series fetched on
//     each scrape;
//   - the enclave's log channel (EnclaveLogsListen): its lines logged again
//     with source=enclave.
//
// # Lifecycle
//
// Run validates the Config (errors wrap ErrConfig), then binds every
// listener and connects to the broker before anything serves, so that a
// port in use or an unreachable NATS server fails the start with nothing
// half running. Then every component runs in one group: when ctx ends,
// or one component fails, the others are told to stop, and Run returns
// once all have: nil after ctx ended, the first failure otherwise. If they
// have not all returned within ShutdownTimeout, Run returns
// ErrShutdownDeadline without waiting further; the process then exits
// with them still running.
//
// The parent makes no security decision (see docs/threat-model.md): it
// moves signed frames and TLS bytes it cannot read. Logs name components,
// addresses and errors; never a frame, a credential or a NATS URL.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"golang.org/x/sync/errgroup"
)

// ErrShutdownDeadline is returned by Run when components were still
// running ShutdownTimeout after it began to stop them.
var ErrShutdownDeadline = errors.New("components still running at the shutdown deadline")

// Run runs the configured components until ctx ends or one of them fails
// (see the package documentation).
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	p, err := setup(ctx, cfg, log)
	if err != nil {
		return err
	}
	log.Info("parent ready", "cosigner_id", cfg.CosignerID, "components", p.names())
	err = runAll(ctx, p.components, cfg.ShutdownTimeout, log)
	log.Info("parent stopped")
	return err
}

// component is one server of the parent. run serves until its context
// ends and releases everything it holds before it returns.
type component struct {
	name string
	run  func(context.Context) error
}

// runAll runs the components in one group and stops them all when ctx
// ends or one fails, waiting at most grace for them to return.
func runAll(ctx context.Context, cs []component, grace time.Duration, log *slog.Logger) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range cs {
		g.Go(func() error { return runOne(gctx, c, log) })
	}
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err := <-done:
		return err
	case <-gctx.Done():
	}
	log.Info("parent stopping", "deadline", grace.String())
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("%w (%v)", ErrShutdownDeadline, grace)
	}
}

func runOne(ctx context.Context, c component, log *slog.Logger) error {
	err := c.run(ctx)
	if err != nil {
		log.Error("component failed", "component", c.name, "err", err)
		return fmt.Errorf("%s: %w", c.name, err)
	}
	log.Info("component stopped", "component", c.name)
	return nil
}

// listenAddr formats a listener's address in transport form.
func listenAddr(l net.Listener) string {
	switch a := l.Addr().(type) {
	case *net.TCPAddr:
		return "tcp://" + a.String()
	case *net.UnixAddr:
		return "unix://" + a.Name
	}
	return l.Addr().String()
}
