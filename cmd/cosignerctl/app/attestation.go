package app

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/cliflag"
)

// maxDocumentFile bounds what verify reads: a document is a few KiB, its
// base64 a third more.
const maxDocumentFile = 64 << 10

func runAttestationVerify(_ context.Context, args []string, io IO) int {
	var (
		at, rootFile       string
		allowDebug, asJSON bool
		pcrs               = cliflag.PCRs{}
	)
	fs := newFlagSet("attestation verify", "FILE", io)
	fs.StringVar(&at, "at", "", "verification time: RFC 3339, unix milliseconds, or 'doc' for the document's own timestamp (default now)")
	fs.StringVar(&rootFile, "root", "", "PEM file of the root to trust instead of the pinned AWS Nitro root G1 (e.g. a simulator root)")
	fs.Var(pcrs, "pcr", "expected PCR as N=HEX (repeatable)")
	fs.BoolVar(&allowDebug, "allow-debug", false, "accept debug-mode documents (PCR0, PCR1 and PCR2 all zero)")
	fs.BoolVar(&asJSON, "json", false, "print the verified document as JSON")
	if code, done := parse(fs, args, 1); done {
		return code
	}
	raw, err := readDocument(fs.Arg(0))
	if err != nil {
		return usageError(io, "attestation verify", err)
	}
	opts, err := verifyOptions(raw, at, rootFile)
	if err != nil {
		return usageError(io, "attestation verify", err)
	}
	doc, err := attestation.Verify(raw, opts)
	if err == nil {
		err = attestation.Policy{PCRs: pcrs, AllowDebug: allowDebug}.Check(doc, opts.Time)
	}
	if err != nil {
		fmt.Fprintf(io.Err, "invalid: %v\n", err)
		return ExitFail
	}
	return printDocument(io, doc, asJSON)
}

func usageError(io IO, cmd string, err error) int {
	fmt.Fprintf(io.Err, "cosignerctl %s: %v\n", cmd, err)
	return ExitUsage
}

// readDocument reads raw COSE_Sign1 bytes, or their base64 (standard or
// URL alphabet, padded or not, surrounding white space ignored).
func readDocument(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxDocumentFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxDocumentFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxDocumentFile)
	}
	if len(b) > 0 && (b[0] == 0x84 || b[0] == 0xd2) { // CBOR array(4) or tag 18
		return b, nil
	}
	return decodeBase64(bytes.TrimSpace(b))
}

func decodeBase64(b []byte) ([]byte, error) {
	s := strings.TrimRight(string(b), "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if out, err := enc.DecodeString(s); err == nil {
			return out, nil
		}
	}
	return nil, errors.New("file holds neither a COSE_Sign1 document nor its base64")
}

// verifyOptions turns --at and --root into VerifyOptions.
func verifyOptions(raw []byte, at, rootFile string) (attestation.VerifyOptions, error) {
	var opts attestation.VerifyOptions
	t, err := verificationTime(raw, at)
	if err != nil {
		return opts, err
	}
	opts.Time = t
	if rootFile != "" {
		opts.Roots, err = readRoots(rootFile)
	}
	return opts, err
}

func verificationTime(raw []byte, at string) (time.Time, error) {
	switch {
	case at == "":
		return time.Now(), nil
	case at == "doc":
		// The timestamp is read from the unverified document: it only picks
		// the instant at which the certificate chain is checked, for
		// recorded documents; every other check still applies.
		return attestation.UnverifiedTimestamp(raw)
	}
	if ms, err := strconv.ParseInt(at, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return time.Time{}, fmt.Errorf("--at %q is neither RFC 3339, unix milliseconds nor 'doc'", at)
	}
	return t, nil
}

func readRoots(name string) (*x509.CertPool, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", name)
	}
	return pool, nil
}

// documentJSON is what --json prints.
type documentJSON struct {
	ModuleID  string            `json:"module_id"`
	Timestamp string            `json:"timestamp"`
	Digest    string            `json:"digest"`
	PCRs      map[string]string `json:"pcrs"`
	PublicKey *string           `json:"public_key"`
	UserData  *string           `json:"user_data"`
	Nonce     *string           `json:"nonce"`
}

func printDocument(io IO, doc *attestation.Document, asJSON bool) int {
	if !asJSON {
		fmt.Fprintf(io.Out, "valid: module %s at %s, PCR0 %x\n", doc.ModuleID, doc.Timestamp.UTC().Format(time.RFC3339Nano), doc.PCRs[0])
		return ExitOK
	}
	enc := json.NewEncoder(io.Out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(documentOut(doc)); err != nil {
		fmt.Fprintln(io.Err, "cosignerctl:", err)
		return ExitFail
	}
	return ExitOK
}

func documentOut(doc *attestation.Document) documentJSON {
	out := documentJSON{
		ModuleID:  doc.ModuleID,
		Timestamp: doc.Timestamp.UTC().Format(time.RFC3339Nano),
		Digest:    doc.Digest,
		PCRs:      map[string]string{},
		PublicKey: optionalHex(doc.PublicKey),
		UserData:  optionalHex(doc.UserData),
		Nonce:     optionalHex(doc.Nonce),
	}
	for _, i := range slices.Sorted(maps.Keys(doc.PCRs)) {
		out.PCRs[strconv.Itoa(i)] = hex.EncodeToString(doc.PCRs[i])
	}
	return out
}

func optionalHex(b []byte) *string {
	if b == nil {
		return nil
	}
	s := hex.EncodeToString(b)
	return &s
}
