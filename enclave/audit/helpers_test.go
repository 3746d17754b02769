package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	auditfmt "github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

func newKeystore(t testing.TB) *keystore.Store {
	t.Helper()
	key := make([]byte, keystore.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	s, err := keystore.Create(context.Background(), t.TempDir(), secret.New(key), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testSigner(name string) auditfmt.Signer {
	seed := sha256.Sum256([]byte("enclave audit test " + name))
	return auditfmt.NewEd25519Signer(ed25519.NewKeyFromSeed(seed[:]))
}

// stepClock advances one second per reading.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func newLog(t testing.TB, store Store, signer auditfmt.Signer) *Log {
	t.Helper()
	clock := &stepClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	l, err := New(context.Background(), Config{
		CosignerID: "co-1", Store: store, Signer: signer, Clock: clock.now,
		Attestation: func() []byte { return []byte("attestation document") },
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func event(i int) auditfmt.Event {
	evs := []auditfmt.Event{
		{Type: auditfmt.KeyCreated, Actor: "CN=admin", KeyID: "k1", RequestID: fmt.Sprint("idem-", i)},
		{Type: auditfmt.SignRequested, Actor: "CN=signer", KeyID: "k1", RequestID: fmt.Sprint("req-", i)},
		{Type: auditfmt.SignDecided, Actor: "CN=signer", KeyID: "k1", RequestID: fmt.Sprint("req-", i),
			Decision: auditfmt.Allow, Reason: "rule 1", Details: map[string]string{"chain_id": "1"}},
		{Type: auditfmt.Signed, KeyID: "k1", RequestID: fmt.Sprint("req-", i)},
	}
	return evs[i%len(evs)]
}

// fakeStore is an in-memory Store that checks the chain like the keystore
// and can fail an append before or after persisting it.
type fakeStore struct {
	t  testing.TB
	mu sync.Mutex

	entries []keystore.AuditEntry
	// failBefore fails the next appends without persisting; failAfter
	// persists them, then fails (an acknowledgement lost).
	failBefore, failAfter int
	closed                bool
}

var errDisk = errors.New("fake store: injected failure")

func (f *fakeStore) AppendAudit(_ context.Context, e keystore.AuditEntry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed:
		return keystore.ErrClosed
	case f.failBefore > 0:
		f.failBefore--
		return errDisk
	}
	if err := f.extends(e); err != nil {
		return err
	}
	f.entries = append(f.entries, keystore.AuditEntry{
		Seq: e.Seq, PrevHash: bytes.Clone(e.PrevHash), Entry: bytes.Clone(e.Entry), Hash: bytes.Clone(e.Hash),
	})
	if f.failAfter > 0 {
		f.failAfter--
		return errDisk
	}
	return nil
}

// extends is the keystore's chain check; a Log must never trip it.
func (f *fakeStore) extends(e keystore.AuditEntry) error {
	var last keystore.AuditEntry
	if n := len(f.entries); n > 0 {
		last = f.entries[n-1]
	}
	if e.Seq != last.Seq+1 || (last.Seq > 0 && !bytes.Equal(e.PrevHash, last.Hash)) {
		f.t.Errorf("fake store: entry %d does not extend entry %d", e.Seq, last.Seq)
		return keystore.ErrAuditChain
	}
	return nil
}

func (f *fakeStore) LastAudit(context.Context) (keystore.AuditEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return keystore.AuditEntry{}, keystore.ErrClosed
	}
	if len(f.entries) == 0 {
		return keystore.AuditEntry{}, keystore.ErrNotFound
	}
	return f.entries[len(f.entries)-1], nil
}

func (f *fakeStore) ReadAudit(_ context.Context, from uint64, limit int) ([]keystore.AuditEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, keystore.ErrClosed
	}
	var out []keystore.AuditEntry
	for _, e := range f.entries {
		if e.Seq >= from && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *fakeStore) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.entries)
}
