//go:build !release

package app

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/cliflag"
)

func devCommands() []command {
	return []command{
		{"attestation simulate", "write a simulated attestation document (development builds)", runAttestationSimulate},
	}
}

func runAttestationSimulate(_ context.Context, args []string, io IO) int {
	var (
		userData, nonce                  cliflag.Hex
		pubKeyFile, out, rootOut, module string
		pcrs                             = cliflag.PCRs{}
	)
	fs := newFlagSet("attestation simulate", "", io)
	fs.Var(pcrs, "pcr", "PCR value as N=HEX (repeatable); unset PCRs are zero")
	fs.Var(&userData, "user-data", "user_data as hex")
	fs.Var(&nonce, "nonce", "nonce as hex")
	fs.StringVar(&pubKeyFile, "public-key", "", "file whose bytes become public_key")
	fs.StringVar(&module, "module-id", "i-simulated-enc", "module_id")
	fs.StringVar(&out, "out", "", "write the document (raw COSE_Sign1) here (required)")
	fs.StringVar(&rootOut, "root-out", "", "write the test CA root that verifies it (PEM) here (required)")
	if code, done := parse(fs, args, 0); done {
		return code
	}
	if out == "" || rootOut == "" {
		return usageError(io, "attestation simulate", fmt.Errorf("--out and --root-out are required"))
	}
	req := attestsim.Request{ModuleID: module, PCRs: pcrs, UserData: userData, Nonce: nonce, Time: time.Now()}
	if pubKeyFile != "" {
		b, err := os.ReadFile(pubKeyFile)
		if err != nil {
			return usageError(io, "attestation simulate", err)
		}
		req.PublicKey = b
	}
	if err := simulate(req, out, rootOut); err != nil {
		fmt.Fprintf(io.Err, "cosignerctl attestation simulate: %v\n", err)
		return ExitFail
	}
	fmt.Fprintf(io.Out, "wrote %s (document) and %s (root)\n", out, rootOut)
	return ExitOK
}

func simulate(req attestsim.Request, out, rootOut string) error {
	ca, err := attestsim.NewCA()
	if err != nil {
		return err
	}
	doc, err := ca.Attest(req)
	if err != nil {
		return err
	}
	if err := os.WriteFile(rootOut, ca.RootPEM(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(out, doc, 0o644)
}
