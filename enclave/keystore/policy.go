package keystore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"
)

// Policy is one version of the policy document (opaque to the store).
type Policy struct {
	Version   uint64
	Document  []byte
	CreatedAt time.Time
}

type putPolicyChange struct {
	_        struct{} `cbor:",toarray"`
	Version  uint64
	Document []byte
	At       int64
}

// PutPolicy stores a new policy version. Versions start at 1 and must
// increase: an equal or lower one fails with ErrStaleVersion.
func (s *Store) PutPolicy(ctx context.Context, version uint64, doc []byte) error {
	m := &putPolicyChange{Version: version, Document: doc, At: s.now().UnixNano()}
	if err := s.apply(ctx, m); err != nil {
		return fmt.Errorf("keystore: storing policy version %d: %w", version, err)
	}
	return nil
}

func (*putPolicyChange) op() opCode { return opPutPolicy }

func (m *putPolicyChange) validate() error {
	if m.Version == 0 || m.Version > math.MaxInt64 {
		return fmt.Errorf("%w: policy version out of range", ErrInvalid)
	}
	if len(m.Document) > maxBlobLen {
		return fmt.Errorf("%w: policy document longer than %d bytes", ErrInvalid, maxBlobLen)
	}
	return nil
}

func (m *putPolicyChange) exec(ctx context.Context, tx *sql.Tx) error {
	var latest int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM policy`).Scan(&latest); err != nil {
		return fmt.Errorf("keystore: reading policy version: %w", err)
	}
	if uint64(latest) >= m.Version {
		return fmt.Errorf("%w: latest %d, offered %d", ErrStaleVersion, latest, m.Version)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO policy (version, document, created_at) VALUES (?, ?, ?)`,
		int64(m.Version), nonNil(m.Document), m.At)
	if err != nil {
		return fmt.Errorf("keystore: writing policy: %w", err)
	}
	return nil
}

// LatestPolicy returns the highest policy version, or ErrNotFound.
func (s *Store) LatestPolicy(ctx context.Context) (Policy, error) {
	if err := s.readable(); err != nil {
		return Policy{}, err
	}
	var (
		p           Policy
		version, at int64
	)
	err := s.db.QueryRowContext(ctx, `SELECT version, document, created_at FROM policy
		ORDER BY version DESC LIMIT 1`).Scan(&version, &p.Document, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Policy{}, fmt.Errorf("%w: no policy", ErrNotFound)
	}
	if err != nil {
		return Policy{}, fmt.Errorf("keystore: reading policy: %w", err)
	}
	p.Version, p.CreatedAt = uint64(version), time.Unix(0, at).UTC()
	return p, nil
}
