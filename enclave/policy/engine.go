package policy

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
)

// Store is what the Engine needs of the keystore; *keystore.Store
// implements it.
type Store interface {
	LatestPolicy(ctx context.Context) (keystore.Policy, error)
	PutPolicy(ctx context.Context, version uint64, doc []byte) error
	ReserveSpends(ctx context.Context, r keystore.SpendReservation, check func(keystore.WindowView) error) error
	ReleaseSpends(ctx context.Context, id keystore.ReservationID) error
}

// Options configure an Engine. The zero value uses time.Now.
type Options struct {
	// Now is the clock that stamps requests (Request.At) and spends.
	Now func() time.Time
}

// Engine evaluates requests under the stored policy and keeps the window
// state in the keystore. It is safe for concurrent use.
type Engine struct {
	store  Store
	admins AdminSet
	now    func() time.Time

	mu  sync.Mutex
	doc *Document // the newest document parsed, a cache
}

// maxStaleRetries bounds how often Authorize re-reads a policy replaced
// while it was deciding.
const maxStaleRetries = 3

var (
	errRefused      = errors.New("policy: refused")
	errPolicyMoved  = errors.New("policy: policy replaced during evaluation")
	errStoredPolicy = errors.New("policy: stored policy is unusable")
)

// NewEngine returns an Engine over store whose policy admins may replace.
// The admin set must be valid (ErrAdminSet): without one no policy can
// ever be set, and every request would be refused.
func NewEngine(store Store, admins AdminSet, opts Options) (*Engine, error) {
	if err := admins.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{store: store, admins: admins, now: opts.Now}
	if e.now == nil {
		e.now = time.Now
	}
	return e, nil
}

// Reservation is the spends an allowing Authorize recorded. The zero
// Reservation holds none.
type Reservation struct {
	id   keystore.ReservationID
	held bool
}

// Held reports whether r holds recorded spends.
func (r Reservation) Held() bool { return r.held }

// String names the reservation (for logs and the audit log).
func (r Reservation) String() string {
	if !r.held {
		return "none"
	}
	return r.id.String()
}

// Authorize decides req under the latest stored policy, at the Engine's
// clock (req.At is overwritten). If the request moves value and is
// allowed, its per-asset totals are recorded as spends of the key, in the
// same keystore transaction that read the key's earlier spends and
// checked that the policy evaluated is still the latest: concurrent
// requests cannot both fit under a limit only one fits under, and no
// request is decided under a replaced policy. Authorize returns only once
// the spends are durable (see keystore.Store.ReserveSpends).
//
// Fail-closed: when err is not nil the Decision is the zero Decision (it
// refuses) and nothing is reserved. Without a stored policy the decision
// is no_policy. A refusal reserves nothing. Allowed requests that move no
// value (messages, zero-value calls) reserve nothing either.
func (e *Engine) Authorize(ctx context.Context, req Request) (Decision, Reservation, error) {
	req.At = e.now()
	doc, err := e.current(ctx)
	if errors.Is(err, ErrNoPolicy) {
		return Evaluate(nil, req, WindowState{}), Reservation{}, nil
	}
	if err != nil {
		return Decision{}, Reservation{}, err
	}
	spends := requestSpends(req)
	if len(spends) == 0 {
		// No asset total is positive, so no window limit applies.
		return Evaluate(doc, req, WindowState{}), Reservation{}, nil
	}
	return e.reserve(ctx, doc, req, spends)
}

// reserve evaluates req inside the keystore transaction that records its
// spends, re-reading the policy if it was replaced meanwhile.
func (e *Engine) reserve(ctx context.Context, doc *Document, req Request, spends []keystore.SpendAmount) (Decision, Reservation, error) {
	r := keystore.SpendReservation{KeyID: keystore.KeyID(req.KeyID), At: req.At, PruneBefore: pruneBefore(req.At), Spends: spends}
	rand.Read(r.ID[:])
	for attempt := 1; ; attempt++ {
		r.Since = req.At.Add(-doc.longestWindow(req.KeyID))
		var d Decision
		err := e.store.ReserveSpends(ctx, r, func(v keystore.WindowView) error {
			if v.PolicyVersion != doc.version {
				return errPolicyMoved
			}
			d = Evaluate(doc, req, windowState(v.Spends))
			if !d.Allow {
				return errRefused
			}
			return nil
		})
		switch {
		case err == nil:
			return d, Reservation{id: r.ID, held: true}, nil
		case errors.Is(err, errRefused):
			return d, Reservation{}, nil
		case !errors.Is(err, errPolicyMoved) || attempt == maxStaleRetries:
			return Decision{}, Reservation{}, fmt.Errorf("policy: reserving spends: %w", err)
		}
		if doc, err = e.current(ctx); errors.Is(err, ErrNoPolicy) {
			return Evaluate(nil, req, WindowState{}), Reservation{}, nil
		} else if err != nil {
			return Decision{}, Reservation{}, err
		}
	}
}

// pruneBefore is the oldest spend time any window may still count.
func pruneBefore(at time.Time) time.Time {
	p := at.Add(-MaxWindow)
	if p.Before(time.Unix(0, 0)) {
		return time.Time{}
	}
	return p
}

// requestSpends returns the request's positive per-asset totals, in asset
// order, or nil for a malformed request (which Evaluate refuses).
func requestSpends(req Request) []keystore.SpendAmount {
	ts, err := resolveTransfers(req)
	if err != nil {
		return nil
	}
	totals := assetTotals(ts)
	var out []keystore.SpendAmount
	for _, asset := range sortedKeys(totals) {
		if totals[asset].Sign() > 0 {
			out = append(out, keystore.SpendAmount{Asset: asset, Amount: totals[asset]})
		}
	}
	return out
}

func windowState(spends []keystore.Spend) WindowState {
	w := WindowState{Spends: make([]Spend, len(spends))}
	for i, s := range spends {
		w.Spends[i] = Spend{Asset: s.Asset, Amount: s.Amount, At: s.At}
	}
	return w
}

// Release takes back the spends of r, so that they no longer count
// against the key's windows. Call it only when the signature certainly was
// not produced: no signature share of this signer for the request left
// the enclave. When in doubt, keep the reservation — it then counts
// until it ages out of the windows, which is the safe direction. Releasing
// the zero Reservation, or one already released or pruned, does nothing.
func (e *Engine) Release(ctx context.Context, r Reservation) error {
	if !r.held {
		return nil
	}
	err := e.store.ReleaseSpends(ctx, r.id)
	if err != nil && !errors.Is(err, keystore.ErrNotFound) {
		return fmt.Errorf("policy: releasing reservation %s: %w", r.id, err)
	}
	return nil
}

// SetAdmins replaces the admin set that approves new documents (the
// workspace's admins changed). An invalid set is refused and the current
// one kept.
func (e *Engine) SetAdmins(admins AdminSet) error {
	if err := admins.Validate(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.admins = admins
	return nil
}

// Policy returns the latest stored policy document, or ErrNoPolicy.
func (e *Engine) Policy(ctx context.Context) (*Document, error) {
	return e.current(ctx)
}

// SetPolicy replaces the policy with the document raw, if approvals carry
// the admin quorum's signatures over it (VerifyApprovals) and its version
// is greater than the stored one's (ErrStaleVersion). It fails with
// ErrMalformed, ErrQuorum or ErrStaleVersion, or a keystore error, and
// returns the new document once it is durable.
func (e *Engine) SetPolicy(ctx context.Context, raw []byte, approvals []Approval) (*Document, error) {
	doc, err := e.CheckApprovals(raw, approvals)
	if err != nil {
		return nil, err
	}
	return e.put(ctx, doc)
}

// put stores doc as the newest policy (ErrStaleVersion unless its version
// is above the stored one's).
func (e *Engine) put(ctx context.Context, doc *Document) (*Document, error) {
	err := e.store.PutPolicy(ctx, doc.version, doc.raw)
	if errors.Is(err, keystore.ErrStaleVersion) {
		return nil, fmt.Errorf("%w: offered version %d", ErrStaleVersion, doc.version)
	}
	if err != nil {
		return nil, fmt.Errorf("policy: storing version %d: %w", doc.version, err)
	}
	e.remember(doc)
	return doc, nil
}

// Install stores the document raw as the policy without checking
// approvals: for a document the workspace's admin quorum approved as part
// of a workspace version (enclave/workspace). A document whose version is
// not above the stored one fails with ErrStaleVersion, unless it is the
// stored document itself (then it is a no-op).
func (e *Engine) Install(ctx context.Context, raw []byte) (*Document, error) {
	doc, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	if cur, err := e.current(ctx); err == nil && cur.version == doc.version && bytes.Equal(cur.raw, doc.raw) {
		return cur, nil
	}
	return e.put(ctx, doc)
}

// CheckApprovals parses raw and checks that approvals carry the admin
// quorum's signatures over it, without storing anything: a caller that
// must audit a change before it happens checks first, audits, then calls
// SetPolicy. It fails with ErrMalformed or ErrQuorum.
func (e *Engine) CheckApprovals(raw []byte, approvals []Approval) (*Document, error) {
	doc, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	admins := e.admins
	e.mu.Unlock()
	if err := VerifyApprovals(doc.raw, approvals, admins); err != nil {
		return nil, err
	}
	return doc, nil
}

// current returns the latest stored document, parsed once per version.
// A stored document that no longer parses is an error, never an empty
// policy.
func (e *Engine) current(ctx context.Context) (*Document, error) {
	p, err := e.store.LatestPolicy(ctx)
	if errors.Is(err, keystore.ErrNotFound) {
		return nil, ErrNoPolicy
	}
	if err != nil {
		return nil, fmt.Errorf("policy: reading the stored policy: %w", err)
	}
	e.mu.Lock()
	cached := e.doc
	e.mu.Unlock()
	if cached != nil && cached.version == p.Version {
		return cached, nil
	}
	doc, err := Parse(p.Document)
	if err != nil {
		return nil, fmt.Errorf("%w: version %d: %w", errStoredPolicy, p.Version, err)
	}
	if doc.version != p.Version {
		return nil, fmt.Errorf("%w: version %d holds a document of version %d", errStoredPolicy, p.Version, doc.version)
	}
	e.remember(doc)
	return doc, nil
}

// remember caches doc unless a newer one is cached.
func (e *Engine) remember(doc *Document) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.doc == nil || e.doc.version < doc.version {
		e.doc = doc
	}
}
