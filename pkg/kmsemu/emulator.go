package kmsemu

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults for Options.
const (
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "111122223333"
)

// Options configures an Emulator. The zero value is usable: it trusts only
// the AWS Nitro root for Recipient documents and uses the wall clock.
type Options struct {
	// Roots are the attestation roots trusted for Recipient documents (for
	// instance an attestsim CA's Roots()). Nil means the pinned AWS Nitro
	// Enclaves root only.
	Roots *x509.CertPool

	// Now is the emulator's clock, at which attestation documents are
	// verified and keys are dated. Nil means time.Now.
	Now func() time.Time

	// MaxAttestationAge, when positive, also refuses Recipient documents
	// whose timestamp is older than Now()-MaxAttestationAge (or more than
	// attestation.MaxFutureSkew ahead). Zero checks only that the
	// document's certificates are valid at Now().
	MaxAttestationAge time.Duration

	// Region and AccountID make up key ARNs; empty means DefaultRegion and
	// DefaultAccountID.
	Region, AccountID string

	// Logger receives one record per request; nil discards them.
	Logger *slog.Logger
}

// Emulator is a KMS emulator (see the package documentation); it is an
// http.Handler and safe for concurrent use. It is a development and test
// stand-in, never to be used in production.
type Emulator struct {
	opts      Options
	log       *slog.Logger
	statePath string // "" for an emulator held in memory only

	mu   sync.RWMutex
	keys map[string]*kmsKey // by key ID
}

// New returns an emulator with no keys, held in memory only.
func New(opts Options) *Emulator {
	return newEmulator(opts)
}

// Open returns an emulator whose keys are loaded from the file at statePath
// (none if the file does not exist yet) and saved there on every change.
func Open(statePath string, opts Options) (*Emulator, error) {
	if statePath == "" {
		return nil, errors.New("kmsemu: Open needs a state file path")
	}
	e := newEmulator(opts)
	e.statePath = statePath
	keys, err := loadState(statePath)
	if err != nil {
		return nil, fmt.Errorf("kmsemu: loading state: %w", err)
	}
	for _, k := range keys {
		k.arn = e.arn(k.id)
		e.keys[k.id] = k
	}
	return e, nil
}

func newEmulator(opts Options) *Emulator {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.AccountID == "" {
		opts.AccountID = DefaultAccountID
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Emulator{opts: opts, log: log, keys: make(map[string]*kmsKey)}
}

// shutdownGrace bounds how long Serve waits for requests in flight.
const shutdownGrace = 5 * time.Second

// Serve serves the KMS protocol on l until ctx ends, then shuts down,
// waiting at most a few seconds for requests in flight. It returns nil
// after a shutdown caused by ctx.
func (e *Emulator) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return fmt.Errorf("kmsemu: serving: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	<-done
	if err != nil {
		return fmt.Errorf("kmsemu: shutting down: %w", err)
	}
	return nil
}

func (e *Emulator) arn(keyID string) string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", e.opts.Region, e.opts.AccountID, keyID)
}
