package api

import (
	"context"
	"slices"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

type signingService struct {
	pb.UnimplementedSigningServiceServer
	s *Server
}

var signTexts = texts{
	codes.NotFound:           "key not found",
	codes.InvalidArgument:    "the payload was refused: it does not parse or breaks a limit",
	codes.FailedPrecondition: "the payload does not fit the key's scheme",
	codes.PermissionDenied:   "the key's owner does not let this caller sign with it",
}

// deadlineMargin is how long before the call's deadline Sign returns an
// unfinished operation, so that the answer arrives in time.
const deadlineMargin = 500 * time.Millisecond

// Sign starts a sign operation, or finds the one its idempotency key
// started, and waits for it (see wait). The operation runs detached from
// the call, under OperationTimeout.
func (g *signingService) Sign(ctx context.Context, req *pb.SignRequest) (*pb.SignResponse, error) {
	caller := callerFrom(ctx)
	params, wait, err := signParams(req, caller)
	if err != nil {
		return nil, err
	}
	sc, err := newScope(caller, pb.SigningService_Sign_FullMethodName, req.GetIdempotencyKey(), req, "max_wait")
	if err != nil {
		return nil, err
	}
	params.OperationID = operationID(caller, req.GetIdempotencyKey())
	sc.key = signRecordKey(params.OperationID)
	if op := g.s.ops.get(params.OperationID); op != nil {
		return g.attach(ctx, op, sc, wait)
	}
	stored, found, err := g.s.idem.lookup(ctx, sc)
	switch {
	case err != nil:
		return nil, err
	case found:
		resp := new(pb.SignResponse)
		if err := decodeStored(stored, resp); err != nil {
			return nil, err
		}
		return resp, nil
	}
	op := newSignOp(params.OperationID, sc, params, g.s.now())
	if old, err := g.s.ops.add(op); err != nil {
		return nil, err
	} else if old != nil {
		return g.attach(ctx, old, sc, wait)
	}
	if err := g.start(op, params); err != nil {
		g.s.ops.remove(op)
		return nil, err
	}
	return g.wait(ctx, op, wait)
}

// attach waits for an operation that a call with the same idempotency key
// started, if this call's request is the same.
func (g *signingService) attach(ctx context.Context, op *signOp, sc scope, wait time.Duration) (*pb.SignResponse, error) {
	if op.scope.hash != sc.hash {
		return nil, failure(codes.AlreadyExists, msgConflict)
	}
	return g.wait(ctx, op, wait)
}

// start runs the Node's sign in the background. When it ends, the
// operation is final: its view goes to the idempotency store and it stays
// in the table for OperationRetention; or, if the Node failed before a
// client saw the operation, it leaves the table and nothing is stored.
func (g *signingService) start(op *signOp, params SignParams) error {
	if err := g.s.acquire(); err != nil {
		return err
	}
	err := g.s.spawn(func(ctx context.Context) {
		defer g.s.release()
		out, err := protect(g.s, "sign", func() (SignOutcome, error) { return g.s.node.Sign(ctx, params) })
		final, bad := op.finish(out, err, g.s.now())
		if bad {
			g.s.log.Error("api: the node's sign outcome does not fit the request; reported as FAILED",
				"operation", op.id, "state", int(out.State))
		}
		if final == nil {
			g.s.ops.remove(op)
			return
		}
		g.s.ops.finish(op)
		g.s.idem.persist(op.scope, &pb.SignResponse{Operation: final})
	})
	if err != nil {
		g.s.release()
	}
	return err
}

// wait returns the operation when it ends, when wait has passed, shortly
// before the call's deadline, or when shutdown begins, whichever is first.
func (g *signingService) wait(ctx context.Context, op *signOp, wait time.Duration) (*pb.SignResponse, error) {
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, max(time.Until(dl)-deadlineMargin, 0))
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-op.done:
	case <-t.C:
	case <-g.s.closing.Done():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	v, err := op.view()
	if err != nil {
		return nil, fromNode(err, signTexts)
	}
	return &pb.SignResponse{Operation: v}, nil
}

func (g *signingService) GetSignOperation(ctx context.Context, req *pb.GetSignOperationRequest) (*pb.GetSignOperationResponse, error) {
	id, err := parseOperationName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	notFound := failure(codes.NotFound, "sign operation not found")
	if op := g.s.ops.get(id); op != nil {
		v, err := op.view()
		if err != nil {
			return nil, notFound
		}
		return &pb.GetSignOperationResponse{Operation: v}, nil
	}
	rec, found, err := g.s.idem.read(ctx, signRecordKey(id))
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound
	}
	resp := new(pb.SignResponse)
	if err := decodeStored(rec.Response, resp); err != nil {
		return nil, err
	}
	return &pb.GetSignOperationResponse{Operation: resp.GetOperation()}, nil
}

// signParams checks a SignRequest and returns the Node's parameters
// (without OperationID) and how long to wait.
func signParams(req *pb.SignRequest, caller Caller) (SignParams, time.Duration, error) {
	if err := checkIdempotencyKey(req.GetIdempotencyKey()); err != nil {
		return SignParams{}, 0, err
	}
	key, err := parseKeyName("key", req.GetKey())
	if err != nil {
		return SignParams{}, 0, err
	}
	if err := checkPath("derivation_path", req.GetDerivationPath()); err != nil {
		return SignParams{}, 0, err
	}
	if err := checkText("note", req.GetNote(), MaxNoteLen); err != nil {
		return SignParams{}, 0, err
	}
	wait, err := maxWait(req.GetMaxWait())
	if err != nil {
		return SignParams{}, 0, err
	}
	pl, err := signPayload(req)
	if err != nil {
		return SignParams{}, 0, err
	}
	return SignParams{
		Caller: caller, Key: key, Path: slices.Clone(req.GetDerivationPath()), Note: req.GetNote(), Payload: pl,
	}, wait, nil
}
