// Package app wires the cosigner-parent process together: the untrusted
// host side that will start and watch the enclave, forward API bytes, proxy
// allowlisted egress and relay signed MPC frames. main parses flags into a
// Config and calls Run.
//
// What runs today: the process lifecycle (logging, signals, clean stop).
// Supervision, forwarding, the egress proxy and the broker relay attach
// here as they land (see docs/architecture.md).
package app

import (
	"context"
	"log/slog"
)

// Config is the parent's configuration.
type Config struct{}

// Run blocks until ctx ends.
func Run(ctx context.Context, _ Config, log *slog.Logger) error {
	log.Info("parent ready; no enclave supervision, relay or proxy is configured in this version")
	<-ctx.Done()
	log.Info("parent stopping")
	return nil
}
