package keystore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"
)

// WorkspaceVersion is one stored version of the workspace document
// (enclave/workspace verifies it before storing; opaque here).
type WorkspaceVersion struct {
	Version   uint64
	Document  []byte
	CreatedAt time.Time
}

type putWorkspaceChange struct {
	_        struct{} `cbor:",toarray"`
	Version  uint64
	Document []byte
	At       int64
}

// PutWorkspace stores the next workspace version: any when none is stored
// (a cosigner that pairs starts at the version its token names), else
// exactly the latest plus one; any other fails with ErrStaleVersion, so
// that two concurrent writers cannot both append the same version.
func (s *Store) PutWorkspace(ctx context.Context, version uint64, doc []byte) error {
	m := &putWorkspaceChange{Version: version, Document: doc, At: s.now().UnixNano()}
	if err := s.apply(ctx, m); err != nil {
		return fmt.Errorf("keystore: storing workspace version %d: %w", version, err)
	}
	return nil
}

func (*putWorkspaceChange) op() opCode { return opPutWorkspace }

func (m *putWorkspaceChange) validate() error {
	if m.Version == 0 || m.Version > math.MaxInt64 {
		return fmt.Errorf("%w: workspace version out of range", ErrInvalid)
	}
	if len(m.Document) == 0 || len(m.Document) > maxBlobLen {
		return fmt.Errorf("%w: workspace document empty or longer than %d bytes", ErrInvalid, maxBlobLen)
	}
	return nil
}

func (m *putWorkspaceChange) exec(ctx context.Context, tx *sql.Tx) error {
	var latest int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM workspace`).Scan(&latest); err != nil {
		return fmt.Errorf("keystore: reading workspace version: %w", err)
	}
	if latest != 0 && uint64(latest)+1 != m.Version {
		return fmt.Errorf("%w: latest %d, offered %d", ErrStaleVersion, latest, m.Version)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO workspace (version, document, created_at) VALUES (?, ?, ?)`,
		int64(m.Version), m.Document, m.At)
	if err != nil {
		return fmt.Errorf("keystore: writing workspace: %w", err)
	}
	return nil
}

// LatestWorkspace returns the highest workspace version, or ErrNotFound.
func (s *Store) LatestWorkspace(ctx context.Context) (WorkspaceVersion, error) {
	vs, err := s.workspaceVersions(ctx, `SELECT version, document, created_at FROM workspace ORDER BY version DESC LIMIT 1`)
	if err != nil {
		return WorkspaceVersion{}, err
	}
	if len(vs) == 0 {
		return WorkspaceVersion{}, fmt.Errorf("%w: no workspace", ErrNotFound)
	}
	return vs[0], nil
}

// WorkspaceVersionsFrom returns the stored versions from version from on,
// oldest first, at most limit of them.
func (s *Store) WorkspaceVersionsFrom(ctx context.Context, from uint64, limit int) ([]WorkspaceVersion, error) {
	if from > math.MaxInt64 {
		return nil, nil
	}
	return s.workspaceVersions(ctx, `SELECT version, document, created_at FROM workspace WHERE version >= ?
		ORDER BY version LIMIT ?`, int64(from), limit)
}

func (s *Store) workspaceVersions(ctx context.Context, query string, args ...any) ([]WorkspaceVersion, error) {
	if err := s.readable(); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("keystore: reading workspace: %w", err)
	}
	defer rows.Close()
	var out []WorkspaceVersion
	for rows.Next() {
		var (
			v           WorkspaceVersion
			version, at int64
		)
		if err := rows.Scan(&version, &v.Document, &at); err != nil {
			return nil, fmt.Errorf("keystore: reading workspace: %w", err)
		}
		v.Version, v.CreatedAt = uint64(version), time.Unix(0, at).UTC()
		out = append(out, v)
	}
	if err := rows.Err(); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("keystore: reading workspace: %w", err)
	}
	return out, nil
}
