// Command cosigner-parent is the nitro-cosigner process on the (untrusted)
// host beside the enclave. See README.md and docs/architecture.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/nitro-cosigner/nitro-cosigner/parent/app"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/cliflag"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/logging"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/version"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		logCfg  logging.Config
		showVer bool
	)
	fs := flag.NewFlagSet("cosigner-parent", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: cosigner-parent [flags]\n\nRuns the nitro-cosigner host process beside the enclave.\n\nFlags:\n")
		cliflag.PrintDefaults(fs)
	}
	fs.StringVar(&logCfg.Format, "log-format", "json", "log format: json or text")
	fs.StringVar(&logCfg.Level, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&showVer, "version", false, "print the version and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "cosigner-parent: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if showVer {
		fmt.Println("cosigner-parent", version.String())
		return 0
	}
	log, err := logging.New(os.Stderr, logCfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cosigner-parent:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, app.Config{}, log); err != nil {
		log.Error("cosigner-parent failed", "err", err)
		return 1
	}
	return 0
}
