package api

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

type keyService struct {
	pb.UnimplementedKeyServiceServer
	s *Server
}

var keyTexts = texts{
	codes.NotFound:           "key not found",
	codes.InvalidArgument:    "the request was refused: parties, scheme or threshold not acceptable",
	codes.FailedPrecondition: "the key cannot take this operation in its current state",
}

func (k *keyService) GetKey(ctx context.Context, req *pb.GetKeyRequest) (*pb.GetKeyResponse, error) {
	id, err := parseKeyName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	key, err := k.s.node.Key(ctx, id)
	if err != nil {
		return nil, fromNode(err, keyTexts)
	}
	return &pb.GetKeyResponse{Key: keyToPB(key)}, nil
}

func (k *keyService) ListKeys(ctx context.Context, req *pb.ListKeysRequest) (*pb.ListKeysResponse, error) {
	limit, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	after, err := parsePageToken(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	keys, more, err := k.s.node.ListKeys(ctx, after, limit)
	if err != nil {
		return nil, fromNode(err, keyTexts)
	}
	if len(keys) > limit {
		keys, more = keys[:limit], true
	}
	resp := &pb.ListKeysResponse{}
	for _, key := range keys {
		resp.Keys = append(resp.Keys, keyToPB(key))
	}
	if more && len(keys) > 0 {
		resp.NextPageToken = pageToken(keys[len(keys)-1].Info.Key)
	}
	return resp, nil
}

func (k *keyService) DerivePublicKey(ctx context.Context, req *pb.DerivePublicKeyRequest) (*pb.DerivePublicKeyResponse, error) {
	id, err := parseKeyName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if err := checkPath("derivation_path", req.GetDerivationPath()); err != nil {
		return nil, err
	}
	derived, scheme, err := k.s.node.DerivePublicKey(ctx, id, req.GetDerivationPath())
	if err != nil {
		return nil, fromNode(err, keyTexts)
	}
	return &pb.DerivePublicKeyResponse{
		PublicKey: derived.PublicKey, ChainCode: derived.ChainCode, Scheme: schemes[scheme],
	}, nil
}

func (k *keyService) CreateKey(req *pb.CreateKeyRequest, stream grpc.ServerStreamingServer[pb.CreateKeyResponse]) error {
	caller := callerFrom(stream.Context())
	params, err := createKeyParams(req, caller, k.s.node.Self())
	if err != nil {
		return err
	}
	return k.s.keyOperation(stream, createKeyRPC, req, req.GetIdempotencyKey(),
		func(ctx context.Context, progress func(Progress)) (Key, error) {
			return k.s.node.CreateKey(ctx, params, progress)
		})
}

func (k *keyService) RefreshKey(req *pb.RefreshKeyRequest, stream grpc.ServerStreamingServer[pb.RefreshKeyResponse]) error {
	caller := callerFrom(stream.Context())
	if err := checkIdempotencyKey(req.GetIdempotencyKey()); err != nil {
		return err
	}
	id, err := parseKeyName("name", req.GetName())
	if err != nil {
		return err
	}
	return k.s.keyOperation(stream, refreshKeyRPC, req, req.GetIdempotencyKey(),
		func(ctx context.Context, progress func(Progress)) (Key, error) {
			return k.s.node.RefreshKey(ctx, caller, id, progress)
		})
}

// createKeyParams checks a CreateKeyRequest.
func createKeyParams(req *pb.CreateKeyRequest, caller Caller, self mpc.PartyID) (CreateKeyParams, error) {
	if err := checkIdempotencyKey(req.GetIdempotencyKey()); err != nil {
		return CreateKeyParams{}, err
	}
	scheme, ok := schemeFromPB(req.GetScheme())
	if !ok {
		return CreateKeyParams{}, invalid("scheme", "KEY_SCHEME_CMP_ECDSA_SECP256K1 or KEY_SCHEME_FROST_TAPROOT")
	}
	parties, err := parseParties(req.GetParties(), self)
	if err != nil {
		return CreateKeyParams{}, err
	}
	if t := req.GetThreshold(); t < 2 || int(t) > len(parties) {
		return CreateKeyParams{}, invalid("threshold", "2 to the number of parties")
	}
	if err := checkText("display_name", req.GetDisplayName(), MaxDisplayNameLen); err != nil {
		return CreateKeyParams{}, err
	}
	return CreateKeyParams{
		Caller: caller, RequestID: req.GetIdempotencyKey(), Scheme: scheme,
		Threshold: int(req.GetThreshold()), Parties: parties, DisplayName: req.GetDisplayName(),
	}, nil
}

// parseParties checks a key's party list: 2 to 16 distinct IDs of 1 to 64
// printable ASCII characters, self among them. Whether they are in the
// roster is the Node's to say.
func parseParties(ids []string, self mpc.PartyID) ([]mpc.PartyID, error) {
	if len(ids) < mpc.MinParties || len(ids) > mpc.MaxParties {
		return nil, invalid("parties", "2 to 16 cosigner IDs")
	}
	out := make([]mpc.PartyID, 0, len(ids))
	hasSelf := false
	for _, id := range ids {
		p := mpc.PartyID(id)
		switch {
		case !printableASCII(id, MaxPartyIDLen):
			return nil, invalid("parties", "each ID 1 to 64 printable ASCII characters")
		case containsParty(out, p):
			return nil, invalid("parties", "IDs must be distinct")
		}
		hasSelf = hasSelf || p == self
		out = append(out, p)
	}
	if !hasSelf {
		return nil, invalid("parties", "must include this cosigner")
	}
	return out, nil
}

func containsParty(ids []mpc.PartyID, p mpc.PartyID) bool {
	for _, id := range ids {
		if id == p {
			return true
		}
	}
	return false
}

// keyRPC is what differs between CreateKey and RefreshKey: the method and
// the response type, whose oneof has the same events.
type keyRPC struct {
	method string
	event  func(keyEvent) proto.Message
	final  func(*pb.Key) proto.Message
	empty  func() proto.Message
}

var createKeyRPC = keyRPC{
	method: pb.KeyService_CreateKey_FullMethodName,
	event: func(ev keyEvent) proto.Message {
		if ev.queued != nil {
			return &pb.CreateKeyResponse{Event: &pb.CreateKeyResponse_Queued{Queued: ev.queued}}
		}
		return &pb.CreateKeyResponse{Event: &pb.CreateKeyResponse_SessionStarted{SessionStarted: ev.started}}
	},
	final: func(k *pb.Key) proto.Message { return &pb.CreateKeyResponse{Event: &pb.CreateKeyResponse_Key{Key: k}} },
	empty: func() proto.Message { return new(pb.CreateKeyResponse) },
}

var refreshKeyRPC = keyRPC{
	method: pb.KeyService_RefreshKey_FullMethodName,
	event: func(ev keyEvent) proto.Message {
		if ev.queued != nil {
			return &pb.RefreshKeyResponse{Event: &pb.RefreshKeyResponse_Queued{Queued: ev.queued}}
		}
		return &pb.RefreshKeyResponse{Event: &pb.RefreshKeyResponse_SessionStarted{SessionStarted: ev.started}}
	},
	final: func(k *pb.Key) proto.Message {
		return &pb.RefreshKeyResponse{Event: &pb.RefreshKeyResponse_Key{Key: k}}
	},
	empty: func() proto.Message { return new(pb.RefreshKeyResponse) },
}

// keyOperation runs a key generation or refresh under its idempotency key:
// a finished one sends its stored last message; a running one (same key,
// same request) is followed from its first event; else run starts in the
// background, detached from this call, and is followed. The operation goes
// on if the client leaves.
func (s *Server) keyOperation(stream grpc.ServerStream, rpc keyRPC, req proto.Message, idemKey string,
	run func(context.Context, func(Progress)) (Key, error)) error {
	ctx := stream.Context()
	sc, err := newScope(callerFrom(ctx), rpc.method, idemKey, req)
	if err != nil {
		return err
	}
	b, err := s.idem.begin(ctx, sc)
	switch {
	case err != nil:
		return err
	case b.flight == nil:
		m := rpc.empty()
		if err := decodeStored(b.stored, m); err != nil {
			return err
		}
		return stream.SendMsg(m)
	case b.fresh:
		if err := s.launch(b.flight, rpc.method, func(ctx context.Context) (proto.Message, error) {
			key, err := run(ctx, func(p Progress) {
				if ev, ok := progressEvent(p); ok {
					b.flight.progress(ev)
				}
			})
			if err != nil {
				return nil, err
			}
			return rpc.final(keyToPB(key)), nil
		}); err != nil {
			return err
		}
	}
	return s.follow(ctx, b.flight, stream, rpc)
}

// follow streams a key operation's events from the first, then its last
// message or its error.
func (s *Server) follow(ctx context.Context, f *flight, stream grpc.ServerStream, rpc keyRPC) error {
	for i := 0; ; {
		events, changed, done := f.since(i)
		for _, ev := range events {
			if err := stream.SendMsg(rpc.event(ev)); err != nil {
				return err
			}
		}
		i += len(events)
		if done {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing.Done():
			return failure(codes.Unavailable, msgShuttingDown)
		}
	}
	final, err := f.result()
	if err != nil {
		return fromNode(err, keyTexts)
	}
	return stream.SendMsg(final)
}

// launch runs fn in the background for a fresh flight and finishes the
// flight with its result. If the operation cannot start, the flight is
// finished with the reason, which is returned.
func (s *Server) launch(f *flight, what string, fn func(ctx context.Context) (proto.Message, error)) error {
	err := s.acquire()
	if err == nil {
		err = s.spawn(func(ctx context.Context) {
			defer s.release()
			final, err := protect(s, what, func() (proto.Message, error) { return fn(ctx) })
			s.idem.finish(f, final, err)
		})
		if err != nil {
			s.release()
		}
	}
	if err != nil {
		s.idem.finish(f, nil, err)
	}
	return err
}
