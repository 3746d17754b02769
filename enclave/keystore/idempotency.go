package keystore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// IdempotencyRecord remembers the response to a mutating API call under the
// caller's idempotency key, until ExpiresAt.
type IdempotencyRecord struct {
	Key         string
	RequestHash []byte
	Response    []byte
	CreatedAt   time.Time // set by the store
	ExpiresAt   time.Time
}

type putIdempotencyChange struct {
	_           struct{} `cbor:",toarray"`
	Key         string
	RequestHash []byte
	Response    []byte
	At          int64
	ExpiresAt   int64
}

// PutIdempotency stores rec. It fails with ErrExists if an unexpired record
// holds the same key; an expired one is replaced.
func (s *Store) PutIdempotency(ctx context.Context, rec IdempotencyRecord) error {
	m := &putIdempotencyChange{
		Key: rec.Key, RequestHash: rec.RequestHash, Response: rec.Response,
		At: s.now().UnixNano(), ExpiresAt: rec.ExpiresAt.UnixNano(),
	}
	if err := s.apply(ctx, m); err != nil {
		return fmt.Errorf("keystore: storing idempotency record: %w", err)
	}
	return nil
}

func (*putIdempotencyChange) op() opCode { return opPutIdempotency }

func (m *putIdempotencyChange) validate() error {
	switch {
	case m.Key == "" || len(m.Key) > maxNameLen:
		return fmt.Errorf("%w: idempotency key must be 1 to %d bytes", ErrInvalid, maxNameLen)
	case len(m.RequestHash) == 0 || len(m.RequestHash) > maxHashLen:
		return fmt.Errorf("%w: request hash must be 1 to %d bytes", ErrInvalid, maxHashLen)
	case len(m.Response) > maxBlobLen:
		return fmt.Errorf("%w: response longer than %d bytes", ErrInvalid, maxBlobLen)
	case m.ExpiresAt <= m.At:
		return fmt.Errorf("%w: idempotency record expires before it is written", ErrInvalid)
	}
	return nil
}

func (m *putIdempotencyChange) exec(ctx context.Context, tx *sql.Tx) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO idempotency (key, request_hash, response, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash, response = excluded.response,
			created_at = excluded.created_at, expires_at = excluded.expires_at
		WHERE idempotency.expires_at <= excluded.created_at`,
		m.Key, m.RequestHash, nonNil(m.Response), m.At, m.ExpiresAt)
	if err != nil {
		return fmt.Errorf("keystore: writing idempotency record: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("%w: idempotency key in use", ErrExists)
	}
	return nil
}

// GetIdempotency returns the unexpired record under key, or ErrNotFound.
func (s *Store) GetIdempotency(ctx context.Context, key string) (IdempotencyRecord, error) {
	if err := s.readable(); err != nil {
		return IdempotencyRecord{}, err
	}
	r := IdempotencyRecord{Key: key}
	var created, expires int64
	err := s.db.QueryRowContext(ctx, `SELECT request_hash, response, created_at, expires_at FROM idempotency
		WHERE key = ? AND expires_at > ?`, key, s.now().UnixNano()).
		Scan(&r.RequestHash, &r.Response, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return IdempotencyRecord{}, fmt.Errorf("%w: idempotency key", ErrNotFound)
	}
	if err != nil {
		return IdempotencyRecord{}, fmt.Errorf("keystore: reading idempotency record: %w", err)
	}
	r.CreatedAt, r.ExpiresAt = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
	return r, nil
}

type purgeIdempotencyChange struct {
	_  struct{} `cbor:",toarray"`
	At int64
}

// PurgeIdempotency deletes the records expired by now. It is a mutation
// like any other (replicated), so call it periodically, not per request.
func (s *Store) PurgeIdempotency(ctx context.Context) error {
	if err := s.apply(ctx, &purgeIdempotencyChange{At: s.now().UnixNano()}); err != nil {
		return fmt.Errorf("keystore: purging idempotency records: %w", err)
	}
	return nil
}

func (*purgeIdempotencyChange) op() opCode      { return opPurgeIdempotency }
func (*purgeIdempotencyChange) validate() error { return nil }

func (m *purgeIdempotencyChange) exec(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM idempotency WHERE expires_at <= ?`, m.At); err != nil {
		return fmt.Errorf("keystore: purging idempotency records: %w", err)
	}
	return nil
}
