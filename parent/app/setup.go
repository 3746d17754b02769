package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
	"github.com/nitro-cosigner/nitro-cosigner/parent/creds"
	"github.com/nitro-cosigner/nitro-cosigner/parent/egress"
	"github.com/nitro-cosigner/nitro-cosigner/parent/health"
	"github.com/nitro-cosigner/nitro-cosigner/parent/ingress"
	"github.com/nitro-cosigner/nitro-cosigner/parent/relay"
	"github.com/nitro-cosigner/nitro-cosigner/parent/supervise"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// provisionTimeout bounds creating the inbox at start.
const provisionTimeout = 30 * time.Second

// Names of the components (log attribute "component").
const (
	compRelay   = "relay"
	compEgress  = "egress"
	compCreds   = "creds"
	compIngress = "ingress"
	compHealth  = "health"
	// compSupervise, compMetrics and compEnclaveLogs: see
	// setup_supervise.go.
	compSupervise   = "supervise"
	compMetrics     = "metrics"
	compEnclaveLogs = "enclave-logs"
)

// parent is the set of components being set up.
type parent struct {
	checker    *health.Checker
	components []component
	undo       []func() // releases what setup took, if setup fails

	// The components whose Stats the metrics read (nil when off).
	relay   *relay.Relay
	egress  *egress.Proxy
	ingress *ingress.Forwarder
	sup     *supervise.Supervisor
}

// setup binds every listener, connects the broker and builds the
// components; on failure it releases what it took.
func setup(ctx context.Context, cfg Config, log *slog.Logger) (_ *parent, err error) {
	p := &parent{checker: health.New(0, log.With("component", compHealth))}
	defer func() {
		if err != nil {
			p.release()
		}
	}()
	for _, add := range []func(context.Context, Config, *slog.Logger) error{
		p.addRelay, p.addEgress, p.addCreds, p.addIngress, p.addSupervise, p.addHealth, p.addMetrics, p.addEnclaveLogs,
	} {
		if err := add(ctx, cfg, log); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *parent) release() {
	for i := len(p.undo) - 1; i >= 0; i-- {
		p.undo[i]()
	}
}

func (p *parent) names() []string {
	names := make([]string, len(p.components))
	for i, c := range p.components {
		names[i] = c.name
	}
	return names
}

// listen binds addr for component name and logs the bound address.
func (p *parent) listen(ctx context.Context, name, addr string, log *slog.Logger) (net.Listener, error) {
	l, err := transport.Listen(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p.undo = append(p.undo, func() { l.Close() })
	log.Info("listening", "component", name, "addr", listenAddr(l))
	return l, nil
}

func (p *parent) add(name string, run func(context.Context) error) {
	p.components = append(p.components, component{name: name, run: run})
}

func (p *parent) register(name string, check health.Check) error {
	if err := p.checker.Register(name, check); err != nil {
		return fmt.Errorf("health check %s: %w", name, err)
	}
	return nil
}

func (p *parent) addRelay(ctx context.Context, cfg Config, log *slog.Logger) error {
	if cfg.Broker == "" {
		log.Info("component off: no --broker", "component", compRelay)
		return nil
	}
	rlog := log.With("component", compRelay, "broker", cfg.Broker)
	b, err := openBroker(ctx, cfg, rlog)
	if err != nil {
		return fmt.Errorf("%s: %w", compRelay, err)
	}
	p.undo = append(p.undo, b.close)
	if err := provision(ctx, cfg, b.Broker, rlog); err != nil {
		return fmt.Errorf("%s: %w", compRelay, err)
	}
	l, err := p.listen(ctx, compRelay, cfg.EnclaveLink, log)
	if err != nil {
		return err
	}
	r, err := relay.New(relay.Config{Broker: b.Broker, Self: cfg.CosignerID, Listener: l, Logger: rlog})
	if err != nil {
		return fmt.Errorf("%s: %w", compRelay, err)
	}
	p.relay = r
	p.add(compRelay, func(ctx context.Context) error {
		defer b.close()
		return r.Run(ctx)
	})
	if err := p.register("broker", b.check); err != nil {
		return err
	}
	return p.register("enclave-link", linkCheck(r))
}

// linkCheck passes while an enclave link is up.
func linkCheck(r *relay.Relay) health.Check {
	return func(context.Context) error {
		if !r.Stats().LinkUp {
			return health.Reason("no enclave link", nil)
		}
		return nil
	}
}

// provision creates this cosigner's inbox if asked to.
func provision(ctx context.Context, cfg Config, b broker.Broker, log *slog.Logger) error {
	if !cfg.BrokerProvision {
		return nil
	}
	pr, ok := b.(broker.Provisioner)
	if !ok {
		return fmt.Errorf("%w: --broker-provision: the %s adapter cannot create inboxes", ErrConfig, cfg.Broker)
	}
	ctx, cancel := context.WithTimeout(ctx, provisionTimeout)
	defer cancel()
	if err := pr.EnsureInbox(ctx, cfg.CosignerID); err != nil {
		return fmt.Errorf("creating the inbox: %w", err)
	}
	log.Info("inbox ready", "cosigner_id", cfg.CosignerID)
	return nil
}

func (p *parent) addEgress(ctx context.Context, cfg Config, log *slog.Logger) error {
	if cfg.EgressListen == "" {
		log.Info("component off: no --egress-listen", "component", compEgress)
		return nil
	}
	elog := log.With("component", compEgress)
	proxy, err := egress.New(egress.Config{Allow: cfg.EgressAllow, Log: elog})
	if err != nil {
		return fmt.Errorf("%s: %w", compEgress, err)
	}
	if len(cfg.EgressAllow) == 0 {
		elog.Warn("the egress allowlist is empty: every CONNECT is refused")
	}
	l, err := p.listen(ctx, compEgress, cfg.EgressListen, log)
	if err != nil {
		return err
	}
	elog.Info("egress allowlist", "allow", cfg.EgressAllow)
	p.egress = proxy
	p.add(compEgress, func(ctx context.Context) error { return proxy.Serve(ctx, l) })
	return nil
}

func (p *parent) addCreds(ctx context.Context, cfg Config, log *slog.Logger) error {
	if cfg.CredsListen == "" {
		log.Info("component off: no --creds-listen", "component", compCreds)
		return nil
	}
	provider, err := creds.LoadDefault(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", compCreds, err)
	}
	l, err := p.listen(ctx, compCreds, cfg.CredsListen, log)
	if err != nil {
		return err
	}
	srv := creds.NewServer(provider, log.With("component", compCreds))
	p.add(compCreds, func(ctx context.Context) error { return srv.Serve(ctx, l) })
	return nil
}

func (p *parent) addIngress(ctx context.Context, cfg Config, log *slog.Logger) error {
	if cfg.IngressListen == "" {
		log.Info("component off: no --ingress-listen", "component", compIngress)
		return nil
	}
	target, err := transport.ParseAddr(cfg.IngressEnclave)
	if err != nil {
		return fmt.Errorf("%w: --ingress-enclave: %w", ErrConfig, err)
	}
	fwd, err := ingress.New(ingress.Config{Enclave: target, Log: log.With("component", compIngress)})
	if err != nil {
		return fmt.Errorf("%s: %w", compIngress, err)
	}
	l, err := p.listen(ctx, compIngress, cfg.IngressListen, log)
	if err != nil {
		return err
	}
	p.ingress = fwd
	p.add(compIngress, func(ctx context.Context) error { return fwd.Serve(ctx, l) })
	return p.register("enclave-api", health.DialCheck(target))
}

func (p *parent) addHealth(ctx context.Context, cfg Config, log *slog.Logger) error {
	if cfg.HealthListen == "" {
		log.Info("component off: no --health-listen", "component", compHealth)
		return nil
	}
	l, err := p.listen(ctx, compHealth, cfg.HealthListen, log)
	if err != nil {
		return err
	}
	p.add(compHealth, func(ctx context.Context) error { return p.checker.Serve(ctx, l) })
	return nil
}
