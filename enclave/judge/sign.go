package judge

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/approval"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/coord"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/payload"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/policy"
	auditfmt "github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
)

// auditAfterTimeout bounds writing the entry of a finished operation.
const auditAfterTimeout = 30 * time.Second

// SignRequest is what a sign proposal's Request carries: the caller's
// payload as the API received it, and who asked. Every party parses
// Payload itself; Caller, RequestID and Note are the initiator's account
// of the call, recorded in audit entries as such.
type SignRequest struct {
	_         struct{} `cbor:",toarray"`
	Payload   payload.Request
	Path      []uint32
	Caller    string
	RequestID string
	Note      string
}

// Bounds on the informational fields.
const (
	maxCaller    = 128
	maxRequestID = 128
	maxNote      = 256
)

var (
	reqEnc = mustEnc()
	reqDec = mustDec()
)

func mustEnc() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err) // static options; unreachable
	}
	return em
}

func mustDec() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey: cbor.DupMapKeyEnforcedAPF, MaxNestedLevels: 4,
		MaxArrayElements: mpc.MaxPathDepth + 1, MaxMapPairs: 16,
	}.DecMode()
	if err != nil {
		panic(err) // static options; unreachable
	}
	return dm
}

// EncodeSignRequest is what an initiator puts in Proposal.Request.
func EncodeSignRequest(r SignRequest) ([]byte, error) { return reqEnc.Marshal(&r) }

func decodeSignRequest(b []byte) (SignRequest, error) {
	var r SignRequest
	if err := reqDec.Unmarshal(b, &r); err != nil {
		return SignRequest{}, errors.New("judge: sign request does not decode")
	}
	if len(r.Caller) > maxCaller || len(r.RequestID) > maxRequestID || len(r.Note) > maxNote || len(r.Path) > mpc.MaxPathDepth {
		return SignRequest{}, errors.New("judge: sign request field too long")
	}
	return r, nil
}

// signCase is one sign being judged.
type signCase struct {
	from   mpc.PartyID
	p      *coord.Proposal
	req    SignRequest
	key    mpc.KeyInfo
	parsed *payload.Parsed
	actor  string
}

func (j *Judge) sign(ctx context.Context, from mpc.PartyID, p *coord.Proposal) (coord.Task, error) {
	sc, err := j.prepare(ctx, from, p)
	if err != nil {
		return coord.Task{}, err
	}
	release, err := j.promisePresignature(from, p)
	if err != nil {
		return coord.Task{}, err
	}
	res, err := j.requestAndDecide(ctx, sc)
	if err != nil {
		release()
		return coord.Task{}, err
	}
	reqs := make([]mpc.SignRequest, 0, len(sc.parsed.Digests()))
	for _, d := range sc.parsed.Digests() {
		reqs = append(reqs, mpc.SignRequest{Digest: d[:], Path: sc.req.Path})
	}
	return coord.Task{Signs: reqs, Done: func(r coord.Result, err error) {
		release()
		j.finish(sc, res, err)
	}}, nil
}

// requestAndDecide audits the request, then decides it.
func (j *Judge) requestAndDecide(ctx context.Context, sc *signCase) (decided, error) {
	if err := j.audit(ctx, sc.event(auditfmt.SignRequested, "", "")); err != nil {
		return decided{}, err
	}
	return j.decide(ctx, sc)
}

// prepare decodes the request, loads the key and parses the payload.
func (j *Judge) prepare(ctx context.Context, from mpc.PartyID, p *coord.Proposal) (*signCase, error) {
	req, err := decodeSignRequest(p.Request)
	if err != nil {
		return nil, &coord.Refusal{Code: coord.CodeInvalid, Err: err}
	}
	key, err := j.cfg.Keys.Key(ctx, p.Key)
	if err != nil {
		return nil, j.keyRefusal(p, err)
	}
	if key.Epoch != p.Epoch {
		return nil, j.epochRefusal(p, key.Epoch)
	}
	pub := key.PublicKey
	if len(req.Path) > 0 {
		d, err := j.cfg.Keys.DeriveKey(ctx, p.Key, req.Path)
		if err != nil {
			return nil, &coord.Refusal{Code: coord.CodeInvalid, Err: err}
		}
		pub = d.PublicKey
	}
	parsed, err := payload.Parse(req.Payload, pub)
	if err != nil {
		return nil, &coord.Refusal{Code: coord.CodeInvalid, Err: err}
	}
	if !schemeFits(key.Scheme, parsed.Scheme) {
		return nil, &coord.Refusal{Code: coord.CodeInvalid, Err: errors.New("judge: the payload needs another signature scheme")}
	}
	return &signCase{from: from, p: p, req: req, key: key, parsed: parsed, actor: actor(j.cfg.Self, from, req.Caller)}, nil
}

func schemeFits(k mpc.Scheme, s payload.Scheme) bool {
	return k == mpc.SchemeECDSA && s == payload.SchemeECDSA || k == mpc.SchemeTaproot && s == payload.SchemeSchnorr
}

// actor names the caller: as this party's own API saw it, or as the
// proposing cosigner relays it.
func actor(self, from mpc.PartyID, caller string) string {
	if from == self {
		return caller
	}
	return fmt.Sprintf("%s via %s", caller, from)
}

// decided is what an allowed sign holds until it ends.
type decided struct {
	reservation policy.Reservation
	version     uint64
}

// decide runs policy, then approval, and audits the decision.
func (j *Judge) decide(ctx context.Context, sc *signCase) (decided, error) {
	dec, resv, err := j.cfg.Policy.Authorize(ctx, sc.policyRequest())
	if err != nil {
		return decided{}, j.deny(ctx, sc, resv, coord.CodeInternal, "policy_error", err)
	}
	if !dec.Allow {
		return decided{}, j.deny(ctx, sc, resv, coord.CodePolicy, "policy: "+dec.Reason, nil)
	}
	if err := j.approve(ctx, sc); err != nil {
		return decided{}, j.deny(ctx, sc, resv, coord.CodeApproval, "approval: "+err.Error(), err)
	}
	ev := sc.event(auditfmt.SignDecided, auditfmt.Allow, "policy: "+dec.Reason)
	ev.Details["policy_version"] = fmt.Sprint(dec.Version)
	if err := j.audit(ctx, ev); err != nil {
		j.release(resv)
		return decided{}, err
	}
	return decided{reservation: resv, version: dec.Version}, nil
}

// deny audits a refusal, releases the reservation and returns the refusal.
// If even the audit entry fails, the refusal stands.
func (j *Judge) deny(ctx context.Context, sc *signCase, resv policy.Reservation, code coord.Code, reason string, cause error) error {
	j.release(resv)
	if err := j.audit(ctx, sc.event(auditfmt.SignDecided, auditfmt.Deny, reason)); err != nil {
		j.log.Error("audit entry for a refusal not written", "err", err)
	}
	if cause == nil {
		cause = errors.New(reason)
	}
	return &coord.Refusal{Code: code, Err: cause}
}

// approve asks the callback, if configured. Only APPROVE passes.
func (j *Judge) approve(ctx context.Context, sc *signCase) error {
	if j.cfg.Approver == nil {
		return nil
	}
	d, err := j.cfg.Approver.Ask(ctx, sc.approvalRequest())
	if err != nil {
		return err
	}
	if !d.Approved() {
		return fmt.Errorf("%s: %s", strings.ToLower(d.Verdict.String()), d.Reason)
	}
	return nil
}

// finish audits a sign's outcome and gives back the window reservation of
// a session that never ran (our share never left the enclave).
func (j *Judge) finish(sc *signCase, d decided, err error) {
	if err == nil {
		j.auditAfter(sc.event(auditfmt.Signed, "", ""))
		return
	}
	if neverRan(err) {
		j.release(d.reservation)
	}
	ev := sc.event(auditfmt.SignFailed, "", failureClass(err))
	j.auditAfter(ev)
}

// neverRan reports whether a sign ended before its engine sessions began.
func neverRan(err error) bool {
	var refused *coord.RefusedError
	return errors.As(err, &refused) || errors.Is(err, coord.ErrCancelled) || errors.Is(err, coord.ErrDeadline)
}

// failureClass names why a session failed, without peer-chosen text.
func failureClass(err error) string {
	var abort *mpc.AbortError
	var peer *mpc.PeerAbortError
	var refused *coord.RefusedError
	switch {
	case errors.As(err, &refused):
		return "refused by " + refused.Party + " (" + refused.Code.String() + ")"
	case errors.Is(err, coord.ErrCancelled):
		return "cancelled by the initiator"
	case errors.Is(err, coord.ErrDeadline), errors.Is(err, mpc.ErrDeadline):
		return "deadline"
	case errors.As(err, &abort):
		return fmt.Sprintf("aborted, culprits %v", abort.Culprits)
	case errors.As(err, &peer):
		return "aborted by " + string(peer.Reporter)
	}
	return "internal"
}

func (j *Judge) release(r policy.Reservation) {
	if !r.Held() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), auditAfterTimeout)
	defer cancel()
	if err := j.cfg.Policy.Release(ctx, r); err != nil {
		j.log.Warn("window reservation not released; it counts until it expires", "err", err)
	}
}

// audit writes an entry that must be durable before what it records
// happens: a failure refuses.
func (j *Judge) audit(ctx context.Context, ev auditfmt.Event) error {
	if _, err := j.cfg.Audit.Append(ctx, ev); err != nil {
		return &coord.Refusal{Code: coord.CodeInternal, Err: fmt.Errorf("judge: audit entry not written: %w", err)}
	}
	return nil
}

func (sc *signCase) event(t auditfmt.Type, d auditfmt.Decision, reason string) auditfmt.Event {
	return auditfmt.Event{
		Type: t, Actor: auditfmt.Clean(sc.actor, 128), KeyID: sc.key.Key.String(),
		RequestID: auditfmt.Clean(sc.req.RequestID, maxRequestID), Decision: d, Reason: auditfmt.Clean(reason, 256),
		Details: sc.details(),
	}
}

func (sc *signCase) details() map[string]string {
	ds := sc.parsed.Digests()
	first := ""
	if len(ds) > 0 {
		first = hex.EncodeToString(ds[0][:])
	}
	return map[string]string{
		"kind": sc.parsed.Kind.String(), "session": sc.p.Session.String(), "proposer": string(sc.from),
		"digests": fmt.Sprint(len(ds)), "digest": first, "note": auditfmt.Clean(sc.req.Note, maxNote),
	}
}

// policyRequest maps the parsed payload to the policy's view. Change back
// to the key's own address is not a transfer.
func (sc *signCase) policyRequest() policy.Request {
	s := sc.parsed.Summary
	req := policy.Request{
		KeyID: policy.KeyID(sc.key.Key), Kind: sc.parsed.Kind.String(),
		ContractCall: s.Call != nil, Blind: s.Blind,
	}
	if s.ChainID != 0 {
		req.ChainID = new(big.Int).SetUint64(s.ChainID)
	}
	for _, t := range s.Transfers {
		if !t.Self {
			req.Transfers = append(req.Transfers, policy.Transfer{Asset: t.Asset, To: t.To, Amount: t.Amount})
		}
	}
	return req
}

// approvalSummary is what the approval callback is told: this enclave's
// own parse of the payload.
type approvalSummary struct {
	Session string          `json:"session"`
	Digests []string        `json:"digests"`
	Path    []uint32        `json:"derivation_path,omitempty"`
	Note    string          `json:"note,omitempty"`
	Summary payload.Summary `json:"summary"`
}

func (sc *signCase) approvalRequest() approval.Request {
	ds := sc.parsed.Digests()
	hexes := make([]string, len(ds))
	for i, d := range ds {
		hexes[i] = hex.EncodeToString(d[:])
	}
	id := sc.req.RequestID
	if id == "" {
		id = sc.p.Session.String()
	}
	return approval.Request{
		ID: id, KeyID: sc.key.Key.String(), Caller: sc.actor, Kind: sc.parsed.Kind.String(),
		Payload: approvalSummary{Session: sc.p.Session.String(), Digests: hexes, Path: sc.req.Path,
			Note: sc.req.Note, Summary: sc.parsed.Summary},
	}
}
