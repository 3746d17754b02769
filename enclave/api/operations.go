package api

import (
	"container/list"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/payload"
	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// signOp is one sign operation: running until done is closed, then final.
type signOp struct {
	id      string
	scope   scope // the Sign call that started it
	key     mpc.KeyID
	path    []uint32
	kind    payload.Kind
	created time.Time
	done    chan struct{}

	mu sync.Mutex
	// exposed is set once a client has seen the operation: from then on a
	// Node error makes it FAILED instead of failing the Sign call.
	exposed bool
	final   *pb.SignOperation // set when done, unless err is
	err     error             // a Node error before the operation was exposed

	// Guarded by operations.mu.
	finishedAt time.Time
	elem       *list.Element
}

func newSignOp(id string, sc scope, p SignParams, now time.Time) *signOp {
	return &signOp{
		id: id, scope: sc, key: p.Key, path: slices.Clone(p.Path), kind: p.Payload.Kind,
		created: now, done: make(chan struct{}),
	}
}

// view is the operation as a client sees it, and marks it exposed; or the
// Node error that ended it before anyone saw it.
func (op *signOp) view() (*pb.SignOperation, error) {
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.err != nil {
		return nil, op.err
	}
	op.exposed = true
	if op.final != nil {
		return op.final, nil
	}
	v := op.base()
	v.State = pb.SignOperationState_SIGN_OPERATION_STATE_PENDING
	return v, nil
}

// base is the part of the view known from the request.
func (op *signOp) base() *pb.SignOperation {
	return &pb.SignOperation{
		Name:           operationName(op.id),
		Key:            keyName(op.key),
		DerivationPath: slices.Clone(op.path),
		PayloadKind:    payloadKinds[op.kind],
		CreateTime:     timestamp(op.created),
	}
}

// finish records the Node's answer and returns the final view, or nil if
// the error ended an operation no client had seen (the Sign call fails
// with it and no operation remains). An error after the operation was
// seen makes it FAILED with the closest reason; so does an outcome that
// does not make sense (an unknown state, a result missing or of the wrong
// kind), which bad reports.
func (op *signOp) finish(out SignOutcome, err error, now time.Time) (final *pb.SignOperation, bad bool) {
	op.mu.Lock()
	defer op.mu.Unlock()
	defer close(op.done)
	if err != nil && !op.exposed {
		op.err = err
		return nil, false
	}
	if err != nil {
		out = SignOutcome{State: StateFailed, Reason: failureReason(err)}
	}
	v := op.base()
	state, known := signStates[out.State]
	bad = !known || out.State == StateSucceeded && !setResult(v, op.kind, &out)
	if bad {
		v.Result = nil
		out = SignOutcome{State: StateFailed, Reason: ReasonInternal, Signers: out.Signers, Digests: out.Digests}
		state = pb.SignOperationState_SIGN_OPERATION_STATE_FAILED
	}
	v.State = state
	v.FailureReason = failureReasons[out.Reason]
	v.RefusedBy = string(out.RefusedBy)
	v.Culprits = partyStrings(out.Culprits)
	v.Signers = partyStrings(out.Signers)
	for _, d := range out.Digests {
		v.Digests = append(v.Digests, slices.Clone(d[:]))
	}
	completed := out.Completed
	if completed.IsZero() {
		completed = now
	}
	v.CompleteTime = timestamp(completed)
	op.final = v
	return v, bad
}

// failureReason is the reason of an operation that a Node error ended
// after a client saw it.
func failureReason(err error) FailureReason {
	switch {
	case errors.Is(err, ErrNotFound):
		return ReasonUnknownKey
	case errors.Is(err, ErrDeadline), errors.Is(err, context.DeadlineExceeded):
		return ReasonDeadlineExceeded
	case errors.Is(err, ErrAborted):
		return ReasonSessionAborted
	case errors.Is(err, ErrUnavailable):
		return ReasonBusy
	}
	return ReasonInternal
}

// operations is the in-memory table of sign operations, by operation ID.
// It holds at most max operations. Finished ones are kept for keep after
// they finish; when the table is full, the one that finished first is
// evicted to make room, and when every operation in it is running, a new
// one is refused (RESOURCE_EXHAUSTED). A restart forgets the table; a
// finished operation's final state survives in its idempotency record.
type operations struct {
	max  int
	keep time.Duration
	now  func() time.Time

	mu       sync.Mutex
	byID     map[string]*signOp
	finished *list.List // of *signOp, in the order they finished
}

func newOperations(max int, keep time.Duration, now func() time.Time) *operations {
	return &operations{max: max, keep: keep, now: now, byID: map[string]*signOp{}, finished: list.New()}
}

// add registers op, unless an operation with its ID is there: then it
// returns that one and does not add op.
func (t *operations) add(op *signOp) (*signOp, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.prune()
	if old := t.byID[op.id]; old != nil {
		return old, nil
	}
	if len(t.byID) >= t.max {
		front := t.finished.Front()
		if front == nil {
			return nil, failure(codes.ResourceExhausted, msgBusy)
		}
		t.drop(front.Value.(*signOp))
	}
	t.byID[op.id] = op
	return nil, nil
}

// get returns the operation with the ID, or nil.
func (t *operations) get(id string) *signOp {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.prune()
	return t.byID[id]
}

// finish starts op's retention.
func (t *operations) finish(op *signOp) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byID[op.id] == op && op.elem == nil {
		op.finishedAt = t.now()
		op.elem = t.finished.PushBack(op)
	}
}

// remove takes op out of the table.
func (t *operations) remove(op *signOp) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byID[op.id] == op {
		t.drop(op)
	}
}

// prune drops the finished operations older than keep.
func (t *operations) prune() {
	now := t.now()
	for e := t.finished.Front(); e != nil; e = t.finished.Front() {
		op := e.Value.(*signOp)
		if now.Sub(op.finishedAt) < t.keep {
			return
		}
		t.drop(op)
	}
}

func (t *operations) drop(op *signOp) {
	delete(t.byID, op.id)
	if op.elem != nil {
		t.finished.Remove(op.elem)
		op.elem = nil
	}
}

// len is the number of operations held.
func (t *operations) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}
