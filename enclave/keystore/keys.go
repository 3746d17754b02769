package keystore

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

// KeyID names a threshold key (the engine's 32-byte key ID).
type KeyID [32]byte

// String returns the ID in hex; key IDs are not secret.
func (k KeyID) String() string { return hex.EncodeToString(k[:]) }

// Limits on key records, so that a record stays a bounded row.
const (
	maxParties  = 256
	maxNameLen  = 256
	maxBlobLen  = 1 << 20 // share, public key, chain code, metadata
	maxListPage = 1000
)

// KeyRecord is this party's record of one key at one epoch. Share is the
// only secret field and prints redacted.
type KeyRecord struct {
	ID        KeyID
	Scheme    uint8
	Epoch     uint64
	Threshold int
	// Parties are all holders of the key; Self is this party, one of them.
	Parties   []string
	Self      string
	PublicKey []byte
	ChainCode []byte
	Share     secret.Bytes
	// Metadata is a JSON object (labels, derivation policy...); empty
	// means {}. It is not secret.
	Metadata json.RawMessage
	// CreatedAt and UpdatedAt are set by the store; PutKey ignores them.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// KeyInfo is the public part of a KeyRecord.
type KeyInfo struct {
	ID        KeyID
	Scheme    uint8
	Epoch     uint64
	Threshold int
	Parties   []string
	Self      string
	PublicKey []byte
	ChainCode []byte
	Metadata  json.RawMessage
	CreatedAt time.Time
	UpdatedAt time.Time
}

// putKeyChange is the record body of PutKey.
type putKeyChange struct {
	_         struct{} `cbor:",toarray"`
	ID        []byte
	Scheme    uint8
	Epoch     uint64
	Threshold int64
	Parties   []string
	Self      string
	PublicKey []byte
	ChainCode []byte
	Share     []byte
	Metadata  []byte
	At        int64
}

// PutKey stores rec, replacing the key's previous epoch. It refuses an
// epoch equal to or lower than the stored one with ErrStaleEpoch; on that
// or any other error the stored record is unchanged. It returns nil only
// once the change is committed and (with a Replicator) durable.
func (s *Store) PutKey(ctx context.Context, rec KeyRecord) error {
	meta := rec.Metadata
	if len(meta) == 0 {
		meta = json.RawMessage("{}")
	}
	share := slices.Clone(rec.Share.Reveal())
	defer clear(share)
	m := &putKeyChange{
		ID: rec.ID[:], Scheme: rec.Scheme, Epoch: rec.Epoch, Threshold: int64(rec.Threshold),
		Parties: rec.Parties, Self: rec.Self, PublicKey: rec.PublicKey, ChainCode: rec.ChainCode,
		Share: share, Metadata: meta, At: s.now().UnixNano(),
	}
	if err := s.apply(ctx, m); err != nil {
		return fmt.Errorf("keystore: storing key %s epoch %d: %w", rec.ID, rec.Epoch, err)
	}
	return nil
}

func (*putKeyChange) op() opCode { return opPutKey }

// wipe clears the decoded share of a replayed record.
func (m *putKeyChange) wipe() { clear(m.Share) }

func (m *putKeyChange) validate() error {
	switch {
	case len(m.ID) != len(KeyID{}):
		return fmt.Errorf("%w: key ID must be %d bytes", ErrInvalid, len(KeyID{}))
	case m.Epoch > math.MaxInt64:
		return fmt.Errorf("%w: epoch out of range", ErrInvalid)
	case len(m.Parties) == 0 || len(m.Parties) > maxParties:
		return fmt.Errorf("%w: 1 to %d parties", ErrInvalid, maxParties)
	case m.Threshold < 1 || m.Threshold > int64(len(m.Parties)):
		return fmt.Errorf("%w: threshold must be between 1 and the number of parties", ErrInvalid)
	case !slices.Contains(m.Parties, m.Self):
		return fmt.Errorf("%w: self is not one of the parties", ErrInvalid)
	case len(m.Share) == 0:
		return fmt.Errorf("%w: empty share", ErrInvalid)
	}
	return m.validateSizes()
}

func (m *putKeyChange) validateSizes() error {
	for _, p := range m.Parties {
		if p == "" || len(p) > maxNameLen {
			return fmt.Errorf("%w: party names must be 1 to %d bytes", ErrInvalid, maxNameLen)
		}
	}
	for _, b := range [][]byte{m.PublicKey, m.ChainCode, m.Share, m.Metadata} {
		if len(b) > maxBlobLen {
			return fmt.Errorf("%w: field longer than %d bytes", ErrInvalid, maxBlobLen)
		}
	}
	if !isJSONObject(m.Metadata) {
		return fmt.Errorf("%w: metadata must be a JSON object", ErrInvalid)
	}
	return nil
}

func isJSONObject(b []byte) bool {
	var obj map[string]json.RawMessage
	return json.Unmarshal(b, &obj) == nil && obj != nil
}

func (m *putKeyChange) exec(ctx context.Context, tx *sql.Tx) error {
	var epoch int64
	err := tx.QueryRowContext(ctx, `SELECT epoch FROM keys WHERE key_id = ?`, m.ID).Scan(&epoch)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("keystore: reading stored epoch: %w", err)
	case uint64(epoch) >= m.Epoch:
		return fmt.Errorf("%w: stored %d, offered %d", ErrStaleEpoch, epoch, m.Epoch)
	}
	parties, err := json.Marshal(m.Parties)
	if err != nil {
		return fmt.Errorf("keystore: encoding parties: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO keys (key_id, scheme, epoch, threshold, parties, self,
			public_key, chain_code, share, metadata, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key_id) DO UPDATE SET scheme = excluded.scheme, epoch = excluded.epoch,
			threshold = excluded.threshold, parties = excluded.parties, self = excluded.self,
			public_key = excluded.public_key, chain_code = excluded.chain_code,
			share = excluded.share, metadata = excluded.metadata, updated_at = excluded.updated_at`,
		m.ID, m.Scheme, int64(m.Epoch), m.Threshold, string(parties), m.Self,
		nonNil(m.PublicKey), nonNil(m.ChainCode), m.Share, string(m.Metadata), m.At, m.At)
	if err != nil {
		return fmt.Errorf("keystore: writing key: %w", err)
	}
	return nil
}

// nonNil maps nil to an empty blob: the driver binds nil as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

const keyColumns = `key_id, scheme, epoch, threshold, parties, self, public_key, chain_code,
	metadata, created_at, updated_at`

// GetKey returns the key's record, or an error wrapping ErrKeyNotFound.
func (s *Store) GetKey(ctx context.Context, id KeyID) (KeyRecord, error) {
	if err := s.readable(); err != nil {
		return KeyRecord{}, err
	}
	row := s.db.QueryRowContext(ctx, `SELECT `+keyColumns+`, share FROM keys WHERE key_id = ?`, id[:])
	var share []byte
	info, err := scanKeyInfo(row, &share)
	defer func() { clear(share) }()
	if errors.Is(err, sql.ErrNoRows) {
		return KeyRecord{}, fmt.Errorf("%w: %s", ErrKeyNotFound, id)
	}
	if err != nil {
		return KeyRecord{}, fmt.Errorf("keystore: reading key %s: %w", id, err)
	}
	return info.withShare(secret.New(share)), nil
}

// GetKeyInfo returns the public part of the key's record without reading
// its share, or an error wrapping ErrKeyNotFound.
func (s *Store) GetKeyInfo(ctx context.Context, id KeyID) (KeyInfo, error) {
	if err := s.readable(); err != nil {
		return KeyInfo{}, err
	}
	info, err := scanKeyInfo(s.db.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys WHERE key_id = ?`, id[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return KeyInfo{}, fmt.Errorf("%w: %s", ErrKeyNotFound, id)
	}
	if err != nil {
		return KeyInfo{}, fmt.Errorf("keystore: reading key %s: %w", id, err)
	}
	return info, nil
}

func (i KeyInfo) withShare(share secret.Bytes) KeyRecord {
	return KeyRecord{
		ID: i.ID, Scheme: i.Scheme, Epoch: i.Epoch, Threshold: i.Threshold, Parties: i.Parties,
		Self: i.Self, PublicKey: i.PublicKey, ChainCode: i.ChainCode, Share: share,
		Metadata: i.Metadata, CreatedAt: i.CreatedAt, UpdatedAt: i.UpdatedAt,
	}
}

// Info returns the public part of r.
func (r KeyRecord) Info() KeyInfo {
	return KeyInfo{
		ID: r.ID, Scheme: r.Scheme, Epoch: r.Epoch, Threshold: r.Threshold, Parties: r.Parties,
		Self: r.Self, PublicKey: r.PublicKey, ChainCode: r.ChainCode,
		Metadata: r.Metadata, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

type scanner interface{ Scan(dest ...any) error }

// scanKeyInfo scans keyColumns, then extra destinations.
func scanKeyInfo(row scanner, extra ...any) (KeyInfo, error) {
	var (
		i                KeyInfo
		id               []byte
		epoch            int64
		parties, meta    string
		created, updated int64
	)
	dest := append([]any{&id, &i.Scheme, &epoch, &i.Threshold, &parties, &i.Self,
		&i.PublicKey, &i.ChainCode, &meta, &created, &updated}, extra...)
	if err := row.Scan(dest...); err != nil {
		return KeyInfo{}, err
	}
	if len(id) != len(i.ID) {
		return KeyInfo{}, fmt.Errorf("keystore: malformed key ID in database")
	}
	if err := json.Unmarshal([]byte(parties), &i.Parties); err != nil {
		return KeyInfo{}, fmt.Errorf("keystore: malformed parties in database: %w", err)
	}
	copy(i.ID[:], id)
	i.Epoch, i.Metadata = uint64(epoch), json.RawMessage(meta)
	i.CreatedAt, i.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return i, nil
}

// Cursor is a position in the key listing. The zero Cursor is the start.
type Cursor struct {
	after KeyID
	set   bool
}

// After returns a cursor that lists keys ordered after id.
func After(id KeyID) Cursor { return Cursor{after: id, set: true} }

// KeyPage is one page of ListKeys.
type KeyPage struct {
	Keys []KeyInfo
	// Next continues the listing; More reports whether there is more.
	Next Cursor
	More bool
}

// ListKeys returns up to limit keys (1 to 1000; 0 means 100) ordered by ID,
// starting after cur. Shares are not returned.
func (s *Store) ListKeys(ctx context.Context, cur Cursor, limit int) (KeyPage, error) {
	if err := s.readable(); err != nil {
		return KeyPage{}, err
	}
	if limit == 0 {
		limit = 100
	}
	if limit < 0 || limit > maxListPage {
		return KeyPage{}, fmt.Errorf("%w: page size must be 1 to %d", ErrInvalid, maxListPage)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+keyColumns+` FROM keys
		WHERE ? = 0 OR key_id > ? ORDER BY key_id LIMIT ?`, cur.set, cur.after[:], limit+1)
	if err != nil {
		return KeyPage{}, fmt.Errorf("keystore: listing keys: %w", err)
	}
	defer rows.Close()
	return collectPage(rows, limit)
}

func collectPage(rows *sql.Rows, limit int) (KeyPage, error) {
	var page KeyPage
	for rows.Next() {
		if len(page.Keys) == limit {
			page.More = true
			break
		}
		info, err := scanKeyInfo(rows)
		if err != nil {
			return KeyPage{}, fmt.Errorf("keystore: listing keys: %w", err)
		}
		page.Keys = append(page.Keys, info)
	}
	if err := rows.Err(); err != nil {
		return KeyPage{}, fmt.Errorf("keystore: listing keys: %w", err)
	}
	if n := len(page.Keys); n > 0 {
		page.Next = After(page.Keys[n-1].ID)
	}
	return page, nil
}
