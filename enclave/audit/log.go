package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	auditfmt "github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

// Store is the part of the keystore the log needs; *keystore.Store
// implements it. AppendAudit returns nil only once the entry is committed
// (and replicated, if the store replicates); it refuses, with an error, an
// entry that does not extend the chain. LastAudit returns an error wrapping
// keystore.ErrNotFound for an empty log. ReadAudit returns entries with
// Seq >= from in order, at most limit (1 to MaxPage).
type Store interface {
	AppendAudit(ctx context.Context, e keystore.AuditEntry) error
	LastAudit(ctx context.Context) (keystore.AuditEntry, error)
	ReadAudit(ctx context.Context, from uint64, limit int) ([]keystore.AuditEntry, error)
}

// MaxPage is the most entries Read returns at once.
const MaxPage = 1000

// exportPage is how many entries Export and Stream read at a time.
const exportPage = 256

// Config configures a Log.
type Config struct {
	CosignerID string
	Store      Store
	Signer     auditfmt.Signer // the enclave identity key (see IdentitySigner)
	// Attestation returns the current attestation document for export
	// headers; nil means exports carry none.
	Attestation func() []byte
	Clock       func() time.Time // nil means time.Now
}

// Log is the audit log. It is safe for concurrent use; appends are
// serialized.
type Log struct {
	id     string
	store  Store
	signer auditfmt.Signer
	pub    ed25519.PublicKey
	doc    func() []byte
	clock  func() time.Time

	sem chan struct{} // one appender at a time; waiting ends with ctx

	mu      sync.Mutex
	changed chan struct{} // closed and replaced after each append
}

// New checks cfg and returns a Log. If the store already holds entries,
// the last one must verify under cfg.Signer's key and name cfg.CosignerID:
// a log that changed hands would no longer verify as one chain, so New
// refuses it rather than extend it.
func New(ctx context.Context, cfg Config) (*Log, error) {
	switch {
	case !auditfmt.ValidCosignerID(cfg.CosignerID):
		return nil, errors.New("audit: invalid cosigner ID")
	case cfg.Store == nil || cfg.Signer == nil:
		return nil, errors.New("audit: store and signer are required")
	}
	l := &Log{
		id: cfg.CosignerID, store: cfg.Store, signer: cfg.Signer, pub: cfg.Signer.Public(),
		doc: cfg.Attestation, clock: cfg.Clock, sem: make(chan struct{}, 1), changed: make(chan struct{}),
	}
	if l.clock == nil {
		l.clock = time.Now
	}
	if l.doc == nil {
		l.doc = func() []byte { return nil }
	}
	last, err := cfg.Store.LastAudit(ctx)
	if errors.Is(err, keystore.ErrNotFound) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: reading the last entry: %w", err)
	}
	rec, err := l.open(last)
	if err == nil && rec.Entry.CosignerID != l.id {
		err = errors.New("it names another cosigner")
	}
	if err != nil {
		return nil, fmt.Errorf("audit: the log's last entry (%d) is not ours: %w", last.Seq, err)
	}
	return l, nil
}

// Append records ev as the next entry: it assigns the sequence number, the
// time and the previous hash, signs, and commits the entry to the store.
// It returns the entry only once it is committed; on any error the caller
// must not perform the action ev describes. An invalid ev gives an error
// wrapping pkg/audit.ErrInvalid.
func (l *Log) Append(ctx context.Context, ev auditfmt.Event) (auditfmt.Record, error) {
	if err := ev.Validate(); err != nil {
		return auditfmt.Record{}, err
	}
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return auditfmt.Record{}, fmt.Errorf("audit: waiting to append: %w", ctx.Err())
	}
	defer func() { <-l.sem }()
	rec, err := l.append(ctx, ev)
	if err != nil {
		return auditfmt.Record{}, err
	}
	l.notify()
	return rec, nil
}

func (l *Log) append(ctx context.Context, ev auditfmt.Event) (auditfmt.Record, error) {
	seq, prev, err := l.tip(ctx)
	if err != nil {
		return auditfmt.Record{}, err
	}
	e := auditfmt.Entry{Seq: seq, Time: l.clock(), CosignerID: l.id, Event: ev, PrevHash: prev}
	rec, err := auditfmt.Seal(e, l.signer)
	if err != nil {
		return auditfmt.Record{}, err
	}
	stored, err := encodeStored(rec)
	if err != nil {
		return auditfmt.Record{}, err
	}
	err = l.store.AppendAudit(ctx, keystore.AuditEntry{Seq: seq, PrevHash: prev[:], Entry: stored, Hash: rec.Hash[:]})
	if err != nil {
		return auditfmt.Record{}, fmt.Errorf("audit: appending entry %d: %w", seq, err)
	}
	return rec, nil
}

// tip returns the next sequence number and the hash it must link to.
func (l *Log) tip(ctx context.Context) (uint64, [auditfmt.HashSize]byte, error) {
	var prev [auditfmt.HashSize]byte
	last, err := l.store.LastAudit(ctx)
	if errors.Is(err, keystore.ErrNotFound) {
		return 1, prev, nil
	}
	if err != nil {
		return 0, prev, fmt.Errorf("audit: reading the last entry: %w", err)
	}
	if len(last.Hash) != auditfmt.HashSize {
		return 0, prev, fmt.Errorf("audit: stored entry %d has a malformed hash", last.Seq)
	}
	copy(prev[:], last.Hash)
	return last.Seq + 1, prev, nil
}

func (l *Log) notify() {
	l.mu.Lock()
	defer l.mu.Unlock()
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *Log) changedChan() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// Read returns up to limit (1 to MaxPage) entries with Seq >= from, in
// order, each checked against its stored hash and signature: a stored
// entry that does not verify is an error, never returned.
func (l *Log) Read(ctx context.Context, from uint64, limit int) ([]auditfmt.Record, error) {
	if limit < 1 || limit > MaxPage {
		return nil, fmt.Errorf("audit: limit must be 1 to %d", MaxPage)
	}
	stored, err := l.store.ReadAudit(ctx, from, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: reading entries: %w", err)
	}
	recs := make([]auditfmt.Record, 0, len(stored))
	for _, s := range stored {
		rec, err := l.open(s)
		if err != nil {
			return nil, fmt.Errorf("audit: stored entry %d: %w", s.Seq, err)
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// Stream calls fn with every entry from Seq from on, in order, then waits
// for new entries and calls fn with each, until ctx ends (it returns
// ctx.Err()) or fn or a read fails (it returns that error).
func (l *Log) Stream(ctx context.Context, from uint64, fn func(auditfmt.Record) error) error {
	for {
		changed := l.changedChan() // before reading, so no append is missed
		recs, err := l.Read(ctx, from, exportPage)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
			from = r.Entry.Seq + 1
		}
		if len(recs) == exportPage {
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ErrRange means an export was asked to start after the entry following
// the last one.
var ErrRange = errors.New("audit: export start is past the end of the log")

// ErrCorrupt means a stored entry does not verify: the keystore holds
// something this enclave did not write.
var ErrCorrupt = errors.New("audit: a stored entry does not verify")

// Export writes the entries from Seq from (0 means 1) to the last one
// committed when it starts, as a pkg/audit export signed at the end, and
// returns the last exported sequence number (from-1 for an empty export).
// It holds one page of entries in memory at a time. If w fails, the export
// is incomplete: it lacks its end record and does not verify.
func (l *Log) Export(ctx context.Context, w io.Writer, from uint64) (uint64, error) {
	from = max(from, 1)
	lastSeq, prev, err := l.exportRange(ctx, from)
	if err != nil {
		return 0, err
	}
	h := auditfmt.Header{CosignerID: l.id, IdentityKey: l.pub, FirstSeq: from, PrevHash: prev, Attestation: l.doc()}
	xw, err := auditfmt.NewWriter(w, h, l.signer)
	if err != nil {
		return 0, err
	}
	for next := from; next <= lastSeq; {
		recs, err := l.Read(ctx, next, int(min(exportPage, lastSeq-next+1)))
		if err != nil {
			return 0, err
		}
		if len(recs) == 0 {
			return 0, fmt.Errorf("audit: entry %d missing from the store", next)
		}
		for _, r := range recs {
			if err := xw.Write(r); err != nil {
				return 0, err
			}
			next = r.Entry.Seq + 1
		}
	}
	if err := xw.Close(l.clock()); err != nil {
		return 0, err
	}
	return lastSeq, nil
}

// exportRange returns the last sequence number to export and the hash of
// entry from-1 (zeros when from is 1).
func (l *Log) exportRange(ctx context.Context, from uint64) (uint64, [auditfmt.HashSize]byte, error) {
	var prev [auditfmt.HashSize]byte
	next, _, err := l.tip(ctx)
	if err != nil {
		return 0, prev, err
	}
	if from > next {
		return 0, prev, fmt.Errorf("%w: entry %d asked, log ends at %d", ErrRange, from, next-1)
	}
	if from > 1 {
		recs, err := l.Read(ctx, from-1, 1)
		if err != nil {
			return 0, prev, err
		}
		if len(recs) != 1 || recs[0].Entry.Seq != from-1 {
			return 0, prev, fmt.Errorf("audit: entry %d missing from the store", from-1)
		}
		prev = recs[0].Hash
	}
	return next - 1, prev, nil
}

// stored is how an entry is kept in the keystore's entry column: the
// encoded entry and its signature, as a CBOR array. The keystore keeps
// Seq, PrevHash and Hash beside it to check the chain on append.
type stored struct {
	_     struct{} `cbor:",toarray"`
	Entry []byte
	Sig   []byte
}

var storedDec = mustStoredDec()

func mustStoredDec() cbor.DecMode {
	dm, err := cbor.DecOptions{
		MaxArrayElements: 16,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
	}.DecMode()
	if err != nil {
		panic(err) // static options
	}
	return dm
}

func encodeStored(r auditfmt.Record) ([]byte, error) {
	b, err := cbor.Marshal(stored{Entry: r.Raw, Sig: r.Sig})
	if err != nil {
		return nil, fmt.Errorf("audit: encoding entry %d: %w", r.Entry.Seq, err)
	}
	return b, nil
}

// open decodes a stored entry and checks it: its signature under our key,
// and that the keystore's Seq, PrevHash and Hash are the entry's.
func (l *Log) open(s keystore.AuditEntry) (auditfmt.Record, error) {
	var st stored
	if err := storedDec.Unmarshal(s.Entry, &st); err != nil {
		return auditfmt.Record{}, fmt.Errorf("%w: entry %d is malformed", ErrCorrupt, s.Seq)
	}
	rec, err := auditfmt.Open(l.pub, st.Entry, st.Sig)
	if err != nil {
		return auditfmt.Record{}, fmt.Errorf("%w: entry %d: %w", ErrCorrupt, s.Seq, err)
	}
	e := rec.Entry
	if e.Seq != s.Seq || subtle.ConstantTimeCompare(e.PrevHash[:], s.PrevHash) != 1 ||
		subtle.ConstantTimeCompare(rec.Hash[:], s.Hash) != 1 {
		return auditfmt.Record{}, fmt.Errorf("%w: entry %d does not match its chain columns", ErrCorrupt, s.Seq)
	}
	return rec, nil
}

// IdentitySigner returns a Signer for the enclave identity key. It holds
// its own copy of the private key (pkg/wire exposes no signing method for
// its key), redacted like the key itself.
func IdentitySigner(k *wire.IdentityKey) auditfmt.Signer {
	seed := k.Seed()
	defer seed.Wipe()
	return auditfmt.NewEd25519Signer(ed25519.NewKeyFromSeed(seed.Reveal()))
}
