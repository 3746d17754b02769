package audit

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	auditfmt "github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

func appendN(t testing.TB, l *Log, n int) []auditfmt.Record {
	t.Helper()
	var recs []auditfmt.Record
	for i := range n {
		r, err := l.Append(context.Background(), event(i))
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		recs = append(recs, r)
	}
	return recs
}

func exportAndVerify(t *testing.T, l *Log, from uint64, signer auditfmt.Signer) auditfmt.Summary {
	t.Helper()
	var buf bytes.Buffer
	if _, err := l.Export(context.Background(), &buf, from); err != nil {
		t.Fatalf("export from %d: %v", from, err)
	}
	sum, err := auditfmt.Verify(&buf, auditfmt.VerifyOptions{IdentityKey: signer.Public()})
	if err != nil {
		t.Fatalf("export from %d does not verify: %v", from, err)
	}
	return sum
}

func TestAppendExportVerify(t *testing.T) {
	signer := testSigner("a")
	l := newLog(t, newKeystore(t), signer)
	recs := appendN(t, l, 10)
	for i, r := range recs {
		if r.Entry.Seq != uint64(i+1) || (i > 0 && r.Entry.PrevHash != recs[i-1].Hash) {
			t.Fatalf("record %d: seq %d does not chain", i, r.Entry.Seq)
		}
	}
	sum := exportAndVerify(t, l, 0, signer)
	if sum.FirstSeq != 1 || sum.LastSeq != 10 || sum.LastHash != recs[9].Hash ||
		string(sum.Attestation) != "attestation document" || sum.Types[auditfmt.SignDecided] != 2 {
		t.Fatalf("summary %+v", sum)
	}
	if sum := exportAndVerify(t, l, 4, signer); sum.FirstSeq != 4 || sum.PrevHash != recs[2].Hash || sum.Entries() != 7 {
		t.Fatalf("export from 4: %+v", sum)
	}
	if sum := exportAndVerify(t, l, 11, signer); sum.Entries() != 0 || sum.PrevHash != recs[9].Hash {
		t.Fatalf("empty export: %+v", sum)
	}
	if _, err := l.Export(context.Background(), &bytes.Buffer{}, 12); !errors.Is(err, ErrRange) {
		t.Fatalf("export past the end: %v", err)
	}
}

func TestExportOfEmptyLog(t *testing.T) {
	signer := testSigner("a")
	l := newLog(t, newKeystore(t), signer)
	if sum := exportAndVerify(t, l, 1, signer); sum.Entries() != 0 {
		t.Fatalf("summary %+v", sum)
	}
}

func TestRead(t *testing.T) {
	l := newLog(t, newKeystore(t), testSigner("a"))
	want := appendN(t, l, 5)
	got, err := l.Read(context.Background(), 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Hash != want[1].Hash || got[2].Hash != want[3].Hash {
		t.Fatalf("Read(2, 3) = %d records", len(got))
	}
	for _, limit := range []int{0, MaxPage + 1} {
		if _, err := l.Read(context.Background(), 1, limit); err == nil {
			t.Errorf("Read with limit %d succeeded", limit)
		}
	}
}

// TestAppendFailsWhenStoreClosed: with the keystore gone, Append fails and
// the guarded action does not run.
func TestAppendFailsWhenStoreClosed(t *testing.T) {
	store := newKeystore(t)
	l := newLog(t, store, testSigner("a"))
	appendN(t, l, 2)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	acted := false
	err := guarded(l, event(0), func() { acted = true })
	if !errors.Is(err, keystore.ErrClosed) || acted {
		t.Fatalf("closed store: err %v, acted %v", err, acted)
	}
}

// guarded is the call pattern of the package documentation.
func guarded(l *Log, ev auditfmt.Event, action func()) error {
	if _, err := l.Append(context.Background(), ev); err != nil {
		return err
	}
	action()
	return nil
}

// TestAppendFailures: a store that fails before persisting leaves no
// entry; one that persists and then fails leaves an entry for an action
// that did not happen, which is allowed. Either way the action does not
// run, and the chain continues intact.
func TestAppendFailures(t *testing.T) {
	for _, tt := range []struct {
		name        string
		before, aft int
		stored      int
	}{
		{"fails before persisting", 1, 0, 1},
		{"fails after persisting", 0, 1, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := &fakeStore{t: t}
			signer := testSigner("a")
			l := newLog(t, store, signer)
			appendN(t, l, 1)
			store.failBefore, store.failAfter = tt.before, tt.aft
			acted := false
			if err := guarded(l, event(1), func() { acted = true }); !errors.Is(err, errDisk) || acted {
				t.Fatalf("err %v, acted %v", err, acted)
			}
			if store.len() != tt.stored {
				t.Fatalf("store holds %d entries, want %d", store.len(), tt.stored)
			}
			if err := guarded(l, event(2), func() { acted = true }); err != nil || !acted {
				t.Fatalf("append after failure: err %v, acted %v", err, acted)
			}
			if sum := exportAndVerify(t, l, 1, signer); sum.LastSeq != uint64(tt.stored+1) {
				t.Fatalf("summary %+v", sum)
			}
		})
	}
}

func TestInvalidEventIsNotStored(t *testing.T) {
	store := &fakeStore{t: t}
	l := newLog(t, store, testSigner("a"))
	_, err := l.Append(context.Background(), auditfmt.Event{Type: auditfmt.SignDecided}) // no decision
	if !errors.Is(err, auditfmt.ErrInvalid) || store.len() != 0 {
		t.Fatalf("err %v, %d stored", err, store.len())
	}
}

func TestAppendGivesUpWithItsContext(t *testing.T) {
	store := &fakeStore{t: t}
	l := newLog(t, store, testSigner("a"))
	l.sem <- struct{}{} // another append holds the log
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Append(ctx, event(0)); !errors.Is(err, context.DeadlineExceeded) || store.len() != 0 {
		t.Fatalf("err %v, %d stored", err, store.len())
	}
	<-l.sem
}

// TestConcurrentAppends: parallel appends (run with -race) make one
// contiguous chain that verifies.
func TestConcurrentAppends(t *testing.T) {
	signer := testSigner("a")
	l := newLog(t, newKeystore(t), signer)
	const workers, each = 4, 25
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seqs = map[uint64]bool{}
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				r, err := l.Append(context.Background(), event(w*each+i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seqs[r.Entry.Seq] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seqs) != workers*each {
		t.Fatalf("%d distinct sequence numbers, want %d", len(seqs), workers*each)
	}
	if sum := exportAndVerify(t, l, 1, signer); sum.LastSeq != workers*each {
		t.Fatalf("summary %+v", sum)
	}
}

func TestStream(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // after the keystore closes
	l := newLog(t, newKeystore(t), testSigner("a"))
	want := appendN(t, l, 3)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan auditfmt.Record)
	done := make(chan error, 1)
	go func() {
		done <- l.Stream(ctx, 2, func(r auditfmt.Record) error {
			select {
			case got <- r:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	recv := func(w auditfmt.Record) {
		t.Helper()
		select {
		case r := <-got:
			if r.Hash != w.Hash {
				t.Fatalf("streamed entry %d, want %d", r.Entry.Seq, w.Entry.Seq)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("entry %d not streamed", w.Entry.Seq)
		}
	}
	recv(want[1])
	recv(want[2])
	for _, w := range appendN(t, l, 3) {
		recv(w)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Stream returned %v", err)
	}
}

func TestStreamStopsOnCallbackError(t *testing.T) {
	l := newLog(t, newKeystore(t), testSigner("a"))
	appendN(t, l, 2)
	stop := errors.New("client gone")
	if err := l.Stream(context.Background(), 1, func(auditfmt.Record) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("Stream returned %v", err)
	}
}

func TestNewRefusesAForeignLog(t *testing.T) {
	store := newKeystore(t)
	appendN(t, newLog(t, store, testSigner("a")), 2)
	if _, err := New(context.Background(), Config{CosignerID: "co-1", Store: store, Signer: testSigner("b")}); err == nil {
		t.Fatal("New accepted a log signed by another key")
	}
	if _, err := New(context.Background(), Config{CosignerID: "co-2", Store: store, Signer: testSigner("a")}); err == nil {
		t.Fatal("New accepted a log of another cosigner")
	}
	if _, err := New(context.Background(), Config{CosignerID: "co 1", Store: store, Signer: testSigner("a")}); err == nil {
		t.Fatal("New accepted a malformed cosigner ID")
	}
}

// TestTamperedStoreIsNotServed: an entry altered in the store is refused
// by Read and Export rather than handed out.
func TestTamperedStoreIsNotServed(t *testing.T) {
	store := &fakeStore{t: t}
	l := newLog(t, store, testSigner("a"))
	appendN(t, l, 3)
	store.entries[1].Entry[len(store.entries[1].Entry)-1] ^= 1
	if _, err := l.Read(context.Background(), 1, 10); err == nil {
		t.Fatal("Read served a tampered entry")
	}
	var buf bytes.Buffer
	if _, err := l.Export(context.Background(), &buf, 1); err == nil {
		t.Fatal("Export succeeded over a tampered entry")
	}
	if _, err := auditfmt.Verify(&buf, auditfmt.VerifyOptions{}); err == nil {
		t.Fatal("the partial export verifies")
	}
}

func TestIdentitySigner(t *testing.T) {
	k, err := wire.GenerateIdentityKey()
	if err != nil {
		t.Fatal(err)
	}
	s := IdentitySigner(k)
	if !bytes.Equal(s.Public(), k.Public()) {
		t.Fatal("public key differs from the identity key's")
	}
	l := newLog(t, &fakeStore{t: t}, s)
	r := appendN(t, l, 1)[0]
	if _, err := auditfmt.Open(k.Public(), r.Raw, r.Sig); err != nil {
		t.Fatal(err)
	}
}
