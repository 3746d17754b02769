package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"
)

// FuzzParse: no input panics Parse; an accepted document's canonical form
// is the input itself, and re-encoding what was decoded gives a document
// with the same meaning (the same compiled rules).
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("testdata/example.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(example),
		`{"version":1}`,
		doc(`{"kinds":["eth-transaction"],"chain_ids":[1],"any_destination":true,"limits":[{"asset":"native","chain_id":1,"max_per_tx":"5"}]}`),
		doc(`{"limits":[{"asset":"btc","window_seconds":60,"max_per_window":"7"}],"deny_destinations":["BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ"]}`),
		`{"version":1,"version":2}`,
		`{"Version":1}`,
		`{"version":1,"default":null}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || d != nil {
				t.Fatalf("Parse = %v, %v", d, err)
			}
			return
		}
		if !bytes.Equal(d.Canonical(), b) {
			t.Fatal("Canonical differs from the input")
		}
		var dj documentJSON
		if err := decodeStrict(b, &dj); err != nil {
			t.Fatal(err)
		}
		re, err := json.Marshal(dj)
		if err != nil {
			t.Fatal(err)
		}
		d2, err := Parse(re)
		if err != nil {
			t.Fatalf("re-encoded document refused: %v\n%s", err, re)
		}
		d2.raw = d.raw
		if !reflect.DeepEqual(d, d2) {
			t.Fatalf("re-encoding changed the meaning:\n%s\n%s", b, re)
		}
	})
}
