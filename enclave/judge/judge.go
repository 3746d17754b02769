// Package judge decides, on each cosigner, whether it takes part in a
// session another cosigner (or this one) proposes: it is the coord.Judge
// of the enclave. For a sign it is the whole pipeline that runs before
// this party's signature share may leave the enclave, in this order:
//
//  1. decode the request the proposal carries (the caller's payload bytes,
//     never a digest from anyone else) and load the key;
//  2. parse the payload with enclave/payload against the key's (derived)
//     public key, computing the digests here;
//  3. for a sign from a presignature, check that this party holds it and
//     promise it to this proposal, refusing with coord.CodePresignature
//     if it is promised to another (see presig.go: two initiators of a
//     signer set may name the same one);
//  4. write the sign_requested audit entry;
//  5. evaluate this cosigner's own policy (enclave/policy), reserving
//     window spends;
//  6. ask the approval callback, if one is configured;
//  7. write the sign_decided audit entry, allow or deny.
//
// Any failure refuses (fail closed). A refusal releases the window
// reservation and the presignature's promise; so does a session that
// never started. The audit entry for
// a decision is durable before the decision takes effect: an entry that
// cannot be written refuses. When the session ends, the outcome is
// audited as signed or sign_failed.
//
// Keygen and refresh proposals are accepted when the key checks pass and
// are audited when they end (key_created, key_refreshed).
package judge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/approval"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/coord"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/policy"
	auditfmt "github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
)

// Keys is the part of *mpc.Engine the judge reads.
type Keys interface {
	Key(ctx context.Context, id mpc.KeyID) (mpc.KeyInfo, error)
	DeriveKey(ctx context.Context, key mpc.KeyID, path []uint32) (mpc.DerivedKey, error)
	PoolEnabled(key mpc.KeyID, signers []mpc.PartyID) bool
	HasPresignature(key mpc.KeyID, epoch uint64, signers []mpc.PartyID, id mpc.PresignatureID) bool
}

// Policy is the part of *policy.Engine the judge uses.
type Policy interface {
	Authorize(ctx context.Context, req policy.Request) (policy.Decision, policy.Reservation, error)
	Release(ctx context.Context, r policy.Reservation) error
}

// Approver is the approval callback; *approval.Client satisfies it.
type Approver interface {
	Ask(ctx context.Context, r approval.Request) (approval.Decision, error)
}

// Auditor appends audit entries; *enclave/audit.Log satisfies it.
type Auditor interface {
	Append(ctx context.Context, ev auditfmt.Event) (auditfmt.Record, error)
}

// Config configures a Judge. Approver and Logger are optional.
type Config struct {
	Self     mpc.PartyID
	Keys     Keys
	Policy   Policy
	Approver Approver // nil: no approval callback
	Audit    Auditor
	// OnKeyCreated, if set, is called after a keygen this party took part
	// in stored its key (to enable presignature pools, say).
	OnKeyCreated func(mpc.KeyInfo)
	Logger       *slog.Logger
}

// Judge is the enclave's coord.Judge.
type Judge struct {
	cfg      Config
	log      *slog.Logger
	promises promises
}

var _ coord.Judge = (*Judge)(nil)

// ErrConfig is returned by New for an unusable configuration.
var ErrConfig = errors.New("judge: bad configuration")

// New checks cfg and returns a Judge.
func New(cfg Config) (*Judge, error) {
	if cfg.Self == "" || cfg.Keys == nil || cfg.Policy == nil || cfg.Audit == nil {
		return nil, fmt.Errorf("%w: Self, Keys, Policy and Audit are required", ErrConfig)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Judge{cfg: cfg, log: log.With("party", string(cfg.Self))}, nil
}

// Judge decides p for this party; see the package documentation.
func (j *Judge) Judge(ctx context.Context, from mpc.PartyID, p *coord.Proposal) (coord.Task, error) {
	switch p.Op {
	case coord.OpSign:
		return j.sign(ctx, from, p)
	case coord.OpKeygen, coord.OpFROSTKeygen:
		return j.keygen(ctx, from, p)
	case coord.OpRefresh:
		return j.refresh(ctx, from, p)
	case coord.OpPresign:
		return j.presign(ctx, p)
	}
	return coord.Task{}, &coord.Refusal{Code: coord.CodeInvalid, Err: errors.New("judge: unknown operation")}
}

// keygen accepts a keygen once its start is in the audit log (a key is
// never made without an entry saying who asked for it); its result is
// audited when it ends.
func (j *Judge) keygen(ctx context.Context, from mpc.PartyID, p *coord.Proposal) (coord.Task, error) {
	ev := auditfmt.Event{Type: auditfmt.AdminAction, Actor: "cosigner " + string(from), KeyID: mpc.KeyID(p.Session).String(),
		RequestID: p.Session.String(), Reason: "key generation accepted", Details: map[string]string{
			"op": p.Op.String(), "threshold": fmt.Sprint(p.Threshold), "parties": fmt.Sprint(p.Parties)}}
	if err := j.audit(ctx, ev); err != nil {
		return coord.Task{}, err
	}
	return coord.Task{Done: func(res coord.Result, err error) {
		if err != nil {
			return // nothing was created; the session's end is logged by coord
		}
		j.auditAfter(auditfmt.Event{Type: auditfmt.KeyCreated, KeyID: res.Key.Key.String(),
			RequestID: p.Session.String(), Details: keyDetails(res.Key)})
		if j.cfg.OnKeyCreated != nil {
			j.cfg.OnKeyCreated(res.Key)
		}
	}}, nil
}

// presign joins a pool refill only for a pool this party refills itself:
// the key's current epoch, its own signer set. A presignature signs
// nothing by itself, so it is not audited; the sign that uses it is.
func (j *Judge) presign(ctx context.Context, p *coord.Proposal) (coord.Task, error) {
	info, err := j.cfg.Keys.Key(ctx, p.Key)
	if err != nil {
		return coord.Task{}, j.keyRefusal(p, err)
	}
	if info.Epoch != p.Epoch {
		return coord.Task{}, j.epochRefusal(p, info.Epoch)
	}
	if info.Scheme != mpc.SchemeECDSA {
		return coord.Task{}, &coord.Refusal{Code: coord.CodeUnknownKey, Err: errors.New("judge: presign names another scheme")}
	}
	if !j.cfg.Keys.PoolEnabled(p.Key, p.Parties) {
		return coord.Task{}, &coord.Refusal{Code: coord.CodeBusy, Err: errors.New("judge: no pool for this signer set here")}
	}
	return coord.Task{}, nil
}

func (j *Judge) refresh(ctx context.Context, from mpc.PartyID, p *coord.Proposal) (coord.Task, error) {
	info, err := j.cfg.Keys.Key(ctx, p.Key)
	if err != nil {
		return coord.Task{}, j.keyRefusal(p, err)
	}
	if info.Epoch != p.Epoch {
		return coord.Task{}, j.epochRefusal(p, info.Epoch)
	}
	if !sameSet(info.Parties, p.Parties) {
		return coord.Task{}, &coord.Refusal{Code: coord.CodeUnknownKey, Err: errors.New("judge: refresh names another party set")}
	}
	ev := auditfmt.Event{Type: auditfmt.AdminAction, Actor: "cosigner " + string(from), KeyID: p.Key.String(),
		RequestID: p.Session.String(), Reason: "key refresh accepted", Details: map[string]string{"epoch": fmt.Sprint(p.Epoch)}}
	if err := j.audit(ctx, ev); err != nil {
		return coord.Task{}, err
	}
	return coord.Task{Done: func(res coord.Result, err error) {
		if err == nil {
			j.auditAfter(auditfmt.Event{Type: auditfmt.KeyRefreshed, KeyID: res.Key.Key.String(),
				RequestID: p.Session.String(), Details: keyDetails(res.Key)})
		}
	}}, nil
}

// auditAfter records what already happened. The action is done; a failure
// to record it is logged loudly, since nothing can undo it.
func (j *Judge) auditAfter(ev auditfmt.Event) {
	ctx, cancel := context.WithTimeout(context.Background(), auditAfterTimeout)
	defer cancel()
	if _, err := j.cfg.Audit.Append(ctx, ev); err != nil {
		j.log.Error("audit entry for a finished operation not written", "type", string(ev.Type), "err", err)
	}
}

// keyRefusal refuses a proposal about a key this party cannot load. A
// key it does not hold while a peer does is logged for the operator: this
// party's sealed state may be older than its peers' (restored from an
// older copy of its S3 state), or it never finished that keygen.
func (j *Judge) keyRefusal(p *coord.Proposal, err error) error {
	if !errors.Is(err, mpc.ErrKeyNotFound) {
		return err
	}
	j.log.Log(context.Background(), mismatchLevel(p), "a peer proposed a key this cosigner does not hold; refused. If this "+
		"cosigner's sealed state was restored from an older copy of its S3 state (a rollback), it lacks keys made since: "+
		"see docs/reliability.md, Rollback", "key", p.Key.String(), "op", p.Op.String(), "session", p.Session.String())
	return &coord.Refusal{Code: coord.CodeUnknownKey, Err: err}
}

// mismatchLevel is WARN for a sign or refresh a client asked for, INFO for
// a pool refill: right after a keygen or refresh the pool's proposer may
// ask before this party has stored the key or its new epoch, and backs off.
func mismatchLevel(p *coord.Proposal) slog.Level {
	if p.Op == coord.OpPresign {
		return slog.LevelInfo
	}
	return slog.LevelWarn
}

// epochRefusal refuses a proposal naming another epoch of a key than the
// one this party holds, and tells the operator which side is behind: a
// share of an older epoch is never used with the shares of a newer one.
func (j *Judge) epochRefusal(p *coord.Proposal, held uint64) error {
	attrs := []any{"key", p.Key.String(), "op", p.Op.String(), "session", p.Session.String(),
		"epoch_held", held, "epoch_proposed", p.Epoch}
	if held < p.Epoch {
		j.log.Log(context.Background(), mismatchLevel(p), "this cosigner holds an older epoch of the key than the proposer: "+
			"its sealed state is probably older than its peers' (restored from an older copy of its S3 state, a rollback); "+
			"it refuses to use its stale share. See docs/reliability.md, Rollback", attrs...)
	} else {
		j.log.Log(context.Background(), mismatchLevel(p), "the proposer names an older epoch of the key than this cosigner "+
			"holds: the proposer's sealed state is probably older (a rollback); refused. See docs/reliability.md, Rollback", attrs...)
	}
	return &coord.Refusal{Code: coord.CodeUnknownKey, Err: fmt.Errorf("judge: the proposal names epoch %d, this party holds %d", p.Epoch, held)}
}

func sameSet(a, b []mpc.PartyID) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

func keyDetails(k mpc.KeyInfo) map[string]string {
	return map[string]string{
		"scheme": k.Scheme.String(), "epoch": fmt.Sprint(k.Epoch),
		"threshold": fmt.Sprint(k.Threshold), "public_key": fmt.Sprintf("%x", k.PublicKey),
	}
}
