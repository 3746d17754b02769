package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/cliflag"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// attestedJSON is what attestation get --json prints. Document is set
// only when the document was verified.
type attestedJSON struct {
	Verified             bool          `json:"verified"`
	CosignerID           string        `json:"cosigner_id"`
	IdentityPublicKey    string        `json:"identity_public_key"`
	EncryptionPublicKey  string        `json:"encryption_public_key"`
	TLSCertificateSHA256 string        `json:"tls_certificate_sha256"`
	Nonce                string        `json:"nonce"`
	Document             *documentJSON `json:"document,omitempty"`
	AttestationDocument  string        `json:"attestation_document"`
}

func runAttestationGet(ctx context.Context, args []string, io IO) int {
	var (
		nonce cliflag.Hex
		out   string
	)
	fs, a := newAPIFlags("attestation get", "", io, defaultTimeout)
	fs.Var(&nonce, "nonce", fmt.Sprintf("nonce as hex, 1 to %d bytes (default: %d random bytes)", apiclient.MaxNonceSize, apiclient.NonceSize))
	fs.StringVar(&out, "out", "", "also write the document (raw COSE_Sign1) here, for attestation verify")
	if code, done := parse(fs, args, 0); done {
		return code
	}
	cfg, err := a.config()
	if err == nil && nonce != nil && (len(nonce) == 0 || len(nonce) > apiclient.MaxNonceSize) {
		err = fmt.Errorf("--nonce must be 1 to %d bytes", apiclient.MaxNonceSize)
	}
	if err != nil {
		return usageError(io, a.cmd, err)
	}
	cfg.Nonce = nonce
	return a.runConfig(ctx, io, cfg, func(ctx context.Context, c *apiclient.Conn) error {
		if at := c.Attested(); at != nil {
			return reportAttested(io, a, at, out)
		}
		return reportUnverified(ctx, io, a, c, nonce, out)
	})
}

// reportAttested prints the attestation Dial verified: it was made for
// our nonce, on this connection.
func reportAttested(io IO, a *apiFlags, at *apiclient.Attestation, out string) error {
	doc := at.Document
	if err := writeDocument(out, doc.Raw); err != nil {
		return err
	}
	docOut := documentOut(doc)
	js := attestedJSON{
		Verified: true, CosignerID: at.CosignerID, IdentityPublicKey: hex.EncodeToString(at.IdentityKey),
		EncryptionPublicKey: hex.EncodeToString(at.EncryptionKey), TLSCertificateSHA256: hex.EncodeToString(at.TLSCertificateSHA256[:]),
		Nonce: hex.EncodeToString(doc.Nonce), Document: &docOut, AttestationDocument: hex.EncodeToString(doc.Raw),
	}
	if a.asJSON {
		return jsonResult(io, js)
	}
	fmt.Fprintf(io.Out, "attested: cosigner %s\n", printable(js.CosignerID))
	fmt.Fprintf(io.Out, "  module:                  %s\n", printable(doc.ModuleID))
	fmt.Fprintf(io.Out, "  timestamp:               %s\n", doc.Timestamp.UTC().Format(time.RFC3339Nano))
	for _, i := range slices.Sorted(maps.Keys(doc.PCRs)) {
		if _, pinned := a.pcrs[i]; i <= 2 || pinned {
			fmt.Fprintf(io.Out, "  %-24s %x\n", fmt.Sprintf("PCR%d:", i), doc.PCRs[i])
		}
	}
	printBinding(io, js)
	return nil
}

// reportUnverified fetches a document without checking it
// (--insecure-skip-attestation), for a look at an unknown server.
func reportUnverified(ctx context.Context, io IO, a *apiFlags, c *apiclient.Conn, nonce []byte, out string) error {
	if nonce == nil {
		nonce = make([]byte, apiclient.NonceSize)
		_, _ = rand.Read(nonce) // never fails (crypto/rand)
	}
	resp, err := cosignerv1.NewAttestationServiceClient(c).GetAttestation(ctx, &cosignerv1.GetAttestationRequest{Nonce: nonce})
	if err != nil {
		return err
	}
	if err := writeDocument(out, resp.GetAttestationDocument()); err != nil {
		return err
	}
	js := attestedJSON{
		CosignerID: resp.GetCosignerId(), IdentityPublicKey: hex.EncodeToString(resp.GetIdentityPublicKey()),
		EncryptionPublicKey: hex.EncodeToString(resp.GetEncryptionPublicKey()), TLSCertificateSHA256: hex.EncodeToString(resp.GetTlsCertificateSha256()),
		Nonce: hex.EncodeToString(nonce), AttestationDocument: hex.EncodeToString(resp.GetAttestationDocument()),
	}
	if a.asJSON {
		return jsonResult(io, js)
	}
	fmt.Fprintf(io.Out, "NOT VERIFIED (--insecure-skip-attestation): the server claims to be cosigner %s\n", printable(js.CosignerID))
	fmt.Fprintf(io.Out, "  document:                %d bytes\n", len(resp.GetAttestationDocument()))
	printBinding(io, js)
	return nil
}

func printBinding(io IO, js attestedJSON) {
	fmt.Fprintf(io.Out, "  identity key:            %s\n", js.IdentityPublicKey)
	fmt.Fprintf(io.Out, "  encryption key:          %s\n", js.EncryptionPublicKey)
	fmt.Fprintf(io.Out, "  TLS certificate SHA-256: %s\n", js.TLSCertificateSHA256)
	fmt.Fprintf(io.Out, "  nonce:                   %s\n", js.Nonce)
}

func writeDocument(name string, doc []byte) error {
	if name == "" {
		return nil
	}
	return os.WriteFile(name, doc, 0o644)
}
