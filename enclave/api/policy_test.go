package api

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/policy"
	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

func adminKey() ed25519.PublicKey {
	seed := sha256.Sum256([]byte("api test admin"))
	return ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
}

func adminKeyDER(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(adminKey())
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func setPolicyReq(t testing.TB, idem, doc string) *pb.SetPolicyRequest {
	p256, err := x509.MarshalPKIXPublicKey(&mustKey(t).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return &pb.SetPolicyRequest{IdempotencyKey: idem, Document: []byte(doc), Approvals: []*pb.PolicyApproval{
		{AdminPublicKey: adminKeyDER(t), Signature: make([]byte, 64)},
		{AdminPublicKey: p256, Signature: make([]byte, 70)},
	}}
}

func TestGetPolicyNotSet(t *testing.T) {
	h := start(t, nil, nil)
	_, err := policyClient(h.signer()).GetPolicy(ctxT(t), &pb.GetPolicyRequest{})
	if st := wantCode(t, err, codes.NotFound); st.Message() != "no policy has been set" {
		t.Errorf("message %q", st.Message())
	}
}

func TestSetPolicy(t *testing.T) {
	h := start(t, nil, nil)
	pc := policyClient(h.admin())
	req := setPolicyReq(t, "idem-1", `{"version":1}`)
	resp, err := pc.SetPolicy(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(req.GetDocument())
	if p := resp.GetPolicy(); p.GetVersion() != 1 || string(p.GetDocument()) != `{"version":1}` || string(p.GetDocumentSha256()) != string(sum[:]) {
		t.Errorf("policy %v", p)
	}
	h.node.mu.Lock()
	approvals := h.node.lastSetPol
	h.node.mu.Unlock()
	if len(approvals) != 2 || !adminKey().Equal(approvals[0].AdminKey) || len(approvals[1].Signature) != 70 {
		t.Errorf("node got approvals %+v", approvals)
	}
	got, err := policyClient(h.auditor()).GetPolicy(ctxT(t), &pb.GetPolicyRequest{})
	if err != nil || !proto.Equal(got.GetPolicy(), resp.GetPolicy()) {
		t.Errorf("GetPolicy: %v, %v", got, err)
	}

	again, err := pc.SetPolicy(ctxT(t), setPolicyReq(t, "idem-1", `{"version":1}`))
	if err == nil {
		// The P-256 key is new each time: a different request.
		t.Fatalf("a different request with the same key was accepted: %v", again)
	}
	wantCode(t, err, codes.AlreadyExists)
	again, err = pc.SetPolicy(ctxT(t), req)
	if err != nil || !proto.Equal(again, resp) {
		t.Errorf("replay: %v, %v", again, err)
	}
	if n := h.node.count("SetPolicy"); n != 1 {
		t.Errorf("Node.SetPolicy called %d times", n)
	}
}

func TestSetPolicyRefused(t *testing.T) {
	node := newFakeNode()
	node.setPolicy = func(_ context.Context, _ Caller, doc []byte, _ []policy.Approval) (PolicyDoc, error) {
		switch string(doc) {
		case "quorum":
			return PolicyDoc{}, fmt.Errorf("%w: 1 of 2 %s", ErrPermissionDenied, secretText)
		case "stale":
			return PolicyDoc{}, fmt.Errorf("%w: %s", ErrFailedPrecondition, secretText)
		}
		return PolicyDoc{}, fmt.Errorf("%w: %s", ErrInvalidArgument, secretText)
	}
	h := start(t, node, nil)
	for doc, code := range map[string]codes.Code{
		"quorum": codes.PermissionDenied, "stale": codes.FailedPrecondition, "{": codes.InvalidArgument,
	} {
		_, err := policyClient(h.admin()).SetPolicy(ctxT(t), setPolicyReq(t, "idem-"+doc, doc))
		if st := wantCode(t, err, code); st.Message() != policyTexts[code] {
			t.Errorf("%s: message %q", doc, st.Message())
		}
	}
}

// TestSetPolicyInProgress: a repeat while the first call runs is ABORTED;
// the first call then succeeds.
func TestSetPolicyInProgress(t *testing.T) {
	node := newFakeNode()
	entered, release := make(chan struct{}), make(chan struct{})
	node.setPolicy = func(ctx context.Context, _ Caller, doc []byte, _ []policy.Approval) (PolicyDoc, error) {
		close(entered)
		<-release
		return PolicyDoc{Version: 3, Document: doc}, nil
	}
	h := start(t, node, nil)
	req := setPolicyReq(t, "idem-1", "{}")
	var wg sync.WaitGroup
	var firstErr error
	wg.Go(func() { _, firstErr = policyClient(h.admin()).SetPolicy(ctxT(t), req) })
	<-entered
	_, err := policyClient(h.admin()).SetPolicy(ctxT(t), req)
	if st := wantCode(t, err, codes.Aborted); st.Message() != msgInProgress {
		t.Errorf("message %q", st.Message())
	}
	close(release)
	wg.Wait()
	if firstErr != nil {
		t.Errorf("first call: %v", firstErr)
	}
}
