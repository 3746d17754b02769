package keystore

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

// shareMarker is a recognisable share prefix: it must never be found in a
// file or an object.
const shareMarker = "SHARE-PLAINTEXT-MARKER"

func newKey(t testing.TB) secret.Bytes {
	t.Helper()
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return secret.New(b)
}

func keyID(i int) KeyID {
	var id KeyID
	copy(id[:], fmt.Sprintf("key-%08d", i))
	return id
}

func testRecord(i int, epoch uint64) KeyRecord {
	return KeyRecord{
		ID: keyID(i), Scheme: 1, Epoch: epoch, Threshold: 2,
		Parties: []string{"alice", "bob", "carol"}, Self: "bob",
		PublicKey: bytes.Repeat([]byte{byte(i)}, 33), ChainCode: bytes.Repeat([]byte{7}, 32),
		Share:    secret.New([]byte(fmt.Sprintf("%s-%d-%d", shareMarker, i, epoch))),
		Metadata: []byte(`{"label":"test"}`),
	}
}

func mustCreate(t testing.TB, dir string, key secret.Bytes, opts Options) *Store {
	t.Helper()
	s, err := Create(context.Background(), dir, key, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// recorder is a Replicator that keeps copies of the records it accepted and
// fails when told to. It checks the store's promise of consecutive sequence
// numbers on every call.
type recorder struct {
	mu      sync.Mutex
	recs    []Record
	fail    error
	block   chan struct{} // if set, Replicate waits on it
	entered chan struct{} // if set, signalled when Replicate starts
	t       testing.TB
}

var errInjected = errors.New("injected replication failure")

func (r *recorder) Replicate(ctx context.Context, rec Record) error {
	if r.entered != nil {
		r.entered <- struct{}{}
	}
	if r.block != nil {
		<-r.block
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if want := uint64(len(r.recs)) + 1; rec.Seq != want {
		r.t.Errorf("Replicate got seq %d, want %d", rec.Seq, want)
	}
	if r.fail != nil {
		return r.fail
	}
	r.recs = append(r.recs, Record{Seq: rec.Seq, Payload: secret.New(rec.Payload.Reveal())})
	return nil
}

func (r *recorder) setFail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = err
}

func (r *recorder) records() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Record(nil), r.recs...)
}

// dumpState renders every table except the migrations bookkeeping, for
// comparing two stores.
func dumpState(t testing.TB, s *Store) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"meta", "keys", "identity", "policy", "audit", "idempotency", "policy_window"} {
		fmt.Fprintf(&b, "== %s\n", table)
		rows, err := s.db.Query("SELECT * FROM " + table + " ORDER BY 1")
		if err != nil {
			t.Fatal(err)
		}
		dumpRows(t, &b, rows)
	}
	return b.String()
}

func dumpRows(t testing.TB, b *strings.Builder, rows *sql.Rows) {
	t.Helper()
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(b, "%x\n", vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// populate runs one mutation of every kind (keys puts for keys, plus a
// refresh of key 0).
func populate(t testing.TB, s *Store, keys int) {
	t.Helper()
	ctx := context.Background()
	for i := range keys {
		if err := s.PutKey(ctx, testRecord(i, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if keys > 0 {
		if err := s.PutKey(ctx, testRecord(0, 1)); err != nil {
			t.Fatal(err)
		}
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	steps := []error{
		s.PutIdentity(ctx, Identity{PrivateKey: secret.New(priv), PublicKey: pub}),
		s.PutPolicy(ctx, 1, []byte(`{"rules":[]}`)),
		s.PutPolicy(ctx, 2, []byte(`{"rules":["x"]}`)),
		s.AppendAudit(ctx, AuditEntry{Seq: 1, PrevHash: make([]byte, 32), Entry: []byte("e1"), Hash: bytes.Repeat([]byte{1}, 32)}),
		s.AppendAudit(ctx, AuditEntry{Seq: 2, PrevHash: bytes.Repeat([]byte{1}, 32), Entry: []byte("e2"), Hash: bytes.Repeat([]byte{2}, 32)}),
		s.PutIdempotency(ctx, IdempotencyRecord{Key: "req-1", RequestHash: []byte("h"), Response: []byte("r"), ExpiresAt: s.now().Add(time.Hour)}),
		s.PurgeIdempotency(ctx),
		s.ReserveSpends(ctx, testReservation(1, s.now()), allowAll),
		s.ReserveSpends(ctx, testReservation(2, s.now()), allowAll),
		s.ReleaseSpends(ctx, reservationID(1)),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("populate step %d: %v", i, err)
		}
	}
}

func reservationID(i int) ReservationID {
	var id ReservationID
	copy(id[:], fmt.Sprintf("res-%08d", i))
	return id
}

// testReservation reserves 1000*i of "eth" and i of "usdc" for key i.
func testReservation(i int, at time.Time) SpendReservation {
	return SpendReservation{
		ID: reservationID(i), KeyID: keyID(i), At: at,
		Spends: []SpendAmount{{Asset: "eth", Amount: big.NewInt(1000 * int64(i))}, {Asset: "usdc", Amount: big.NewInt(int64(i))}},
	}
}

func allowAll(WindowView) error { return nil }
