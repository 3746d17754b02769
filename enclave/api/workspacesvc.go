package api

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/workspace"
	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// UserDirectory names API callers by their client certificate: the
// workspace's API users (enclave/app implements it over the held
// version, so that a change, a revocation included, applies to the next
// call).
type UserDirectory interface {
	// Caller returns the caller whose public key the certificate carries,
	// or an error if it is no user's.
	Caller(cert *x509.Certificate) (Caller, error)
}

// Workspace is what WorkspaceService serves; *enclave/workspace.Manager
// is one.
type Workspace interface {
	Current() *ws.Version
	Pending() []workspace.Pending
	Propose(ctx context.Context, actor string, s ws.Signed) (workspace.Result, error)
}

type workspaceService struct {
	pb.UnimplementedWorkspaceServiceServer
	s *Server
}

const msgNoWorkspace = "this cosigner holds no workspace"

func (w *workspaceService) current() (*ws.Version, error) {
	if w.s.workspace == nil {
		return nil, failure(codes.FailedPrecondition, msgNoWorkspace)
	}
	v := w.s.workspace.Current()
	if v == nil {
		return nil, failure(codes.FailedPrecondition, msgNoWorkspace)
	}
	return v, nil
}

func (w *workspaceService) GetWorkspace(context.Context, *pb.GetWorkspaceRequest) (*pb.GetWorkspaceResponse, error) {
	v, err := w.current()
	if err != nil {
		return nil, err
	}
	raw, err := v.Signed.Encode()
	if err != nil {
		return nil, err
	}
	return &pb.GetWorkspaceResponse{SignedVersion: raw, Version: v.Doc.Version, DocumentSha256: v.Hash[:]}, nil
}

func (w *workspaceService) ListPairingRequests(context.Context, *pb.ListPairingRequestsRequest) (*pb.ListPairingRequestsResponse, error) {
	if _, err := w.current(); err != nil {
		return nil, err
	}
	resp := &pb.ListPairingRequestsResponse{}
	for _, p := range w.s.workspace.Pending() {
		m, err := json.Marshal(p.Member)
		if err != nil {
			return nil, err
		}
		resp.Requests = append(resp.Requests, &pb.PairingRequest{Member: m, TokenId: p.TokenID, TokenVersion: p.Version,
			ModuleId: p.ModuleID, ReceiveTime: timestamppb.New(p.Received)})
	}
	return resp, nil
}

func (w *workspaceService) ProposeWorkspaceVersion(ctx context.Context, req *pb.ProposeWorkspaceVersionRequest) (*pb.ProposeWorkspaceVersionResponse, error) {
	if _, err := w.current(); err != nil {
		return nil, err
	}
	if len(req.GetDocument()) == 0 || len(req.GetDocument()) > ws.MaxDocSize || len(req.GetApprovals()) > 64 {
		return nil, failure(codes.InvalidArgument, "a document of 1 byte to 1 MiB and at most 64 approvals are required")
	}
	s := ws.Signed{Doc: req.GetDocument()}
	for _, a := range req.GetApprovals() {
		s.Approvals = append(s.Approvals, ws.Approval{Admin: base64.StdEncoding.EncodeToString(a.GetAdminPublicKey()),
			Signature: base64.StdEncoding.EncodeToString(a.GetSignature())})
	}
	caller := callerFrom(ctx)
	final, err := w.s.idempotent(ctx, caller, pb.WorkspaceService_ProposeWorkspaceVersion_FullMethodName, req,
		new(pb.ProposeWorkspaceVersionResponse), "propose-workspace-version", func(ctx context.Context) (proto.Message, error) {
			res, err := w.s.workspace.Propose(ctx, caller.ID, s)
			if err != nil {
				return nil, proposeError(err)
			}
			return &pb.ProposeWorkspaceVersionResponse{Applied: res.Applied, Version: res.Version, DocumentSha256: res.Hash[:],
				Approvals: uint32(res.Approvals), Quorum: uint32(res.Quorum)}, nil
		})
	if err != nil {
		return nil, err
	}
	resp, ok := final.(*pb.ProposeWorkspaceVersionResponse)
	if !ok {
		return nil, errors.New("api: propose flight has no ProposeWorkspaceVersionResponse")
	}
	return resp, nil
}

// proposeError maps the Manager's refusals to statuses.
func proposeError(err error) error {
	switch {
	case errors.Is(err, ws.ErrStale), errors.Is(err, ws.ErrFork), errors.Is(err, ws.ErrGap), errors.Is(err, workspace.ErrNoWorkspace):
		return failure(codes.FailedPrecondition, "the document does not follow the workspace version held")
	case errors.Is(err, workspace.ErrUnpaired):
		return failure(codes.InvalidArgument, "the document adds a cosigner without a verified pairing request here")
	case errors.Is(err, ws.ErrMalformed):
		return failure(codes.InvalidArgument, "malformed workspace document")
	case errors.Is(err, ws.ErrQuorum):
		return failure(codes.PermissionDenied, "too few valid admin approvals")
	}
	return err
}
