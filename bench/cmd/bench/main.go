//go:build !release

// Command bench is nitro-cosigner's benchmark harness (see package
// bench/harness and `make bench`).
//
//	bench run [-smoke] [-bin DIR] [-tsslib DIR] [-out FILE] [-md FILE] [-steps LIST] [-keep]
//	bench check [-require] FILE
//
// run measures and writes the results (JSON) and the human report
// (Markdown); check reads a results file back and checks its form.
// `bench hold` is the child process run uses to measure memory per key.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/bench/harness"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, os.Args[1:])
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

const usage = "usage: bench run [-smoke] [-bin DIR] [-tsslib DIR] [-out FILE] [-md FILE] [-steps LIST] [-keep] | bench check [-require] FILE"

func dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "run":
		return runCmd(ctx, args[1:])
	case "check":
		return checkCmd(args[1:])
	case "hold":
		return harness.Hold(ctx, os.Stdin, os.Stdout)
	}
	fmt.Fprintln(os.Stderr, usage)
	return flag.ErrHelp
}

func runCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	smoke := fs.Bool("smoke", false, "tiny sizes: check that the harness works (under two minutes)")
	bin := fs.String("bin", "bin", "directory of cosigner-parent and cosigner-enclave (make build)")
	tsslib := fs.String("tsslib", "bench/tsslib", "the bench/tsslib module")
	out := fs.String("out", "bench/results.json", "results file (JSON)")
	md := fs.String("md", "BENCHMARKS.md", "human report (Markdown); empty: none")
	keep := fs.Bool("keep", false, "keep the devnets' directories (and their logs) after the run")
	steps := fs.String("steps", "", "comma-separated steps to run (of "+strings.Join(harness.Steps, ", ")+"); empty: all")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config(*smoke, *bin, *tsslib)
	if err != nil {
		return err
	}
	cfg.KeepDevnets = *keep
	if *steps != "" {
		cfg.Steps = strings.Split(*steps, ",")
	}
	began := time.Now()
	rep, err := harness.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(*out); err != nil {
		return err
	}
	if *md != "" {
		if err := rep.WriteMarkdown(*md); err != nil {
			return err
		}
	}
	cfg.Log.Info("done", "figures", len(rep.Figures()), "took", time.Since(began).Round(time.Second), "results", *out)
	return nil
}

func config(smoke bool, bin, tsslib string) (harness.Config, error) {
	binAbs, err := filepath.Abs(bin)
	if err != nil {
		return harness.Config{}, err
	}
	tssAbs, err := filepath.Abs(tsslib)
	if err != nil {
		return harness.Config{}, err
	}
	return harness.Config{
		Smoke: smoke, BinDir: binAbs, TSSLibDir: tssAbs,
		Log: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}, nil
}

func checkCmd(args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	require := fs.Bool("require", false, "also require every figure issue 9 names")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, usage)
		return flag.ErrHelp
	}
	figs, err := harness.Check(fs.Arg(0), *require)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d figures, well formed\n", fs.Arg(0), len(figs))
	return nil
}
