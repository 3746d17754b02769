package api

import (
	"bytes"
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/policy"
	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

type policyService struct {
	pb.UnimplementedPolicyServiceServer
	s *Server
}

var policyTexts = texts{
	codes.NotFound:           "no policy has been set",
	codes.InvalidArgument:    "malformed policy document",
	codes.FailedPrecondition: "the document's version is not above the version in force",
	codes.PermissionDenied:   "too few valid admin approvals",
}

func (p *policyService) GetPolicy(ctx context.Context, _ *pb.GetPolicyRequest) (*pb.GetPolicyResponse, error) {
	doc, err := p.s.node.Policy(ctx)
	if err != nil {
		return nil, fromNode(err, policyTexts)
	}
	return &pb.GetPolicyResponse{Policy: policyToPB(doc)}, nil
}

// SetPolicy runs the Node's SetPolicy under the idempotency key, detached
// from the call so that a change the Node makes is always recorded. A
// repeat while the first call runs fails with ABORTED.
func (p *policyService) SetPolicy(ctx context.Context, req *pb.SetPolicyRequest) (*pb.SetPolicyResponse, error) {
	caller := callerFrom(ctx)
	approvals, err := setPolicyParams(req)
	if err != nil {
		return nil, err
	}
	doc := bytes.Clone(req.GetDocument())
	final, err := p.s.idempotent(ctx, caller, pb.PolicyService_SetPolicy_FullMethodName, req, new(pb.SetPolicyResponse), "set-policy",
		func(ctx context.Context) (proto.Message, error) {
			stored, err := p.s.node.SetPolicy(ctx, caller, doc, approvals)
			if err != nil {
				return nil, err
			}
			return &pb.SetPolicyResponse{Policy: policyToPB(stored)}, nil
		})
	if err != nil {
		return nil, fromNode(err, policyTexts)
	}
	resp, ok := final.(*pb.SetPolicyResponse)
	if !ok {
		return nil, errors.New("api: set-policy flight has no SetPolicyResponse")
	}
	return resp, nil
}

// idemRequest is a mutating request: it carries its idempotency key.
type idemRequest interface {
	proto.Message
	GetIdempotencyKey() string
}

// idempotent runs fn once per caller, method and idempotency key, detached
// from the call so that a change it makes is always recorded: a repeat of
// a finished call gets the stored response (decoded into resp), a repeat
// while the first runs fails with ABORTED, and the same key with another
// request with ALREADY_EXISTS. fn's error comes back as is.
func (s *Server) idempotent(ctx context.Context, caller Caller, method string, req idemRequest, resp proto.Message, what string,
	fn func(context.Context) (proto.Message, error)) (proto.Message, error) {
	sc, err := newScope(caller, method, req.GetIdempotencyKey(), req)
	if err != nil {
		return nil, err
	}
	b, err := s.idem.begin(ctx, sc)
	switch {
	case err != nil:
		return nil, err
	case b.flight == nil:
		if err := decodeStored(b.stored, resp); err != nil {
			return nil, err
		}
		return resp, nil
	case !b.fresh:
		return nil, failure(codes.Aborted, msgInProgress)
	}
	if err := s.launch(b.flight, what, fn); err != nil {
		return nil, err
	}
	select {
	case <-b.flight.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.closing.Done():
		return nil, failure(codes.Unavailable, msgShuttingDown)
	}
	return b.flight.result()
}

// setPolicyParams checks a SetPolicyRequest and parses its approvals'
// admin keys (policy.ParseAdminKey: PKIX DER, Ed25519 or P-256). Whether a
// key is a configured admin, and a signature valid, is the Node's to say.
func setPolicyParams(req *pb.SetPolicyRequest) ([]policy.Approval, error) {
	if err := checkIdempotencyKey(req.GetIdempotencyKey()); err != nil {
		return nil, err
	}
	if n := len(req.GetDocument()); n == 0 || n > MaxPolicyDocumentLen {
		return nil, invalid("document", "1 byte to 256 KiB")
	}
	if len(req.GetApprovals()) > policy.MaxApprovals {
		return nil, invalid("approvals", "at most 64")
	}
	out := make([]policy.Approval, 0, len(req.GetApprovals()))
	for _, a := range req.GetApprovals() {
		key, err := policy.ParseAdminKey(a.GetAdminPublicKey())
		if err != nil {
			return nil, invalid("approvals.admin_public_key", "a PKIX DER Ed25519 or P-256 public key")
		}
		if n := len(a.GetSignature()); n == 0 || n > maxSignatureLen {
			return nil, invalid("approvals.signature", "1 to 256 bytes")
		}
		out = append(out, policy.Approval{AdminKey: key, Signature: bytes.Clone(a.GetSignature())})
	}
	return out, nil
}
