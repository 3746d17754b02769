package api

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/payload"
	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

func rawSignReq(idem string) *pb.SignRequest {
	return &pb.SignRequest{
		IdempotencyKey: idem, Key: keyName(testKeyID(1)), DerivationPath: []uint32{0, 7}, Note: "payout #7",
		Payload: &pb.SignRequest_RawDigest{RawDigest: &pb.RawDigest{Digest: bytes.Repeat([]byte{1}, 32)}},
	}
}

func withWait(req *pb.SignRequest, d time.Duration) *pb.SignRequest {
	req.MaxWait = durationpb.New(d)
	return req
}

// blockingSign makes the Node's Sign wait for release (or its context).
func blockingSign(node *fakeNode, release <-chan struct{}, out func(SignParams) (SignOutcome, error)) {
	node.sign = func(ctx context.Context, req SignParams) (SignOutcome, error) {
		select {
		case <-release:
			return out(req)
		case <-ctx.Done():
			return SignOutcome{}, ctx.Err()
		}
	}
}

// TestSignPayloads: each payload kind reaches the Node as the
// payload.Request it stands for, and the result comes back in the field
// of its kind.
func TestSignPayloads(t *testing.T) {
	h := start(t, nil, nil)
	cases := []struct {
		name    string
		payload any
		want    payload.Request
		result  func(*pb.SignOperation) bool
	}{
		{"eth tx", &pb.SignRequest_EthereumTransaction{EthereumTransaction: &pb.EthereumTransaction{UnsignedTransaction: []byte{0xc0}, ChainId: 5}},
			payload.Request{Kind: payload.EthTransaction, Bytes: []byte{0xc0}, ChainID: 5},
			func(op *pb.SignOperation) bool {
				r := op.GetEthereumTransaction()
				return bytes.Equal(r.GetV(), []byte{37}) && len(r.GetR()) == 32 && r.GetR()[31] == 5 && string(r.GetSignedTransaction()) == "raw-tx"
			}},
		{"eip191", &pb.SignRequest_EthereumMessage{EthereumMessage: &pb.EthereumMessage{Message: []byte("hi"), ChainId: 1}},
			payload.Request{Kind: payload.EIP191, Bytes: []byte("hi"), ChainID: 1},
			func(op *pb.SignOperation) bool { return len(op.GetEthereumSignature().GetSignature()) == 65 }},
		{"eip712", &pb.SignRequest_EthereumTypedData{EthereumTypedData: &pb.EthereumTypedData{TypedDataJson: `{"a":1}`}},
			payload.Request{Kind: payload.EIP712, Bytes: []byte(`{"a":1}`)},
			func(op *pb.SignOperation) bool { return len(op.GetEthereumSignature().GetSignature()) == 65 }},
		{"raw", &pb.SignRequest_RawDigest{RawDigest: &pb.RawDigest{Digest: bytes.Repeat([]byte{9}, 32)}},
			payload.Request{Kind: payload.RawDigest, Bytes: bytes.Repeat([]byte{9}, 32)},
			func(op *pb.SignOperation) bool { return len(op.GetRawDigest().GetSignature()) == 65 }},
	}
	for network, name := range bitcoinNetworks {
		cases = append(cases, struct {
			name    string
			payload any
			want    payload.Request
			result  func(*pb.SignOperation) bool
		}{"psbt " + name, &pb.SignRequest_BitcoinTaprootPsbt{BitcoinTaprootPsbt: &pb.BitcoinTaprootPsbt{Psbt: []byte("psbt"), Network: network}},
			payload.Request{Kind: payload.TaprootPSBT, Bytes: []byte("psbt"), Network: name},
			func(op *pb.SignOperation) bool { return string(op.GetBitcoinPsbt().GetSignedPsbt()) == "signed-psbt" }})
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := rawSignReq(fmt.Sprintf("idem-%d", i))
			switch p := c.payload.(type) {
			case *pb.SignRequest_EthereumTransaction:
				req.Payload = p
			case *pb.SignRequest_EthereumMessage:
				req.Payload = p
			case *pb.SignRequest_EthereumTypedData:
				req.Payload = p
			case *pb.SignRequest_RawDigest:
				req.Payload = p
			case *pb.SignRequest_BitcoinTaprootPsbt:
				req.Payload = p
			}
			resp, err := signClient(h.signer()).Sign(ctxT(t), req)
			if err != nil {
				t.Fatal(err)
			}
			op := resp.GetOperation()
			if op.GetState() != pb.SignOperationState_SIGN_OPERATION_STATE_SUCCEEDED || !c.result(op) ||
				op.GetPayloadKind() != payloadKinds[c.want.Kind] || len(op.GetDigests()) != 1 || op.GetCompleteTime() == nil {
				t.Errorf("operation %v", op)
			}
			h.node.mu.Lock()
			got := h.node.lastSign
			h.node.mu.Unlock()
			if got.Payload.Kind != c.want.Kind || !bytes.Equal(got.Payload.Bytes, c.want.Bytes) ||
				got.Payload.ChainID != c.want.ChainID || got.Payload.Network != c.want.Network {
				t.Errorf("node got %+v, want %+v", got.Payload, c.want)
			}
			if got.Note != "payout #7" || len(got.Path) != 2 || got.Key != testKeyID(1) ||
				operationName(got.OperationID) != op.GetName() {
				t.Errorf("node got %+v", got)
			}
		})
	}
}

// TestSignRejected: a policy refusal is an operation in state REJECTED
// with its reason and the refusing cosigner, not an error.
func TestSignRejected(t *testing.T) {
	node := newFakeNode()
	node.sign = func(context.Context, SignParams) (SignOutcome, error) {
		return SignOutcome{State: StateRejected, Reason: ReasonPolicyDenied, RefusedBy: "co-2", Created: t0}, nil
	}
	h := start(t, node, nil)
	resp, err := signClient(h.signer()).Sign(ctxT(t), rawSignReq("idem-1"))
	if err != nil {
		t.Fatal(err)
	}
	op := resp.GetOperation()
	if op.GetState() != pb.SignOperationState_SIGN_OPERATION_STATE_REJECTED ||
		op.GetFailureReason() != pb.SignFailureReason_SIGN_FAILURE_REASON_POLICY_DENIED ||
		op.GetRefusedBy() != "co-2" || op.GetResult() != nil {
		t.Errorf("operation %v", op)
	}
}

// TestSignMaxWait: an operation still running after max_wait comes back
// PENDING and goes on; GetSignOperation then shows it SUCCEEDED, and Sign
// with the same key returns the same operation without signing again.
func TestSignMaxWait(t *testing.T) {
	node := newFakeNode()
	release := make(chan struct{})
	blockingSign(node, release, func(req SignParams) (SignOutcome, error) { return succeeded(req), nil })
	h := start(t, node, nil)
	sc := signClient(h.signer())
	start := time.Now()
	resp, err := sc.Sign(ctxT(t), withWait(rawSignReq("idem-1"), 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	op := resp.GetOperation()
	if op.GetState() != pb.SignOperationState_SIGN_OPERATION_STATE_PENDING || op.GetCompleteTime() != nil {
		t.Fatalf("operation %v", op)
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Errorf("returned after %v, before max_wait", el)
	}
	for _, c := range []pb.SigningServiceClient{sc, signClient(h.auditor())} {
		got, err := c.GetSignOperation(ctxT(t), &pb.GetSignOperationRequest{Name: op.GetName()})
		if err != nil || got.GetOperation().GetState() != pb.SignOperationState_SIGN_OPERATION_STATE_PENDING {
			t.Fatalf("GetSignOperation: %v, %v", got, err)
		}
	}
	close(release)
	var final *pb.SignOperation
	eventually(t, "SUCCEEDED", func() bool {
		got, err := sc.GetSignOperation(ctxT(t), &pb.GetSignOperationRequest{Name: op.GetName()})
		final = got.GetOperation()
		return err == nil && final.GetState() == pb.SignOperationState_SIGN_OPERATION_STATE_SUCCEEDED
	})
	if final.GetRawDigest() == nil || final.GetName() != op.GetName() {
		t.Errorf("final %v", final)
	}
	again, err := sc.Sign(ctxT(t), rawSignReq("idem-1"))
	if err != nil || !proto.Equal(again.GetOperation(), final) {
		t.Errorf("repeat: %v, %v", again, err)
	}
	if n := node.count("Sign"); n != 1 {
		t.Errorf("Node.Sign called %d times", n)
	}
}

// TestSignReturnsBeforeDeadline: with a call deadline shorter than
// max_wait, Sign answers with the running operation before the deadline.
func TestSignReturnsBeforeDeadline(t *testing.T) {
	node := newFakeNode()
	release := make(chan struct{})
	defer close(release)
	blockingSign(node, release, func(req SignParams) (SignOutcome, error) { return succeeded(req), nil })
	h := start(t, node, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	resp, err := signClient(h.signer()).Sign(ctx, rawSignReq("idem-1"))
	if err != nil || resp.GetOperation().GetState() != pb.SignOperationState_SIGN_OPERATION_STATE_PENDING {
		t.Fatalf("Sign: %v, %v", resp, err)
	}
}

// TestSignRepeatWhileRunning: a repeat of a running sign returns the same
// running operation; the same key with another request is ALREADY_EXISTS;
// max_wait is not part of the request's identity.
func TestSignRepeatWhileRunning(t *testing.T) {
	node := newFakeNode()
	release := make(chan struct{})
	defer close(release)
	blockingSign(node, release, func(req SignParams) (SignOutcome, error) { return succeeded(req), nil })
	h := start(t, node, nil)
	sc := signClient(h.signer())
	first, err := sc.Sign(ctxT(t), withWait(rawSignReq("idem-1"), 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	second, err := sc.Sign(ctxT(t), withWait(rawSignReq("idem-1"), 30*time.Millisecond))
	if err != nil || second.GetOperation().GetName() != first.GetOperation().GetName() ||
		second.GetOperation().GetState() != pb.SignOperationState_SIGN_OPERATION_STATE_PENDING {
		t.Fatalf("repeat: %v, %v", second, err)
	}
	other := withWait(rawSignReq("idem-1"), 20*time.Millisecond)
	other.Note = "another note"
	_, err = sc.Sign(ctxT(t), other)
	wantCode(t, err, codes.AlreadyExists)
	if n := node.count("Sign"); n != 1 {
		t.Errorf("Node.Sign called %d times", n)
	}
}

// TestSignReplayAndConflictAfterFinish: once the table no longer holds a
// finished operation, GetSignOperation and a repeat of Sign find it in the
// store; the same key with another request is ALREADY_EXISTS.
func TestSignReplayAndConflictAfterFinish(t *testing.T) {
	h := start(t, nil, nil)
	sc := signClient(h.signer())
	first, err := sc.Sign(ctxT(t), rawSignReq("idem-1"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the record stored", func() bool { n, _ := h.store.count(); return n == 1 })
	h.srv.ops.remove(h.srv.ops.get(first.GetOperation().GetName()[len(operationNamePrefix):]))
	got, err := signClient(h.auditor()).GetSignOperation(ctxT(t), &pb.GetSignOperationRequest{Name: first.GetOperation().GetName()})
	if err != nil || !proto.Equal(got.GetOperation(), first.GetOperation()) {
		t.Errorf("GetSignOperation from the store: %v, %v", got, err)
	}
	again, err := sc.Sign(ctxT(t), rawSignReq("idem-1"))
	if err != nil || !proto.Equal(again, first) {
		t.Errorf("replay from the store: %v, %v", again, err)
	}
	other := rawSignReq("idem-1")
	other.DerivationPath = nil
	_, err = sc.Sign(ctxT(t), other)
	wantCode(t, err, codes.AlreadyExists)
	if n := h.node.count("Sign"); n != 1 {
		t.Errorf("Node.Sign called %d times", n)
	}
}

// TestSignRefusedBeforeOperation: a payload the Node refuses at once fails
// the call, leaves no operation and is not remembered.
func TestSignRefusedBeforeOperation(t *testing.T) {
	node := newFakeNode()
	node.sign = func(context.Context, SignParams) (SignOutcome, error) {
		return SignOutcome{}, fmt.Errorf("%w: rlp %s", ErrInvalidArgument, secretText)
	}
	h := start(t, node, nil)
	sc := signClient(h.signer())
	_, err := sc.Sign(ctxT(t), rawSignReq("idem-1"))
	if st := wantCode(t, err, codes.InvalidArgument); st.Message() != signTexts[codes.InvalidArgument] {
		t.Errorf("message %q", st.Message())
	}
	_, err = sc.Sign(ctxT(t), rawSignReq("idem-1"))
	wantCode(t, err, codes.InvalidArgument)
	if n := node.count("Sign"); n != 2 {
		t.Errorf("Node.Sign called %d times, want 2 (errors are not remembered)", n)
	}
	eventually(t, "the operation gone", func() bool { return h.srv.ops.len() == 0 })
	if n, _ := h.store.count(); n != 0 {
		t.Errorf("%d records stored", n)
	}
}

// TestSignFailsAfterExposure: a Node error after a client saw the
// operation makes it FAILED with the closest reason.
func TestSignFailsAfterExposure(t *testing.T) {
	node := newFakeNode()
	release := make(chan struct{})
	blockingSign(node, release, func(SignParams) (SignOutcome, error) {
		return SignOutcome{}, fmt.Errorf("%w: %s", ErrAborted, secretText)
	})
	h := start(t, node, nil)
	sc := signClient(h.signer())
	resp, err := sc.Sign(ctxT(t), withWait(rawSignReq("idem-1"), 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	eventually(t, "FAILED", func() bool {
		got, err := sc.GetSignOperation(ctxT(t), &pb.GetSignOperationRequest{Name: resp.GetOperation().GetName()})
		return err == nil && got.GetOperation().GetState() == pb.SignOperationState_SIGN_OPERATION_STATE_FAILED &&
			got.GetOperation().GetFailureReason() == pb.SignFailureReason_SIGN_FAILURE_REASON_SESSION_ABORTED
	})
}

// TestSignNonsenseOutcome: a succeeded outcome without a result of the
// payload's kind is reported FAILED (INTERNAL), never SUCCEEDED.
func TestSignNonsenseOutcome(t *testing.T) {
	node := newFakeNode()
	node.sign = func(_ context.Context, req SignParams) (SignOutcome, error) {
		out := succeeded(req)
		out.Raw, out.PSBT = nil, &payload.PSBTSigned{PSBT: []byte("x")}
		return out, nil
	}
	h := start(t, node, nil)
	resp, err := signClient(h.signer()).Sign(ctxT(t), rawSignReq("idem-1"))
	if err != nil {
		t.Fatal(err)
	}
	if op := resp.GetOperation(); op.GetState() != pb.SignOperationState_SIGN_OPERATION_STATE_FAILED ||
		op.GetFailureReason() != pb.SignFailureReason_SIGN_FAILURE_REASON_INTERNAL || op.GetResult() != nil {
		t.Errorf("operation %v", op)
	}
}

func TestSignPanic(t *testing.T) {
	node := newFakeNode()
	var calls atomic.Int32
	node.sign = func(_ context.Context, req SignParams) (SignOutcome, error) {
		if calls.Add(1) == 1 {
			panic(secretText)
		}
		return succeeded(req), nil
	}
	h := start(t, node, nil)
	_, err := signClient(h.signer()).Sign(ctxT(t), rawSignReq("idem-1"))
	wantCode(t, err, codes.Internal)
	resp, err := signClient(h.signer()).Sign(ctxT(t), rawSignReq("idem-2"))
	if err != nil || resp.GetOperation().GetState() != pb.SignOperationState_SIGN_OPERATION_STATE_SUCCEEDED {
		t.Errorf("the sign after a panic: %v, %v", resp, err)
	}
}

func TestGetSignOperationNotFound(t *testing.T) {
	h := start(t, nil, nil)
	_, err := signClient(h.auditor()).GetSignOperation(ctxT(t), &pb.GetSignOperationRequest{Name: operationName(operationID(Caller{ID: "x"}, "y"))})
	wantCode(t, err, codes.NotFound)
}

// TestOperationTable: the table's bound evicts the operation that finished
// first, refuses a new one when all are running, and drops finished ones
// after their retention.
func TestOperationTable(t *testing.T) {
	now := t0
	tab := newOperations(2, time.Hour, func() time.Time { return now })
	op := func(id string) *signOp { return &signOp{id: id, done: make(chan struct{})} }
	a, b, c := op("a"), op("b"), op("c")
	for _, o := range []*signOp{a, b} {
		if old, err := tab.add(o); old != nil || err != nil {
			t.Fatal(old, err)
		}
	}
	if old, _ := tab.add(op("a")); old != a {
		t.Error("add of a known ID did not return the operation")
	}
	if _, err := tab.add(c); err == nil {
		t.Error("a full table of running operations took another")
	}
	tab.finish(b)
	now = now.Add(time.Minute)
	tab.finish(a)
	if _, err := tab.add(c); err != nil || tab.get("b") != nil || tab.get("a") != a {
		t.Errorf("eviction: %v, b %v, a %v", err, tab.get("b"), tab.get("a"))
	}
	now = now.Add(time.Hour)
	if tab.get("a") != nil || tab.get("c") != c || tab.len() != 1 {
		t.Error("retention did not drop the old finished operation")
	}
}
