package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/cmd/cosignerctl/app"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/api"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/policy"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

// realNode is the part of api.Node that the commands below reach: no
// keys, attestation, policy and the audit log (of entries 1 to 4). Other methods are not
// called (the embedded nil Node would panic).
type realNode struct {
	api.Node
	e    *apiEnv
	cert *api.ServerCert
	log  []audit.Record

	mu     sync.Mutex
	policy *api.PolicyDoc
}

func (n *realNode) Self() mpc.PartyID { return "co-1" }

func (n *realNode) Attest(_ context.Context, nonce []byte) (api.Attestation, error) {
	id := n.e.identity.Public().(ed25519.PublicKey)
	doc, err := n.e.sim.Attest(attestsim.Request{PCRs: n.e.pcrs, Nonce: nonce,
		UserData: wire.BindingUserData("co-1", id, n.e.enc, n.cert.Fingerprint[:])})
	return api.Attestation{Document: doc, CosignerID: "co-1", IdentityKey: id, EncryptionKey: n.e.enc, TLSCertificate: n.cert.Fingerprint}, err
}

func (n *realNode) ListKeys(context.Context, *mpc.KeyID, int) ([]api.Key, bool, error) {
	return nil, false, nil
}

func (n *realNode) Policy(context.Context) (api.PolicyDoc, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.policy == nil {
		return api.PolicyDoc{}, api.ErrNotFound
	}
	return *n.policy, nil
}

func (n *realNode) SetPolicy(_ context.Context, _ api.Caller, doc []byte, approvals []policy.Approval) (api.PolicyDoc, error) {
	d, err := policy.Parse(doc)
	if err != nil {
		return api.PolicyDoc{}, api.ErrInvalidArgument
	}
	if err := policy.VerifyApprovals(d.Canonical(), approvals, n.e.admins); err != nil {
		return api.PolicyDoc{}, api.ErrPermissionDenied
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.policy = &api.PolicyDoc{Version: d.Version(), Document: d.Canonical(), Updated: fakeTime}
	return *n.policy, nil
}

func (n *realNode) ExportAudit(_ context.Context, from uint64, w io.Writer) (uint64, error) {
	xw, err := audit.NewWriter(w, audit.Header{CosignerID: "co-1", FirstSeq: 1}, audit.NewEd25519Signer(n.e.identity))
	if err != nil || from > 1 {
		return 0, errors.Join(err, api.ErrInvalidArgument)
	}
	for _, r := range n.log {
		if err := xw.Write(r); err != nil {
			return 0, err
		}
	}
	return uint64(len(n.log)), xw.Close(fakeTime)
}

func (n *realNode) AuditHeader(_ context.Context, from uint64) (audit.Header, error) {
	h := audit.Header{CosignerID: "co-1", IdentityKey: n.e.identity.Public().(ed25519.PublicKey), FirstSeq: from}
	if from > 1 {
		h.PrevHash = n.log[from-2].Hash
	}
	return h, nil
}

// StreamAudit sends the log from seq from, then waits as if no entry
// were written.
func (n *realNode) StreamAudit(ctx context.Context, from uint64, fn func(audit.Record) error) error {
	for _, r := range n.log[from-1:] {
		if err := fn(r); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

// idemStore keeps idempotency records in memory.
type idemStore struct {
	mu   sync.Mutex
	recs map[string]keystore.IdempotencyRecord
}

func (s *idemStore) PutIdempotency(_ context.Context, rec keystore.IdempotencyRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.recs[rec.Key]; ok {
		return keystore.ErrExists
	}
	s.recs[rec.Key] = rec
	return nil
}

func (s *idemStore) GetIdempotency(_ context.Context, key string) (keystore.IdempotencyRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.recs[key]
	if !ok {
		return rec, keystore.ErrNotFound
	}
	return rec, nil
}

// TestRealServer runs cosignerctl against enclave/api's server: the
// attested dial, a refusal by role, policy approval and installation, and
// an audit export that audit verify accepts.
func TestRealServer(t *testing.T) {
	e := newAPIEnv(t)
	cert, err := api.NewServerCert("co-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{
		Node:       &realNode{e: e, cert: cert, log: auditLog(t, audit.NewEd25519Signer(e.identity), 4)},
		ServerCert: cert, ClientCAs: e.clientCA, Idempotency: &idemStore{recs: map[string]keystore.IdempotencyRecord{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	e.servers["real"] = &fakeServer{addr: lis.Addr().String()}

	e.write(t, "doc.json", []byte(`{"version": 5, "default": {"kinds": ["eth-transaction"], "chain_ids": [1]}}`))
	for _, a := range []string{"approver1", "approver2"} {
		if code, _, errOut := run("policy", "approve", "--admin-key", e.path(a+".key"), "--out", e.path(a+".json"), e.path("doc.json")); code != 0 {
			t.Fatal(errOut)
		}
	}
	setPolicy := []string{"policy", "set", e.path("doc.json"), "--approval", e.path("approver1.json"), "--approval", e.path("approver2.json")}
	steps := []struct {
		args []string
		want int
		out  string
	}{
		{append([]string{"attestation", "get", "--json"}, e.conn("real", "auditor")...), app.ExitOK, `"verified": true`},
		{append([]string{"keys", "list"}, e.conn("real", "signer")...), app.ExitOK, "no keys"},
		{append([]string{"keys", "list"}, e.conn("real", "admin", "--cosigner-id", "co-2")...), app.ExitFail, "attestation check failed: cosigner ID"},
		{append([]string{"policy", "get"}, e.conn("real", "auditor")...), app.ExitFail, "NOT_FOUND"},
		{append(setPolicy, e.conn("real", "signer")...), app.ExitFail, "PERMISSION_DENIED"},
		{append(setPolicy[:5:5], e.conn("real", "admin")...), app.ExitFail, "PERMISSION_DENIED"},
		{append(setPolicy, e.conn("real", "admin", "--idempotency-key", "real-1")...), app.ExitOK, "policy version 5 installed"},
		{append(setPolicy, e.conn("real", "admin", "--idempotency-key", "real-1")...), app.ExitOK, "policy version 5 installed"},
		{append([]string{"policy", "get"}, e.conn("real", "signer")...), app.ExitOK, `{"version": 5, "default"`},
		{append([]string{"audit", "export", "--out", e.path("real.jsonl")}, e.conn("real", "auditor")...), app.ExitOK, "valid: 4 entries (1..4) of cosigner co-1"},
		{append([]string{"audit", "stream", "--start-seq", "3", "--limit", "2"}, e.conn("real", "auditor")...), app.ExitOK, "4 2025-06-01T12:00:03Z sign_decided"},
		{[]string{"audit", "verify", "--identity", hex.EncodeToString(e.identity.Public().(ed25519.PublicKey)), e.path("real.jsonl")}, app.ExitOK, "valid: 4 entries"},
	}
	for _, s := range steps {
		code, out, errOut := run(s.args...)
		if code != s.want || !strings.Contains(out+errOut, s.out) {
			t.Fatalf("%v: exit %d, want %d; %q %q", s.args[:2], code, s.want, out, errOut)
		}
	}
}
