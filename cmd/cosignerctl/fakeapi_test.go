package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/api"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/policy"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// fakeTime is when every fake event happens, so outputs are stable.
var fakeTime = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fakeCosigner implements the cosigner.v1 services in memory, with the
// role checks of the real API, for cosignerctl's tests. How it attests is
// attest; everything else behaves like an honest cosigner, driven by the
// request (a sign's note picks its outcome: "deny", "fail", "slow",
// "stuck", anything else succeeds).
type fakeCosigner struct {
	cosignerv1.UnimplementedKeyServiceServer
	cosignerv1.UnimplementedSigningServiceServer
	cosignerv1.UnimplementedPolicyServiceServer
	cosignerv1.UnimplementedAuditServiceServer
	cosignerv1.UnimplementedAttestationServiceServer

	id       string
	identity ed25519.PrivateKey
	cert     *api.ServerCert
	attest   func(nonce []byte) (*cosignerv1.GetAttestationResponse, error)
	auditLog []audit.Record
	auditKey audit.Signer
	admins   policy.AdminSet

	mu       sync.Mutex
	requests int // RPCs other than GetAttestation
	keys     map[string]*cosignerv1.Key
	ops      map[string]*cosignerv1.SignOperation
	stuck    map[string]bool   // operations that never end
	idem     map[string][]byte // caller, RPC and key -> the request
	policy   *cosignerv1.Policy
}

// rolesOf says who may call each RPC (the .proto comments).
var rolesOf = map[string][]api.Role{
	"CreateKey": {api.RoleAdmin}, "RefreshKey": {api.RoleAdmin}, "SetPolicy": {api.RoleAdmin},
	"GetKey": {api.RoleAdmin, api.RoleSigner, api.RoleAuditor}, "ListKeys": {api.RoleAdmin, api.RoleSigner, api.RoleAuditor},
	"DerivePublicKey": {api.RoleAdmin, api.RoleSigner, api.RoleAuditor}, "GetPolicy": {api.RoleAdmin, api.RoleSigner, api.RoleAuditor},
	"GetAttestation": {api.RoleAdmin, api.RoleSigner, api.RoleAuditor},
	"Sign":           {api.RoleSigner}, "GetSignOperation": {api.RoleSigner, api.RoleAuditor},
	"ExportAudit": {api.RoleAuditor}, "StreamAudit": {api.RoleAuditor},
}

type callerKey struct{}

// authorize finds the caller's roles in its certificate and refuses an
// RPC its roles may not call.
func (f *fakeCosigner) authorize(ctx context.Context, method string) (context.Context, error) {
	name := method[strings.LastIndex(method, "/")+1:]
	if name != "GetAttestation" {
		f.mu.Lock()
		f.requests++
		f.mu.Unlock()
	}
	p, _ := peer.FromContext(ctx)
	info, _ := p.AuthInfo.(credentials.TLSInfo)
	caller, err := api.CallerFromCert(info.State.PeerCertificates[0])
	if err != nil || !caller.Has(rolesOf[name]...) {
		return nil, status.Error(codes.PermissionDenied, "permission denied")
	}
	return context.WithValue(ctx, callerKey{}, caller.ID), nil
}

func (f *fakeCosigner) interceptors() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			ctx, err := f.authorize(ctx, info.FullMethod)
			if err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if _, err := f.authorize(ss.Context(), info.FullMethod); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
}

func (f *fakeCosigner) received() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// once applies the idempotency rule: it reports whether the same request
// came before with key, and fails if another one did.
func (f *fakeCosigner) once(ctx context.Context, rpc, key string, req proto.Message) (bool, error) {
	if key == "" {
		return false, status.Error(codes.InvalidArgument, "invalid idempotency key")
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	k := fmt.Sprint(ctx.Value(callerKey{}), "/", rpc, "/", key)
	if prev, ok := f.idem[k]; ok {
		if !bytes.Equal(prev, b) {
			return false, status.Error(codes.AlreadyExists, "idempotency key reused with another request")
		}
		return true, nil
	}
	f.idem[k] = b
	return false, nil
}

func digest(parts ...[]byte) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// Keys.

func (f *fakeCosigner) CreateKey(req *cosignerv1.CreateKeyRequest, stream cosignerv1.KeyService_CreateKeyServer) error {
	key, err := f.createKey(stream.Context(), req)
	if err != nil {
		return err
	}
	return sendProgress(stream.Send, key, func(ev *cosignerv1.CreateKeyResponse) *cosignerv1.CreateKeyResponse { return ev })
}

func (f *fakeCosigner) createKey(ctx context.Context, req *cosignerv1.CreateKeyRequest) (*cosignerv1.Key, error) {
	if req.GetScheme() == cosignerv1.KeyScheme_KEY_SCHEME_UNSPECIFIED || !slices.Contains(req.GetParties(), f.id) {
		return nil, status.Error(codes.InvalidArgument, "invalid request")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	withoutKey := proto.CloneOf(req)
	withoutKey.IdempotencyKey = ""
	if _, err := f.once(ctx, "CreateKey", req.GetIdempotencyKey(), withoutKey); err != nil {
		return nil, err
	}
	id := digest([]byte(req.GetIdempotencyKey()), []byte(fmt.Sprint(ctx.Value(callerKey{}))))
	name := "keys/" + hex.EncodeToString(id)
	if k, ok := f.keys[name]; ok {
		return k, nil
	}
	parties := slices.Sorted(slices.Values(req.GetParties()))
	k := &cosignerv1.Key{
		Name: name, Scheme: req.GetScheme(), Threshold: req.GetThreshold(), Parties: parties,
		PublicKey: fakePublicKey(name, nil, req.GetScheme()), ChainCode: digest(id, []byte("chain")), DisplayName: req.GetDisplayName(),
		CreateTime: timestamppb.New(fakeTime), UpdateTime: timestamppb.New(fakeTime),
	}
	f.keys[name] = k
	return k, nil
}

// sendProgress streams a key operation's events: queued, session
// started, three rounds, the key. wrap turns a CreateKeyResponse into the
// stream's message type.
func sendProgress[T any](send func(T) error, key *cosignerv1.Key, wrap func(*cosignerv1.CreateKeyResponse) T) error {
	evs := []*cosignerv1.CreateKeyResponse{
		{Event: &cosignerv1.CreateKeyResponse_Queued{Queued: &cosignerv1.OperationQueued{QueueTime: timestamppb.New(fakeTime)}}},
		{Event: &cosignerv1.CreateKeyResponse_SessionStarted{SessionStarted: &cosignerv1.SessionStarted{
			Key: key.GetName(), SessionId: strings.Repeat("5e", 32), Parties: key.GetParties(), Deadline: timestamppb.New(fakeTime.Add(time.Minute)),
		}}},
	}
	for r := range uint32(3) {
		evs = append(evs, &cosignerv1.CreateKeyResponse{Event: &cosignerv1.CreateKeyResponse_RoundCompleted{
			RoundCompleted: &cosignerv1.RoundCompleted{Round: r + 1, TotalRounds: 3}}})
	}
	evs = append(evs, &cosignerv1.CreateKeyResponse{Event: &cosignerv1.CreateKeyResponse_Key{Key: key}})
	for _, ev := range evs {
		if err := send(wrap(ev)); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeCosigner) RefreshKey(req *cosignerv1.RefreshKeyRequest, stream cosignerv1.KeyService_RefreshKeyServer) error {
	f.mu.Lock()
	k, ok := f.keys[req.GetName()]
	var err error
	switch {
	case !ok:
		err = status.Error(codes.NotFound, "key not found")
	case k.GetScheme() == cosignerv1.KeyScheme_KEY_SCHEME_FROST_TAPROOT:
		err = status.Error(codes.Unimplemented, "refresh not supported for this scheme")
	default:
		var again bool
		if again, err = f.once(stream.Context(), "RefreshKey", req.GetIdempotencyKey(), &cosignerv1.RefreshKeyRequest{Name: req.GetName()}); err == nil && !again {
			k = proto.CloneOf(k)
			k.Epoch++
			f.keys[k.GetName()] = k
		}
	}
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return sendProgress(stream.Send, k, func(ev *cosignerv1.CreateKeyResponse) *cosignerv1.RefreshKeyResponse {
		switch e := ev.GetEvent().(type) {
		case *cosignerv1.CreateKeyResponse_Queued:
			return &cosignerv1.RefreshKeyResponse{Event: &cosignerv1.RefreshKeyResponse_Queued{Queued: e.Queued}}
		case *cosignerv1.CreateKeyResponse_SessionStarted:
			return &cosignerv1.RefreshKeyResponse{Event: &cosignerv1.RefreshKeyResponse_SessionStarted{SessionStarted: e.SessionStarted}}
		case *cosignerv1.CreateKeyResponse_RoundCompleted:
			return &cosignerv1.RefreshKeyResponse{Event: &cosignerv1.RefreshKeyResponse_RoundCompleted{RoundCompleted: e.RoundCompleted}}
		}
		return &cosignerv1.RefreshKeyResponse{Event: &cosignerv1.RefreshKeyResponse_Key{Key: ev.GetKey()}}
	})
}

func (f *fakeCosigner) key(name string) (*cosignerv1.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k, ok := f.keys[name]; ok {
		return k, nil
	}
	return nil, status.Error(codes.NotFound, "key not found")
}

func (f *fakeCosigner) GetKey(_ context.Context, req *cosignerv1.GetKeyRequest) (*cosignerv1.GetKeyResponse, error) {
	k, err := f.key(req.GetName())
	return &cosignerv1.GetKeyResponse{Key: k}, err
}

func (f *fakeCosigner) ListKeys(_ context.Context, req *cosignerv1.ListKeysRequest) (*cosignerv1.ListKeysResponse, error) {
	size := int(req.GetPageSize())
	if size == 0 {
		size = 100
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var resp cosignerv1.ListKeysResponse
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range f.keys {
			if !yield(n) {
				return
			}
		}
	}) {
		if name <= req.GetPageToken() {
			continue
		}
		if len(resp.Keys) == size {
			resp.NextPageToken = resp.Keys[size-1].GetName()
			break
		}
		resp.Keys = append(resp.Keys, f.keys[name])
	}
	return &resp, nil
}

func (f *fakeCosigner) DerivePublicKey(_ context.Context, req *cosignerv1.DerivePublicKeyRequest) (*cosignerv1.DerivePublicKeyResponse, error) {
	k, err := f.key(req.GetName())
	if err != nil {
		return nil, err
	}
	path := []byte(fmt.Sprint(req.GetDerivationPath()))
	return &cosignerv1.DerivePublicKeyResponse{
		PublicKey: fakePublicKey(k.GetName(), req.GetDerivationPath(), k.GetScheme()), ChainCode: digest(k.GetChainCode(), path), Scheme: k.GetScheme(),
	}, nil
}

// fakePrivateKey is the whole private key of a fake key at path: a hash
// of both, not BIP-32.
func fakePrivateKey(name string, path []uint32) *ecdsa.PrivateKey {
	k, err := crypto.ToECDSA(digest([]byte(name), []byte(fmt.Sprint(path))))
	if err != nil {
		panic(err) // a hash that is 0 or at least the group order
	}
	return k
}

// fakePublicKey is the public key of a fake key at path, compressed for
// ECDSA, x-only for Taproot.
func fakePublicKey(name string, path []uint32, scheme cosignerv1.KeyScheme) []byte {
	pub := crypto.CompressPubkey(&fakePrivateKey(name, path).PublicKey)
	if scheme == cosignerv1.KeyScheme_KEY_SCHEME_FROST_TAPROOT {
		return pub[1:]
	}
	return pub
}

// Signing.

func (f *fakeCosigner) Sign(ctx context.Context, req *cosignerv1.SignRequest) (*cosignerv1.SignResponse, error) {
	if _, err := f.key(req.GetKey()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	withoutKey := proto.CloneOf(req)
	withoutKey.IdempotencyKey = ""
	again, err := f.once(ctx, "Sign", req.GetIdempotencyKey(), withoutKey)
	if err != nil {
		return nil, err
	}
	name := "signOperations/" + hex.EncodeToString(digest([]byte(req.GetIdempotencyKey()), []byte(fmt.Sprint(ctx.Value(callerKey{}))))[:16])
	if !again {
		op, err := f.newOperation(name, req)
		if err != nil {
			return nil, err
		}
		f.ops[name] = op
	}
	return &cosignerv1.SignResponse{Operation: f.ops[name]}, nil
}

func (f *fakeCosigner) newOperation(name string, req *cosignerv1.SignRequest) (*cosignerv1.SignOperation, error) {
	op := &cosignerv1.SignOperation{
		Name: name, Key: req.GetKey(), DerivationPath: req.GetDerivationPath(),
		Signers: []string{"co-1", "co-2"}, CreateTime: timestamppb.New(fakeTime),
	}
	payload, _ := proto.Marshal(req)
	op.Digests = [][]byte{digest(payload)}
	switch req.GetPayload().(type) {
	case *cosignerv1.SignRequest_EthereumTransaction:
		op.PayloadKind = cosignerv1.SignPayloadKind_SIGN_PAYLOAD_KIND_ETHEREUM_TRANSACTION
	case *cosignerv1.SignRequest_EthereumMessage:
		op.PayloadKind = cosignerv1.SignPayloadKind_SIGN_PAYLOAD_KIND_ETHEREUM_MESSAGE
	case *cosignerv1.SignRequest_EthereumTypedData:
		op.PayloadKind = cosignerv1.SignPayloadKind_SIGN_PAYLOAD_KIND_ETHEREUM_TYPED_DATA
	case *cosignerv1.SignRequest_BitcoinTaprootPsbt:
		op.PayloadKind = cosignerv1.SignPayloadKind_SIGN_PAYLOAD_KIND_BITCOIN_TAPROOT_PSBT
	case *cosignerv1.SignRequest_RawDigest:
		op.PayloadKind = cosignerv1.SignPayloadKind_SIGN_PAYLOAD_KIND_RAW_DIGEST
	}
	switch req.GetNote() {
	case "deny":
		op.State, op.FailureReason, op.RefusedBy = cosignerv1.SignOperationState_SIGN_OPERATION_STATE_REJECTED,
			cosignerv1.SignFailureReason_SIGN_FAILURE_REASON_POLICY_DENIED, "co-2"
	case "fail":
		op.State, op.FailureReason, op.Culprits = cosignerv1.SignOperationState_SIGN_OPERATION_STATE_FAILED,
			cosignerv1.SignFailureReason_SIGN_FAILURE_REASON_SESSION_ABORTED, []string{"co-3"}
	case "slow", "stuck":
		op.State = cosignerv1.SignOperationState_SIGN_OPERATION_STATE_SIGNING
		f.stuck[name] = req.GetNote() == "stuck"
	default:
		return op, succeed(op, req)
	}
	return op, nil
}

// succeed finishes op with a result of the payload's kind.
func succeed(op *cosignerv1.SignOperation, req *cosignerv1.SignRequest) error {
	op.State, op.CompleteTime = cosignerv1.SignOperationState_SIGN_OPERATION_STATE_SUCCEEDED, timestamppb.New(fakeTime)
	sig := append(digest(op.Digests[0], []byte("r")), digest(op.Digests[0], []byte("s"))...)
	switch req.GetPayload().(type) {
	case *cosignerv1.SignRequest_EthereumTransaction:
		res, err := signEthTx(req)
		if err != nil {
			return status.Error(codes.InvalidArgument, "the request was refused: payload not acceptable")
		}
		op.Result = &cosignerv1.SignOperation_EthereumTransaction{EthereumTransaction: res}
	case *cosignerv1.SignRequest_BitcoinTaprootPsbt:
		op.Result = &cosignerv1.SignOperation_BitcoinPsbt{BitcoinPsbt: &cosignerv1.BitcoinPsbtSignature{
			SignedPsbt: []byte("psbt\xffsigned"), Transaction: []byte("tx"),
		}}
	case *cosignerv1.SignRequest_RawDigest:
		op.Result = &cosignerv1.SignOperation_RawDigest{RawDigest: &cosignerv1.RawDigestSignature{Signature: append(sig, 0)}}
	default:
		op.Result = &cosignerv1.SignOperation_EthereumSignature{EthereumSignature: &cosignerv1.EthereumSignature{Signature: append(sig, 27)}}
	}
	return nil
}

// signEthTx signs an unsigned transaction as a cosigner would, with the
// fake key at the request's path. Notes make it misbehave: "wrong key"
// signs with another key, "other tx" signs another transaction (nonce
// plus one), "bad hash" reports a wrong hash.
func signEthTx(req *cosignerv1.SignRequest) (*cosignerv1.EthereumTransactionSignature, error) {
	p := req.GetEthereumTransaction()
	var tx types.Transaction
	if err := tx.UnmarshalBinary(p.GetUnsignedTransaction()); err != nil {
		return nil, err
	}
	chainID := new(big.Int).SetUint64(p.GetChainId())
	if v, _, _ := tx.RawSignatureValues(); chainID.Sign() == 0 && tx.Type() == types.LegacyTxType {
		chainID = v
	} else if chainID.Sign() == 0 {
		chainID = tx.ChainId()
	}
	key := fakePrivateKey(req.GetKey(), req.GetDerivationPath())
	switch req.GetNote() {
	case "wrong key":
		key = fakePrivateKey(req.GetKey()+"/other", nil)
	case "other tx":
		tx = *types.NewTx(&types.LegacyTx{Nonce: tx.Nonce() + 1, GasPrice: tx.GasPrice(), Gas: tx.Gas(), To: tx.To(), Value: tx.Value()})
	}
	signer := types.LatestSignerForChainID(chainID)
	signed, err := types.SignTx(&tx, signer, key)
	if err != nil {
		return nil, err
	}
	raw, _ := signed.MarshalBinary()
	v, r, s := signed.RawSignatureValues()
	hash := signed.Hash().Bytes()
	if req.GetNote() == "bad hash" {
		hash = digest(hash)
	}
	return &cosignerv1.EthereumTransactionSignature{V: v.Bytes(), R: r.Bytes(), S: s.Bytes(), SignedTransaction: raw, TransactionHash: hash}, nil
}

func (f *fakeCosigner) GetSignOperation(_ context.Context, req *cosignerv1.GetSignOperationRequest) (*cosignerv1.GetSignOperationResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	op, ok := f.ops[req.GetName()]
	if !ok {
		return nil, status.Error(codes.NotFound, "sign operation not found")
	}
	if op.GetState() == cosignerv1.SignOperationState_SIGN_OPERATION_STATE_SIGNING && !f.stuck[op.GetName()] {
		// A "slow" operation ends at the first poll.
		op = proto.CloneOf(op)
		_ = succeed(op, &cosignerv1.SignRequest{Payload: &cosignerv1.SignRequest_RawDigest{}})
		f.ops[op.GetName()] = op
	}
	return &cosignerv1.GetSignOperationResponse{Operation: op}, nil
}

// Policy.

func (f *fakeCosigner) GetPolicy(context.Context, *cosignerv1.GetPolicyRequest) (*cosignerv1.GetPolicyResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.policy == nil {
		return nil, status.Error(codes.NotFound, "no policy")
	}
	return &cosignerv1.GetPolicyResponse{Policy: f.policy}, nil
}

// SetPolicy checks the approvals with enclave/policy's own verifier.
func (f *fakeCosigner) SetPolicy(ctx context.Context, req *cosignerv1.SetPolicyRequest) (*cosignerv1.SetPolicyResponse, error) {
	doc, err := policy.Parse(req.GetDocument())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "malformed policy document")
	}
	var approvals []policy.Approval
	for _, a := range req.GetApprovals() {
		k, err := policy.ParseAdminKey(a.GetAdminPublicKey())
		if err != nil {
			continue
		}
		approvals = append(approvals, policy.Approval{AdminKey: k, Signature: a.GetSignature()})
	}
	if policy.VerifyApprovals(doc.Canonical(), approvals, f.admins) != nil {
		return nil, status.Error(codes.PermissionDenied, "not enough valid admin approvals")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if again, err := f.once(ctx, "SetPolicy", req.GetIdempotencyKey(), &cosignerv1.SetPolicyRequest{Document: req.GetDocument()}); err != nil || again {
		return &cosignerv1.SetPolicyResponse{Policy: f.policy}, err
	}
	if f.policy != nil && doc.Version() <= f.policy.GetVersion() {
		return nil, status.Error(codes.FailedPrecondition, "policy version is not newer")
	}
	f.policy = &cosignerv1.Policy{
		Version: doc.Version(), Document: doc.Canonical(), DocumentSha256: digest(doc.Canonical()), UpdateTime: timestamppb.New(fakeTime),
	}
	return &cosignerv1.SetPolicyResponse{Policy: f.policy}, nil
}

// Audit.

// exportChunk is small so that an export takes many chunks.
const exportChunk = 97

// ExportAudit streams a real pkg/audit export of the log.
func (f *fakeCosigner) ExportAudit(req *cosignerv1.ExportAuditRequest, stream cosignerv1.AuditService_ExportAuditServer) error {
	from := max(req.GetStartSeq(), 1)
	if from > uint64(len(f.auditLog))+1 {
		return status.Error(codes.OutOfRange, "start past the end of the log")
	}
	var buf bytes.Buffer
	h := audit.Header{CosignerID: f.id, FirstSeq: from}
	if from > 1 {
		h.PrevHash = f.auditLog[from-2].Hash
	}
	w, err := audit.NewWriter(&buf, h, f.auditKey)
	if err != nil {
		return status.Error(codes.Internal, "internal error")
	}
	for _, r := range f.auditLog[from-1:] {
		if err := w.Write(r); err != nil {
			return status.Error(codes.Internal, "internal error")
		}
	}
	if err := w.Close(fakeTime.Add(time.Hour)); err != nil {
		return status.Error(codes.Internal, "internal error")
	}
	for b := buf.Bytes(); len(b) > 0; b = b[min(exportChunk, len(b)):] {
		if err := stream.Send(&cosignerv1.ExportAuditResponse{Chunk: b[:min(exportChunk, len(b))]}); err != nil {
			return err
		}
	}
	return nil
}

// StreamAudit sends the header and the log from start_seq, then waits
// for the client to go away, as a log with no new entries would.
func (f *fakeCosigner) StreamAudit(req *cosignerv1.StreamAuditRequest, stream cosignerv1.AuditService_StreamAuditServer) error {
	from := max(req.GetStartSeq(), 1)
	if from > uint64(len(f.auditLog))+1 {
		return status.Error(codes.OutOfRange, "start past the end of the log")
	}
	prev := make([]byte, audit.HashSize)
	if from > 1 {
		prev = f.auditLog[from-2].Hash[:]
	}
	if err := stream.Send(&cosignerv1.StreamAuditResponse{Part: &cosignerv1.StreamAuditResponse_Header{Header: &cosignerv1.AuditHeader{
		CosignerId: f.id, IdentityPublicKey: f.auditKey.Public(), FirstSeq: from, PrevHash: prev,
	}}}); err != nil {
		return err
	}
	for _, r := range f.auditLog[from-1:] {
		if err := stream.Send(&cosignerv1.StreamAuditResponse{Part: &cosignerv1.StreamAuditResponse_Entry{Entry: &cosignerv1.AuditEntry{
			Seq: r.Entry.Seq, Entry: r.Raw, Hash: r.Hash[:], Signature: r.Sig,
		}}}); err != nil {
			return err
		}
	}
	<-stream.Context().Done()
	return nil
}

// Attestation.

func (f *fakeCosigner) GetAttestation(_ context.Context, req *cosignerv1.GetAttestationRequest) (*cosignerv1.GetAttestationResponse, error) {
	return f.attest(req.GetNonce())
}
