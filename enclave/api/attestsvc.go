package api

import (
	"bytes"
	"context"
	"errors"

	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

type attestationService struct {
	pb.UnimplementedAttestationServiceServer
	s *Server
}

// GetAttestation returns a fresh attestation document for the caller's
// nonce. It refuses (INTERNAL) to return one that binds another TLS
// certificate than the one this server presents, which is the one the
// caller's connection saw.
func (a *attestationService) GetAttestation(ctx context.Context, req *pb.GetAttestationRequest) (*pb.GetAttestationResponse, error) {
	if err := checkNonce(req.GetNonce()); err != nil {
		return nil, err
	}
	att, err := a.s.node.Attest(ctx, bytes.Clone(req.GetNonce()))
	if err != nil {
		return nil, fromNode(err, nil)
	}
	if att.TLSCertificate != a.s.cert.Fingerprint {
		return nil, errors.New("api: the node attests another TLS certificate than the server's")
	}
	return &pb.GetAttestationResponse{
		AttestationDocument:  att.Document,
		CosignerId:           att.CosignerID,
		IdentityPublicKey:    att.IdentityKey,
		EncryptionPublicKey:  att.EncryptionKey,
		TlsCertificateSha256: att.TLSCertificate[:],
	}, nil
}
