package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nitro-cosigner/nitro-cosigner/parent/health"
	parentmetrics "github.com/nitro-cosigner/nitro-cosigner/parent/metrics"
	"github.com/nitro-cosigner/nitro-cosigner/parent/supervise"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/metrics"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// addSupervise sets up the enclave supervisor. Before anything serves it
// checks that nitro-cli exists and that the image has the expected PCRs,
// so a wrong image fails the start.
func (p *parent) addSupervise(ctx context.Context, cfg Config, log *slog.Logger) error {
	if cfg.EnclaveEIF == "" {
		log.Info("component off: no --enclave-eif", "component", compSupervise)
		return nil
	}
	sup, err := supervise.New(supervise.Config{
		NitroCLI: cfg.NitroCLI, EIF: cfg.EnclaveEIF, Name: cfg.EnclaveName,
		CPUs: cfg.EnclaveCPUs, MemoryMiB: cfg.EnclaveMemoryMiB, CID: cfg.EnclaveCID,
		Debug: cfg.EnclaveDebugMode, ExpectPCRs: cfg.ExpectPCRs, Probe: p.enclaveProbe(cfg),
		BootTimeout: cfg.EnclaveBootTimeout, MaxBackoff: cfg.EnclaveRestartMaxBackoff,
		Logger: log.With("component", compSupervise),
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := sup.LookPath(); err != nil {
		return fmt.Errorf("%s: %w", compSupervise, err)
	}
	if err := sup.CheckImage(ctx); err != nil {
		return fmt.Errorf("%s: %w", compSupervise, err)
	}
	if cfg.EnclaveDebugMode {
		log.Warn("the enclave runs in DEBUG MODE: its attestation documents have zero PCRs; for development only", "component", compSupervise)
	}
	p.sup = sup
	p.add(compSupervise, sup.Run)
	return p.register("enclave", superviseCheck(sup))
}

// enclaveProbe is the supervisor's health probe: the enclave's link to the
// relay is up and its API address accepts connections, each when that
// component runs. Neither: a running enclave counts as healthy.
func (p *parent) enclaveProbe(cfg Config) func(context.Context) error {
	var checks []health.Check
	if p.relay != nil {
		checks = append(checks, linkCheck(p.relay))
	}
	if target, err := transport.ParseAddr(cfg.IngressEnclave); err == nil && cfg.IngressEnclave != "" {
		checks = append(checks, health.DialCheck(target))
	}
	if len(checks) == 0 {
		return nil
	}
	return func(ctx context.Context) error {
		for _, c := range checks {
			if err := c(ctx); err != nil {
				return err
			}
		}
		return nil
	}
}

// superviseCheck passes while the supervised enclave runs and is healthy.
func superviseCheck(sup *supervise.Supervisor) health.Check {
	return func(context.Context) error {
		st := sup.Stats()
		switch {
		case !st.Running:
			return health.Reason("not running", nil)
		case !st.Healthy:
			return health.Reason("not healthy", nil)
		}
		return nil
	}
}

// addMetrics serves GET /metrics: the parent's registry and, with
// --enclave-metrics, the enclave's series fetched on each scrape.
func (p *parent) addMetrics(ctx context.Context, cfg Config, log *slog.Logger) error {
	if cfg.MetricsListen == "" {
		log.Info("component off: no --metrics-listen", "component", compMetrics)
		return nil
	}
	mlog := log.With("component", compMetrics)
	var src parentmetrics.Sources
	if p.relay != nil {
		src.Relay = p.relay.Stats
	}
	if p.egress != nil {
		src.Egress = p.egress.Stats
	}
	if p.ingress != nil {
		src.Ingress = p.ingress.Stats
	}
	if p.sup != nil {
		src.Supervise = p.sup.Stats
	}
	reg := parentmetrics.NewRegistry(src)
	var enclave *parentmetrics.Enclave
	if cfg.EnclaveMetrics != "" {
		addr, err := transport.ParseAddr(cfg.EnclaveMetrics)
		if err != nil {
			return fmt.Errorf("%w: --enclave-metrics: %w", ErrConfig, err)
		}
		enclave = parentmetrics.NewEnclave(addr, reg, mlog)
	}
	l, err := p.listen(ctx, compMetrics, cfg.MetricsListen, log)
	if err != nil {
		return err
	}
	g := parentmetrics.Gatherer(reg, enclave)
	p.add(compMetrics, func(ctx context.Context) error {
		if enclave != nil {
			defer enclave.Close()
		}
		return metrics.Serve(ctx, l, g, mlog)
	})
	return nil
}

// addEnclaveLogs accepts the enclave's log lines and logs them again.
func (p *parent) addEnclaveLogs(ctx context.Context, cfg Config, log *slog.Logger) error {
	if cfg.EnclaveLogsListen == "" {
		log.Info("component off: no --enclave-logs-listen", "component", compEnclaveLogs)
		return nil
	}
	l, err := p.listen(ctx, compEnclaveLogs, cfg.EnclaveLogsListen, log)
	if err != nil {
		return err
	}
	elog := log.With("component", compEnclaveLogs)
	p.add(compEnclaveLogs, func(ctx context.Context) error { return supervise.ServeLogs(ctx, l, elog) })
	return nil
}
