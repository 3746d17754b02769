package app

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"unicode/utf8"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// maxPolicyDocument is the largest document SetPolicy takes
// (policy.proto).
const maxPolicyDocument = 256 << 10

// approvalFormat names the approval file format.
const approvalFormat = "nitro-cosigner-policy-approval"

// approvalFile is what policy approve writes and policy set reads: one
// admin's approval of one document.
type approvalFile struct {
	Format         string `json:"format"`           // approvalFormat
	Version        int    `json:"version"`          // 1
	DocumentSHA256 string `json:"document_sha256"`  // hex SHA-256 of the approved document
	AdminPublicKey string `json:"admin_public_key"` // hex PKIX DER
	Signature      string `json:"signature"`        // hex, over apiclient.ApprovalMessage(document)
}

// policyJSON is a policy as --json prints it.
type policyJSON struct {
	Version        uint64 `json:"version"`
	DocumentSHA256 string `json:"document_sha256"`
	UpdateTime     string `json:"update_time"`
	Document       string `json:"document"` // hex
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

func runPolicyGet(ctx context.Context, args []string, io IO) int {
	var out string
	fs, a := newAPIFlags("policy get", "", io, defaultTimeout)
	fs.StringVar(&out, "out", "", "write the document, byte for byte, to this file (to approve a change of it)")
	if code, done := parse(fs, args, 0); done {
		return code
	}
	return a.run(ctx, io, func(ctx context.Context, c *apiclient.Conn) error {
		resp, err := cosignerv1.NewPolicyServiceClient(c).GetPolicy(ctx, &cosignerv1.GetPolicyRequest{})
		if err != nil {
			return err
		}
		return reportPolicy(io, a, resp.GetPolicy(), out, "")
	})
}

// reportPolicy checks the policy's hash, writes its document to out (if
// set) and prints it.
func reportPolicy(io IO, a *apiFlags, p *cosignerv1.Policy, out, verb string) error {
	sum := sha256.Sum256(p.GetDocument())
	if !bytes.Equal(sum[:], p.GetDocumentSha256()) {
		return errors.New("the server's document_sha256 is not the SHA-256 of its document")
	}
	if out != "" {
		if err := os.WriteFile(out, p.GetDocument(), 0o644); err != nil {
			return err
		}
	}
	if a.asJSON {
		return jsonResult(io, policyJSON{p.GetVersion(), hex.EncodeToString(sum[:]),
			timestamp(p.GetUpdateTime()), hex.EncodeToString(p.GetDocument()), a.idempotencyKey})
	}
	fmt.Fprintf(io.Out, "policy version %d%s\n  sha256:    %x\n  installed: %s\n", p.GetVersion(), verb, sum, timestamp(p.GetUpdateTime()))
	switch {
	case out != "":
		fmt.Fprintf(io.Out, "  document written to %s\n", out)
	case verb == "" && printableText(p.GetDocument()):
		fmt.Fprintf(io.Out, "\n%s\n", bytes.TrimRight(p.GetDocument(), "\n"))
	case verb == "":
		fmt.Fprintln(io.Out, "  (the document is not printable text; use --out)")
	}
	return nil
}

// printableText reports whether b is UTF-8 without control characters
// other than white space.
func printableText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if (r < 0x20 && r != '\n' && r != '\r' && r != '\t') || r == 0x7f {
			return false
		}
	}
	return true
}

func runPolicyApprove(_ context.Context, args []string, io IO) int {
	var keyFile, out string
	var asJSON bool
	fs := newFlagSet("policy approve", "DOCUMENT", io)
	fs.StringVar(&keyFile, "admin-key", "", "the admin's private key: PKCS#8 PEM, Ed25519 or ECDSA P-256 (required)")
	fs.StringVar(&out, "out", "", "write the approval file here (required)")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	if code, done := parse(fs, args, 1); done {
		return code
	}
	if keyFile == "" || out == "" {
		return usageError(io, "policy approve", errors.New("--admin-key and --out are required"))
	}
	doc, err := readPolicyDocument(fs.Arg(0), io)
	if err != nil {
		return usageError(io, "policy approve", err)
	}
	key, err := readAdminKey(keyFile)
	if err != nil {
		return usageError(io, "policy approve", err)
	}
	ap, err := apiclient.Approve(doc, key)
	if err != nil {
		return usageError(io, "policy approve", err)
	}
	sum := sha256.Sum256(doc)
	f := approvalFile{approvalFormat, 1, hex.EncodeToString(sum[:]), hex.EncodeToString(ap.GetAdminPublicKey()), hex.EncodeToString(ap.GetSignature())}
	b, _ := json.MarshalIndent(f, "", "  ")
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		fmt.Fprintf(io.Err, "cosignerctl policy approve: %v\n", err)
		return ExitFail
	}
	if asJSON {
		return writeJSON(io, struct {
			File string `json:"file"`
			approvalFile
		}{out, f})
	}
	fmt.Fprintf(io.Out, "wrote %s: approval of document sha256 %s (policy version %s)\n  admin key: %s\n", out, f.DocumentSHA256, documentVersion(doc), f.AdminPublicKey)
	return ExitOK
}

// readPolicyDocument reads a document: JSON, at most 256 KiB.
func readPolicyDocument(name string, io IO) ([]byte, error) {
	doc, err := readInput(name, io)
	if err != nil {
		return nil, err
	}
	if len(doc) > maxPolicyDocument {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxPolicyDocument)
	}
	if !json.Valid(doc) {
		return nil, fmt.Errorf("%s is not JSON", name)
	}
	return doc, nil
}

// documentVersion is the version a document claims, for display.
func documentVersion(doc []byte) string {
	var v struct {
		Version json.Number `json:"version"`
	}
	if json.Unmarshal(doc, &v) != nil || v.Version == "" {
		return "unknown"
	}
	return v.Version.String()
}

// readAdminKey reads a PKCS#8 PEM private key.
func readAdminKey(name string) (crypto.Signer, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := readAllLimited(f, maxKeyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer clear(b)
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s holds no PKCS#8 PEM private key (PRIVATE KEY)", name)
	}
	defer clear(block.Bytes)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: unsupported key type %T", name, key)
	}
	return signer, nil
}

func runPolicySet(ctx context.Context, args []string, io IO) int {
	var approvals stringList
	fs, a := newAPIFlags("policy set", "DOCUMENT", io, defaultTimeout)
	a.withIdempotencyKey(fs)
	fs.Var(&approvals, "approval", "approval file written by policy approve (repeat for each admin)")
	if code, done := parse(fs, args, 1); done {
		return code
	}
	req, err := setPolicyRequest(fs.Arg(0), approvals, io)
	if err != nil {
		return usageError(io, a.cmd, err)
	}
	return a.run(ctx, io, func(ctx context.Context, c *apiclient.Conn) error {
		a.printIdempotencyKey(io)
		req.IdempotencyKey = a.idempotencyKey
		resp, err := cosignerv1.NewPolicyServiceClient(c).SetPolicy(ctx, req)
		if err != nil {
			return err
		}
		return reportPolicy(io, a, resp.GetPolicy(), "", " installed")
	})
}

func setPolicyRequest(docFile string, approvals []string, io IO) (*cosignerv1.SetPolicyRequest, error) {
	if len(approvals) == 0 {
		return nil, errors.New("at least one --approval is required")
	}
	doc, err := readPolicyDocument(docFile, io)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(doc)
	req := &cosignerv1.SetPolicyRequest{Document: doc}
	for _, name := range approvals {
		ap, err := readApproval(name, sum[:], io)
		if err != nil {
			return nil, err
		}
		req.Approvals = append(req.Approvals, ap)
	}
	return req, nil
}

// readApproval reads an approval file and checks that it approves the
// document whose SHA-256 is sum (the server checks the signature).
func readApproval(name string, sum []byte, io IO) (*cosignerv1.PolicyApproval, error) {
	b, err := readInput(name, io)
	if err != nil {
		return nil, err
	}
	var f approvalFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil || f.Format != approvalFormat || f.Version != 1 {
		return nil, fmt.Errorf("%s is not a policy approval file", name)
	}
	docSum, err1 := hex.DecodeString(f.DocumentSHA256)
	key, err2 := hex.DecodeString(f.AdminPublicKey)
	sig, err3 := hex.DecodeString(f.Signature)
	if errors.Join(err1, err2, err3) != nil {
		return nil, fmt.Errorf("%s: a field is not hex", name)
	}
	if !bytes.Equal(docSum, sum) {
		return nil, fmt.Errorf("%s approves another document (sha256 %s)", name, f.DocumentSHA256)
	}
	return &cosignerv1.PolicyApproval{AdminPublicKey: key, Signature: sig}, nil
}
