// Package app implements cosignerctl's commands. Run dispatches on the first
// arguments and returns the process exit code: 0 on success, 1 when the
// command ran and its answer is "no" (an invalid document, a failed check,
// a failed attestation, a refusal by the server, a rejected sign), 2 on
// usage errors. The API commands dial the cosigner with pkg/apiclient,
// which attests the server before any request is sent; with --devnet DIR
// they take the address, client certificate and attestation expectations
// from a development devnet's DIR/devnet.json.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
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
		{"sign", "sign an Ethereum transaction (--eth-tx) or a Taproot PSBT (--psbt) and check the result", runSign},
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
	cmds = append(cmds, workspaceCommands()...)
	return append(cmds, devCommands()...)
}

// Run runs the command named by args. Global flags (--devnet, --cosigner,
// --role) may come before the command; they are given to it as if they
// followed it.
func Run(ctx context.Context, args []string, io IO) int {
	globals, args, err := splitGlobals(args)
	if err != nil {
		fmt.Fprintf(io.Err, "cosignerctl: %v\n", err)
		return ExitUsage
	}
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
			return c.run(ctx, append(globals, args[len(words):]...), io)
		}
	}
	fmt.Fprintf(io.Err, "cosignerctl: unknown command %q; run 'cosignerctl help'\n", strings.Join(args, " "))
	return ExitUsage
}

// globalFlags are the flags that may precede the command. Each takes a
// value.
var globalFlags = []string{"devnet", "cosigner", "role"}

// splitGlobals takes the global flags off the front of args, as
// "--name=value" arguments for the command's flag set.
func splitGlobals(args []string) (globals, rest []string, err error) {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && !slices.Contains([]string{"-h", "-help", "--help"}, args[0]) {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(args[0], "-"), "-"), "=")
		if !slices.Contains(globalFlags, name) {
			return nil, nil, fmt.Errorf("%s before the command: only --%s may come there", args[0], strings.Join(globalFlags, ", --"))
		}
		args = args[1:]
		if !hasValue {
			if len(args) == 0 {
				return nil, nil, fmt.Errorf("--%s needs a value", name)
			}
			value, args = args[0], args[1:]
		}
		globals = append(globals, "--"+name+"="+value)
	}
	return globals, args, nil
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: cosignerctl [--devnet DIR [--cosigner K] [--role ROLE]] COMMAND [flags] [args]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-22s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'cosignerctl COMMAND --help' for a command's flags. With --devnet DIR the API commands\n"+
		"call cosigner K (default 1) of a devnet (cosignerctl devnet up) as its devnet.json describes.\n")
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
	positional, code, done := parseArgs(fs, args)
	if done {
		return code, done
	}
	return checkArgs(fs, positional, nargs)
}

// parseArgs parses flags that may come before or after the positional
// arguments, and returns the positionals.
func parseArgs(fs *flag.FlagSet, args []string) (positional []string, code int, done bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, ExitOK, true
			}
			return nil, ExitUsage, true
		}
		if fs.NArg() == 0 {
			return positional, 0, false
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// checkArgs checks there are nargs positionals and makes fs.Args()
// return them.
func checkArgs(fs *flag.FlagSet, positional []string, nargs int) (code int, done bool) {
	if len(positional) != nargs {
		fmt.Fprintf(fs.Output(), "cosignerctl %s: want %d argument(s), got %d\n", fs.Name(), nargs, len(positional))
		fs.Usage()
		return ExitUsage, true
	}
	// Re-parse so that fs.Args() returns the positionals in order.
	_ = fs.Parse(append([]string{"--"}, positional...))
	return 0, false
}

// parseKeyed parses the arguments of a command that acts on a key, given
// as --key or as the first positional argument, before nargs others. It
// returns the key's resource name; fs.Args() returns the others.
func parseKeyed(fs *flag.FlagSet, key *string, args []string, nargs int) (name string, code int, done bool) {
	positional, code, done := parseArgs(fs, args)
	if done {
		return "", code, done
	}
	switch {
	case *key != "" && len(positional) == nargs+1:
		fmt.Fprintf(fs.Output(), "cosignerctl %s: the key is given twice (--key and an argument)\n", fs.Name())
		return "", ExitUsage, true
	case *key == "" && len(positional) == 0:
		fmt.Fprintf(fs.Output(), "cosignerctl %s: name the key: --key ID or the KEY argument\n", fs.Name())
		return "", ExitUsage, true
	case *key == "":
		*key, positional = positional[0], positional[1:]
	}
	if code, done := checkArgs(fs, positional, nargs); done {
		return "", code, done
	}
	name, err := keyName(*key)
	if err != nil {
		fmt.Fprintf(fs.Output(), "cosignerctl %s: %v\n", fs.Name(), err)
		return "", ExitUsage, true
	}
	return name, 0, false
}

// flagSet reports whether the flag was given on the command line.
func flagSet(fs *flag.FlagSet, name string) (set bool) {
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
