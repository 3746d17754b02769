package node_test

import (
	"bytes"
	"context"
	stdcrypto "crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/api"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/audit"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/coord"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/judge"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc/mpctest"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/node"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/nsm"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/payload"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/policy"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
	auditfmt "github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

var abc = []mpc.PartyID{"alice", "bob", "carol"}

// blindPolicy lets every key sign raw digests.
const blindPolicy = `{"version":%d,"default":{"kinds":["raw-digest"],"allow_blind_signing":%t}}`

type admin struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
}

func (a admin) approve(doc []byte) policy.Approval {
	return policy.Approval{AdminKey: a.pub, Signature: ed25519.Sign(a.priv, policy.ApprovalMessage(doc))}
}

type cluster struct {
	nodes   map[mpc.PartyID]*node.Node
	engines map[mpc.PartyID]*mpc.Engine
	audits  map[mpc.PartyID]*audit.Log
	net     *mpctest.Network
	admins  []admin
	roots   *x509.CertPool

	stores   map[mpc.PartyID]mpc.Store // the engines'
	approver judge.Approver            // every judge's; nil: none
}

// newCluster runs three full enclave cores (keystore, engine, coordinator,
// judge, policy, audit, node) on one in-process network, each with the
// same admins (quorum 2) and the policy doc stored.
func newCluster(t *testing.T, doc string) *cluster {
	t.Helper()
	return newClusterWith(t, doc, nil)
}

// newClusterWith is newCluster with an approval callback for every judge.
func newClusterWith(t *testing.T, doc string, approver judge.Approver) *cluster {
	t.Helper()
	c := &cluster{nodes: map[mpc.PartyID]*node.Node{}, engines: map[mpc.PartyID]*mpc.Engine{}, audits: map[mpc.PartyID]*audit.Log{}, net: mpctest.NewNetwork(abc...),
		stores: map[mpc.PartyID]mpc.Store{}, approver: approver}
	for range 3 {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		c.admins = append(c.admins, admin{pub, priv})
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait(); c.net.Close() })
	sim, err := nsm.OpenSimulator(nsm.SimulatorConfig{ModuleID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	c.roots = x509.NewCertPool()
	c.roots.AppendCertsFromPEM(sim.RootPEM())
	for _, id := range abc {
		c.start(t, ctx, &wg, id, sim, doc)
	}
	return c
}

func (c *cluster) start(t *testing.T, ctx context.Context, wg *sync.WaitGroup, id mpc.PartyID, att nsm.Attester, doc string) {
	t.Helper()
	dbKey := make([]byte, keystore.KeySize)
	rand.Read(dbKey)
	ks, err := keystore.Create(ctx, t.TempDir(), secret.New(dbKey), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	if doc != "" {
		if err := ks.PutPolicy(ctx, 1, []byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	ident := must(node.LoadIdentity(ctx, ks, id))
	log := must(audit.New(ctx, audit.Config{CosignerID: string(id), Store: ks, Signer: audit.IdentitySigner(ident.Key)}))
	keys := []stdcrypto.PublicKey{c.admins[0].pub, c.admins[1].pub, c.admins[2].pub}
	pol := must(policy.NewEngine(ks, policy.AdminSet{Keys: keys, Threshold: 2}, policy.Options{}))
	mux := coord.NewMux(c.net.Transport(id))
	store := node.NewStore(ks)
	var crd *coord.Coordinator
	propose := func(ctx context.Context, spec mpc.SessionSpec, key mpc.KeyID, epoch uint64) error {
		_, err := crd.Initiate(ctx, coord.Proposal{Session: spec.ID, Op: coord.OpPresign, Parties: spec.Parties,
			Key: key, Epoch: epoch, Deadline: spec.Deadline})
		return err
	}
	eng := must(mpc.New(mpc.Config{Self: id, Transport: mux.Engine(), Store: store, ProposePresign: propose,
		Pools: mpc.PoolConfig{Target: 2, LowWater: 1}}))
	c.stores[id] = store
	jdg := must(judge.New(judge.Config{Self: id, Keys: eng, Policy: pol, Audit: log, Approver: c.approver,
		OnKeyCreated: func(k mpc.KeyInfo) { c.nodes[id].EnablePools(context.Background(), k) }}))
	crd = must(coord.New(coord.Config{Self: id, Mux: mux, Sessions: noSessions{}, Engine: eng, Judge: jdg, AcceptTimeout: 5 * time.Second}))
	c.engines[id] = eng
	c.nodes[id] = must(node.New(node.Config{Identity: ident, Engine: eng, Coord: crd, Keystore: ks, Store: store,
		Policy: pol, Audit: log, Attester: att, TLSCert: sha256.Sum256([]byte("cert")),
		Roster: func() []mpc.PartyID { return abc }, KeygenTime: 3 * time.Minute, SignTime: time.Minute}))
	c.audits[id] = log
	for _, run := range []func(context.Context) error{mux.Run, eng.Run, crd.Run} {
		wg.Go(func() {
			if err := run(ctx); err != nil {
				t.Errorf("%s: %v", id, err)
			}
		})
	}
}

// noSessions: the in-process network needs no wire sessions.
type noSessions struct{}

func (noSessions) Open(mpc.SessionID, []mpc.PartyID) error { return nil }
func (noSessions) Close(mpc.SessionID)                     {}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

var signer = api.Caller{ID: "wallet/00", Roles: []api.Role{api.RoleSigner}}

func (c *cluster) taprootKey(t *testing.T) api.Key {
	t.Helper()
	var steps []api.ProgressKind
	key, err := c.nodes["alice"].CreateKey(context.Background(), api.CreateKeyParams{Caller: signer, Scheme: mpc.SchemeTaproot,
		Threshold: 2, Parties: abc, DisplayName: "treasury"}, func(p api.Progress) { steps = append(steps, p.Kind) })
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || steps[1] != api.ProgressSessionStarted {
		t.Errorf("progress %v", steps)
	}
	if key.DisplayName != "treasury" || key.Info.Threshold != 2 || len(key.Info.Parties) != 3 {
		t.Errorf("key %+v", key)
	}
	return key
}

func (c *cluster) signDigest(t *testing.T, from mpc.PartyID, key api.Key, digest []byte) api.SignOutcome {
	t.Helper()
	out, err := c.nodes[from].Sign(context.Background(), api.SignParams{Caller: signer, OperationID: "op-" + string(from),
		Key: key.Info.Key, Payload: payload.Request{Kind: payload.RawDigest, Bytes: digest}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCreateKeyAndSignAcrossNodes(t *testing.T) {
	c := newCluster(t, fmt.Sprintf(blindPolicy, 1, true))
	key := c.taprootKey(t)
	for _, id := range []mpc.PartyID{"bob", "carol"} {
		// Alice returns once her echo round is done; the others store a
		// moment later.
		got, err := c.nodes[id].Key(context.Background(), key.Info.Key)
		for end := time.Now().Add(10 * time.Second); errors.Is(err, api.ErrNotFound) && time.Now().Before(end); {
			time.Sleep(10 * time.Millisecond)
			got, err = c.nodes[id].Key(context.Background(), key.Info.Key)
		}
		if err != nil || !bytes.Equal(got.Info.PublicKey, key.Info.PublicKey) || got.DisplayName != "" {
			t.Fatalf("%s: %+v %v (display names are local)", id, got, err)
		}
	}
	digest := sha256.Sum256([]byte("message"))
	out := c.signDigest(t, "carol", key, digest[:])
	if out.State != api.StateSucceeded || len(out.Raw) != 64 {
		t.Fatalf("outcome %+v", out)
	}
	pub := must(schnorr.ParsePubKey(key.Info.PublicKey))
	sig := must(schnorr.ParseSignature(out.Raw))
	if !sig.Verify(digest[:], pub) {
		t.Fatal("btcd does not verify the signature")
	}
	if len(out.Signers) != 2 || out.Signers[0] != "carol" {
		t.Errorf("signers %v", out.Signers)
	}
	// Every signer audited its own decision, with the caller as relayed,
	// and its outcome (written as its session ends, so a moment after the
	// initiator's result).
	for _, id := range out.Signers {
		var got string
		for end := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			var types []string
			for _, r := range must(c.audits[id].Read(context.Background(), 1, 100)) {
				types = append(types, string(r.Entry.Type))
			}
			if got = strings.Join(types, ","); strings.Contains(got, "sign_requested,sign_decided,signed") || time.Now().After(end) {
				break
			}
		}
		if !strings.Contains(got, "sign_requested,sign_decided,signed") {
			t.Errorf("%s audit: %s", id, got)
		}
	}
}

func TestSignRejectedByAPeersPolicy(t *testing.T) {
	c := newCluster(t, fmt.Sprintf(blindPolicy, 1, true))
	key := c.taprootKey(t)
	// Bob's own policy changes: blind signing is no longer allowed there.
	doc := []byte(fmt.Sprintf(blindPolicy, 2, false))
	approvals := []policy.Approval{c.admins[0].approve(doc), c.admins[2].approve(doc)}
	if _, err := c.nodes["bob"].SetPolicy(context.Background(), signer, doc, approvals); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("message"))
	out := c.signDigest(t, "alice", key, digest[:])
	if out.State != api.StateRejected || out.Reason != api.ReasonPolicyDenied || out.RefusedBy != "bob" || out.Raw != nil {
		t.Fatalf("outcome %+v, want bob's policy refusal", out)
	}
}

func TestSetPolicyNeedsQuorumAndAuditsFirst(t *testing.T) {
	c := newCluster(t, "")
	ctx := context.Background()
	n := c.nodes["alice"]
	if _, err := n.Policy(ctx); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("Policy without one: %v", err)
	}
	doc := []byte(fmt.Sprintf(blindPolicy, 1, true))
	one := []policy.Approval{c.admins[0].approve(doc)}
	if _, err := n.SetPolicy(ctx, signer, doc, one); !errors.Is(err, api.ErrPermissionDenied) {
		t.Fatalf("one admin of a quorum of two: %v", err)
	}
	twice := []policy.Approval{c.admins[0].approve(doc), c.admins[0].approve(doc)}
	if _, err := n.SetPolicy(ctx, signer, doc, twice); !errors.Is(err, api.ErrPermissionDenied) {
		t.Fatalf("one admin twice: %v", err)
	}
	if _, err := n.SetPolicy(ctx, signer, []byte("{"), one); !errors.Is(err, api.ErrInvalidArgument) {
		t.Fatalf("malformed document: %v", err)
	}
	two := []policy.Approval{c.admins[0].approve(doc), c.admins[1].approve(doc)}
	got, err := n.SetPolicy(ctx, signer, doc, two)
	if err != nil || got.Version != 1 || !bytes.Equal(got.Document, doc) {
		t.Fatalf("SetPolicy = %+v, %v", got, err)
	}
	if _, err := n.SetPolicy(ctx, signer, doc, two); !errors.Is(err, api.ErrFailedPrecondition) {
		t.Fatalf("same version again: %v", err)
	}
	recs := must(c.audits["alice"].Read(ctx, 1, 10))
	if len(recs) != 3 || recs[0].Entry.Type != auditfmt.PolicyChanged || recs[2].Entry.Type != auditfmt.AdminAction {
		t.Fatalf("audit: %+v", recs)
	}
}

func TestSignRefusesBadRequestsBeforeAnyPeerHears(t *testing.T) {
	c := newCluster(t, fmt.Sprintf(blindPolicy, 1, true))
	key := c.taprootKey(t)
	before := c.net.Stats().Sent
	for name, tc := range map[string]struct {
		params api.SignParams
		want   error
	}{
		"unknown key":  {api.SignParams{Key: mpc.KeyID{1}, Payload: payload.Request{Kind: payload.RawDigest, Bytes: make([]byte, 32)}}, api.ErrNotFound},
		"short digest": {api.SignParams{Key: key.Info.Key, Payload: payload.Request{Kind: payload.RawDigest, Bytes: make([]byte, 31)}}, api.ErrInvalidArgument},
		"wrong scheme": {api.SignParams{Key: key.Info.Key, Payload: payload.Request{Kind: payload.EIP191, Bytes: []byte("hi")}}, api.ErrInvalidArgument},
		"hardened path": {api.SignParams{Key: key.Info.Key, Path: []uint32{1 << 31},
			Payload: payload.Request{Kind: payload.RawDigest, Bytes: make([]byte, 32)}}, api.ErrInvalidArgument},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.nodes["alice"].Sign(context.Background(), tc.params); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	if sent := c.net.Stats().Sent; sent != before {
		t.Errorf("%d frames went out for refused requests", sent-before)
	}
}

func TestAttestBindsIdentityAndCertificate(t *testing.T) {
	c := newCluster(t, "")
	a, err := c.nodes["alice"].Attest(context.Background(), []byte("nonce"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := attestation.Verify(a.Document, attestation.VerifyOptions{Time: time.Now(), Roots: c.roots})
	if err != nil {
		t.Fatal(err)
	}
	want := wire.BindingUserData(a.CosignerID, a.IdentityKey, a.EncryptionKey, a.TLSCertificate[:])
	if !bytes.Equal(doc.UserData, want) || !bytes.Equal(doc.Nonce, []byte("nonce")) {
		t.Fatal("document does not bind the identity, certificate and nonce")
	}
}

// With bob down, alice's first choice of signers (alice, bob) gets no
// answer; she proposes again without bob and signs with carol.
func TestSignWithACosignerDown(t *testing.T) {
	c := newCluster(t, fmt.Sprintf(blindPolicy, 1, true))
	key := c.taprootKey(t)
	c.net.SetRule(func(env *mpc.Envelope) mpctest.Action {
		if env.From == "bob" || env.To == "bob" {
			return mpctest.Drop
		}
		return mpctest.Deliver
	})
	digest := sha256.Sum256([]byte("bob is down"))
	out := c.signDigest(t, "alice", key, digest[:])
	if out.State != api.StateSucceeded || len(out.Signers) != 2 || out.Signers[1] != "carol" {
		t.Fatalf("outcome %+v, want a signature by alice and carol", out)
	}
	pub := must(schnorr.ParsePubKey(key.Info.PublicKey))
	if !must(schnorr.ParseSignature(out.Raw)).Verify(digest[:], pub) {
		t.Fatal("btcd does not verify the signature")
	}
	// With carol down too, the threshold cannot be met.
	c.net.SetRule(func(env *mpc.Envelope) mpctest.Action {
		if env.From == "alice" {
			return mpctest.Drop
		}
		return mpctest.Deliver
	})
	out = c.signDigest(t, "alice", key, digest[:])
	if out.State != api.StateFailed || out.Reason != api.ReasonDeadlineExceeded {
		t.Fatalf("outcome %+v, want a failure for want of signers", out)
	}
}
