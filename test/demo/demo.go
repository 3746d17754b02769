// Package demo is what `make demo` runs: a devnet on this machine, driven
// only through cosignerctl's client commands with --json (the CLI
// contract), whose results are then checked with other people's code.
//
// Run starts `cosignerctl devnet up` (three cosigners) and waits for it to
// be ready, then:
//
//  1. Ethereum (unless Config.SkipEthereum): `keys create --scheme cmp`
//     makes a 2-of-3 CMP key; `keys derive` derives m/44/60/0/0/7, which
//     must be the BIP-32 child btcd's hdkeychain computes from the key and
//     its chain code, with the EIP-55 address go-ethereum computes; a
//     hardened path is refused (exit 2). go-ethereum's simulated backend
//     (chain 31337, which the devnet's default policy allows) funds that
//     address in its genesis; `sign --eth-tx` signs an EIP-1559 transfer
//     written in go-ethereum's JSON form; go-ethereum decodes the signed
//     transaction, recovers the derived address as its sender, and the
//     backend mines it: the receipt must say success and the balances
//     must move by the value and the fee.
//  2. Bitcoin: `keys create --scheme frost` makes a 2-of-3 FROST key; a
//     PSBT spends a made-up previous output paying to the key's untweaked
//     P2TR script (OP_1 <x-only key>); `sign --psbt` signs it; btcd
//     extracts the final transaction, and its script engine must accept
//     the key-path spend and refuse the same transaction with one output
//     changed.
//
// Finally the devnet is interrupted (SIGINT) and must exit 0. Run fails at
// the first check that does not hold.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config configures a run.
type Config struct {
	// Bin holds cosignerctl, cosigner-parent and cosigner-enclave.
	Bin string
	// Dir is the demo's working directory: the devnet lives in
	// Dir/devnet (keep Dir short: unix sockets live under it), the files
	// given to cosignerctl and the devnet's own log beside it.
	Dir string
	// SkipEthereum leaves out the CMP half (minutes under the race
	// detector).
	SkipEthereum bool
	// Out receives the commands run, their JSON output and each check as
	// it passes. Nil discards them.
	Out io.Writer
}

// DevnetDir is the devnet's directory.
func (c Config) DevnetDir() string { return filepath.Join(c.Dir, "devnet") }

// Timeouts.
const (
	readyTimeout = 3 * time.Minute
	stopTimeout  = time.Minute
)

// demo is one run.
type demo struct {
	cfg    Config
	ctl    string
	out    io.Writer
	checks []string
}

// Run runs the demo and returns the checks that passed, in order, and the
// first failure if any.
func Run(ctx context.Context, cfg Config) (checks []string, err error) {
	d := &demo{cfg: cfg, ctl: filepath.Join(cfg.Bin, "cosignerctl"), out: cfg.Out}
	if d.out == nil {
		d.out = io.Discard
	}
	if err := os.MkdirAll(cfg.DevnetDir(), 0o755); err != nil {
		return nil, err
	}
	dn, err := d.startDevnet()
	if err != nil {
		return d.checks, err
	}
	defer func() {
		err = errors.Join(err, d.stopDevnet(dn))
		checks = d.checks
	}()
	if !cfg.SkipEthereum {
		if err := d.ethereum(ctx); err != nil {
			return d.checks, fmt.Errorf("ethereum: %w", err)
		}
	}
	if err := d.bitcoin(ctx); err != nil {
		return d.checks, fmt.Errorf("bitcoin: %w", err)
	}
	return d.checks, nil
}

// pass records a check that held.
func (d *demo) pass(format string, args ...any) {
	c := fmt.Sprintf(format, args...)
	d.checks = append(d.checks, c)
	fmt.Fprintf(d.out, "✓ %s\n", c)
}

func (d *demo) section(title string) { fmt.Fprintf(d.out, "\n== %s\n", title) }

// devnet is the running `cosignerctl devnet up`.
type devnet struct {
	cmd    *exec.Cmd
	exited chan error
	log    *os.File
}

func (d *demo) startDevnet() (*devnet, error) {
	d.section("a devnet of three cosigners (NSM simulator, NATS, S3 and KMS stand-ins)")
	args := []string{"devnet", "up", "--dir", d.cfg.DevnetDir(), "--bin", d.cfg.Bin}
	fmt.Fprintf(d.out, "$ cosignerctl %s\n", strings.Join(args, " "))
	log, err := os.Create(filepath.Join(d.cfg.Dir, "devnet-up.log"))
	if err != nil {
		return nil, err
	}
	var stdout lockedBuffer
	cmd := exec.Command(d.ctl, args...)
	cmd.Stdout, cmd.Stderr, cmd.SysProcAttr = &stdout, log, devnetAttr()
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	dn := &devnet{cmd: cmd, exited: make(chan error, 1), log: log}
	go func() { dn.exited <- cmd.Wait() }()
	start := time.Now()
	line, err := waitReady(&stdout, dn.exited)
	if err != nil {
		log.Close()
		cmd.Process.Kill()
		return nil, fmt.Errorf("devnet up: %w (its log: %s)", err, log.Name())
	}
	fmt.Fprintf(d.out, "%s\n", line)
	d.pass("the devnet started: three attested cosigners serving in %v", time.Since(start).Round(time.Second))
	return dn, nil
}

// waitReady returns the line of out that says the devnet is ready.
func waitReady(out *lockedBuffer, exited <-chan error) (string, error) {
	deadline := time.After(readyTimeout)
	for {
		for line := range strings.Lines(out.String()) {
			if strings.Contains(line, "ready") {
				return strings.TrimSpace(line), nil
			}
		}
		select {
		case err := <-exited:
			return "", fmt.Errorf("exited before it was ready: %v", err)
		case <-deadline:
			return "", fmt.Errorf("not ready after %v", readyTimeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopDevnet interrupts the devnet, which must stop cleanly (exit 0).
func (d *demo) stopDevnet(dn *devnet) error {
	defer dn.log.Close()
	d.section("stopping the devnet")
	if err := dn.cmd.Process.Signal(os.Interrupt); err != nil {
		return err
	}
	start := time.Now()
	select {
	case err := <-dn.exited:
		if err != nil {
			return fmt.Errorf("devnet up after SIGINT: %v (its log: %s)", err, dn.log.Name())
		}
	case <-time.After(stopTimeout):
		dn.cmd.Process.Kill()
		<-dn.exited
		return fmt.Errorf("devnet up did not stop within %v of SIGINT; killed", stopTimeout)
	}
	d.pass("the devnet stopped on SIGINT and exited 0 in %v", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// ctlJSON runs `cosignerctl --devnet DIR args... --json`, shows the
// command and its output, and decodes the output into v. The command must
// exit 0.
func (d *demo) ctlJSON(ctx context.Context, v any, args ...string) error {
	args = append(append([]string{"--devnet", d.cfg.DevnetDir()}, args...), "--json")
	fmt.Fprintf(d.out, "$ cosignerctl %s\n", strings.Join(args, " "))
	start := time.Now()
	code, stdout, stderr := d.run(ctx, args)
	if code != 0 {
		fmt.Fprintf(d.out, "%s%s(exit %d)\n", stdout, stderr, code)
		return fmt.Errorf("cosignerctl %s: exit %d: %s", strings.Join(args[2:4], " "), code, reason(stderr))
	}
	fmt.Fprintf(d.out, "%s(exit 0 in %v)\n", stdout, time.Since(start).Round(100*time.Millisecond))
	if err := json.Unmarshal([]byte(stdout), v); err != nil {
		return fmt.Errorf("cosignerctl %s: the output is not the JSON object expected: %v", strings.Join(args[2:4], " "), err)
	}
	return nil
}

// run runs cosignerctl and returns its exit code, stdout and stderr.
func (d *demo) run(ctx context.Context, args []string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, d.ctl, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		return exit.ExitCode(), stdout.String(), stderr.String()
	} else if err != nil {
		return -1, "", err.Error()
	}
	return 0, stdout.String(), stderr.String()
}

// reason is the line of a failed command's stderr that says why (after
// its progress, before any hint), or its last line.
func reason(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for _, l := range slices.Backward(lines) {
		if strings.HasPrefix(l, "cosignerctl ") {
			return l
		}
	}
	return lines[len(lines)-1]
}

// writeFile writes a file for cosignerctl into the working directory.
func (d *demo) writeFile(name string, b []byte) (string, error) {
	path := filepath.Join(d.cfg.Dir, name)
	return path, os.WriteFile(path, b, 0o644)
}

// lockedBuffer is a bytes.Buffer a child process writes while we read.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
