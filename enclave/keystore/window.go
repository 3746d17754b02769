package keystore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/big"
	"time"
)

// Policy window state: the spends the policy engine counts against a key's
// rolling-window value limits. The store does not know the limits; it keeps
// spends, prunes old ones, and lets the engine decide inside the
// transaction that records a new reservation (ReserveSpends), so two
// concurrent requests cannot both pass a limit that only one fits under.

// ReservationID names the spends recorded by one ReserveSpends call.
type ReservationID [16]byte

// String returns the ID in hex; reservation IDs are not secret.
func (r ReservationID) String() string { return fmt.Sprintf("%x", r[:]) }

// SpendAmount is one asset amount of a reservation. Asset is an opaque name
// chosen by the policy engine; Amount is positive and below 2^256.
type SpendAmount struct {
	Asset  string
	Amount *big.Int
}

// Spend is a recorded SpendAmount: which reservation it belongs to, for
// which key, and when it was reserved.
type Spend struct {
	Reservation ReservationID
	KeyID       KeyID
	Asset       string
	Amount      *big.Int
	At          time.Time
}

// SpendReservation is the input of ReserveSpends.
type SpendReservation struct {
	// ID must not name a reservation already stored (ErrExists); pick it
	// at random.
	ID    ReservationID
	KeyID KeyID
	// At is when the spends happen (the policy engine's clock); it must
	// not be before the Unix epoch.
	At time.Time
	// PruneBefore, if not zero, deletes every key's spends recorded
	// before it, in the same transaction and before check runs. It must
	// not be after At.
	PruneBefore time.Time
	// Spends are 1 to 64 amounts.
	Spends []SpendAmount
	// Since, if not zero, limits the spends shown to the check to those
	// recorded at or after it (the longest window that applies). It is
	// not part of the change record.
	Since time.Time
}

// WindowView is what ReserveSpends shows its check, read inside the
// transaction that will record the reservation.
type WindowView struct {
	// PolicyVersion is the latest stored policy version (0 if none), so
	// that the check can refuse to decide under a policy that has since
	// been replaced.
	PolicyVersion uint64
	// Spends are the key's recorded spends left after pruning, at or
	// after SpendReservation.Since, ordered by time, then reservation and
	// position.
	Spends []Spend
}

// Limits on reservations.
const (
	maxSpendsPerReservation = 64
	maxAmountLen            = 32 // bytes: amounts are below 2^256
)

// spendEntry is one amount in a record body: the asset and the amount as
// a minimal big-endian unsigned integer (no leading zero byte).
type spendEntry struct {
	_      struct{} `cbor:",toarray"`
	Asset  string
	Amount []byte
}

// reserveSpendsChange is the record body of ReserveSpends. check is not
// part of the record: it runs only where the reservation is first made; a
// replay records the spends the check allowed then.
type reserveSpendsChange struct {
	_           struct{} `cbor:",toarray"`
	ID          []byte
	KeyID       []byte
	At          int64
	PruneBefore int64
	Spends      []spendEntry

	check func(WindowView) error
	since int64
}

// ReserveSpends records r's spends if check allows them. In one
// transaction, holding the writer lock, it deletes every spend recorded
// before r.PruneBefore, reads the key's remaining spends and the latest
// policy version, and calls check with them. If check returns an error,
// nothing is written and ReserveSpends returns that error wrapped (test it
// with errors.Is or errors.As); otherwise the spends are recorded, and
// ReserveSpends returns nil once they are committed and (with a
// Replicator) durable — like any mutation.
//
// check runs with the writer lock held and a transaction open: it must be
// quick and must not call the Store. It must not be nil.
func (s *Store) ReserveSpends(ctx context.Context, r SpendReservation, check func(WindowView) error) error {
	if check == nil {
		return fmt.Errorf("%w: ReserveSpends needs a check", ErrInvalid)
	}
	m, err := newReserveSpends(r, check)
	if err != nil {
		return err
	}
	if err := s.apply(ctx, m); err != nil {
		return fmt.Errorf("keystore: reserving spends %s: %w", r.ID, err)
	}
	return nil
}

func newReserveSpends(r SpendReservation, check func(WindowView) error) (*reserveSpendsChange, error) {
	at, err := unixNano(r.At)
	if err != nil {
		return nil, err
	}
	var prune int64
	if !r.PruneBefore.IsZero() {
		if prune, err = unixNano(r.PruneBefore); err != nil {
			return nil, err
		}
	}
	m := &reserveSpendsChange{ID: r.ID[:], KeyID: r.KeyID[:], At: at, PruneBefore: prune, check: check, since: sinceNano(r.Since)}
	for _, sp := range r.Spends {
		if sp.Amount == nil || sp.Amount.Sign() <= 0 {
			return nil, fmt.Errorf("%w: spend amounts must be positive", ErrInvalid)
		}
		m.Spends = append(m.Spends, spendEntry{Asset: sp.Asset, Amount: sp.Amount.Bytes()})
	}
	return m, nil
}

// unixNano converts t, refusing times an int64 of nanoseconds since the
// Unix epoch cannot hold.
func unixNano(t time.Time) (int64, error) {
	if t.Before(time.Unix(0, 0)) || t.After(time.Unix(0, math.MaxInt64)) {
		return 0, fmt.Errorf("%w: time out of range", ErrInvalid)
	}
	return t.UnixNano(), nil
}

// sinceNano converts a lower bound on spend times; times before the Unix
// epoch (the zero time included) bound nothing.
func sinceNano(t time.Time) int64 {
	if !t.After(time.Unix(0, 0)) {
		return math.MinInt64
	}
	if t.After(time.Unix(0, math.MaxInt64)) {
		return math.MaxInt64
	}
	return t.UnixNano()
}

func (*reserveSpendsChange) op() opCode { return opReserveSpends }

func (m *reserveSpendsChange) validate() error {
	switch {
	case len(m.ID) != len(ReservationID{}):
		return fmt.Errorf("%w: reservation ID must be %d bytes", ErrInvalid, len(ReservationID{}))
	case len(m.KeyID) != len(KeyID{}):
		return fmt.Errorf("%w: key ID must be %d bytes", ErrInvalid, len(KeyID{}))
	case m.At < 0 || m.PruneBefore < 0 || m.PruneBefore > m.At:
		return fmt.Errorf("%w: reservation times out of range", ErrInvalid)
	case len(m.Spends) == 0 || len(m.Spends) > maxSpendsPerReservation:
		return fmt.Errorf("%w: 1 to %d spends per reservation", ErrInvalid, maxSpendsPerReservation)
	}
	for _, e := range m.Spends {
		if e.Asset == "" || len(e.Asset) > maxNameLen {
			return fmt.Errorf("%w: asset names must be 1 to %d bytes", ErrInvalid, maxNameLen)
		}
		if len(e.Amount) == 0 || len(e.Amount) > maxAmountLen || e.Amount[0] == 0 {
			return fmt.Errorf("%w: amount must be a positive integer below 2^256", ErrInvalid)
		}
	}
	return nil
}

func (m *reserveSpendsChange) exec(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM policy_window WHERE at < ?`, m.PruneBefore); err != nil {
		return fmt.Errorf("keystore: pruning spends: %w", err)
	}
	if err := m.runCheck(ctx, tx); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM policy_window WHERE reservation = ?`, m.ID).Scan(&n); err != nil {
		return fmt.Errorf("keystore: reading reservation: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("%w: reservation %x", ErrExists, m.ID)
	}
	for i, e := range m.Spends {
		_, err := tx.ExecContext(ctx, `INSERT INTO policy_window (reservation, idx, key_id, asset, at, amount)
			VALUES (?, ?, ?, ?, ?, ?)`, m.ID, i, m.KeyID, e.Asset, m.At, e.Amount)
		if err != nil {
			return fmt.Errorf("keystore: writing spend: %w", err)
		}
	}
	return nil
}

// runCheck shows the check the window; a replayed record has no check.
func (m *reserveSpendsChange) runCheck(ctx context.Context, tx *sql.Tx) error {
	if m.check == nil {
		return nil
	}
	var version int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM policy`).Scan(&version); err != nil {
		return fmt.Errorf("keystore: reading policy version: %w", err)
	}
	var key KeyID
	copy(key[:], m.KeyID)
	spends, err := querySpends(ctx, tx, key, m.since)
	if err != nil {
		return err
	}
	return m.check(WindowView{PolicyVersion: uint64(version), Spends: spends})
}

type rowsQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// querySpends reads key's spends recorded at or after since.
func querySpends(ctx context.Context, q rowsQuerier, key KeyID, since int64) ([]Spend, error) {
	rows, err := q.QueryContext(ctx, `SELECT reservation, asset, at, amount FROM policy_window
		WHERE key_id = ? AND at >= ? ORDER BY at, reservation, idx`, key[:], since)
	if err != nil {
		return nil, fmt.Errorf("keystore: reading spends: %w", err)
	}
	defer rows.Close()
	var out []Spend
	for rows.Next() {
		sp, err := scanSpend(rows, key)
		if err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("keystore: reading spends: %w", err)
	}
	return out, nil
}

func scanSpend(row scanner, key KeyID) (Spend, error) {
	var (
		id, amount []byte
		at         int64
		sp         = Spend{KeyID: key}
	)
	if err := row.Scan(&id, &sp.Asset, &at, &amount); err != nil {
		return Spend{}, fmt.Errorf("keystore: reading spends: %w", err)
	}
	if len(id) != len(sp.Reservation) {
		return Spend{}, errors.New("keystore: malformed reservation ID in database")
	}
	copy(sp.Reservation[:], id)
	sp.Amount, sp.At = new(big.Int).SetBytes(amount), time.Unix(0, at).UTC()
	return sp, nil
}

// Spends returns key's recorded spends at or after since, ordered by time,
// then reservation and position. It reads outside any mutation, so a
// decision must not rest on it: use ReserveSpends.
func (s *Store) Spends(ctx context.Context, key KeyID, since time.Time) ([]Spend, error) {
	if err := s.readable(); err != nil {
		return nil, err
	}
	return querySpends(ctx, s.db, key, sinceNano(since))
}

type releaseSpendsChange struct {
	_  struct{} `cbor:",toarray"`
	ID []byte
}

// ReleaseSpends deletes the spends of reservation id, so they no longer
// count. It fails with ErrNotFound if none are stored (never reserved,
// already released, or pruned).
func (s *Store) ReleaseSpends(ctx context.Context, id ReservationID) error {
	if err := s.apply(ctx, &releaseSpendsChange{ID: id[:]}); err != nil {
		return fmt.Errorf("keystore: releasing spends %s: %w", id, err)
	}
	return nil
}

func (*releaseSpendsChange) op() opCode { return opReleaseSpends }

func (m *releaseSpendsChange) validate() error {
	if len(m.ID) != len(ReservationID{}) {
		return fmt.Errorf("%w: reservation ID must be %d bytes", ErrInvalid, len(ReservationID{}))
	}
	return nil
}

func (m *releaseSpendsChange) exec(ctx context.Context, tx *sql.Tx) error {
	res, err := tx.ExecContext(ctx, `DELETE FROM policy_window WHERE reservation = ?`, m.ID)
	if err != nil {
		return fmt.Errorf("keystore: releasing spends: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("%w: reservation %x", ErrNotFound, m.ID)
	}
	return nil
}
