package app

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/cliflag"
)

// defaultTimeout bounds an API command unless --timeout says otherwise.
const defaultTimeout = 2 * time.Minute

// Client certificate roles (the API's).
const (
	roleAdmin   = "admin"
	roleSigner  = "signer"
	roleAuditor = "auditor"
)

// apiFlags are the flags every API command shares: where the cosigner is,
// who we are, what its attestation must show, and how to print.
type apiFlags struct {
	cmd                                    string
	addr, certFile, keyFile, rootFile, cid string
	pcrs                                   cliflag.PCRs
	allowDebug, insecure, asJSON           bool
	timeout                                time.Duration

	// devnet, cosigner and role pick the connection from a devnet's
	// devnet.json instead.
	devnet, cosigner, role string

	// idempotencyKey is set by mutating commands (withIdempotencyKey).
	mutating       bool
	idempotencyKey string
}

// newAPIFlags returns a flag set for an API command with the shared
// flags registered.
func newAPIFlags(cmd, positional string, io IO, timeout time.Duration) (*flag.FlagSet, *apiFlags) {
	fs := newFlagSet(cmd, positional, io)
	a := &apiFlags{cmd: cmd, pcrs: cliflag.PCRs{}}
	fs.StringVar(&a.addr, "addr", "", "the cosigner API's HOST:PORT (required unless --devnet)")
	fs.StringVar(&a.certFile, "cert", "", "PEM client certificate (required unless --devnet)")
	fs.StringVar(&a.keyFile, "cert-key", "", "PEM private key of --cert (required unless --devnet)")
	fs.StringVar(&a.rootFile, "root", "", "PEM root to verify the attestation with instead of the pinned AWS Nitro root G1 (e.g. a simulator's)")
	if cmd != "workspace invite" { // its --pcr names the new cosigner's PCRs (and, without --devnet, the server's)
		fs.Var(a.pcrs, "pcr", "expected PCR of the enclave image as N=HEX (repeatable)")
	}
	fs.BoolVar(&a.allowDebug, "allow-debug", false, "accept a debug-mode enclave (PCR0, PCR1 and PCR2 all zero)")
	fs.StringVar(&a.cid, "cosigner-id", "", "refuse a server whose attested cosigner ID is another")
	fs.BoolVar(&a.insecure, "insecure-skip-attestation", false, "do NOT attest the server: anyone could be answering (development only)")
	fs.DurationVar(&a.timeout, "timeout", timeout, "deadline for the whole command, 0 for none")
	fs.BoolVar(&a.asJSON, "json", false, "print results as JSON")
	fs.StringVar(&a.devnet, "devnet", "", "call a devnet's cosigner as `DIR`/devnet.json describes it (address, client certificate, attestation root and PCRs), instead of the flags above; development builds")
	fs.StringVar(&a.cosigner, "cosigner", "", "with --devnet: the cosigner to call, its position in devnet.json (1, 2, ...) or its ID (default 1)")
	fs.StringVar(&a.role, "role", "", "with --devnet: the client certificate's role, admin, signer or auditor (default "+defaultRole(cmd)+")")
	return fs, a
}

// defaultRole is the role whose certificate a command uses with --devnet:
// the least that may make its calls.
func defaultRole(cmd string) string {
	switch {
	case cmd == "keys create" || cmd == "keys refresh" || cmd == "policy set" ||
		(strings.HasPrefix(cmd, "workspace ") && cmd != "workspace show"):
		return roleAdmin
	case strings.HasPrefix(cmd, "sign") && cmd != "sign status":
		return roleSigner
	}
	return roleAuditor
}

// withIdempotencyKey adds --idempotency-key.
func (a *apiFlags) withIdempotencyKey(fs *flag.FlagSet) {
	a.mutating = true
	fs.StringVar(&a.idempotencyKey, "idempotency-key", "", "idempotency key: 1 to 128 printable ASCII characters; reuse one to retry a call without repeating it (default: a new random one, printed)")
}

// config checks the flags and reads the files they name.
func (a *apiFlags) config() (apiclient.Config, error) {
	if a.mutating {
		if a.idempotencyKey == "" {
			a.idempotencyKey = apiclient.NewIdempotencyKey()
		} else if !apiclient.ValidIdempotencyKey(a.idempotencyKey) {
			return apiclient.Config{}, fmt.Errorf("--idempotency-key must be 1 to %d printable ASCII characters", apiclient.MaxIdempotencyKey)
		}
	}
	if a.devnet != "" {
		return a.devnetConfig()
	}
	if a.cosigner != "" || a.role != "" {
		return apiclient.Config{}, errors.New("--cosigner and --role go with --devnet")
	}
	if a.addr == "" || a.certFile == "" || a.keyFile == "" {
		return apiclient.Config{}, errors.New("--addr, --cert and --cert-key are required (or --devnet DIR)")
	}
	cert, err := tls.LoadX509KeyPair(a.certFile, a.keyFile)
	if err != nil {
		return apiclient.Config{}, fmt.Errorf("reading --cert and --cert-key: %w", err)
	}
	cfg := apiclient.Config{
		Addr: a.addr, ClientCertificate: cert, PCRs: a.pcrs, AllowDebug: a.allowDebug,
		CosignerID: a.cid, InsecureSkipAttestation: a.insecure,
	}
	if a.rootFile != "" {
		if cfg.Roots, err = readRoots(a.rootFile); err != nil {
			return apiclient.Config{}, fmt.Errorf("--root: %w", err)
		}
	}
	return cfg, nil
}

// devnetConfig is config for --devnet: the connection of cosigner
// a.cosigner (default the first) with the certificate of a.role (default
// the command's), from DIR/devnet.json.
func (a *apiFlags) devnetConfig() (apiclient.Config, error) {
	if a.addr != "" || a.certFile != "" || a.keyFile != "" || a.rootFile != "" || len(a.pcrs) != 0 ||
		a.cid != "" || a.allowDebug || a.insecure {
		return apiclient.Config{}, errors.New("--devnet gives the connection: --addr, --cert, --cert-key, --root, --pcr, --cosigner-id, --allow-debug and --insecure-skip-attestation do not go with it")
	}
	role := cmp.Or(a.role, defaultRole(a.cmd))
	if !slices.Contains([]string{roleAdmin, roleSigner, roleAuditor}, role) {
		return apiclient.Config{}, fmt.Errorf("--role %q is not one of admin, signer, auditor", role)
	}
	return devnetClientConfig(a.devnet, cmp.Or(a.cosigner, "1"), role)
}

// run dials and attests the server, then calls fn on the connection. It
// returns the exit code: usage errors in the flags are 2; a failed
// attestation, a refusal or a failure of fn is 1.
func (a *apiFlags) run(ctx context.Context, io IO, fn func(context.Context, *apiclient.Conn) error) int {
	cfg, err := a.config()
	if err != nil {
		return usageError(io, a.cmd, err)
	}
	return a.runConfig(ctx, io, cfg, fn)
}

func (a *apiFlags) runConfig(ctx context.Context, io IO, cfg apiclient.Config, fn func(context.Context, *apiclient.Conn) error) int {
	a.warn(io, cfg)
	if a.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.timeout)
		defer cancel()
	}
	conn, err := apiclient.Dial(ctx, cfg)
	if err != nil {
		return a.fail(io, err)
	}
	defer conn.Close()
	if at := conn.Attested(); at != nil && at.Document.IsDebug() {
		fmt.Fprintln(io.Err, "warning: the server is a debug-mode enclave (--allow-debug): its host can read its memory")
	}
	if err := fn(ctx, conn); err != nil {
		return a.fail(io, err)
	}
	return ExitOK
}

func (a *apiFlags) warn(io IO, cfg apiclient.Config) {
	switch {
	case cfg.InsecureSkipAttestation:
		fmt.Fprintln(io.Err, "WARNING: --insecure-skip-attestation: the server is NOT attested. Anyone on the network path could be answering, and could read and answer every request. Use this for development only.")
	case len(cfg.PCRs) == 0:
		fmt.Fprintln(io.Err, "warning: no --pcr given: any enclave image the attestation root signed is accepted")
	}
}

// answered is a failure whose result the command has already printed
// (a rejected sign operation): exit 1, a line on stderr, no error object.
type answered struct{ msg string }

func (e *answered) Error() string { return e.msg }

// errorJSON is what --json prints on stdout when a command fails.
type errorJSON struct {
	Error struct {
		Code           string `json:"code,omitempty"`
		Check          string `json:"check,omitempty"`
		Message        string `json:"message"`
		IdempotencyKey string `json:"idempotency_key,omitempty"`
	} `json:"error"`
}

// fail reports err on stderr (and stdout with --json) and returns 1.
func (a *apiFlags) fail(io IO, err error) int {
	if an, ok := errors.AsType[*answered](err); ok {
		fmt.Fprintf(io.Err, "cosignerctl %s: %s\n", a.cmd, an.msg)
		return ExitFail
	}
	var out errorJSON
	out.Error.IdempotencyKey = a.idempotencyKey
	text := printable(err.Error())
	if ae, ok := errors.AsType[*apiclient.AttestationError](err); ok {
		out.Error.Check = string(ae.Check)
		if st, ok := status.FromError(ae.Err); ok {
			out.Error.Code = codeName(st.Code())
		}
	} else if st, ok := status.FromError(err); ok {
		out.Error.Code = codeName(st.Code())
		text = out.Error.Code + ": " + printable(st.Message())
	}
	out.Error.Message = text
	fmt.Fprintf(io.Err, "cosignerctl %s: %s\n", a.cmd, text)
	if a.mutating && out.Error.Check == "" { // after a failed attestation nothing was sent
		fmt.Fprintf(io.Err, "to retry the same request: --idempotency-key %s\n", a.idempotencyKey)
	}
	if a.asJSON {
		writeJSON(io, out)
	}
	return ExitFail
}

// printable keeps server text from reaching the terminal as control
// characters.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// codeName is a status code as common.proto and the gRPC spec spell it.
func codeName(c codes.Code) string {
	names := map[codes.Code]string{
		codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN",
		codes.InvalidArgument: "INVALID_ARGUMENT", codes.DeadlineExceeded: "DEADLINE_EXCEEDED",
		codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
		codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
		codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED",
		codes.OutOfRange: "OUT_OF_RANGE", codes.Unimplemented: "UNIMPLEMENTED",
		codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE", codes.DataLoss: "DATA_LOSS",
		codes.Unauthenticated: "UNAUTHENTICATED",
	}
	if n, ok := names[c]; ok {
		return n
	}
	return fmt.Sprintf("CODE_%d", uint32(c))
}
