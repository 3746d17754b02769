package audit

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzVerify feeds arbitrary exports to the verifier. It must not panic,
// must fail with a *BrokenLinkError (the input is in memory: no I/O error),
// and whatever verifies must be exactly what the writer produces for what
// was read: no second encoding of a verified export exists.
func FuzzVerify(f *testing.F) {
	s := testKey("a")
	b := fullExport(f, s, 4)
	f.Add(b)
	f.Add(export(f, s, Header{CosignerID: "co-1", FirstSeq: 1, Attestation: []byte("doc")}, nil))
	ls := lines(b)
	f.Add(join(append(clone(ls[:2]), ls[3:]...)))
	f.Add(bytes.ToUpper(b))
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		x, err := newReader(bytes.NewReader(in), nil)
		if err != nil {
			checkBroken(t, err)
			return
		}
		out := append(x.h.line(), '\n')
		for {
			rec, done, err := x.next()
			if err != nil {
				checkBroken(t, err)
				return
			}
			if done {
				break
			}
			out = append(append(out, entryLineOf(rec)...), '\n')
		}
		out = append(append(out, x.end.line()...), '\n')
		if !bytes.Equal(out, in) {
			t.Fatalf("verified export re-encodes differently:\n%q\n%q", in, out)
		}
		if _, err := Verify(bytes.NewReader(in), VerifyOptions{IdentityKey: x.h.IdentityKey}); err != nil {
			t.Fatalf("walk verified, Verify did not: %v", err)
		}
	})
}

func checkBroken(t *testing.T, err error) {
	t.Helper()
	if _, ok := errors.AsType[*BrokenLinkError](err); !ok {
		t.Fatalf("error is not a *BrokenLinkError: %v", err)
	}
}

// FuzzUnmarshalEntry checks that an entry has one encoding: whatever
// decodes re-encodes to the same bytes.
func FuzzUnmarshalEntry(f *testing.F) {
	for _, r := range chain(f, testKey("a"), len(testEvents)) {
		f.Add(r.Raw)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := UnmarshalEntry(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		out, err := e.Marshal()
		if err != nil {
			t.Fatalf("decoded entry does not encode: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("malleable: %x decodes and re-encodes as %x", in, out)
		}
	})
}
