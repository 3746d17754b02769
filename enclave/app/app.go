// Package app wires the cosigner-enclave process together. main parses
// flags into a Config and calls Run.
//
// What runs today: the enclave opens its attester (the NSM device, or the
// simulator when explicitly configured in a development build), seeds the
// kernel RNG from the NSM, checks at boot that the attester produces a
// document that verifies against the expected root, and, when configured,
// opens its sealed state (or creates it, with --init) through KMS and S3.
// With a workspace (--workspace bootstrap file, --pair token, or the
// version it stored) it then runs the cosigner: its identity (created on
// first boot), the workspace, the wire layer and link to the parent
// relay, the MPC engine, the
// coordinator with this cosigner's judge (payload parsing, policy,
// approval, audit), and the API with TLS ending inside the enclave.
package app

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/nsm"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
)

// Attester choices for Config.NSM.
const (
	NSMDevice    = "device"
	NSMSimulator = "simulator"
)

// Config is the enclave's configuration.
type Config struct {
	// NSM is NSMDevice (the default) or NSMSimulator.
	NSM string
	// Simulator configures the simulator when NSM is NSMSimulator.
	Simulator nsm.SimulatorConfig
	// SimulatorRootOut, if set, is where the simulator's root certificate is
	// written (PEM), for peers and tools that must verify its documents.
	SimulatorRootOut string
	// State locates the sealed state; see StateConfig.
	State StateConfig
	// Cosigner configures MPC with peers and the API; see CosignerConfig.
	Cosigner CosignerConfig
}

// ErrConfig reports a configuration that cannot run.
var ErrConfig = errors.New("enclave: bad configuration")

// Run starts the enclave and blocks until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.Cosigner.check(); err != nil {
		return err
	}
	att, roots, err := openAttester(cfg, log)
	if err != nil {
		return err
	}
	defer att.Close()
	if err := selfCheck(att, roots, log); err != nil {
		return err
	}
	if cfg.Cosigner.enabled() && !cfg.State.enabled() {
		return fmt.Errorf("%w: the cosigner needs its sealed state (--s3-bucket)", ErrConfig)
	}
	if cfg.State.enabled() {
		st, err := openState(ctx, cfg.State, att, log)
		if err != nil {
			return err
		}
		defer st.Close()
		if err := describeState(ctx, st, log); err != nil {
			return err
		}
		if cfg.Cosigner.enabled() {
			return runCosigner(ctx, cfg, st.Store, att, roots, log)
		}
		if err := reportOnly(ctx, cfg, st.Store, att, roots, log); err != nil {
			return err
		}
	}
	log.Info("enclave ready")
	<-ctx.Done()
	log.Info("enclave stopping")
	return nil
}

// openAttester opens the configured attester and returns the roots its
// documents must verify under. It never falls back from one to the other.
func openAttester(cfg Config, log *slog.Logger) (nsm.Attester, *x509.CertPool, error) {
	switch cfg.NSM {
	case "", NSMDevice:
		return openDevice(log)
	case NSMSimulator:
		return openSimulator(cfg, log)
	default:
		return nil, nil, fmt.Errorf("%w: unknown NSM %q (want %s or %s)", ErrConfig, cfg.NSM, NSMDevice, NSMSimulator)
	}
}

func openDevice(log *slog.Logger) (nsm.Attester, *x509.CertPool, error) {
	dev, err := nsm.OpenDevice()
	if err != nil {
		return nil, nil, err
	}
	if err := nsm.SeedKernelRNG(dev); err != nil {
		dev.Close()
		return nil, nil, fmt.Errorf("seeding the kernel RNG from the NSM: %w", err)
	}
	log.Info("NSM device opened; kernel RNG seeded", "seed_bits", nsm.SeedBytes*8)
	return dev, attestation.AWSNitroRoots(), nil
}

func openSimulator(cfg Config, log *slog.Logger) (nsm.Attester, *x509.CertPool, error) {
	sim, err := nsm.OpenSimulator(cfg.Simulator)
	if err != nil {
		return nil, nil, err
	}
	log.Warn("using the NSM SIMULATOR: attestation documents are signed by a test CA; for development only")
	if cfg.SimulatorRootOut != "" {
		if err := os.WriteFile(cfg.SimulatorRootOut, sim.RootPEM(), 0o644); err != nil {
			return nil, nil, fmt.Errorf("writing simulator root: %w", err)
		}
	}
	roots, err := poolFromPEM(sim.RootPEM())
	if err != nil {
		return nil, nil, err
	}
	return sim, roots, nil
}

// selfCheck asks for a document with a random nonce and verifies it, so a
// misconfigured attester is found at boot rather than by the first peer.
func selfCheck(att nsm.Attester, roots *x509.CertPool, log *slog.Logger) error {
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	raw, err := att.Attest(nsm.Request{Nonce: nonce})
	if err != nil {
		return fmt.Errorf("boot attestation: %w", err)
	}
	doc, err := attestation.Verify(raw, attestation.VerifyOptions{Time: time.Now(), Roots: roots})
	if err != nil {
		return fmt.Errorf("boot attestation does not verify: %w", err)
	}
	// Debug documents are allowed here: this checks the binding, not the
	// measurements; peers and KMS judge those.
	if err := (attestation.Policy{Nonce: attestation.Equal(nonce), AllowDebug: true}).Check(doc, time.Now()); err != nil {
		return fmt.Errorf("boot attestation: %w", err)
	}
	log.Info("boot attestation verified", "module_id", doc.ModuleID, "pcr0", hex.EncodeToString(doc.PCRs[0]), "debug", doc.IsDebug())
	return nil
}

func poolFromPEM(b []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("simulator root PEM holds no certificate")
	}
	return pool, nil
}
