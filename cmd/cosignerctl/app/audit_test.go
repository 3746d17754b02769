package app

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
)

// TestAuditVerifyExitCodes checks the exit codes testscript cannot tell
// apart: 0 verified, 1 broken, 2 usage.
func TestAuditVerifyExitCodes(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := audit.NewEd25519Signer(priv)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.jsonl")
	writeFile(t, good, exportOf(t, s, 3))
	broken := filepath.Join(dir, "broken.jsonl")
	writeFile(t, broken, bytes.Replace(exportOf(t, s, 3), []byte(`"seq":2`), []byte(`"seq":3`), 1))
	pin := hex.EncodeToString(s.Public())
	tests := []struct {
		args []string
		want int
		out  string
	}{
		{[]string{"audit", "verify", "--identity", pin, good}, ExitOK, "valid: 3 entries"},
		{[]string{"audit", "verify", "--identity", pin, broken}, ExitFail, "invalid: entry 2 (line 3)"},
		{[]string{"audit", "verify", "--identity", strings.Repeat("00", 32), good}, ExitFail, "invalid: header"},
		{[]string{"audit", "verify", filepath.Join(dir, "missing")}, ExitUsage, "no such file"},
		{[]string{"audit", "verify", "--identity", "zz", good}, ExitUsage, "--identity"},
		{[]string{"audit", "verify"}, ExitUsage, "want 1 argument"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), tt.args, IO{In: strings.NewReader(""), Out: &out, Err: &errOut})
		if code != tt.want || !strings.Contains(out.String()+errOut.String(), tt.out) {
			t.Errorf("%v: exit %d, want %d; output %q%q", tt.args, code, tt.want, out.String(), errOut.String())
		}
	}
}

func exportOf(t *testing.T, s audit.Signer, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := audit.NewWriter(&buf, audit.Header{CosignerID: "co-1", FirstSeq: 1}, s)
	if err != nil {
		t.Fatal(err)
	}
	var prev [audit.HashSize]byte
	for i := range n {
		r, err := audit.Seal(audit.Entry{Seq: uint64(i + 1), Time: time.Unix(1e9, 0), CosignerID: "co-1",
			Event: audit.Event{Type: audit.AdminAction}, PrevHash: prev}, s)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
		prev = r.Hash
	}
	if err := w.Close(time.Unix(2e9, 0)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
