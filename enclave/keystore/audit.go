package keystore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
)

// AuditEntry is one link of the hash-chained audit log. The audit package
// computes PrevHash and Hash; the store checks only the linkage (Seq is the
// next one, PrevHash is the last entry's Hash) and keeps entries in order.
type AuditEntry struct {
	Seq      uint64
	PrevHash []byte
	Entry    []byte
	Hash     []byte
}

// maxHashLen bounds PrevHash and Hash.
const maxHashLen = 64

type appendAuditChange struct {
	_        struct{} `cbor:",toarray"`
	Seq      uint64
	PrevHash []byte
	Entry    []byte
	Hash     []byte
}

// AppendAudit appends e. Its Seq must be one above the last entry's (1 for
// the first) and, after the first, its PrevHash must equal the last entry's
// Hash; otherwise it fails with ErrAuditChain. Entries are never updated or
// deleted (the schema refuses it).
func (s *Store) AppendAudit(ctx context.Context, e AuditEntry) error {
	m := &appendAuditChange{Seq: e.Seq, PrevHash: e.PrevHash, Entry: e.Entry, Hash: e.Hash}
	if err := s.apply(ctx, m); err != nil {
		return fmt.Errorf("keystore: appending audit entry %d: %w", e.Seq, err)
	}
	return nil
}

func (*appendAuditChange) op() opCode { return opAppendAudit }

func (m *appendAuditChange) validate() error {
	switch {
	case m.Seq == 0 || m.Seq > math.MaxInt64:
		return fmt.Errorf("%w: audit sequence out of range", ErrInvalid)
	case len(m.Hash) == 0 || len(m.Hash) > maxHashLen || len(m.PrevHash) > maxHashLen:
		return fmt.Errorf("%w: audit hashes must be 1 to %d bytes", ErrInvalid, maxHashLen)
	case len(m.Entry) > maxBlobLen:
		return fmt.Errorf("%w: audit entry longer than %d bytes", ErrInvalid, maxBlobLen)
	}
	return nil
}

func (m *appendAuditChange) exec(ctx context.Context, tx *sql.Tx) error {
	last, err := lastAudit(ctx, tx)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if m.Seq != last.Seq+1 || (last.Seq > 0 && !bytes.Equal(m.PrevHash, last.Hash)) {
		return fmt.Errorf("%w: entry %d after entry %d", ErrAuditChain, m.Seq, last.Seq)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit (seq, prev_hash, entry, hash) VALUES (?, ?, ?, ?)`,
		int64(m.Seq), nonNil(m.PrevHash), nonNil(m.Entry), m.Hash)
	if err != nil {
		return fmt.Errorf("keystore: writing audit entry: %w", err)
	}
	return nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func lastAudit(ctx context.Context, q querier) (AuditEntry, error) {
	var (
		e   AuditEntry
		seq int64
	)
	err := q.QueryRowContext(ctx, `SELECT seq, prev_hash, entry, hash FROM audit ORDER BY seq DESC LIMIT 1`).
		Scan(&seq, &e.PrevHash, &e.Entry, &e.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return AuditEntry{}, fmt.Errorf("%w: empty audit log", ErrNotFound)
	}
	if err != nil {
		return AuditEntry{}, fmt.Errorf("keystore: reading audit log: %w", err)
	}
	e.Seq = uint64(seq)
	return e, nil
}

// LastAudit returns the newest audit entry, or ErrNotFound when the log is
// empty.
func (s *Store) LastAudit(ctx context.Context) (AuditEntry, error) {
	if err := s.readable(); err != nil {
		return AuditEntry{}, err
	}
	return lastAudit(ctx, s.db)
}

// ReadAudit returns up to limit entries (1 to 1000) with Seq >= from, in
// order.
func (s *Store) ReadAudit(ctx context.Context, from uint64, limit int) ([]AuditEntry, error) {
	if err := s.readable(); err != nil {
		return nil, err
	}
	if limit < 1 || limit > maxListPage || from > math.MaxInt64 {
		return nil, fmt.Errorf("%w: audit range", ErrInvalid)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT seq, prev_hash, entry, hash FROM audit
		WHERE seq >= ? ORDER BY seq LIMIT ?`, int64(from), limit)
	if err != nil {
		return nil, fmt.Errorf("keystore: reading audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var (
			e   AuditEntry
			seq int64
		)
		if err := rows.Scan(&seq, &e.PrevHash, &e.Entry, &e.Hash); err != nil {
			return nil, fmt.Errorf("keystore: reading audit log: %w", err)
		}
		e.Seq = uint64(seq)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("keystore: reading audit log: %w", err)
	}
	return out, nil
}
