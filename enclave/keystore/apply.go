package keystore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/failpoint"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

// Record is one committed change, numbered from 1 without gaps. Payload is
// the change's deterministic encoding (see record.go); it may hold a key
// share, so it is a secret and prints redacted.
type Record struct {
	Seq     uint64
	Payload secret.Bytes
}

// Replicator makes change records durable outside the enclave.
//
// The store calls Replicate once per mutation, holding its writer lock,
// with the mutation's SQL transaction still open, and with Seq one above the
// last committed record. Replicate returns nil only once rec is durable;
// the store then commits and acknowledges the mutation. On any error the
// store rolls back and the mutation fails with that error wrapped: it is not
// acknowledged, and the next mutation reuses the same Seq with another
// payload, so an implementation must not assume a Seq, once offered, is
// final. An error wrapping ErrFenced also stops the store from mutating
// again. Nobody retries inside the store: the caller of the mutation
// decides.
//
// Replicate must not keep rec.Payload after it returns: the store wipes it.
type Replicator interface {
	Replicate(ctx context.Context, rec Record) error
}

// SnapshotFunc writes a consistent, still encrypted copy of the database to
// w and returns the sequence number of the last change it holds.
type SnapshotFunc func(ctx context.Context, w io.Writer) (seq uint64, err error)

// Compactor is implemented by a Replicator that wants periodic snapshots
// (to bound the records a restore replays). After each committed mutation
// the store asks SnapshotDue; if true, it calls Compact with its writer
// lock still held, so the snapshot covers exactly the last committed record
// and no Replicate call runs meanwhile. The mutation is already durable and
// acknowledged whatever Compact returns: other errors are logged, and an
// error wrapping ErrFenced stops the store.
type Compactor interface {
	SnapshotDue() bool
	Compact(ctx context.Context, snapshot SnapshotFunc) error
}

// mutation is one kind of change: its decoded record body knows how to
// check itself and how to apply itself inside a transaction. Apply must be
// deterministic: every value it writes comes from the body (timestamps
// included), so a replay gives the same rows.
type mutation interface {
	op() opCode
	validate() error
	exec(ctx context.Context, tx *sql.Tx) error
}

// apply is the one path every mutation takes: writer lock, transaction,
// change, record, Replicate, commit.
func (s *Store) apply(ctx context.Context, m mutation) error {
	if err := m.validate(); err != nil {
		return err
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	if err := s.halted(); err != nil {
		return err
	}
	seq, err := s.commit(ctx, m, s.replicate)
	if err != nil {
		return err
	}
	s.maybeCompact(ctx, seq)
	if err := failpoint.Inject(failpoint.KeystoreAfterCommitBeforeAck); err != nil {
		return fmt.Errorf("keystore: change %d committed, not acknowledged: %w", seq, err)
	}
	return nil
}

// replicate hands rec to the Replicator, if any, and halts the store when
// the Replicator reports it was fenced.
func (s *Store) replicate(ctx context.Context, rec Record) error {
	if err := failpoint.Inject(failpoint.KeystoreBeforeReplicate); err != nil {
		return fmt.Errorf("keystore: replicating change %d: %w", rec.Seq, err)
	}
	if s.repl == nil {
		return nil
	}
	began := time.Now()
	err := s.repl.Replicate(ctx, rec)
	s.rstats.replicate(began, err)
	if err == nil {
		return s.replicated(rec.Seq)
	}
	if errors.Is(err, ErrFenced) {
		s.stop(err)
		s.log.Error("keystore fenced; refusing further mutations", "seq", rec.Seq, "error", err)
	}
	return fmt.Errorf("keystore: replicating change %d: %w", rec.Seq, err)
}

// replicated is the failpoint between a durable record and its commit. A
// failure there is handled as a failed local commit: the store is fenced.
func (s *Store) replicated(seq uint64) error {
	if err := failpoint.Inject(failpoint.KeystoreAfterReplicateBeforeCommit); err != nil {
		return s.commitFailed(seq, err)
	}
	return nil
}

// commit runs m in a transaction numbered one above the last change, hands
// its record to hook, and commits only if hook returned nil. The caller
// holds the writer lock.
//
// The transaction is not bound to ctx: once hook has made the record
// durable the commit must happen even if the caller gives up, or the local
// state would lag the replicated one. Statements still observe ctx.
func (s *Store) commit(ctx context.Context, m mutation, hook func(context.Context, Record) error) (uint64, error) {
	tx, err := s.db.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return 0, fmt.Errorf("keystore: beginning transaction: %w", err)
	}
	defer tx.Rollback()
	seq, err := bumpSeq(ctx, tx)
	if err != nil {
		return 0, err
	}
	if err := m.exec(ctx, tx); err != nil {
		return 0, err
	}
	payload, err := encodeChange(seq, m)
	if err != nil {
		return 0, err
	}
	defer payload.Wipe()
	if err := hook(ctx, Record{Seq: seq, Payload: payload}); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, s.commitFailed(seq, err)
	}
	return seq, nil
}

// commitFailed halts the store: the change may be durable in the replica
// but is not in the database, so the two histories have parted.
func (s *Store) commitFailed(seq uint64, err error) error {
	herr := fmt.Errorf("%w: local commit of change %d failed after replication", ErrFenced, seq)
	if s.repl == nil {
		herr = fmt.Errorf("keystore: committing change %d: %w", seq, err)
	}
	s.stop(herr)
	s.log.Error("keystore commit failed", "seq", seq, "error", err)
	return fmt.Errorf("%w: %w", herr, err)
}

// bumpSeq increments and returns the change sequence number.
func bumpSeq(ctx context.Context, tx *sql.Tx) (uint64, error) {
	// SQLite 3.33 (bundled with the driver) has no RETURNING.
	if _, err := tx.ExecContext(ctx, `UPDATE meta SET seq = seq + 1 WHERE id = 1`); err != nil {
		return 0, fmt.Errorf("keystore: numbering change: %w", err)
	}
	var seq int64
	if err := tx.QueryRowContext(ctx, `SELECT seq FROM meta WHERE id = 1`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("keystore: numbering change: %w", err)
	}
	return uint64(seq), nil
}

// maybeCompact runs the Replicator's compaction when it asks for one. The
// caller holds the writer lock.
func (s *Store) maybeCompact(ctx context.Context, seq uint64) {
	c, ok := s.repl.(Compactor)
	if !ok || !c.SnapshotDue() {
		return
	}
	err := c.Compact(ctx, s.snapshotLocked)
	s.rstats.compact(err)
	if err == nil {
		return
	}
	if errors.Is(err, ErrFenced) {
		s.stop(err)
	}
	s.log.Warn("keystore compaction failed", "seq", seq, "error", err)
}

// ApplyRecord applies a record produced by another store's mutation (a
// restore replaying segments). rec.Seq must be one above this store's last
// change; the record is not handed to the Replicator. Errors other than
// context and database failures wrap ErrBadRecord.
func (s *Store) ApplyRecord(ctx context.Context, rec Record) error {
	m, seq, err := decodeChange(rec.Payload.Reveal())
	if err != nil {
		return err
	}
	if w, ok := m.(interface{ wipe() }); ok {
		defer w.wipe()
	}
	if seq != rec.Seq {
		return fmt.Errorf("%w: record %d carries sequence number %d", ErrBadRecord, rec.Seq, seq)
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	if err := s.halted(); err != nil {
		return err
	}
	_, err = s.commit(ctx, m, func(_ context.Context, got Record) error {
		if got.Seq != rec.Seq {
			return fmt.Errorf("%w: record %d out of sequence: expected %d", ErrBadRecord, rec.Seq, got.Seq)
		}
		return nil
	})
	return badRecord(rec.Seq, err)
}

// badRecord marks a record's precondition failures (stale epoch, existing
// identity...) as ErrBadRecord: on replay they mean the record does not
// belong to this state.
func badRecord(seq uint64, err error) error {
	for _, e := range []error{ErrStaleEpoch, ErrStaleVersion, ErrExists, ErrAuditChain, ErrInvalid, ErrNotFound} {
		if errors.Is(err, e) {
			return fmt.Errorf("%w: record %d does not apply: %w", ErrBadRecord, seq, err)
		}
	}
	return err
}

// Replay applies records in order with ApplyRecord and stops at the first
// error.
func (s *Store) Replay(ctx context.Context, recs []Record) error {
	for _, rec := range recs {
		if err := s.ApplyRecord(ctx, rec); err != nil {
			return err
		}
	}
	return nil
}
