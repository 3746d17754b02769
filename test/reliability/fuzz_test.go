//go:build !release

package reliability_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/test/internal/mpcharness"
)

// fuzzInventory lists every parser of input the enclave (or a client, or
// the parent) must not trust, and its fuzz target, by package directory.
// docs/reliability.md has the same table with each input's source. Seed
// corpora (f.Add and testdata/fuzz) run in every `go test`, so in make
// test; `make fuzz FUZZTIME=...` fuzzes each target.
var fuzzInventory = map[string][]string{
	"pkg/wire":         {"FuzzParseFrame", "FuzzReceive", "FuzzSealReceive"}, // MPC frames from the broker
	"pkg/attestation":  {"FuzzParse", "FuzzVerify"},                          // attestation documents
	"pkg/link":         {"FuzzParse", "FuzzRead"},                            // enclave <-> parent records
	"pkg/cms":          {"FuzzParse", "FuzzDecrypt"},                         // KMS CiphertextForRecipient
	"pkg/audit":        {"FuzzVerify", "FuzzUnmarshalEntry"},                 // exported audit logs
	"pkg/apiclient":    {"FuzzVerify"},                                       // a server's GetAttestation answer
	"pkg/transport":    {"FuzzParseAddr"},                                    // addresses in configuration
	"enclave/coord":    {"FuzzDecode"},                                       // control messages from peers
	"enclave/mpc":      {"FuzzDecodeMessage", "FuzzParseProposal"},           // protocol messages from peers
	"enclave/judge":    {"FuzzDecodeSignRequest"},                            // sign requests in proposals
	"enclave/payload":  {"FuzzParse", "FuzzParseEth", "FuzzParseEIP712", "FuzzDecodeJSON", "FuzzParsePSBT"},
	"enclave/policy":   {"FuzzParse"},                                                    // policy documents
	"enclave/replica":  {"FuzzDecodeManifest", "FuzzOpenSegment", "FuzzParseSegmentSeq"}, // S3 state
	"enclave/sealed":   {"FuzzDecodeWrapped"},                                            // the wrapped data key in S3
	"enclave/keystore": {"FuzzDecodeChange"},                                             // change records replayed from S3
	"enclave/creds":    {"FuzzDecode"},                                                   // credentials from the parent
	"enclave/egress":   {"FuzzConnectResponse"},                                          // the parent's proxy answers
	"enclave/approval": {"FuzzVerify"},                                                   // approval callback answers
	"enclave/api": {"FuzzParseKeyName", "FuzzParseOperationName", "FuzzParsePageToken", "FuzzCheckPath",
		"FuzzCheckText", "FuzzParseParties"}, // API request fields
	"parent/broker": {"FuzzCheckID"},     // inbox names
	"parent/egress": {"FuzzParseTarget"}, // CONNECT targets from the enclave
	"pkg/kmsemu":    {"FuzzServeHTTP", "FuzzPolicy"},
}

var fuzzFunc = regexp.MustCompile(`(?m)^func (Fuzz\w+)\(f \*testing\.F\)`)

// TestFuzzInventory fails if a parser of untrusted input listed in
// fuzzInventory has lost its fuzz target, and lists targets the inventory
// does not name (new ones belong in it and in docs/reliability.md).
func TestFuzzInventory(t *testing.T) {
	root := filepath.Join("..", "..")
	found := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(mpcharness.Must(filepath.Rel(root, filepath.Dir(path))))
		for _, m := range fuzzFunc.FindAllSubmatch(b, -1) {
			found[dir] = append(found[dir], string(m[1]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n, present := 0, 0
	for dir, names := range fuzzInventory {
		for _, name := range names {
			n++
			if !slices.Contains(found[dir], name) {
				t.Errorf("%s has no fuzz target %s", dir, name)
				continue
			}
			present++
		}
	}
	for dir, names := range found {
		for _, name := range names {
			if !slices.Contains(fuzzInventory[dir], name) {
				t.Logf("fuzz target not in the inventory: %s %s", dir, name)
			}
		}
	}
	summary.add("fuzz inventory", func(r *row) {
		r.note = fmt.Sprintf("%d of %d inventoried fuzz targets present, in %d packages", present, n, len(fuzzInventory))
	})
	t.Logf("%d fuzz targets inventoried, %d present", n, present)
}
