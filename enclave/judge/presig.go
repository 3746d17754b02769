package judge

import (
	"errors"
	"maps"
	"sync"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/coord"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// Presignature promises.
//
// Every signer of a set holds a copy of the set's presignature pool, and
// every initiator of the set claims from its own copy: two initiators can
// name the same presignature in two sign proposals at once. The engine
// never uses a presignature twice (mpc's consume-once rule), so one of the
// two signs would run with a party that no longer has it and fail. The
// judge prevents that before "accept": on each party it promises a
// presignature to at most one live proposal, and refuses any other
// naming it with coord.CodePresignature, on which the initiator proposes
// again with another presignature or a full sign (enclave/node).
//
// Refusing the later proposal everywhere is not enough: two initiators
// that claimed the same presignature each promise it to their own
// proposal first, and would then refuse each other. So the proposal of
// the lower party ID wins, on every party alike:
//
//   - an initiator promises a presignature to its own proposal only if it
//     is promised to nothing;
//   - another party's proposal takes the promise if there is none, or if
//     the proposal holding it comes from a higher party ID.
//
// The promise taken over never gets "go": the lower initiator L promised
// the presignature to its own proposal before sending it, so L refuses
// every proposal from a higher ID naming it (or L's own proposal never
// went out, and the lower one does not exist). Of any proposals naming one
// presignature, the one of the lowest initiator is accepted everywhere.
// None of this is needed for safety, which the engine keeps by itself; it
// keeps signs from failing.
type promises struct {
	mu sync.Mutex
	by map[mpc.PresignatureID]promise
}

// promise says which proposal a presignature is promised to, until the
// proposal's session ends (its Task.Done) or its deadline passes.
type promise struct {
	session   mpc.SessionID
	initiator mpc.PartyID
	deadline  time.Time
}

// Reasons a sign naming a presignature is refused (they stay local).
var (
	errPresigNotHeld  = errors.New("judge: this party does not hold the presignature the proposal names")
	errPresigPromised = errors.New("judge: the presignature the proposal names is promised to another sign")
)

// promisePresignature checks that this party holds the presignature p
// names and promises it to p; release gives the promise back when p's
// session ends. A proposal without a presignature needs nothing.
func (j *Judge) promisePresignature(from mpc.PartyID, p *coord.Proposal) (release func(), err error) {
	if p.Presignature.IsZero() {
		return func() {}, nil
	}
	if !j.cfg.Keys.HasPresignature(p.Key, p.Epoch, p.Parties, p.Presignature) {
		return nil, &coord.Refusal{Code: coord.CodePresignature, Err: errPresigNotHeld}
	}
	mine := promise{session: p.Session, initiator: from, deadline: p.Deadline}
	if !j.promises.take(j.cfg.Self, p.Presignature, mine, time.Now()) {
		return nil, &coord.Refusal{Code: coord.CodePresignature, Err: errPresigPromised}
	}
	return func() { j.promises.release(p.Presignature, p.Session) }, nil
}

// take promises id to mine, as seen by self, if the rules above allow.
func (ps *promises) take(self mpc.PartyID, id mpc.PresignatureID, mine promise, now time.Time) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	maps.DeleteFunc(ps.by, func(_ mpc.PresignatureID, h promise) bool { return !h.deadline.After(now) })
	if held, ok := ps.by[id]; ok && (mine.initiator == self || mine.initiator >= held.initiator) {
		return false
	}
	if ps.by == nil {
		ps.by = map[mpc.PresignatureID]promise{}
	}
	ps.by[id] = mine
	return true
}

// release drops id's promise if it is still session's.
func (ps *promises) release(id mpc.PresignatureID, session mpc.SessionID) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.by[id].session == session {
		delete(ps.by, id)
	}
}
