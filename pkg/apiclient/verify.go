package apiclient

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// Check names one check of the attestation.
type Check string

// The checks, in the order Dial and Verify make them.
const (
	CheckRequest        Check = "attestation request" // GetAttestation failed
	CheckResponse       Check = "response fields"     // a key or hash of the wrong size
	CheckDocument       Check = "document"            // malformed, or its signature does not verify
	CheckChain          Check = "certificate chain"   // does not chain to the trusted root
	CheckDebug          Check = "debug mode"          // a debug-mode enclave without AllowDebug
	CheckPCRs           Check = "PCRs"                // an expected PCR differs
	CheckNonce          Check = "nonce"               // not the nonce sent
	CheckUserData       Check = "user_data binding"   // does not bind the response's identity
	CheckTLSCertificate Check = "TLS certificate"     // the server's certificate is not the bound one
	CheckCosignerID     Check = "cosigner ID"         // not the expected cosigner
)

// AttestationError says which check failed. Err is the cause; for
// CheckRequest it is the gRPC status error of the call.
type AttestationError struct {
	Check Check
	Err   error
}

func (e *AttestationError) Error() string {
	return fmt.Sprintf("attestation check failed: %s: %v", e.Check, e.Err)
}

func (e *AttestationError) Unwrap() error { return e.Err }

func fail(c Check, format string, args ...any) error {
	return &AttestationError{Check: c, Err: fmt.Errorf(format, args...)}
}

// Expected is what Verify checks a GetAttestation response against.
type Expected struct {
	Nonce      []byte         // the nonce sent
	ServerCert []byte         // DER leaf certificate the server presented on the call's connection
	Roots      *x509.CertPool // nil: the pinned AWS Nitro root G1
	PCRs       map[int][]byte // expected PCRs; unlisted ones are not checked
	AllowDebug bool           // accept debug-mode enclaves
	CosignerID string         // if set, the expected cosigner ID
	Time       time.Time      // when the document's certificate chain must be valid
}

// Attestation is what a verified GetAttestation response shows.
type Attestation struct {
	Document             *attestation.Document
	CosignerID           string
	IdentityKey          ed25519.PublicKey // signs MPC frames and audit entries
	EncryptionKey        []byte            // X25519, 32 bytes
	TLSCertificateSHA256 [sha256.Size]byte
}

// Verify checks a GetAttestation response and returns what it shows, or
// an *AttestationError naming the first check that failed; never both.
// The checks, in order:
//
//  1. The identity and encryption keys and the certificate hash are 32
//     bytes each (CheckResponse).
//  2. attestation.Verify accepts the document at want.Time under
//     want.Roots (CheckDocument; CheckChain when it does not chain to
//     the root).
//  3. The enclave is not in debug mode, unless want.AllowDebug
//     (CheckDebug), and each PCR of want.PCRs matches (CheckPCRs).
//  4. The document's nonce is want.Nonce (CheckNonce).
//  5. Its user_data is wire.BindingUserData(cosigner_id,
//     identity_public_key, encryption_public_key, tls_certificate_sha256)
//     of the response (CheckUserData).
//  6. tls_certificate_sha256 is the SHA-256 of want.ServerCert
//     (CheckTLSCertificate).
//  7. With want.CosignerID set, cosigner_id equals it (CheckCosignerID).
//
// Comparisons of bytes are constant-time.
func Verify(resp *cosignerv1.GetAttestationResponse, want Expected) (*Attestation, error) {
	if err := checkSizes(resp); err != nil {
		return nil, err
	}
	doc, err := attestation.Verify(resp.GetAttestationDocument(), attestation.VerifyOptions{Time: want.Time, Roots: want.Roots})
	if err != nil {
		if errors.Is(err, attestation.ErrChain) {
			return nil, &AttestationError{Check: CheckChain, Err: err}
		}
		return nil, &AttestationError{Check: CheckDocument, Err: err}
	}
	if err := checkImage(doc, want); err != nil {
		return nil, err
	}
	if err := checkBinding(doc, resp, want); err != nil {
		return nil, err
	}
	return &Attestation{
		Document:             doc,
		CosignerID:           resp.GetCosignerId(),
		IdentityKey:          ed25519.PublicKey(resp.GetIdentityPublicKey()),
		EncryptionKey:        resp.GetEncryptionPublicKey(),
		TLSCertificateSHA256: [sha256.Size]byte(resp.GetTlsCertificateSha256()),
	}, nil
}

func checkSizes(resp *cosignerv1.GetAttestationResponse) error {
	switch {
	case len(resp.GetIdentityPublicKey()) != ed25519.PublicKeySize:
		return fail(CheckResponse, "identity_public_key is not %d bytes", ed25519.PublicKeySize)
	case len(resp.GetEncryptionPublicKey()) != 32:
		return fail(CheckResponse, "encryption_public_key is not 32 bytes")
	case len(resp.GetTlsCertificateSha256()) != sha256.Size:
		return fail(CheckResponse, "tls_certificate_sha256 is not %d bytes", sha256.Size)
	}
	return nil
}

// checkImage runs check 3: debug mode, then the PCRs.
func checkImage(doc *attestation.Document, want Expected) error {
	err := attestation.Policy{PCRs: want.PCRs, AllowDebug: want.AllowDebug}.Check(doc, want.Time)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, attestation.ErrDebug):
		return &AttestationError{Check: CheckDebug, Err: err}
	}
	return &AttestationError{Check: CheckPCRs, Err: err}
}

// checkBinding runs checks 4 to 7.
func checkBinding(doc *attestation.Document, resp *cosignerv1.GetAttestationResponse, want Expected) error {
	if !attestation.Equal(want.Nonce)(doc.Nonce) {
		return fail(CheckNonce, "the document's nonce is not the one sent")
	}
	bound := wire.BindingUserData(resp.GetCosignerId(), resp.GetIdentityPublicKey(),
		resp.GetEncryptionPublicKey(), resp.GetTlsCertificateSha256())
	if !attestation.Equal(bound)(doc.UserData) {
		return fail(CheckUserData, "user_data does not bind the response's cosigner ID, keys and certificate hash")
	}
	seen := sha256.Sum256(want.ServerCert)
	if subtle.ConstantTimeCompare(seen[:], resp.GetTlsCertificateSha256()) != 1 {
		return fail(CheckTLSCertificate, "the server presented a certificate other than the one the document binds")
	}
	if want.CosignerID != "" && resp.GetCosignerId() != want.CosignerID {
		return fail(CheckCosignerID, "the attested cosigner is %q, not %q", resp.GetCosignerId(), want.CosignerID)
	}
	return nil
}
