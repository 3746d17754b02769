package keystore

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var errOverLimit = errors.New("over limit")

// limitCheck allows a reservation while the key's recorded "eth" plus the
// new amount stays within max.
func limitCheck(add, max int64) func(WindowView) error {
	return func(v WindowView) error {
		sum := big.NewInt(add)
		for _, sp := range v.Spends {
			if sp.Asset == "eth" {
				sum.Add(sum, sp.Amount)
			}
		}
		if sum.Cmp(big.NewInt(max)) > 0 {
			return errOverLimit
		}
		return nil
	}
}

func ethReservation(id int, key KeyID, at time.Time, amount int64) SpendReservation {
	return SpendReservation{ID: reservationID(id), KeyID: key, At: at,
		Spends: []SpendAmount{{Asset: "eth", Amount: big.NewInt(amount)}}}
}

func TestReserveSpendsCheckSeesWindow(t *testing.T) {
	ctx := context.Background()
	s := mustCreate(t, t.TempDir(), newKey(t), Options{})
	t0 := time.Unix(10_000, 0).UTC()
	if err := s.PutPolicy(ctx, 4, []byte("p")); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if err := s.ReserveSpends(ctx, ethReservation(i, keyID(1), t0.Add(time.Duration(i)*time.Second), int64(i)), allowAll); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ReserveSpends(ctx, ethReservation(9, keyID(2), t0, 50), allowAll); err != nil {
		t.Fatal(err)
	}
	var seen WindowView
	err := s.ReserveSpends(ctx, ethReservation(4, keyID(1), t0.Add(time.Minute), 7), func(v WindowView) error {
		seen = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen.PolicyVersion != 4 || len(seen.Spends) != 3 {
		t.Fatalf("check saw version %d and %d spends, want 4 and 3 (key 1 only)", seen.PolicyVersion, len(seen.Spends))
	}
	for i, sp := range seen.Spends {
		if sp.Reservation != reservationID(i+1) || sp.KeyID != keyID(1) || sp.Amount.Int64() != int64(i+1) ||
			!sp.At.Equal(t0.Add(time.Duration(i+1)*time.Second)) {
			t.Fatalf("spend %d: %+v", i, sp)
		}
	}
	got, err := s.Spends(ctx, keyID(1), t0.Add(2*time.Second))
	if err != nil || len(got) != 3 || got[2].Amount.Int64() != 7 {
		t.Fatalf("Spends since t0+2s: %+v %v", got, err)
	}
	res := ethReservation(5, keyID(1), t0.Add(time.Minute), 1)
	res.Since = t0.Add(2 * time.Second)
	err = s.ReserveSpends(ctx, res, func(v WindowView) error {
		seen = v
		return nil
	})
	if err != nil || len(seen.Spends) != 3 || seen.Spends[0].Reservation != reservationID(2) {
		t.Fatalf("check with Since saw %+v (%v), want reservations 2, 3 and 4", seen.Spends, err)
	}
}

func TestReserveSpendsRefusedWritesNothing(t *testing.T) {
	ctx := context.Background()
	r := &recorder{t: t}
	s := mustCreate(t, t.TempDir(), newKey(t), Options{Replicator: r})
	t0 := time.Unix(10_000, 0)
	if err := s.ReserveSpends(ctx, ethReservation(1, keyID(1), t0, 4), limitCheck(4, 5)); err != nil {
		t.Fatal(err)
	}
	before := dumpState(t, s)
	res := ethReservation(2, keyID(1), t0.Add(time.Hour), 2)
	if err := s.ReserveSpends(ctx, res, limitCheck(2, 5)); !errors.Is(err, errOverLimit) {
		t.Fatalf("4+2 under a limit of 5: %v, want errOverLimit", err)
	}
	// The prune would delete reservation 1; the refusal rolls it back.
	res.PruneBefore = t0.Add(time.Second)
	refuse := func(WindowView) error { return errOverLimit }
	if err := s.ReserveSpends(ctx, res, refuse); !errors.Is(err, errOverLimit) {
		t.Fatalf("refusing check: %v, want errOverLimit", err)
	}
	if after := dumpState(t, s); after != before {
		t.Fatalf("a refused reservation changed the state:\n%s\nwant\n%s", after, before)
	}
	if n := len(r.records()); n != 1 {
		t.Fatalf("%d records replicated, want 1 (refusals replicate nothing)", n)
	}
	// The prune runs before the check: reservation 1 no longer counts.
	if err := s.ReserveSpends(ctx, res, limitCheck(2, 5)); err != nil {
		t.Fatalf("after pruning reservation 1: %v", err)
	}
}

func TestReserveSpendsPrunesEveryKey(t *testing.T) {
	ctx := context.Background()
	s := mustCreate(t, t.TempDir(), newKey(t), Options{})
	t0 := time.Unix(10_000, 0)
	for i := 1; i <= 4; i++ {
		if err := s.ReserveSpends(ctx, ethReservation(i, keyID(i), t0.Add(time.Duration(i)*time.Minute), 1), allowAll); err != nil {
			t.Fatal(err)
		}
	}
	res := ethReservation(10, keyID(9), t0.Add(time.Hour), 1)
	res.PruneBefore = t0.Add(3 * time.Minute) // keeps keys 3 and 4: at >= PruneBefore stays
	if err := s.ReserveSpends(ctx, res, allowAll); err != nil {
		t.Fatal(err)
	}
	for i, want := range map[int]int{1: 0, 2: 0, 3: 1, 4: 1, 9: 1} {
		got, err := s.Spends(ctx, keyID(i), time.Time{})
		if err != nil || len(got) != want {
			t.Errorf("key %d: %d spends (%v), want %d", i, len(got), err, want)
		}
	}
	if err := s.ReleaseSpends(ctx, reservationID(1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("releasing a pruned reservation: %v, want ErrNotFound", err)
	}
}

func TestReleaseSpends(t *testing.T) {
	ctx := context.Background()
	s := mustCreate(t, t.TempDir(), newKey(t), Options{})
	t0 := time.Unix(10_000, 0)
	if err := s.ReserveSpends(ctx, testReservation(1, t0), allowAll); err != nil {
		t.Fatal(err)
	}
	if err := s.ReserveSpends(ctx, testReservation(1, t0), allowAll); !errors.Is(err, ErrExists) {
		t.Fatalf("reusing a reservation ID: %v, want ErrExists", err)
	}
	if err := s.ReleaseSpends(ctx, reservationID(1)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Spends(ctx, keyID(1), time.Time{}); len(got) != 0 {
		t.Fatalf("%d spends left after release", len(got))
	}
	if err := s.ReleaseSpends(ctx, reservationID(1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second release: %v, want ErrNotFound", err)
	}
}

func TestReserveSpendsValidates(t *testing.T) {
	ctx := context.Background()
	s := mustCreate(t, t.TempDir(), newKey(t), Options{})
	t0 := time.Unix(10_000, 0)
	many := make([]SpendAmount, maxSpendsPerReservation+1)
	for i := range many {
		many[i] = SpendAmount{Asset: "eth", Amount: big.NewInt(1)}
	}
	huge := new(big.Int).Lsh(big.NewInt(1), 256)
	for name, mutate := range map[string]func(*SpendReservation){
		"no spends":       func(r *SpendReservation) { r.Spends = nil },
		"too many":        func(r *SpendReservation) { r.Spends = many },
		"zero amount":     func(r *SpendReservation) { r.Spends[0].Amount = new(big.Int) },
		"negative":        func(r *SpendReservation) { r.Spends[0].Amount = big.NewInt(-1) },
		"nil amount":      func(r *SpendReservation) { r.Spends[0].Amount = nil },
		"2^256":           func(r *SpendReservation) { r.Spends[0].Amount = huge },
		"empty asset":     func(r *SpendReservation) { r.Spends[0].Asset = "" },
		"before epoch":    func(r *SpendReservation) { r.At = time.Unix(-1, 0) },
		"zero time":       func(r *SpendReservation) { r.At = time.Time{} },
		"prune after at":  func(r *SpendReservation) { r.PruneBefore = r.At.Add(time.Nanosecond) },
		"prune pre-epoch": func(r *SpendReservation) { r.PruneBefore = time.Unix(-5, 0) },
	} {
		r := testReservation(1, t0)
		mutate(&r)
		if err := s.ReserveSpends(ctx, r, allowAll); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := s.ReserveSpends(ctx, testReservation(1, t0), nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil check: %v, want ErrInvalid", err)
	}
	if seq, _ := s.Seq(ctx); seq != 0 {
		t.Fatalf("invalid reservations advanced the sequence to %d", seq)
	}
}

// TestWindowReplay: reservations, prunes and releases replay to the same
// state without their checks, and a release that does not apply is a bad
// record.
func TestWindowReplay(t *testing.T) {
	ctx := context.Background()
	key := newKey(t)
	r := &recorder{t: t}
	src := mustCreate(t, t.TempDir(), key, Options{Replicator: r})
	t0 := time.Unix(10_000, 0)
	steps := []error{
		src.ReserveSpends(ctx, testReservation(1, t0), allowAll),
		src.ReserveSpends(ctx, testReservation(2, t0.Add(time.Minute)), allowAll),
		src.ReserveSpends(ctx, testReservation(3, t0.Add(2*time.Minute)), limitCheck(0, 1<<40)),
		src.ReleaseSpends(ctx, reservationID(2)),
		src.ReserveSpends(ctx, SpendReservation{ID: reservationID(4), KeyID: keyID(3), At: t0.Add(time.Hour),
			PruneBefore: t0.Add(time.Second), Spends: []SpendAmount{{Asset: "btc", Amount: new(big.Int).Lsh(big.NewInt(1), 255)}}},
			func(WindowView) error { return nil }),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	recs := r.records()
	dst := mustCreate(t, t.TempDir(), key, Options{})
	if err := dst.Replay(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if a, b := dumpState(t, src), dumpState(t, dst); a != b {
		t.Fatalf("replayed state differs:\n%s\nwant\n%s", b, a)
	}
	got, err := dst.Spends(ctx, keyID(3), time.Time{})
	if err != nil || len(got) != 3 || got[2].Asset != "btc" || got[2].Amount.BitLen() != 256 {
		t.Fatalf("replayed spends of key 3: %+v %v", got, err)
	}
	// Record 4 releases reservation 2: against a store without it, it is a
	// bad record.
	skipped := mustCreate(t, t.TempDir(), key, Options{})
	if err := skipped.Replay(ctx, []Record{recs[0], recs[1], recs[2]}); err != nil {
		t.Fatal(err)
	}
	id := reservationID(2)
	if _, err := skipped.db.Exec(`DELETE FROM policy_window WHERE reservation = ?`, id[:]); err != nil {
		t.Fatal(err)
	}
	if err := skipped.ApplyRecord(ctx, recs[3]); !errors.Is(err, ErrBadRecord) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("release of a missing reservation on replay: %v, want ErrBadRecord", err)
	}
}

// TestReserveSpendsConcurrent: concurrent reservations checked against a
// limit never overshoot it.
func TestReserveSpendsConcurrent(t *testing.T) {
	ctx := context.Background()
	s := mustCreate(t, t.TempDir(), newKey(t), Options{Replicator: &recorder{t: t}})
	const workers, limit = 12, 5
	var (
		wg      sync.WaitGroup
		allowed atomic.Int32
	)
	for w := range workers {
		wg.Go(func() {
			err := s.ReserveSpends(ctx, ethReservation(w+1, keyID(1), time.Unix(10_000, 0), 1), limitCheck(1, limit))
			switch {
			case err == nil:
				allowed.Add(1)
			case !errors.Is(err, errOverLimit):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := s.Spends(ctx, keyID(1), time.Time{})
	if err != nil || allowed.Load() != limit || len(got) != limit {
		t.Fatalf("%d allowed, %d recorded (%v), want %d", allowed.Load(), len(got), err, limit)
	}
}

func TestReservationIDString(t *testing.T) {
	if got, want := reservationID(1).String(), fmt.Sprintf("%x", "res-00000001")+"00000000"; got != want {
		t.Fatalf("String() = %s, want %s", got, want)
	}
}

// TestMigrationAddsPolicyWindow: a database at schema version 1 (before
// the window state) gains it when opened, keeping its data.
func TestMigrationAddsPolicyWindow(t *testing.T) {
	ctx := context.Background()
	dir, key := t.TempDir(), newKey(t)
	s := mustCreate(t, dir, key, Options{})
	if err := s.PutKey(ctx, testRecord(1, 0)); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`DROP TABLE policy_window`,
		`DROP TABLE workspace`,
		`DELETE FROM schema_migrations WHERE version >= 2`,
	} {
		if _, err := s.db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, err := Open(ctx, dir, key, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var v int
	if err := s.db.QueryRow(`SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil || v != SchemaVersion() {
		t.Fatalf("schema version %d (%v), want %d", v, err, SchemaVersion())
	}
	if _, err := s.GetKey(ctx, keyID(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.ReserveSpends(ctx, testReservation(1, time.Unix(10_000, 0)), allowAll); err != nil {
		t.Fatal(err)
	}
}
