// Package app implements cosignerctl's commands. Run dispatches on the first
// arguments and returns the process exit code: 0 on success, 1 when the
// command ran and its answer is "no" (an invalid document, a failed check,
// a failed attestation, a refusal by the server, a rejected sign), 2 on
// usage errors. The API commands dial the cosigner with pkg/apiclient,
// which attests the server before any request is sent.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/cliflag"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/version"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitFail  = 1
	ExitUsage = 2
)

// IO is where a command reads and writes.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
}

// command is one leaf of the command tree.
type command struct {
	name    string // e.g. "attestation verify"
	summary string
	run     func(ctx context.Context, args []string, io IO) int
}

func commands() []command {
	cmds := []command{
		{"keys create", "create a threshold key, showing its progress", runKeysCreate},
		{"keys get", "show a key", runKeysGet},
		{"keys list", "list the keys", runKeysList},
		{"keys derive", "derive a child public key (non-hardened BIP-32)", runKeysDerive},
		{"keys refresh", "refresh a key's shares, showing the progress", runKeysRefresh},
		{"sign eth-tx", "sign an Ethereum transaction", runSignEthTx},
		{"sign eth-message", "sign an EIP-191 message", runSignEthMessage},
		{"sign eth-typed-data", "sign EIP-712 typed data", runSignEthTypedData},
		{"sign taproot-psbt", "sign a Taproot key-path spend (PSBT)", runSignTaprootPSBT},
		{"sign digest", "sign a raw 32-byte digest (where policy allows)", runSignDigest},
		{"sign status", "show a sign operation", runSignStatus},
		{"policy get", "show the policy in force", runPolicyGet},
		{"policy approve", "approve a policy document with an admin key (offline)", runPolicyApprove},
		{"policy set", "install a policy document with admin approvals", runPolicySet},
		{"audit export", "export the audit log to a file and verify it", runAuditExport},
		{"audit stream", "follow the audit log live", runAuditStream},
		{"audit verify", "verify an exported audit log", runAuditVerify},
		{"attestation get", "get and verify a fresh attestation document", runAttestationGet},
		{"attestation verify", "verify a Nitro attestation document", runAttestationVerify},
		{"eif inspect", "print an enclave image's sections and PCR0, PCR1, PCR2, PCR8", runEIFInspect},
		{"kms-policy", "print a KMS key policy bound to the enclave's PCRs", runKMSPolicy},
		{"devnet up", "run a whole cluster on this machine until interrupted (development builds)", runDevnetUp},
		{"version", "print the version", runVersion},
	}
	return append(cmds, devCommands()...)
}

// Run runs the command named by args.
func Run(ctx context.Context, args []string, io IO) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(io.Out)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c.run(ctx, args[len(words):], io)
		}
	}
	fmt.Fprintf(io.Err, "cosignerctl: unknown command %q; run 'cosignerctl help'\n", strings.Join(args, " "))
	return ExitUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: cosignerctl COMMAND [flags] [args]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-22s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'cosignerctl COMMAND --help' for a command's flags.\n")
}

func runVersion(_ context.Context, args []string, io IO) int {
	fs := newFlagSet("version", "", io)
	if code, done := parse(fs, args, 0); done {
		return code
	}
	fmt.Fprintln(io.Out, "cosignerctl", version.String())
	return ExitOK
}

// newFlagSet returns a flag set whose usage names the command and its
// positional arguments.
func newFlagSet(name, positional string, io IO) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Err)
	fs.Usage = func() {
		fmt.Fprintf(io.Err, "Usage: cosignerctl %s [flags] %s\n\nFlags:\n", name, positional)
		cliflag.PrintDefaults(fs)
	}
	return fs
}

// parse parses flags that may come before or after the positional
// arguments, and checks there are exactly nargs positionals. done is true
// when the command must stop with code (help asked for, or a usage error).
func parse(fs *flag.FlagSet, args []string, nargs int) (code int, done bool) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return ExitOK, true
			}
			return ExitUsage, true
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != nargs {
		fmt.Fprintf(fs.Output(), "cosignerctl %s: want %d argument(s), got %d\n", fs.Name(), nargs, len(positional))
		fs.Usage()
		return ExitUsage, true
	}
	// Re-parse so that fs.Args() returns the positionals in order.
	_ = fs.Parse(append([]string{"--"}, positional...))
	return 0, false
}
