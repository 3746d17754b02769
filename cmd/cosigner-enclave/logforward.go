package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/logfwd"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// logOutput returns where the log goes: stderr and, with --log-forward,
// the parent (enclave/logfwd). stop sends what is still queued, for at
// most logfwd.FlushTimeout, and stops forwarding.
func logOutput(addr string) (w io.Writer, stop func(), err error) {
	if addr == "" {
		return os.Stderr, func() {}, nil
	}
	a, err := transport.ParseAddr(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--log-forward: %w", err)
	}
	fwd := logfwd.New(a)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fwd.Run(ctx)
	}()
	// The forwarder first: it never fails, so a failing stderr cannot stop
	// the lines reaching the parent.
	return io.MultiWriter(fwd, os.Stderr), func() { cancel(); <-done }, nil
}
