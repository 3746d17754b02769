package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

func createReq(idem string) *pb.CreateKeyRequest {
	return &pb.CreateKeyRequest{
		IdempotencyKey: idem, Scheme: pb.KeyScheme_KEY_SCHEME_CMP_ECDSA_SECP256K1, Threshold: 2,
		Parties: []string{"co-2", "co-1", "co-3"}, DisplayName: "treasury",
	}
}

func createKey(t testing.TB, h *harness, req *pb.CreateKeyRequest) ([]*pb.CreateKeyResponse, error) {
	t.Helper()
	stream, err := keyClient(h.admin()).CreateKey(ctxT(t), req)
	if err != nil {
		return nil, err
	}
	return recvAll(stream)
}

func TestGetKey(t *testing.T) {
	h := start(t, nil, nil)
	resp, err := keyClient(h.signer()).GetKey(ctxT(t), &pb.GetKeyRequest{Name: keyName(testKeyID(3))})
	if err != nil {
		t.Fatal(err)
	}
	k := resp.GetKey()
	if k.GetName() != "keys/"+strings.Repeat("03", 32) || k.GetScheme() != pb.KeyScheme_KEY_SCHEME_CMP_ECDSA_SECP256K1 ||
		!slices.Equal(k.GetParties(), []string{"co-1", "co-2", "co-3"}) || k.GetThreshold() != 2 ||
		k.GetDisplayName() != "key 3" || !k.GetCreateTime().AsTime().Equal(t0) {
		t.Errorf("key %v", k)
	}
}

func TestUnknownKeyNotFound(t *testing.T) {
	h := start(t, nil, nil)
	unknown := keyName(testKeyID(0x77))
	_, err := keyClient(h.auditor()).GetKey(ctxT(t), &pb.GetKeyRequest{Name: unknown})
	if st := wantCode(t, err, codes.NotFound); st.Message() != "key not found" {
		t.Errorf("message %q", st.Message())
	}
	_, err = keyClient(h.auditor()).DerivePublicKey(ctxT(t), &pb.DerivePublicKeyRequest{Name: unknown})
	wantCode(t, err, codes.NotFound)
	stream, err := keyClient(h.admin()).RefreshKey(ctxT(t), &pb.RefreshKeyRequest{IdempotencyKey: "r", Name: unknown})
	if err == nil {
		_, err = recvAll(stream)
	}
	wantCode(t, err, codes.NotFound)
}

func TestListKeysPaging(t *testing.T) {
	h := start(t, nil, nil)
	kc := keyClient(h.auditor())
	var names []string
	token := ""
	for page := 0; ; page++ {
		resp, err := kc.ListKeys(ctxT(t), &pb.ListKeysRequest{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetKeys()) > 2 || page > 3 {
			t.Fatalf("page %d has %d keys", page, len(resp.GetKeys()))
		}
		for _, k := range resp.GetKeys() {
			names = append(names, k.GetName())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	var want []string
	for i := range 5 {
		want = append(want, keyName(testKeyID(byte(i+1))))
	}
	if !slices.Equal(names, want) {
		t.Errorf("pages gave %q, want %q", names, want)
	}
	resp, err := kc.ListKeys(ctxT(t), &pb.ListKeysRequest{})
	if err != nil || len(resp.GetKeys()) != 5 || resp.GetNextPageToken() != "" {
		t.Errorf("default page: %d keys, token %q, %v", len(resp.GetKeys()), resp.GetNextPageToken(), err)
	}
}

func TestDerivePublicKey(t *testing.T) {
	h := start(t, nil, nil)
	resp, err := keyClient(h.signer()).DerivePublicKey(ctxT(t), &pb.DerivePublicKeyRequest{
		Name: keyName(testKeyID(1)), DerivationPath: []uint32{0, 1, 1<<31 - 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetScheme() != pb.KeyScheme_KEY_SCHEME_CMP_ECDSA_SECP256K1 || len(resp.GetPublicKey()) != 33 || resp.GetPublicKey()[1] != 3 {
		t.Errorf("derived %v", resp)
	}
}

func TestCreateKeyStreamsProgress(t *testing.T) {
	h := start(t, nil, nil)
	events, err := createKey(t, h, createReq("idem-1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 || events[0].GetQueued() == nil || events[1].GetSessionStarted() == nil || events[2].GetKey() == nil {
		t.Fatalf("events %v", events)
	}
	if s := events[1].GetSessionStarted(); s.GetKey() != events[2].GetKey().GetName() || len(s.GetSessionId()) != 64 {
		t.Errorf("session started %v", s)
	}
	h.node.mu.Lock()
	got := h.node.lastCreate
	h.node.mu.Unlock()
	if got.RequestID != "idem-1" || got.Scheme != mpc.SchemeECDSA || got.Threshold != 2 || len(got.Parties) != 3 || got.DisplayName != "treasury" {
		t.Errorf("node got %+v", got)
	}
}

// TestCreateKeyReplay: the same idempotency key and request returns the
// first result (the last message only) without calling the Node again,
// for the same caller; another caller's key is its own.
func TestCreateKeyReplay(t *testing.T) {
	h := start(t, nil, nil)
	first, err := createKey(t, h, createReq("idem-1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := createKey(t, h, createReq("idem-1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 || !proto.Equal(again[0], first[len(first)-1]) {
		t.Errorf("replay sent %v, want the first call's last message %v", again, first[len(first)-1])
	}
	if n := h.node.count("CreateKey"); n != 1 {
		t.Errorf("Node.CreateKey called %d times", n)
	}
	stream, err := keyClient(h.as("admin-2", RoleAdmin)).CreateKey(ctxT(t), createReq("idem-1"))
	if err == nil {
		_, err = recvAll(stream)
	}
	if err != nil || h.node.count("CreateKey") != 2 {
		t.Errorf("another caller's idempotency key: %v, %d calls", err, h.node.count("CreateKey"))
	}
}

func TestCreateKeySameKeyOtherRequest(t *testing.T) {
	h := start(t, nil, nil)
	if _, err := createKey(t, h, createReq("idem-1")); err != nil {
		t.Fatal(err)
	}
	other := createReq("idem-1")
	other.DisplayName = "other"
	_, err := createKey(t, h, other)
	if st := wantCode(t, err, codes.AlreadyExists); st.Message() != msgConflict {
		t.Errorf("message %q", st.Message())
	}
	if n := h.node.count("CreateKey"); n != 1 {
		t.Errorf("Node.CreateKey called %d times", n)
	}
}

// TestCreateKeyAttach: a repeat while the generation runs attaches to it
// (events from the first, then the key), and another request with the
// same key is ALREADY_EXISTS; a client that leaves does not stop it, and
// its result is stored.
func TestCreateKeyAttach(t *testing.T) {
	node := newFakeNode()
	release := make(chan struct{})
	node.createKey = func(ctx context.Context, req CreateKeyParams, progress func(Progress)) (Key, error) {
		progress(Progress{Kind: ProgressQueued, At: t0})
		select {
		case <-release:
		case <-ctx.Done():
			return Key{}, ctx.Err()
		}
		return testKey(9), nil
	}
	h := start(t, node, nil)
	ctx1, cancel1 := context.WithCancel(ctxT(t))
	first, err := keyClient(h.admin()).CreateKey(ctx1, createReq("idem-1"))
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := first.Recv(); err != nil || ev.GetQueued() == nil {
		t.Fatalf("first event %v, %v", ev, err)
	}
	cancel1() // the first client leaves

	second, err := keyClient(h.admin()).CreateKey(ctxT(t), createReq("idem-1"))
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := second.Recv(); err != nil || ev.GetQueued() == nil {
		t.Fatalf("attached stream's first event %v, %v", ev, err)
	}
	other := createReq("idem-1")
	other.Threshold = 3
	_, err = createKey(t, h, other)
	wantCode(t, err, codes.AlreadyExists)

	close(release)
	rest, err := recvAll(second)
	if err != nil || len(rest) != 1 || rest[0].GetKey().GetName() != keyName(testKeyID(9)) {
		t.Fatalf("attached stream: %v, %v", rest, err)
	}
	if n := node.count("CreateKey"); n != 1 {
		t.Errorf("Node.CreateKey called %d times", n)
	}
	eventually(t, "the record stored", func() bool { n, _ := h.store.count(); return n == 1 })
}

// TestKeyErrorsNotStored: a failed generation maps to its code with a
// fixed message, is not remembered, and the same key runs again.
func TestKeyErrorsNotStored(t *testing.T) {
	node := newFakeNode()
	fails := true
	node.createKey = func(ctx context.Context, req CreateKeyParams, progress func(Progress)) (Key, error) {
		if fails {
			fails = false
			return Key{}, fmt.Errorf("session %s: %w", secretText, ErrAborted)
		}
		return testKey(9), nil
	}
	h := start(t, node, nil)
	_, err := createKey(t, h, createReq("idem-1"))
	if st := wantCode(t, err, codes.Aborted); st.Message() != "the MPC session failed" {
		t.Errorf("message %q", st.Message())
	}
	if _, err := createKey(t, h, createReq("idem-1")); err != nil {
		t.Fatal(err)
	}
	if n := node.count("CreateKey"); n != 2 {
		t.Errorf("Node.CreateKey called %d times", n)
	}
	if !strings.Contains(h.logs.String(), secretText) {
		t.Error("the Node's error text was not logged")
	}
}

// TestInternalErrorHidden: an error that wraps no sentinel is INTERNAL
// "internal error"; its text is logged, never sent; a wrapped sentinel's
// text is not sent either.
func TestInternalErrorHidden(t *testing.T) {
	node := newFakeNode()
	node.key = func(_ context.Context, id mpc.KeyID) (Key, error) {
		if id == testKeyID(1) {
			return Key{}, errors.New(secretText)
		}
		return Key{}, fmt.Errorf("%w: %s", ErrUnavailable, secretText)
	}
	h := start(t, node, nil)
	_, err := keyClient(h.signer()).GetKey(ctxT(t), &pb.GetKeyRequest{Name: keyName(testKeyID(1))})
	if st := wantCode(t, err, codes.Internal); st.Message() != msgInternal {
		t.Errorf("message %q", st.Message())
	}
	_, err = keyClient(h.signer()).GetKey(ctxT(t), &pb.GetKeyRequest{Name: keyName(testKeyID(2))})
	wantCode(t, err, codes.Unavailable)
	if !strings.Contains(h.logs.String(), secretText) {
		t.Error("the internal error was not logged")
	}
}

// TestNodePanic: a panic in a call, or in a background operation, is
// INTERNAL; the server goes on serving.
func TestNodePanic(t *testing.T) {
	node := newFakeNode()
	node.key = func(context.Context, mpc.KeyID) (Key, error) { panic(secretText) }
	node.createKey = func(context.Context, CreateKeyParams, func(Progress)) (Key, error) { panic(secretText) }
	h := start(t, node, nil)
	_, err := keyClient(h.signer()).GetKey(ctxT(t), &pb.GetKeyRequest{Name: keyName(testKeyID(1))})
	if st := wantCode(t, err, codes.Internal); st.Message() != msgInternal {
		t.Errorf("message %q", st.Message())
	}
	_, err = createKey(t, h, createReq("idem-1"))
	wantCode(t, err, codes.Internal)
	if _, err := keyClient(h.signer()).ListKeys(ctxT(t), &pb.ListKeysRequest{}); err != nil {
		t.Errorf("the call after a panic: %v", err)
	}
	if !strings.Contains(h.logs.String(), "panicked") {
		t.Error("the panic was not logged")
	}
}

func TestRefreshKey(t *testing.T) {
	h := start(t, nil, nil)
	req := &pb.RefreshKeyRequest{IdempotencyKey: "r-1", Name: keyName(testKeyID(2))}
	refresh := func() []*pb.RefreshKeyResponse {
		stream, err := keyClient(h.admin()).RefreshKey(ctxT(t), req)
		if err != nil {
			t.Fatal(err)
		}
		events, err := recvAll(stream)
		if err != nil {
			t.Fatal(err)
		}
		return events
	}
	events := refresh()
	if len(events) != 2 || events[0].GetQueued() == nil || events[1].GetKey().GetEpoch() != 1 {
		t.Fatalf("events %v", events)
	}
	if again := refresh(); len(again) != 1 || again[0].GetKey().GetEpoch() != 1 {
		t.Errorf("replay %v", again)
	}
	if n := h.node.count("RefreshKey"); n != 1 {
		t.Errorf("Node.RefreshKey called %d times", n)
	}
}
