package api

import (
	"slices"
	"strings"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// FuzzParseParties: the party list of CreateKey comes from a caller. An
// accepted list has 2 to 16 distinct IDs of 1 to 64 printable ASCII
// characters, this cosigner among them, in the caller's order; a refusal
// never quotes the input.
func FuzzParseParties(f *testing.F) {
	f.Add("co-1\nco-2\nco-3")
	f.Add("co-1\nco-1")
	f.Add("co-2\nco-3")
	f.Add("co-1\nco-\x7f")
	f.Fuzz(func(t *testing.T, joined string) {
		ids := strings.Split(joined, "\n")
		got, err := parseParties(ids, "co-1")
		if err != nil {
			if len(joined) > 8 && strings.Contains(err.Error(), joined) {
				t.Fatalf("error %q quotes the input", err)
			}
			return
		}
		if len(got) < mpc.MinParties || len(got) > mpc.MaxParties || !slices.Contains(got, "co-1") {
			t.Fatalf("accepted %q", ids)
		}
		for i, p := range got {
			if string(p) != ids[i] || !printableASCII(ids[i], MaxPartyIDLen) || slices.Contains(got[:i], p) {
				t.Fatalf("accepted %q", ids)
			}
		}
	})
}
