package judge_test

import (
	"context"
	stdcrypto "crypto"
	stdecdsa "crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/approval"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/audit"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/coord"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/judge"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/payload"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/policy"
	auditfmt "github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

var (
	keyID = mpc.KeyID{7}
	dest  = common.HexToAddress("0x1111111111111111111111111111111111111111")
)

// testPolicy allows EIP-1559 transactions on chain 1 to dest, at most
// 1000 wei each and 1500 wei an hour.
const testPolicy = `{"version":1,"default":{"kinds":["eth-transaction"],"chain_ids":[1],` +
	`"allow_destinations":["0x1111111111111111111111111111111111111111"],` +
	`"limits":[{"asset":"native","chain_id":1,"max_per_tx":"1000","window_seconds":3600,"max_per_window":"1500"}]}}`

// keys is a Keys with one ECDSA key and, optionally, presignatures of its
// pools (any signer set).
type keys struct {
	info    mpc.KeyInfo
	presigs map[mpc.PresignatureID]bool
}

func (k keys) Key(_ context.Context, id mpc.KeyID) (mpc.KeyInfo, error) {
	if id != k.info.Key {
		return mpc.KeyInfo{}, mpc.ErrKeyNotFound
	}
	return k.info, nil
}

func (k keys) PoolEnabled(mpc.KeyID, []mpc.PartyID) bool { return false }

func (k keys) HasPresignature(key mpc.KeyID, epoch uint64, _ []mpc.PartyID, id mpc.PresignatureID) bool {
	return key == k.info.Key && epoch == k.info.Epoch && k.presigs[id]
}

func (k keys) DeriveKey(context.Context, mpc.KeyID, []uint32) (mpc.DerivedKey, error) {
	return mpc.DerivedKey{}, errors.New("no derivation in this test")
}

// approver answers with a fixed decision or error and counts questions.
type approver struct {
	mu       sync.Mutex
	decision approval.Decision
	err      error
	asked    int
}

func (a *approver) Ask(context.Context, approval.Request) (approval.Decision, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked++
	return a.decision, a.err
}

// failingAudit refuses every entry.
type failingAudit struct{}

func (failingAudit) Append(context.Context, auditfmt.Event) (auditfmt.Record, error) {
	return auditfmt.Record{}, errors.New("disk full")
}

type fixture struct {
	judge *judge.Judge
	audit *audit.Log
	appr  *approver
}

func newFixture(t *testing.T, withApprover bool, auditor judge.Auditor) *fixture {
	t.Helper()
	return newFixtureKeys(t, withApprover, auditor, keys{info: ecdsaKey(t)})
}

func newFixtureKeys(t *testing.T, withApprover bool, auditor judge.Auditor, k keys) *fixture {
	t.Helper()
	ctx := context.Background()
	dbKey := make([]byte, keystore.KeySize)
	rand.Read(dbKey)
	ks, err := keystore.Create(ctx, t.TempDir(), secret.New(dbKey), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	if err := ks.PutPolicy(ctx, 1, []byte(testPolicy)); err != nil {
		t.Fatal(err)
	}
	adminPub, _, _ := ed25519.GenerateKey(rand.Reader)
	pol, err := policy.NewEngine(ks, policy.AdminSet{Keys: []stdcrypto.PublicKey{adminPub}, Threshold: 1}, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := wire.GenerateIdentityKey()
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.New(ctx, audit.Config{CosignerID: "alice", Store: ks, Signer: audit.IdentitySigner(id)})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{audit: log, appr: &approver{decision: approval.Decision{Verdict: approval.Approve}}}
	cfg := judge.Config{Self: "alice", Keys: k, Policy: pol, Audit: log}
	if auditor != nil {
		cfg.Audit = auditor
	}
	if withApprover {
		cfg.Approver = f.appr
	}
	f.judge, err = judge.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var signingKey = func() *ecdsaPriv { k, _ := crypto.GenerateKey(); return (*ecdsaPriv)(k) }()

func ecdsaKey(t *testing.T) mpc.KeyInfo {
	return mpc.KeyInfo{Key: keyID, Scheme: mpc.SchemeECDSA, Threshold: 2, Parties: []mpc.PartyID{"alice", "bob"},
		PublicKey: crypto.CompressPubkey(&signingKey.PublicKey)}
}

func unsignedTx(value int64, chain int64) *types.Transaction {
	return types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(chain), Nonce: 1, GasTipCap: big.NewInt(1),
		GasFeeCap: big.NewInt(2), Gas: 21000, To: &dest, Value: big.NewInt(value)})
}

func proposalFor(t *testing.T, tx *types.Transaction) *coord.Proposal {
	t.Helper()
	raw, err := tx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	req, err := judge.EncodeSignRequest(judge.SignRequest{
		Payload: payload.Request{Kind: payload.EthTransaction, Bytes: raw}, Caller: "wallet-svc", RequestID: "req-1"})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := mpc.NewSessionID()
	return &coord.Proposal{Session: id, Op: coord.OpSign, Parties: []mpc.PartyID{"alice", "bob"}, Key: keyID,
		Request: req, Signs: 1, Deadline: time.Now().Add(time.Minute)}
}

// entries returns the audit log's entries as "type decision reason".
func (f *fixture) entries(t *testing.T) []string {
	t.Helper()
	recs, err := f.audit.Read(context.Background(), 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s %s", r.Entry.Type, r.Entry.Decision, r.Entry.Reason)))
	}
	return out
}

func refusalCode(t *testing.T, err error) coord.Code {
	t.Helper()
	var r *coord.Refusal
	if !errors.As(err, &r) {
		t.Fatalf("got %v, want a refusal", err)
	}
	return r.Code
}

func TestAllowedSignComputesItsOwnDigestAndAudits(t *testing.T) {
	f := newFixture(t, true, nil)
	tx := unsignedTx(600, 1)
	task, err := f.judge.Judge(context.Background(), "bob", proposalFor(t, tx))
	if err != nil {
		t.Fatal(err)
	}
	want := types.LatestSignerForChainID(big.NewInt(1)).Hash(tx)
	if len(task.Signs) != 1 || common.BytesToHash(task.Signs[0].Digest) != want {
		t.Fatalf("digest %x, want go-ethereum's %x", task.Signs, want)
	}
	task.Done(coord.Result{}, nil)
	got := f.entries(t)
	wantEntries := []string{"sign_requested", "sign_decided allow policy: allowed", "signed"}
	if len(got) != 3 || got[0] != wantEntries[0] || !strings.HasPrefix(got[1], wantEntries[1]) || got[2] != wantEntries[2] {
		t.Errorf("audit: %q, want %q", got, wantEntries)
	}
	if f.appr.asked != 1 {
		t.Errorf("approval asked %d times", f.appr.asked)
	}
}

func TestRefusals(t *testing.T) {
	for name, tc := range map[string]struct {
		tx       *types.Transaction
		edit     func(*coord.Proposal)
		approver func(*approver)
		code     coord.Code
		audited  string // the decision entry, "" when the request never reaches policy
	}{
		"policy: over the per-transaction limit": {tx: unsignedTx(1001, 1), code: coord.CodePolicy, audited: "sign_decided deny policy: per_tx_limit_exceeded"},
		"policy: chain not allowed":              {tx: unsignedTx(1, 5), code: coord.CodePolicy, audited: "sign_decided deny policy: chain_not_allowed"},
		"approval: rejected": {tx: unsignedTx(1, 1), code: coord.CodeApproval, audited: "sign_decided deny approval: reject: not today",
			approver: func(a *approver) { a.decision = approval.Decision{Verdict: approval.Reject, Reason: "not today"} }},
		"approval: retry is no": {tx: unsignedTx(1, 1), code: coord.CodeApproval, audited: "sign_decided deny approval: retry",
			approver: func(a *approver) { a.decision = approval.Decision{Verdict: approval.Retry} }},
		"approval: timeout": {tx: unsignedTx(1, 1), code: coord.CodeApproval, audited: "sign_decided deny approval:",
			approver: func(a *approver) { a.err = approval.ErrTimeout }},
		"bad payload": {tx: unsignedTx(1, 1), code: coord.CodeInvalid,
			edit: func(p *coord.Proposal) {
				p.Request, _ = judge.EncodeSignRequest(judge.SignRequest{Payload: payload.Request{Kind: payload.EthTransaction, Bytes: []byte{2, 0xc0}}})
			}},
		"undecodable request": {tx: unsignedTx(1, 1), code: coord.CodeInvalid, edit: func(p *coord.Proposal) { p.Request = []byte{0xff} }},
		"unknown key":         {tx: unsignedTx(1, 1), code: coord.CodeUnknownKey, edit: func(p *coord.Proposal) { p.Key = mpc.KeyID{9} }},
		"wrong epoch":         {tx: unsignedTx(1, 1), code: coord.CodeUnknownKey, edit: func(p *coord.Proposal) { p.Epoch = 3 }},
		"blind digest": {tx: unsignedTx(1, 1), code: coord.CodePolicy, audited: "sign_decided deny policy: kind_not_allowed",
			edit: func(p *coord.Proposal) {
				p.Request, _ = judge.EncodeSignRequest(judge.SignRequest{Payload: payload.Request{Kind: payload.RawDigest, Bytes: make([]byte, 32)}})
			}},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, true, nil)
			if tc.approver != nil {
				tc.approver(f.appr)
			}
			p := proposalFor(t, tc.tx)
			if tc.edit != nil {
				tc.edit(p)
			}
			_, err := f.judge.Judge(context.Background(), "bob", p)
			if got := refusalCode(t, err); got != tc.code {
				t.Fatalf("code %s, want %s (%v)", got, tc.code, err)
			}
			got := f.entries(t)
			if tc.audited == "" {
				if len(got) != 0 {
					t.Errorf("audit: %q, want nothing", got)
				}
				return
			}
			if len(got) != 2 || got[0] != "sign_requested" || !strings.HasPrefix(got[1], tc.audited) {
				t.Errorf("audit: %q, want sign_requested then %q", got, tc.audited)
			}
		})
	}
}

// If the audit entry cannot be written, nothing is decided.
func TestAuditFailureRefuses(t *testing.T) {
	f := newFixture(t, true, failingAudit{})
	_, err := f.judge.Judge(context.Background(), "bob", proposalFor(t, unsignedTx(1, 1)))
	if got := refusalCode(t, err); got != coord.CodeInternal {
		t.Fatalf("code %s, want internal", got)
	}
	if f.appr.asked != 0 {
		t.Error("the approver was asked although the request could not be audited")
	}
}

// A refused sign, and a sign whose session never started, give their
// window spends back; one whose engine session ran keeps them (our share
// may have left the enclave).
func TestWindowReservationLifecycle(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, false, nil)
	task, err := f.judge.Judge(ctx, "bob", proposalFor(t, unsignedTx(1000, 1)))
	if err != nil {
		t.Fatal(err)
	}
	// 1000 of 1500 reserved: another 1000 does not fit.
	if _, err := f.judge.Judge(ctx, "bob", proposalFor(t, unsignedTx(1000, 1))); refusalCode(t, err) != coord.CodePolicy {
		t.Fatal("window limit not enforced")
	}
	task.Done(coord.Result{}, &coord.RefusedError{Party: "bob", Code: coord.CodeBusy})
	task2, err := f.judge.Judge(ctx, "bob", proposalFor(t, unsignedTx(1000, 1)))
	if err != nil {
		t.Fatalf("the reservation of a sign that never ran was kept: %v", err)
	}
	task2.Done(coord.Result{}, &mpc.AbortError{Culprits: []mpc.PartyID{"bob"}, Reason: "test"})
	if _, err := f.judge.Judge(ctx, "bob", proposalFor(t, unsignedTx(1000, 1))); refusalCode(t, err) != coord.CodePolicy {
		t.Fatal("the reservation of a sign whose session ran was released")
	}
}

func TestKeygenAudited(t *testing.T) {
	f := newFixture(t, false, nil)
	id, _ := mpc.NewSessionID()
	task, err := f.judge.Judge(context.Background(), "bob", &coord.Proposal{Session: id, Op: coord.OpFROSTKeygen})
	if err != nil {
		t.Fatal(err)
	}
	task.Done(coord.Result{}, errors.New("session failed"))
	task.Done(coord.Result{Key: mpc.KeyInfo{Key: mpc.KeyID(id), Scheme: mpc.SchemeTaproot}}, nil)
	if got := f.entries(t); len(got) != 2 || got[0] != "admin_action  key generation accepted" || got[1] != "key_created" {
		t.Errorf("audit: %q, want the accepted keygen, then one key_created", got)
	}
}

// A keygen whose start cannot be audited is refused: no key is made
// without an entry saying who asked for it.
func TestKeygenRefusedWithoutAudit(t *testing.T) {
	f := newFixture(t, false, failingAudit{})
	id, _ := mpc.NewSessionID()
	_, err := f.judge.Judge(context.Background(), "bob", &coord.Proposal{Session: id, Op: coord.OpKeygen})
	if got := refusalCode(t, err); got != coord.CodeInternal {
		t.Fatalf("code %s, want internal", got)
	}
}

type ecdsaPriv = stdecdsa.PrivateKey
