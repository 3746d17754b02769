package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestVerifyValid(t *testing.T) {
	s := testKey("a")
	b := fullExport(t, s, 6)
	sum, err := Verify(bytes.NewReader(b), VerifyOptions{IdentityKey: s.Public()})
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case sum.CosignerID != "co-1" || !sum.Pinned || !bytes.Equal(sum.IdentityKey, s.Public()):
		t.Errorf("summary header fields: %+v", sum)
	case sum.FirstSeq != 1 || sum.LastSeq != 6 || sum.Entries() != 6:
		t.Errorf("summary range: %+v", sum)
	case !sum.ExportedAt.Equal(t0.Add(time.Hour)):
		t.Errorf("exported at %v", sum.ExportedAt)
	case sum.Types[KeyCreated] != 2 || sum.Types[SignDecided] != 1 || sum.Types[PolicyChanged] != 1:
		t.Errorf("type counts %v", sum.Types)
	case sum.LastHash != chain(t, s, 6)[5].Hash:
		t.Errorf("last hash %x", sum.LastHash)
	}
	sum, err = Verify(bytes.NewReader(b), VerifyOptions{})
	if err != nil || sum.Pinned {
		t.Fatalf("unpinned: %+v, %v", sum, err)
	}
}

func TestVerifyEmptyAndPartialExports(t *testing.T) {
	s := testKey("a")
	recs := chain(t, s, 5)
	tests := map[string]struct {
		h    Header
		recs []Record
	}{
		"empty log":      {Header{CosignerID: "co-1", FirstSeq: 1}, nil},
		"from 3":         {Header{CosignerID: "co-1", FirstSeq: 3, PrevHash: recs[1].Hash}, recs[2:]},
		"from 6, none":   {Header{CosignerID: "co-1", FirstSeq: 6, PrevHash: recs[4].Hash}, nil},
		"with document":  {Header{CosignerID: "co-1", FirstSeq: 1, Attestation: []byte("doc")}, recs},
		"one entry only": {Header{CosignerID: "co-1", FirstSeq: 1}, recs[:1]},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sum, err := Verify(bytes.NewReader(export(t, s, tt.h, tt.recs)), VerifyOptions{IdentityKey: s.Public()})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Entries() != uint64(len(tt.recs)) || sum.FirstSeq != tt.h.FirstSeq ||
				sum.PrevHash != tt.h.PrevHash || !bytes.Equal(sum.Attestation, tt.h.Attestation) {
				t.Fatalf("summary %+v", sum)
			}
		})
	}
}

// TestTamperEveryByte changes every byte of every entry line, in several
// ways: verification must fail naming that entry. Changes to the header
// fail (naming the header or the first entry whose signature no longer
// verifies), changes to the end record name the entry after the last.
// Each line is checked by a reader that already verified the lines before
// it (the same state Verify would have reached), so the test stays fast.
func TestTamperEveryByte(t *testing.T) {
	s := testKey("a")
	const n = 4
	b := fullExport(t, s, n)
	ls := lines(b)
	for i, l := range ls {
		base := verifiedUpTo(t, s, b, i)
		for p := range l {
			for _, v := range variants(l[p]) {
				mod := bytes.Clone(b)
				mod[offset(ls, i)+p] = v
				err := verifyFrom(base, mod, offset(ls, i))
				be, ok := errors.AsType[*BrokenLinkError](err)
				switch {
				case !ok:
					t.Fatalf("line %d byte %d = %q: got %v, want a broken link", i+1, p, v, err)
				case i > 0 && be.Seq != uint64(i): // entry i, or n+1 for the end record
					t.Fatalf("line %d byte %d = %q: got %v, want entry %d", i+1, p, v, be, i)
				}
			}
		}
	}
}

// verifiedUpTo returns a reader that verified the lines of b before line
// i (nil for i == 0: nothing to resume).
func verifiedUpTo(t *testing.T, s Signer, b []byte, i int) *reader {
	t.Helper()
	if i == 0 {
		return nil
	}
	x, err := newReader(bytes.NewReader(b), s.Public())
	if err != nil {
		t.Fatal(err)
	}
	for range i - 1 {
		if _, _, err := x.next(); err != nil {
			t.Fatal(err)
		}
	}
	return x
}

// verifyFrom resumes a copy of base on mod from byte off (or runs Verify
// on all of mod when base is nil) and returns the first error.
func verifyFrom(base *reader, mod []byte, off int) error {
	if base == nil {
		_, err := Verify(bytes.NewReader(mod), VerifyOptions{})
		return err
	}
	x := *base
	x.br = bufio.NewReaderSize(bytes.NewReader(mod[off:]), MaxLineSize)
	for {
		_, done, err := x.next()
		if err != nil || done {
			return err
		}
	}
}

// variants returns the changes tried at a byte: its low bit flipped, and
// for a letter its case (which hex and base64 decoders may not notice).
func variants(b byte) []byte {
	if b|0x20 >= 'a' && b|0x20 <= 'z' {
		return []byte{b ^ 0x01, b ^ 0x20}
	}
	return []byte{b ^ 0x01}
}

func offset(ls [][]byte, i int) int {
	n := 0
	for _, l := range ls[:i] {
		n += len(l)
	}
	return n
}

func TestTamperStructure(t *testing.T) {
	s, other := testKey("a"), testKey("b")
	b := fullExport(t, s, 5)
	ls := lines(b) // header, entries 1..5, end
	otherLs := lines(fullExport(t, other, 5))
	foreign := lines(export(t, s, Header{CosignerID: "co-2", FirstSeq: 1}, chainFor(t, s, "co-2", 5)))
	drop := func(i int) []byte { return join(append(clone(ls[:i]), ls[i+1:]...)) }
	swap := func(i, j int) []byte { c := clone(ls); c[i], c[j] = c[j], c[i]; return join(c) }
	repl := func(i int, l []byte) []byte { c := clone(ls); c[i] = l; return join(c) }
	tests := []struct {
		name   string
		in     []byte
		pin    ed25519.PublicKey
		seq    uint64
		reason string
	}{
		{"entry 3 deleted", drop(3), nil, 3, "expected entry 3, found entry 4"},
		{"entry 1 deleted", drop(1), nil, 1, "expected entry 1, found entry 2"},
		{"last entry deleted", drop(5), nil, 5, "found the end record"},
		{"entries 2 and 3 swapped", swap(2, 3), nil, 2, "expected entry 2, found entry 3"},
		{"entry 4 repeated", repl(5, ls[4]), nil, 5, "expected entry 5, found entry 4"},
		{"end record deleted", drop(6), nil, 6, "without its end record"},
		{"data after end", append(bytes.Clone(b), "{}\n"...), nil, 6, "data after the end record"},
		{"unterminated", bytes.TrimSuffix(b, []byte("\n")), nil, 6, "not terminated"},
		{"entry signed by another key", repl(2, otherLs[2]), nil, 2, "signature does not verify"},
		{"header of another key", repl(0, otherLs[0]), nil, 1, "signature does not verify"},
		{"wrong pinned key", b, other.Public(), 0, "not the pinned key"},
		{"entry of another cosigner", repl(3, foreign[3]), nil, 3, "another cosigner"},
		{"empty", nil, nil, 0, "empty export"},
		{"header only", ls[0], nil, 1, "without its end record"},
		{"not an export", []byte(`{"format":"x"}` + "\n"), nil, 0, "supported version"},
		{"long line", bytes.Repeat([]byte("x"), MaxLineSize+1), nil, 0, "longer than"},
		{"long entry line", append(bytes.Clone(ls[0]), bytes.Repeat([]byte("x"), MaxLineSize)...), nil, 1, "longer than"},
		{"end record of other export", repl(6, lines(fullExport(t, s, 6))[7]), nil, 6, "found the end record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Verify(bytes.NewReader(tt.in), VerifyOptions{IdentityKey: tt.pin})
			be := wantBroken(t, err, tt.seq)
			if !strings.Contains(be.Reason, tt.reason) {
				t.Fatalf("reason %q, want it to contain %q", be.Reason, tt.reason)
			}
		})
	}
}

// TestEndRecordCoversHeader changes the header in ways its own checks
// accept: only the end record's signature can catch them.
func TestEndRecordCoversHeader(t *testing.T) {
	s := testKey("a")
	recs := chain(t, s, 3)
	b := export(t, s, Header{CosignerID: "co-1", FirstSeq: 2, PrevHash: recs[0].Hash, Attestation: []byte("doc")}, recs[1:])
	ls := lines(b)
	h, err := parseHeader(bytes.TrimSuffix(ls[0], []byte("\n")))
	if err != nil {
		t.Fatal(err)
	}
	h.Attestation = []byte("another doc")
	ls[0] = append(h.line(), '\n')
	_, err = Verify(bytes.NewReader(join(ls)), VerifyOptions{})
	be := wantBroken(t, err, 4)
	if !strings.Contains(be.Reason, "end record signature") {
		t.Fatalf("reason %q", be.Reason)
	}
}

func TestVerifyReadError(t *testing.T) {
	b := fullExport(t, testKey("a"), 3)
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader(b[:len(b)/2]), iotest.ErrReader(boom))
	sum, err := Verify(r, VerifyOptions{})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the read error", err)
	}
	if sum.CosignerID != "" || sum.Types != nil {
		t.Fatalf("summary returned with an error: %+v", sum)
	}
}

func TestWriterRefusesGaps(t *testing.T) {
	s := testKey("a")
	recs := chain(t, s, 3)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{CosignerID: "co-1", FirstSeq: 1}, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(recs[1]); !errors.Is(err, ErrNotContiguous) {
		t.Fatalf("gap: got %v", err)
	}
	if _, err := NewWriter(&buf, Header{CosignerID: "co-1", FirstSeq: 1, IdentityKey: testKey("b").Public()}, s); err == nil {
		t.Fatal("header with another key accepted")
	}
	if _, err := NewWriter(&buf, Header{CosignerID: "co-1", FirstSeq: 1, PrevHash: recs[0].Hash}, s); err == nil {
		t.Fatal("export from 1 with a prev hash accepted")
	}
}

func TestWriterFailureIsSticky(t *testing.T) {
	s := testKey("a")
	recs := chain(t, s, 2)
	fw := &failWriter{}
	w, err := NewWriter(fw, Header{CosignerID: "co-1", FirstSeq: 1}, s)
	if err != nil {
		t.Fatal(err) // buffered: nothing written yet
	}
	for _, r := range recs {
		_ = w.Write(r)
	}
	if err := w.Close(t0); err == nil {
		t.Fatal("Close succeeded on a failing writer")
	}
	if err := w.Write(recs[0]); err == nil {
		t.Fatal("Write after failure succeeded")
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("disk full")
	}
	f.after--
	return len(p), nil
}

func chainFor(t testing.TB, s Signer, cosigner string, n int) []Record {
	t.Helper()
	var recs []Record
	var prev [HashSize]byte
	for i := range n {
		r, err := Seal(Entry{Seq: uint64(i + 1), Time: t0, CosignerID: cosigner, Event: testEvents[0], PrevHash: prev}, s)
		if err != nil {
			t.Fatal(err)
		}
		recs, prev = append(recs, r), r.Hash
	}
	return recs
}

func clone(ls [][]byte) [][]byte { return append([][]byte(nil), ls...) }
