package keystore

import (
	"bytes"
	"testing"
)

// FuzzDecodeChange: no input panics the decoder, and whatever decodes
// re-encodes to a record that decodes to the same change.
func FuzzDecodeChange(f *testing.F) {
	rec := testRecord(1, 2)
	for _, m := range []mutation{
		&putKeyChange{ID: rec.ID[:], Epoch: 2, Threshold: 1, Parties: []string{"a"}, Self: "a", Share: []byte("s"), Metadata: []byte("{}")},
		&putPolicyChange{Version: 1, Document: []byte("d")},
		&purgeIdempotencyChange{At: 5},
		&reserveSpendsChange{ID: make([]byte, 16), KeyID: rec.ID[:], At: 9, PruneBefore: 3,
			Spends: []spendEntry{{Asset: "eip155:1/native", Amount: []byte{1, 0}}}},
		&releaseSpendsChange{ID: make([]byte, 16)},
	} {
		p, err := encodeChange(7, m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.Clone(p.Reveal()))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, seq, err := decodeChange(b)
		if err != nil {
			return
		}
		p, err := encodeChange(seq, m)
		if err != nil {
			t.Fatal(err)
		}
		m2, seq2, err := decodeChange(p.Reveal())
		if err != nil || seq2 != seq || m2.op() != m.op() {
			t.Fatalf("round trip: %v", err)
		}
		p2, _ := encodeChange(seq2, m2)
		if !bytes.Equal(p.Reveal(), p2.Reveal()) {
			t.Fatal("encoding is not deterministic")
		}
	})
}
