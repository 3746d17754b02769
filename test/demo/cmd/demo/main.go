// Command demo is `make demo`: it runs test/demo's flow against the
// binaries in --bin and prints what it did and proved. Exit status: 0 when
// every check passed, 1 when one failed, 2 on usage errors.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/test/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx)
	stop()
	os.Exit(code)
}

func run(ctx context.Context) int {
	var cfg demo.Config
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.StringVar(&cfg.Bin, "bin", "bin", "`directory` of cosignerctl, cosigner-parent and cosigner-enclave (make build)")
	fs.StringVar(&cfg.Dir, "dir", "", "working `directory`, kept afterwards (default: a temporary one, removed if every check passes)")
	fs.BoolVar(&cfg.SkipEthereum, "skip-ethereum", false, "leave out the CMP key and the Ethereum transfer")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "demo: unexpected arguments %q\n", fs.Args())
		return 2
	}
	bin, err := filepath.Abs(cfg.Bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 2
	}
	cfg.Bin, cfg.Out = bin, os.Stdout
	keep := cfg.Dir != ""
	if !keep {
		if cfg.Dir, err = os.MkdirTemp("", "nitro-demo"); err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			return 1
		}
	}
	start := time.Now()
	checks, err := demo.Run(ctx, cfg)
	return report(cfg, checks, err, keep, time.Since(start))
}

// report prints the summary and cleans up: a temporary directory is
// removed after a success and kept, for its logs, after a failure.
func report(cfg demo.Config, checks []string, err error, keep bool, took time.Duration) int {
	fmt.Printf("\n== summary (%v)\n", took.Round(time.Second))
	for _, c := range checks {
		fmt.Printf("✓ %s\n", c)
	}
	if err != nil {
		fmt.Printf("✗ %v\n\ndemo FAILED; the devnet's logs are in %s\n", err, filepath.Join(cfg.DevnetDir(), "logs"))
		return 1
	}
	fmt.Printf("\ndemo passed: all %d checks held\n", len(checks))
	if keep {
		fmt.Printf("the devnet is kept in %s (cosignerctl devnet up --dir %s restarts it)\n", cfg.DevnetDir(), cfg.DevnetDir())
	} else {
		os.RemoveAll(cfg.Dir)
	}
	return 0
}
