package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"testing"
	"time"
)

// testKey returns a fixed identity key derived from name.
func testKey(name string) Signer {
	seed := sha256.Sum256([]byte("audit test key " + name))
	return NewEd25519Signer(ed25519.NewKeyFromSeed(seed[:]))
}

var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535e6, time.UTC)

// testEvents are events of every kind, each field used somewhere.
var testEvents = []Event{
	{Type: KeyCreated, Actor: "CN=admin-1", KeyID: "k-01", RequestID: "idem-1",
		Details: map[string]string{"scheme": "cmp-secp256k1", "threshold": "2"}},
	{Type: SignRequested, Actor: "CN=signer", KeyID: "k-01", RequestID: "req-7",
		Details: map[string]string{"payload": "eip1559", "chain_id": "1"}},
	{Type: SignDecided, Actor: "CN=signer", KeyID: "k-01", RequestID: "req-7",
		Decision: Deny, Reason: "destination not on allow list"},
	{Type: PolicyChanged, Actor: "CN=admin-1", Details: map[string]string{"version": "3"}},
}

// chain seals n entries (cycling through testEvents) from seq 1.
func chain(t testing.TB, s Signer, n int) []Record {
	t.Helper()
	var recs []Record
	var prev [HashSize]byte
	for i := range n {
		e := Entry{
			Seq: uint64(i + 1), Time: t0.Add(time.Duration(i) * time.Second),
			CosignerID: "co-1", Event: testEvents[i%len(testEvents)], PrevHash: prev,
		}
		r, err := Seal(e, s)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
		prev = r.Hash
	}
	return recs
}

// export writes recs (which must be contiguous) as an export.
func export(t testing.TB, s Signer, h Header, recs []Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func fullExport(t testing.TB, s Signer, n int) []byte {
	return export(t, s, Header{CosignerID: "co-1", FirstSeq: 1}, chain(t, s, n))
}

// wantBroken checks that err is a *BrokenLinkError at seq.
func wantBroken(t *testing.T, err error, seq uint64) *BrokenLinkError {
	t.Helper()
	be, ok := errors.AsType[*BrokenLinkError](err)
	if !ok {
		t.Fatalf("want *BrokenLinkError at %d, got %v", seq, err)
	}
	if be.Seq != seq {
		t.Fatalf("want broken link at entry %d, got %v", seq, be)
	}
	return be
}

// lines splits an export into its lines, newlines kept.
func lines(b []byte) [][]byte {
	return bytes.SplitAfter(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

func join(ls [][]byte) []byte {
	var out []byte
	for i, l := range ls {
		out = append(out, l...)
		if i == len(ls)-1 && !bytes.HasSuffix(l, []byte("\n")) {
			out = append(out, '\n')
		}
	}
	return out
}
