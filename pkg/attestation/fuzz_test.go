package attestation

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// FuzzVerify checks that Verify never panics and returns a document or an
// error, never both; and that what the parser accepts round-trips.
func FuzzVerify(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		msg, doc, err := parse(raw)
		at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		if err == nil {
			at = doc.Timestamp // the only time a real document verifies at
		}
		checkVerify(t, raw, at)
		if err == nil {
			checkRoundTrip(t, msg, doc)
		}
	})
}

// FuzzParse is the parser alone, without the costly chain verification:
// what it accepts must round-trip (parse, re-encode, parse again gives an
// equal document), and a refusal must wrap ErrMalformed.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		msg, doc, err := parse(raw)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || doc != nil {
				t.Fatalf("parse = %v, %v", doc != nil, err)
			}
			return
		}
		checkRoundTrip(t, msg, doc)
	})
}

// addSeeds seeds the corpus with the real documents, tagged and untagged.
func addSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.cbor"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
		f.Add(append([]byte{tagSign1}, raw...))
	}
	f.Add([]byte{})
	f.Add([]byte{0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0, 0x41, 0xa0, 0x40})
}

func checkVerify(t *testing.T, raw []byte, at time.Time) {
	verified, err := Verify(raw, VerifyOptions{Time: at})
	if (verified == nil) == (err == nil) {
		t.Fatalf("Verify returned document %v and error %v", verified != nil, err)
	}
	if verified != nil && !bytes.Equal(verified.Raw, raw) {
		t.Fatal("Raw differs from the input")
	}
}

func checkRoundTrip(t *testing.T, msg *sign1, doc *Document) {
	payload, err := doc.marshalPayload()
	if err != nil {
		t.Fatalf("re-encoding an accepted payload: %v", err)
	}
	again := &sign1{Protected: protectedES384, Unprotected: emptyMap, Payload: payload, Signature: msg.Signature}
	raw, err := again.encode()
	if err != nil {
		t.Fatal(err)
	}
	_, doc2, err := parse(raw)
	if err != nil {
		t.Fatalf("re-encoded document refused: %v", err)
	}
	if !equalDocuments(doc, doc2) {
		t.Fatalf("round trip changed the document:\n%+v\n%+v", doc, doc2)
	}
}

// equalDocuments compares every field but Raw, telling nil (absent) from
// empty optional fields.
func equalDocuments(a, b *Document) bool {
	return a.ModuleID == b.ModuleID &&
		a.Timestamp.Equal(b.Timestamp) &&
		a.Digest == b.Digest &&
		maps.EqualFunc(a.PCRs, b.PCRs, bytes.Equal) &&
		bytes.Equal(a.Certificate.Raw, b.Certificate.Raw) &&
		slices.EqualFunc(a.CABundle, b.CABundle, bytes.Equal) &&
		equalOptional(a.PublicKey, b.PublicKey) &&
		equalOptional(a.UserData, b.UserData) &&
		equalOptional(a.Nonce, b.Nonce)
}

func equalOptional(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}

// TestRoundTripVectors runs the fuzz property on the real documents, whose
// re-encoding must also keep AWS's field order (the definite-length vectors
// re-encode byte for byte).
func TestRoundTripVectors(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "*.cbor"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			msg, doc, err := parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			checkRoundTrip(t, msg, doc)
			payload, err := doc.marshalPayload()
			if err != nil {
				t.Fatal(err)
			}
			if msg.Payload[0] != 0xbf && !bytes.Equal(payload, msg.Payload) {
				t.Fatal("re-encoded payload differs from AWS's bytes")
			}
		})
	}
}
