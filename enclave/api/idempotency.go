package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
)

// IdempotencyStore keeps the responses of mutating calls. *keystore.Store
// is one. GetIdempotency returns the unexpired record under key or an
// error wrapping keystore.ErrNotFound; PutIdempotency stores a record,
// durably once it returns nil, and fails (wrapping keystore.ErrExists)
// if an unexpired record holds the key.
type IdempotencyStore interface {
	PutIdempotency(ctx context.Context, rec keystore.IdempotencyRecord) error
	GetIdempotency(ctx context.Context, key string) (keystore.IdempotencyRecord, error)
}

var _ IdempotencyStore = (*keystore.Store)(nil)

// IdempotencyTTL is how long a finished call's response is kept under its
// idempotency key.
const IdempotencyTTL = 24 * time.Hour

// persistTimeout bounds writing one idempotency record.
const persistTimeout = 30 * time.Second

// Labels of the hashes this file derives, so that none can be taken for
// another.
const (
	scopeLabel   = "nitro-cosigner/api/idempotency-scope/v1"
	requestLabel = "nitro-cosigner/api/request/v1"
	opIDLabel    = "nitro-cosigner/api/sign-operation/v1"
)

// scope is one idempotency key of one caller for one RPC, and the request
// it came with.
type scope struct {
	// key is the record's key in the store: a hash of the caller ID, the
	// full method name and the idempotency key, so that it fits the
	// store's limit whatever their lengths.
	key string
	// hash is SHA-256 of the request with idempotency_key (and the fields
	// in ignore) cleared, deterministically marshaled.
	hash [sha256.Size]byte
}

// newScope derives the scope of a mutating request. ignore names request
// fields that do not change what the request asks (Sign's max_wait).
func newScope(caller Caller, method, idemKey string, req proto.Message, ignore ...protoreflect.Name) (scope, error) {
	m := proto.Clone(req).ProtoReflect()
	for _, name := range append([]protoreflect.Name{"idempotency_key"}, ignore...) {
		if fd := m.Descriptor().Fields().ByName(name); fd != nil {
			m.Clear(fd)
		}
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m.Interface())
	if err != nil {
		return scope{}, err
	}
	return scope{
		key:  "api/" + hex.EncodeToString(hashParts(scopeLabel, caller.ID, method, idemKey)),
		hash: [sha256.Size]byte(hashParts(requestLabel, string(b))),
	}, nil
}

// operationID derives a sign operation's ID, 32 hex digits, from the
// caller and the idempotency key.
func operationID(caller Caller, idemKey string) string {
	return hex.EncodeToString(hashParts(opIDLabel, caller.ID, idemKey)[:operationIDHexLen/2])
}

// signRecordKey is the store key of a Sign call's record: the operation ID
// (itself a hash of the caller and the idempotency key), so that
// GetSignOperation finds a finished operation in the store by its name
// when the in-memory table no longer holds it.
func signRecordKey(opID string) string { return "api/sign/" + opID }

// hashParts is SHA-256 of label and parts, each prefixed with its length.
func hashParts(label string, parts ...string) []byte {
	h := sha256.New()
	for _, p := range append([]string{label}, parts...) {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(p))))
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}

// idempotency remembers mutating calls: running ones in memory (flights),
// finished ones in the store.
type idempotency struct {
	store IdempotencyStore
	now   func() time.Time
	log   *slog.Logger

	// mu serializes begin: the check of flights, the read of the store and
	// the start of a flight are one step, so that two calls with one key
	// never both start.
	mu      sync.Mutex
	flights map[string]*flight
}

// begun is what begin found: a finished call's stored response, or a
// flight to follow, which is fresh when the caller must run it.
type begun struct {
	stored []byte
	flight *flight
	fresh  bool
}

// begin looks sc up: a flight with the same key and another request is
// ALREADY_EXISTS, and with the same request is returned to follow; then a
// stored record with another request is ALREADY_EXISTS, and with the same
// request is returned; else a new flight is registered, which the caller
// must run and finish.
func (r *idempotency) begin(ctx context.Context, sc scope) (begun, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f := r.flights[sc.key]; f != nil {
		if f.scope.hash != sc.hash {
			return begun{}, failure(codes.AlreadyExists, msgConflict)
		}
		return begun{flight: f}, nil
	}
	stored, found, err := r.lookup(ctx, sc)
	if err != nil || found {
		return begun{stored: stored}, err
	}
	f := newFlight(sc)
	r.flights[sc.key] = f
	return begun{flight: f, fresh: true}, nil
}

// lookup reads sc's record from the store: its response if the request is
// the same, ALREADY_EXISTS if not.
func (r *idempotency) lookup(ctx context.Context, sc scope) ([]byte, bool, error) {
	rec, found, err := r.read(ctx, sc.key)
	switch {
	case err != nil || !found:
		return nil, false, err
	case !hmac.Equal(rec.RequestHash, sc.hash[:]):
		return nil, false, failure(codes.AlreadyExists, msgConflict)
	}
	return rec.Response, true, nil
}

// read reads the record under key; an unreadable store is UNAVAILABLE.
func (r *idempotency) read(ctx context.Context, key string) (keystore.IdempotencyRecord, bool, error) {
	rec, err := r.store.GetIdempotency(ctx, key)
	switch {
	case errors.Is(err, keystore.ErrNotFound):
		return rec, false, nil
	case err != nil:
		return rec, false, &apiError{code: codes.Unavailable, msg: msgStoreDown, cause: err}
	}
	return rec, true, nil
}

// finish ends a fresh flight: a response is stored first (so that a call
// arriving after the flight is gone finds it), then handed to the flight's
// followers. An error is not stored: the same key may run again.
func (r *idempotency) finish(f *flight, final proto.Message, err error) {
	if err == nil {
		r.persist(f.scope, final)
	}
	f.complete(final, err)
	r.mu.Lock()
	delete(r.flights, f.scope.key)
	r.mu.Unlock()
}

// persist stores a finished call's response for IdempotencyTTL. A failure
// is logged: the callers still get the response, but a repeat after it
// runs the call again.
func (r *idempotency) persist(sc scope, final proto.Message) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(final)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), persistTimeout)
		defer cancel()
		err = r.store.PutIdempotency(ctx, keystore.IdempotencyRecord{
			Key: sc.key, RequestHash: sc.hash[:], Response: b, ExpiresAt: r.now().Add(IdempotencyTTL),
		})
	}
	if err != nil {
		r.log.Error("api: storing an idempotency record failed; a repeat of the call will run again",
			"record", sc.key, "err", err)
	}
}

// decodeStored unmarshals a stored response into m.
func decodeStored(b []byte, m proto.Message) error {
	if err := proto.Unmarshal(b, m); err != nil {
		return &apiError{code: codes.DataLoss, msg: "a stored response does not decode", cause: err}
	}
	return nil
}

// maxFlightEvents bounds the progress events a flight keeps; later ones
// are dropped (the final result is always kept).
const maxFlightEvents = 64

// flight is a mutating call in progress, which later calls with the same
// idempotency key and request follow.
type flight struct {
	scope scope
	done  chan struct{} // closed by complete

	mu      sync.Mutex
	events  []keyEvent
	changed chan struct{} // closed and replaced at each event
	final   proto.Message
	err     error
}

func newFlight(sc scope) *flight {
	return &flight{scope: sc, done: make(chan struct{}), changed: make(chan struct{})}
}

// progress records an event; it never blocks.
func (f *flight) progress(ev keyEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.events) >= maxFlightEvents || f.final != nil || f.err != nil {
		return
	}
	f.events = append(f.events, ev)
	close(f.changed)
	f.changed = make(chan struct{})
}

// since returns the events from index i on, a channel closed at the next
// event, and whether the flight is done (then no event follows).
func (f *flight) since(i int) ([]keyEvent, <-chan struct{}, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	done := f.final != nil || f.err != nil
	return f.events[min(i, len(f.events)):], f.changed, done
}

func (f *flight) complete(final proto.Message, err error) {
	f.mu.Lock()
	f.final, f.err = final, err
	if final == nil && err == nil {
		f.err = errors.New("api: flight completed without a result")
	}
	close(f.changed)
	f.mu.Unlock()
	close(f.done)
}

// result is the flight's outcome once done is closed.
func (f *flight) result() (proto.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.final, f.err
}
