package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

func TestSealOpenRoundTrip(t *testing.T) {
	s := testKey("a")
	for _, r := range chain(t, s, len(testEvents)) {
		got, err := Open(s.Public(), r.Raw, r.Sig)
		if err != nil {
			t.Fatalf("entry %d: %v", r.Entry.Seq, err)
		}
		if got.Hash != r.Hash || !equalEntries(got.Entry, r.Entry) {
			t.Fatalf("entry %d: round trip changed it: %+v != %+v", r.Entry.Seq, got.Entry, r.Entry)
		}
	}
}

func equalEntries(a, b Entry) bool {
	da, db := a.Details, b.Details
	a.Details, b.Details = nil, nil
	return a.Seq == b.Seq && a.Time.Equal(b.Time) && a.CosignerID == b.CosignerID &&
		a.Type == b.Type && a.Actor == b.Actor && a.KeyID == b.KeyID && a.RequestID == b.RequestID &&
		a.Decision == b.Decision && a.Reason == b.Reason && a.PrevHash == b.PrevHash && maps.Equal(da, db)
}

func TestSealNormalisesTime(t *testing.T) {
	loc := time.FixedZone("X", 3600)
	e := Entry{Seq: 1, Time: t0.Add(123456 * time.Nanosecond).In(loc), CosignerID: "co-1", Event: Event{Type: Signed}}
	r, err := Seal(e, testKey("a"))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Entry.Time.Equal(t0) || r.Entry.Time.Location() != time.UTC {
		t.Fatalf("time %v, want %v in UTC", r.Entry.Time, t0)
	}
}

func TestOpenRejectsOtherKey(t *testing.T) {
	r := chain(t, testKey("a"), 1)[0]
	if _, err := Open(testKey("b").Public(), r.Raw, r.Sig); !errors.Is(err, ErrSignature) {
		t.Fatalf("got %v, want ErrSignature", err)
	}
}

func TestEntryValidation(t *testing.T) {
	valid := func() Entry {
		return Entry{Seq: 2, Time: t0, CosignerID: "co-1", PrevHash: [HashSize]byte{1},
			Event: Event{Type: SignDecided, Decision: Allow, Details: map[string]string{"k": "v"}}}
	}
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := map[string]func(*Entry){
		"seq 0":               func(e *Entry) { e.Seq = 0 },
		"seq too big":         func(e *Entry) { e.Seq = 1 << 63 },
		"entry 1 prev hash":   func(e *Entry) { e.Seq = 1 },
		"zero time":           func(e *Entry) { e.Time = time.Time{} },
		"year 10000":          func(e *Entry) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"no cosigner":         func(e *Entry) { e.CosignerID = "" },
		"cosigner space":      func(e *Entry) { e.CosignerID = "co 1" },
		"cosigner too long":   func(e *Entry) { e.CosignerID = long(MaxCosignerIDSize + 1) },
		"no type":             func(e *Entry) { e.Type = "" },
		"type upper":          func(e *Entry) { e.Type = "Signed" },
		"type digit first":    func(e *Entry) { e.Type = "1signed" },
		"type too long":       func(e *Entry) { e.Type = Type(long(MaxTypeSize + 1)) },
		"decision unknown":    func(e *Entry) { e.Decision = "maybe" },
		"decision missing":    func(e *Entry) { e.Decision = "" },
		"actor too long":      func(e *Entry) { e.Actor = long(MaxActorSize + 1) },
		"actor newline":       func(e *Entry) { e.Actor = "a\nb" },
		"reason escape":       func(e *Entry) { e.Reason = "\x1b[2J" },
		"reason C1":           func(e *Entry) { e.Reason = "\u0085" },
		"reason line sep":     func(e *Entry) { e.Reason = "\u2028" },
		"reason bad utf-8":    func(e *Entry) { e.Reason = "\xff" },
		"reason too long":     func(e *Entry) { e.Reason = long(MaxReasonSize + 1) },
		"key ID too long":     func(e *Entry) { e.KeyID = long(MaxKeyIDSize + 1) },
		"request too long":    func(e *Entry) { e.RequestID = long(MaxRequestIDSize + 1) },
		"detail key empty":    func(e *Entry) { e.Details = map[string]string{"": "v"} },
		"detail key upper":    func(e *Entry) { e.Details = map[string]string{"Key": "v"} },
		"detail key too long": func(e *Entry) { e.Details = map[string]string{long(MaxDetailKeySize + 1): "v"} },
		"detail value long":   func(e *Entry) { e.Details = map[string]string{"k": long(MaxDetailValSize + 1)} },
		"detail value tab":    func(e *Entry) { e.Details = map[string]string{"k": "a\tb"} },
		"too many details": func(e *Entry) {
			e.Details = map[string]string{}
			for i := range MaxDetails + 1 {
				e.Details[string(rune('a'+i))] = "v"
			}
		},
	}
	if _, err := valid().Marshal(); err != nil {
		t.Fatalf("valid entry: %v", err)
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			e := valid()
			mutate(&e)
			if _, err := e.Marshal(); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Marshal: got %v, want ErrInvalid", err)
			}
		})
	}
}

// TestLargestEntryFits fills every field to its bound: the result must
// still encode within MaxEntrySize, and its line within MaxLineSize.
func TestLargestEntryFits(t *testing.T) {
	worst := func(n int) string { return strings.Repeat("<", n) } // JSON escapes '<' as 6 bytes
	e := Entry{
		Seq: 1 << 62, Time: maxTime, CosignerID: strings.Repeat("~", MaxCosignerIDSize),
		PrevHash: [HashSize]byte{1},
		Event: Event{
			Type: Type("z" + strings.Repeat("_", MaxTypeSize-1)), Actor: worst(MaxActorSize),
			KeyID: worst(MaxKeyIDSize), RequestID: worst(MaxRequestIDSize),
			Decision: Allow, Reason: worst(MaxReasonSize), Details: map[string]string{},
		},
	}
	for i := range MaxDetails {
		e.Details[strings.Repeat(string(rune('a'+i)), MaxDetailKeySize)] = worst(MaxDetailValSize)
	}
	r, err := Seal(e, testKey("a"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(entryLineOf(r)) + 1; n > MaxLineSize {
		t.Fatalf("largest entry line is %d bytes, more than %d", n, MaxLineSize)
	}
	t.Logf("largest entry: %d bytes encoded, %d bytes as a line", len(r.Raw), len(entryLineOf(r)))
}

// TestUnmarshalRejectsNonCanonical feeds encodings of a valid entry that
// differ from the canonical one.
func TestUnmarshalRejectsNonCanonical(t *testing.T) {
	r := chain(t, testKey("a"), 2)[1]
	var c entryCBOR
	if err := decMode.Unmarshal(r.Raw, &c); err != nil {
		t.Fatal(err)
	}
	nullDetails := c
	nullDetails.Details = nil
	asNull, err := cbor.EncOptions{Sort: cbor.SortCoreDeterministic}.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	unsorted, err := cbor.EncOptions{Sort: cbor.SortNone}.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	// Seq 2 encoded on two bytes (0x18 0x02) instead of one.
	longSeq := append([]byte{r.Raw[0], r.Raw[1], 0x18}, r.Raw[2:]...)
	cases := map[string][]byte{
		"long seq":       longSeq,
		"null details":   must(asNull.Marshal(nullDetails)),
		"trailing byte":  append(bytes.Clone(r.Raw), 0),
		"truncated":      r.Raw[:len(r.Raw)-1],
		"unsorted map":   unsortedDetails(t, unsorted, c),
		"version 2":      must(encMode.Marshal(withVersion(c, 2))),
		"short prevhash": must(encMode.Marshal(withPrev(c, []byte{1}))),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if bytes.Equal(b, r.Raw) {
				t.Fatal("test case is the canonical encoding")
			}
			if _, err := UnmarshalEntry(b); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}

// unsortedDetails encodes c with its details in an order other than the
// canonical one (tries until the map iteration gives one).
func unsortedDetails(t *testing.T, em cbor.EncMode, c entryCBOR) []byte {
	canonical := must(encMode.Marshal(c))
	for range 100 {
		if b := must(em.Marshal(c)); !bytes.Equal(b, canonical) {
			return b
		}
	}
	t.Skip("map order never differed")
	return nil
}

func withVersion(c entryCBOR, v uint64) entryCBOR { c.Version = v; return c }
func withPrev(c entryCBOR, p []byte) entryCBOR    { c.PrevHash = p; return c }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestClean(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"plain", 10, "plain"},
		{"a\nb\x1b", 10, "a\ufffdb\ufffd"},
		{"\xffx", 10, "\ufffdx"},
		{"héllo", 2, "h"}, // 'é' is two bytes: cut before it
		{"\u2028", 10, "\ufffd"},
	}
	for _, tt := range tests {
		got := Clean(tt.in, tt.max)
		if got != tt.want {
			t.Errorf("Clean(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
		if !validText(got, tt.max) {
			t.Errorf("Clean(%q, %d) = %q is not valid text", tt.in, tt.max, got)
		}
	}
}

func TestSignerRedacts(t *testing.T) {
	seed := sha256.Sum256([]byte("audit test key a"))
	s := testKey("a")
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		out := strings.ToLower(fmt.Sprintf(f, s))
		if strings.Contains(out, hex.EncodeToString(seed[:4])) || !strings.Contains(out, "redacted") {
			t.Errorf("%s printed %q", f, out)
		}
	}
}
