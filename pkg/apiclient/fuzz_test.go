package apiclient

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// FuzzVerify: a GetAttestation response comes from a server not yet
// trusted. Verify never panics, returns an attestation or an
// *AttestationError and never both, and what it accepts is bound: the
// document verified, and its user_data binds the response's fields.
func FuzzVerify(f *testing.F) {
	ca, err := attestsim.NewCA()
	if err != nil {
		f.Fatal(err)
	}
	pcrs := map[int][]byte{0: bytes.Repeat([]byte{1}, 48)}
	cert := []byte("server certificate DER")
	certHash := sha256.Sum256(cert)
	nonce := []byte("nonce-0123456789")
	identity, enc := make([]byte, 32), make([]byte, 32)
	rand.Read(identity)
	rand.Read(enc)
	binding := wire.BindingUserData("co-1", identity, enc, certHash[:])
	doc, err := ca.Attest(attestsim.Request{PCRs: pcrs, Nonce: nonce, UserData: binding, Time: time.Now()})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(doc, "co-1", identity, enc, certHash[:])
	f.Add(doc, "co-2", identity, enc, certHash[:])
	f.Add(doc[:len(doc)/2], "co-1", identity, enc, certHash[:])
	f.Add([]byte{0xd2, 0x84}, "", []byte{}, []byte{}, []byte{})
	want := Expected{Nonce: nonce, ServerCert: cert, Roots: ca.Roots(), PCRs: pcrs, CosignerID: "co-1", Time: time.Now()}
	if _, err := Verify(&cosignerv1.GetAttestationResponse{AttestationDocument: doc, CosignerId: "co-1", IdentityPublicKey: identity,
		EncryptionPublicKey: enc, TlsCertificateSha256: certHash[:]}, want); err != nil {
		f.Fatalf("the valid seed does not verify: %v", err)
	}
	f.Fuzz(func(t *testing.T, doc []byte, id string, identity, enc, tlsHash []byte) {
		resp := &cosignerv1.GetAttestationResponse{AttestationDocument: doc, CosignerId: id,
			IdentityPublicKey: identity, EncryptionPublicKey: enc, TlsCertificateSha256: tlsHash}
		att, err := Verify(resp, want)
		var ae *AttestationError
		switch {
		case err != nil && att != nil:
			t.Fatal("an attestation returned with an error")
		case err != nil && !errors.As(err, &ae):
			t.Fatalf("error %T is not an *AttestationError", err)
		case err == nil && (att.CosignerID != "co-1" || !bytes.Equal(att.Document.UserData,
			wire.BindingUserData(id, identity, enc, tlsHash)) || !bytes.Equal(tlsHash, certHash[:])):
			t.Fatal("accepted a response its document does not bind")
		}
	})
}
