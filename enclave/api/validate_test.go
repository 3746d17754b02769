package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/payload"
	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// evil is a value no error message may echo.
const evil = "EVIL-VALUE-\u202e"

// TestInvalidArgument sends a malformed field to every RPC that has
// fields: INVALID_ARGUMENT whose message names the field and not the
// value, and the Node is never called.
func TestInvalidArgument(t *testing.T) {
	h := start(t, nil, nil)
	kc, sc, pc := keyClient(h.admin()), signClient(h.signer()), policyClient(h.admin())
	ac := pb.NewAttestationServiceClient(h.auditor())
	goodKey := keyName(testKeyID(1))
	long := func(n int) string { return strings.Repeat("a", n) }
	createWith := func(f func(*pb.CreateKeyRequest)) func(context.Context) error {
		return func(ctx context.Context) error {
			req := createReq("idem")
			f(req)
			stream, err := kc.CreateKey(ctx, req)
			if err == nil {
				_, err = stream.Recv()
			}
			return err
		}
	}
	signWith := func(f func(*pb.SignRequest)) func(context.Context) error {
		return func(ctx context.Context) error {
			req := rawSignReq("idem")
			f(req)
			_, err := sc.Sign(ctx, req)
			return err
		}
	}
	setWith := func(f func(*pb.SetPolicyRequest)) func(context.Context) error {
		return func(ctx context.Context) error {
			req := &pb.SetPolicyRequest{IdempotencyKey: "idem", Document: []byte(`{}`), Approvals: []*pb.PolicyApproval{
				{AdminPublicKey: adminKeyDER(t), Signature: []byte("sig")},
			}}
			f(req)
			_, err := pc.SetPolicy(ctx, req)
			return err
		}
	}
	getKey := func(name string) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := kc.GetKey(ctx, &pb.GetKeyRequest{Name: name})
			return err
		}
	}
	cases := []struct {
		name, field string
		call        func(context.Context) error
	}{
		{"key name empty", "name", getKey("")},
		{"key name upper hex", "name", getKey("keys/" + strings.Repeat("AB", 32))},
		{"key name short", "name", getKey("keys/" + strings.Repeat("ab", 31))},
		{"key name long", "name", getKey("keys/" + strings.Repeat("ab", 33))},
		{"key name prefix", "name", getKey("key/" + strings.Repeat("ab", 32))},
		{"key name evil", "name", getKey("keys/" + evil)},
		{"derive path deep", "derivation_path", func(ctx context.Context) error {
			_, err := kc.DerivePublicKey(ctx, &pb.DerivePublicKeyRequest{Name: goodKey, DerivationPath: make([]uint32, 256)})
			return err
		}},
		{"derive path hardened", "derivation_path", func(ctx context.Context) error {
			_, err := kc.DerivePublicKey(ctx, &pb.DerivePublicKeyRequest{Name: goodKey, DerivationPath: []uint32{1, 1 << 31}})
			return err
		}},
		{"page size negative", "page_size", func(ctx context.Context) error {
			_, err := kc.ListKeys(ctx, &pb.ListKeysRequest{PageSize: -1})
			return err
		}},
		{"page size large", "page_size", func(ctx context.Context) error {
			_, err := kc.ListKeys(ctx, &pb.ListKeysRequest{PageSize: 1001})
			return err
		}},
		{"page token", "page_token", func(ctx context.Context) error {
			_, err := kc.ListKeys(ctx, &pb.ListKeysRequest{PageToken: evil})
			return err
		}},
		{"create no idempotency key", "idempotency_key", createWith(func(r *pb.CreateKeyRequest) { r.IdempotencyKey = "" })},
		{"create long idempotency key", "idempotency_key", createWith(func(r *pb.CreateKeyRequest) { r.IdempotencyKey = long(129) })},
		{"create idempotency key space", "idempotency_key", createWith(func(r *pb.CreateKeyRequest) { r.IdempotencyKey = "a b" })},
		{"create idempotency key evil", "idempotency_key", createWith(func(r *pb.CreateKeyRequest) { r.IdempotencyKey = evil })},
		{"create scheme", "scheme", createWith(func(r *pb.CreateKeyRequest) { r.Scheme = 0 })},
		{"create scheme unknown", "scheme", createWith(func(r *pb.CreateKeyRequest) { r.Scheme = 42 })},
		{"create one party", "parties", createWith(func(r *pb.CreateKeyRequest) { r.Parties = []string{"co-1"} })},
		{"create 17 parties", "parties", createWith(func(r *pb.CreateKeyRequest) {
			r.Parties = []string{"co-1"}
			for i := range 16 {
				r.Parties = append(r.Parties, "p"+string(rune('a'+i)))
			}
		})},
		{"create duplicate party", "parties", createWith(func(r *pb.CreateKeyRequest) { r.Parties = []string{"co-1", "co-2", "co-2"} })},
		{"create party evil", "parties", createWith(func(r *pb.CreateKeyRequest) { r.Parties = []string{"co-1", evil} })},
		{"create party long", "parties", createWith(func(r *pb.CreateKeyRequest) { r.Parties = []string{"co-1", long(65)} })},
		{"create without self", "parties", createWith(func(r *pb.CreateKeyRequest) { r.Parties = []string{"co-2", "co-3"} })},
		{"create threshold 1", "threshold", createWith(func(r *pb.CreateKeyRequest) { r.Threshold = 1 })},
		{"create threshold above n", "threshold", createWith(func(r *pb.CreateKeyRequest) { r.Threshold = 4 })},
		{"create display name long", "display_name", createWith(func(r *pb.CreateKeyRequest) { r.DisplayName = long(129) })},
		{"create display name control", "display_name", createWith(func(r *pb.CreateKeyRequest) { r.DisplayName = evil + "\n" })},
		{"refresh no idempotency key", "idempotency_key", func(ctx context.Context) error {
			stream, err := kc.RefreshKey(ctx, &pb.RefreshKeyRequest{Name: goodKey})
			if err == nil {
				_, err = stream.Recv()
			}
			return err
		}},
		{"refresh name", "name", func(ctx context.Context) error {
			stream, err := kc.RefreshKey(ctx, &pb.RefreshKeyRequest{IdempotencyKey: "i", Name: evil})
			if err == nil {
				_, err = stream.Recv()
			}
			return err
		}},
		{"sign no idempotency key", "idempotency_key", signWith(func(r *pb.SignRequest) { r.IdempotencyKey = "" })},
		{"sign key", "key", signWith(func(r *pb.SignRequest) { r.Key = evil })},
		{"sign path hardened", "derivation_path", signWith(func(r *pb.SignRequest) { r.DerivationPath = []uint32{1<<32 - 1} })},
		{"sign path deep", "derivation_path", signWith(func(r *pb.SignRequest) { r.DerivationPath = make([]uint32, 300) })},
		{"sign note long", "note", signWith(func(r *pb.SignRequest) { r.Note = long(257) })},
		{"sign note control", "note", signWith(func(r *pb.SignRequest) { r.Note = evil + "\x07" })},
		{"sign max_wait long", "max_wait", signWith(func(r *pb.SignRequest) { r.MaxWait = durationpb.New(121 * time.Second) })},
		{"sign max_wait negative", "max_wait", signWith(func(r *pb.SignRequest) { r.MaxWait = durationpb.New(-time.Second) })},
		{"sign max_wait invalid", "max_wait", signWith(func(r *pb.SignRequest) { r.MaxWait = &durationpb.Duration{Seconds: 1, Nanos: -5} })},
		{"sign no payload", "payload", signWith(func(r *pb.SignRequest) { r.Payload = nil })},
		{"sign empty eth tx", "ethereum_transaction.unsigned_transaction", signWith(func(r *pb.SignRequest) {
			r.Payload = &pb.SignRequest_EthereumTransaction{EthereumTransaction: &pb.EthereumTransaction{ChainId: 1}}
		})},
		{"sign nil eth message", "ethereum_message.message", signWith(func(r *pb.SignRequest) {
			r.Payload = &pb.SignRequest_EthereumMessage{}
		})},
		{"sign large eth message", "ethereum_message.message", signWith(func(r *pb.SignRequest) {
			r.Payload = &pb.SignRequest_EthereumMessage{EthereumMessage: &pb.EthereumMessage{Message: make([]byte, payload.MaxSize+1)}}
		})},
		{"sign empty typed data", "ethereum_typed_data.typed_data_json", signWith(func(r *pb.SignRequest) {
			r.Payload = &pb.SignRequest_EthereumTypedData{EthereumTypedData: &pb.EthereumTypedData{}}
		})},
		{"sign psbt no network", "bitcoin_taproot_psbt.network", signWith(func(r *pb.SignRequest) {
			r.Payload = &pb.SignRequest_BitcoinTaprootPsbt{BitcoinTaprootPsbt: &pb.BitcoinTaprootPsbt{Psbt: []byte("p")}}
		})},
		{"sign psbt unknown network", "bitcoin_taproot_psbt.network", signWith(func(r *pb.SignRequest) {
			r.Payload = &pb.SignRequest_BitcoinTaprootPsbt{BitcoinTaprootPsbt: &pb.BitcoinTaprootPsbt{Psbt: []byte("p"), Network: 99}}
		})},
		{"sign psbt empty", "bitcoin_taproot_psbt.psbt", signWith(func(r *pb.SignRequest) {
			r.Payload = &pb.SignRequest_BitcoinTaprootPsbt{BitcoinTaprootPsbt: &pb.BitcoinTaprootPsbt{Network: 1}}
		})},
		{"sign raw digest short", "raw_digest.digest", signWith(func(r *pb.SignRequest) {
			r.Payload = &pb.SignRequest_RawDigest{RawDigest: &pb.RawDigest{Digest: []byte(evil)}}
		})},
		{"operation name", "name", func(ctx context.Context) error {
			_, err := sc.GetSignOperation(ctx, &pb.GetSignOperationRequest{Name: "signOperations/" + strings.Repeat("AB", 16)})
			return err
		}},
		{"operation name is a key", "name", func(ctx context.Context) error {
			_, err := sc.GetSignOperation(ctx, &pb.GetSignOperationRequest{Name: goodKey})
			return err
		}},
		{"set policy no idempotency key", "idempotency_key", setWith(func(r *pb.SetPolicyRequest) { r.IdempotencyKey = "" })},
		{"set policy empty document", "document", setWith(func(r *pb.SetPolicyRequest) { r.Document = nil })},
		{"set policy large document", "document", setWith(func(r *pb.SetPolicyRequest) { r.Document = make([]byte, 256<<10+1) })},
		{"set policy 65 approvals", "approvals", setWith(func(r *pb.SetPolicyRequest) {
			for len(r.Approvals) < 65 {
				r.Approvals = append(r.Approvals, r.Approvals[0])
			}
		})},
		{"set policy bad admin key", "approvals.admin_public_key", setWith(func(r *pb.SetPolicyRequest) {
			r.Approvals[0].AdminPublicKey = []byte(evil)
		})},
		{"set policy empty signature", "approvals.signature", setWith(func(r *pb.SetPolicyRequest) { r.Approvals[0].Signature = nil })},
		{"nonce empty", "nonce", func(ctx context.Context) error {
			_, err := ac.GetAttestation(ctx, &pb.GetAttestationRequest{})
			return err
		}},
		{"nonce long", "nonce", func(ctx context.Context) error {
			_, err := ac.GetAttestation(ctx, &pb.GetAttestationRequest{Nonce: make([]byte, 65)})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := wantCode(t, c.call(ctxT(t)), codes.InvalidArgument)
			if !strings.HasPrefix(st.Message(), "invalid "+c.field+":") {
				t.Errorf("message %q does not name %s", st.Message(), c.field)
			}
			if strings.Contains(st.Message(), "EVIL") {
				t.Errorf("message %q echoes the value", st.Message())
			}
		})
	}
	if n := h.node.total(); n != 0 {
		t.Errorf("the Node was called %d times for refused requests", n)
	}
}

// rawCodec sends and receives bytes as they are, to send what no proto
// marshaler would.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// TestMalformedMessages: bytes that are not the request message are
// INVALID_ARGUMENT with a fixed text (never the decoder's), after the role
// check; an oversized message is RESOURCE_EXHAUSTED, unary or streaming.
func TestMalformedMessages(t *testing.T) {
	h := start(t, nil, nil)
	raw := func(conn *grpc.ClientConn, method string, stream bool, msg []byte) error {
		ctx := ctxT(t)
		var out []byte
		if !stream {
			return conn.Invoke(ctx, method, &msg, &out, grpc.ForceCodecV2(rawCodec{}))
		}
		st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method, grpc.ForceCodecV2(rawCodec{}))
		if err == nil && msg != nil {
			err = st.SendMsg(&msg)
		}
		if err == nil {
			err = st.CloseSend()
		}
		if err == nil {
			err = st.RecvMsg(&out)
		}
		return err
	}
	truncated := []byte{0x0a, 0xff, 0x01, 'k'}
	badUTF8 := []byte{0x0a, 0x02, 0xff, 0xfe}
	for name, msg := range map[string][]byte{"truncated": truncated, "bad UTF-8": badUTF8} {
		t.Run(name, func(t *testing.T) {
			err := raw(h.signer(), pb.KeyService_GetKey_FullMethodName, false, msg)
			if st := wantCode(t, err, codes.InvalidArgument); st.Message() != msgMalformed {
				t.Errorf("message %q", st.Message())
			}
			err = raw(h.auditor(), pb.AuditService_ExportAudit_FullMethodName, true, []byte{0x08, 0xff})
			if st := wantCode(t, err, codes.InvalidArgument); st.Message() != msgMalformed {
				t.Errorf("stream: message %q", st.Message())
			}
			err = raw(h.signer(), pb.AuditService_ExportAudit_FullMethodName, true, msg)
			wantCode(t, err, codes.PermissionDenied)
		})
	}
	// No request message at all: gRPC itself answers (INTERNAL,
	// "cardinality violation"), before any handler.
	if err := raw(h.auditor(), pb.AuditService_ExportAudit_FullMethodName, true, nil); err == nil {
		t.Error("a stream without a request message succeeded")
	}
	if n := h.node.total(); n != 0 {
		t.Errorf("the Node was called %d times", n)
	}
	if n := h.srv.codec.size(); n != 0 {
		t.Errorf("%d malformed marks left behind", n)
	}

	big := make([]byte, DefaultMaxRecvMsgSize+10)
	_, err := policyClient(h.admin()).SetPolicy(ctxT(t), &pb.SetPolicyRequest{IdempotencyKey: "i", Document: big})
	wantCode(t, err, codes.ResourceExhausted)
	unknownField := append([]byte{0x7a}, binary.AppendUvarint(nil, uint64(len(big)))...) // field 15, bytes
	err = raw(h.auditor(), pb.AuditService_ExportAudit_FullMethodName, true, append(unknownField, big...))
	wantCode(t, err, codes.ResourceExhausted)
}

// size is the number of marks not yet taken (tests only).
func (c *requestCodec) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.bad)
}

func TestParsers(t *testing.T) {
	id := testKeyID(0xab)
	if got, err := parseKeyName("f", keyName(id)); err != nil || got != id {
		t.Errorf("key name round trip: %v %v", got, err)
	}
	if got, err := parseOperationName("f", "signOperations/"+strings.Repeat("0f", 16)); err != nil || got != strings.Repeat("0f", 16) {
		t.Errorf("operation name: %q %v", got, err)
	}
	if got, err := parsePageToken(pageToken(id)); err != nil || *got != id {
		t.Errorf("page token round trip: %v %v", got, err)
	}
	if got, err := parsePageToken(""); got != nil || err != nil {
		t.Errorf("empty page token: %v %v", got, err)
	}
	for _, d := range []*durationpb.Duration{nil, durationpb.New(0)} {
		if w, err := maxWait(d); w != DefaultMaxWait || err != nil {
			t.Errorf("max_wait %v: %v %v", d, w, err)
		}
	}
	if w, err := maxWait(durationpb.New(MaxMaxWait)); w != MaxMaxWait || err != nil {
		t.Errorf("max_wait at the maximum: %v %v", w, err)
	}
	if operationID(Caller{ID: "a"}, "k") == operationID(Caller{ID: "b"}, "k") || len(operationID(Caller{ID: "a"}, "k")) != 32 {
		t.Error("operation IDs do not depend on the caller, or are not 32 hex digits")
	}
}

func FuzzParseKeyName(f *testing.F) {
	f.Add(keyName(testKeyID(1)))
	f.Add("keys/" + strings.Repeat("AB", 32))
	f.Add("keys/")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseKeyName("name", s)
		if err == nil && keyName(id) != s {
			t.Fatalf("%q parsed but formats as %q", s, keyName(id))
		}
		if err != nil && len(s) > 8 && strings.Contains(err.Error(), s) {
			t.Fatalf("error %q echoes the input", err)
		}
	})
}

func FuzzParseOperationName(f *testing.F) {
	f.Add("signOperations/" + strings.Repeat("0a", 16))
	f.Add("signOperations/" + strings.Repeat("0A", 16))
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseOperationName("name", s)
		if err == nil && operationName(id) != s {
			t.Fatalf("%q parsed but formats as %q", s, operationName(id))
		}
	})
}

func FuzzParsePageToken(f *testing.F) {
	f.Add(pageToken(testKeyID(7)))
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parsePageToken(s)
		if err == nil && id != nil && pageToken(*id) != s {
			t.Fatalf("%q parsed but formats as %q", s, pageToken(*id))
		}
	})
}

// FuzzCheckPath: a path is accepted exactly when it has at most 255
// indices, each below 2^31.
func FuzzCheckPath(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1})
	f.Add([]byte{0x80, 0, 0, 0})
	f.Add(bytes.Repeat([]byte{0, 0, 0, 1}, 256))
	f.Fuzz(func(t *testing.T, b []byte) {
		var path []uint32
		for len(b) >= 4 {
			path = append(path, binary.BigEndian.Uint32(b))
			b = b[4:]
		}
		ok := len(path) <= 255
		for _, i := range path {
			ok = ok && i < 1<<31
		}
		if err := checkPath("derivation_path", path); (err == nil) != ok {
			t.Fatalf("path of %d indices: accepted=%v, want %v", len(path), err == nil, ok)
		}
	})
}

// FuzzCheckText: accepted text is short, valid UTF-8 without control
// characters.
func FuzzCheckText(f *testing.F) {
	f.Add("payout #7")
	f.Add("bell\x07")
	f.Add("\xff")
	f.Fuzz(func(t *testing.T, s string) {
		if checkText("note", s, MaxNoteLen) != nil {
			return
		}
		if len(s) > MaxNoteLen || !utf8.ValidString(s) {
			t.Fatalf("accepted %q", s)
		}
		for _, r := range s {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				t.Fatalf("accepted a control character in %q", s)
			}
		}
	})
}
