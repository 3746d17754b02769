package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// exportTo writes a real pkg/audit export of recs from seq from.
func exportTo(w io.Writer, recs []audit.Record, from uint64) error {
	h := audit.Header{CosignerID: selfID, FirstSeq: from}
	if from > 1 {
		h.PrevHash = recs[from-2].Hash
	}
	xw, err := audit.NewWriter(w, h, auditSigner)
	if err != nil {
		return err
	}
	for _, r := range recs[from-1:] {
		if err := xw.Write(r); err != nil {
			return err
		}
	}
	return xw.Close(t0)
}

// TestExportAudit: the stream's chunks, each 1 byte to 64 KiB, are a
// pkg/audit export that verifies under the identity key.
func TestExportAudit(t *testing.T) {
	recs := auditChain(t, 400)
	node := newFakeNode()
	var from uint64
	node.exportAudit = func(_ context.Context, f uint64, w io.Writer) (uint64, error) {
		from = f
		return 400, exportTo(w, recs, f)
	}
	h := start(t, node, nil)
	stream, err := pb.NewAuditServiceClient(h.auditor()).ExportAudit(ctxT(t), &pb.ExportAuditRequest{})
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := recvAll(stream)
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	for _, c := range chunks {
		if n := len(c.GetChunk()); n == 0 || n > MaxAuditChunk {
			t.Errorf("chunk of %d bytes", n)
		}
		file.Write(c.GetChunk())
	}
	if len(chunks) < 2 || from != 1 {
		t.Errorf("%d chunks, from %d", len(chunks), from)
	}
	sum, err := audit.Verify(&file, audit.VerifyOptions{IdentityKey: auditSigner.Public()})
	if err != nil || sum.Entries() != 400 {
		t.Fatalf("verify: %+v, %v", sum, err)
	}
}

func TestExportAuditErrors(t *testing.T) {
	node := newFakeNode()
	node.exportAudit = func(_ context.Context, from uint64, w io.Writer) (uint64, error) {
		if from > 1 {
			return 0, fmt.Errorf("%w: %s", ErrInvalidArgument, secretText)
		}
		w.Write(bytes.Repeat([]byte("x"), 100))
		return 0, fmt.Errorf("entry 3: %w: %s", ErrDataLoss, secretText)
	}
	h := start(t, node, nil)
	ac := pb.NewAuditServiceClient(h.auditor())
	stream, err := ac.ExportAudit(ctxT(t), &pb.ExportAuditRequest{StartSeq: 5})
	if err == nil {
		_, err = recvAll(stream)
	}
	wantCode(t, err, codes.OutOfRange)
	stream, err = ac.ExportAudit(ctxT(t), &pb.ExportAuditRequest{StartSeq: 1})
	if err == nil {
		_, err = recvAll(stream)
	}
	wantCode(t, err, codes.DataLoss)
}

// TestStreamAudit: the header first, then the entries from start_seq, and
// the stream stays open for new ones until the client cancels.
func TestStreamAudit(t *testing.T) {
	node := newFakeNode()
	node.records = auditChain(t, 3)
	h := start(t, node, nil)
	ctx, cancel := context.WithCancel(ctxT(t))
	stream, err := pb.NewAuditServiceClient(h.auditor()).StreamAudit(ctx, &pb.StreamAuditRequest{StartSeq: 2})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	hd := first.GetHeader()
	if hd.GetFirstSeq() != 2 || !bytes.Equal(hd.GetPrevHash(), node.records[0].Hash[:]) ||
		!bytes.Equal(hd.GetIdentityPublicKey(), auditSigner.Public()) || hd.GetCosignerId() != selfID {
		t.Fatalf("header %v", hd)
	}
	for _, want := range node.records[1:] {
		m, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		e := m.GetEntry()
		if e.GetSeq() != want.Entry.Seq || !bytes.Equal(e.GetEntry(), want.Raw) || !bytes.Equal(e.GetHash(), want.Hash[:]) ||
			!bytes.Equal(e.GetSignature(), want.Sig) {
			t.Fatalf("entry %v", e)
		}
		if _, err := audit.Open(auditSigner.Public(), e.GetEntry(), e.GetSignature()); err != nil {
			t.Errorf("entry %d does not verify: %v", e.GetSeq(), err)
		}
	}
	cancel()
	_, err = stream.Recv()
	wantCode(t, err, codes.Canceled)

	stream, err = pb.NewAuditServiceClient(h.auditor()).StreamAudit(ctxT(t), &pb.StreamAuditRequest{StartSeq: 10})
	if err == nil {
		_, err = stream.Recv()
	}
	wantCode(t, err, codes.OutOfRange)
}

// TestGetAttestation: the document carries the nonce, and the certificate
// hash it binds is the hash of the certificate this connection saw.
func TestGetAttestation(t *testing.T) {
	h := start(t, nil, nil)
	var p peer.Peer
	resp, err := pb.NewAttestationServiceClient(h.signer()).GetAttestation(ctxT(t),
		&pb.GetAttestationRequest{Nonce: []byte("nonce-1")}, grpc.Peer(&p))
	if err != nil {
		t.Fatal(err)
	}
	seen := sha256.Sum256(p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0].Raw)
	if !bytes.Equal(resp.GetTlsCertificateSha256(), seen[:]) || string(resp.GetAttestationDocument()) != "doc:nonce-1" ||
		resp.GetCosignerId() != selfID || len(resp.GetIdentityPublicKey()) != 32 || len(resp.GetEncryptionPublicKey()) != 32 {
		t.Errorf("attestation %v", resp)
	}
}

// TestGetAttestationWrongCertificate: an attestation that binds another
// TLS certificate is never returned.
func TestGetAttestationWrongCertificate(t *testing.T) {
	node := newFakeNode()
	node.attest = func(context.Context, []byte) (Attestation, error) {
		return Attestation{Document: []byte("doc"), TLSCertificate: [32]byte{1}}, nil
	}
	h := start(t, node, nil)
	_, err := pb.NewAttestationServiceClient(h.admin()).GetAttestation(ctxT(t), &pb.GetAttestationRequest{Nonce: []byte{1}})
	wantCode(t, err, codes.Internal)
}
