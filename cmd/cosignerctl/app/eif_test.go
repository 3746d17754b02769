package app

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/eif"
)

// TestEIFInspectExitCodes checks the exit codes testscript cannot tell
// apart: 0 for a good image, 1 for a corrupt one, 2 for usage errors and
// unreadable files.
func TestEIFInspectExitCodes(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	ms, err := eif.Write(&buf, eif.Header{Version: 4, DefaultMemory: 1 << 30, DefaultCPUs: 2}, []eif.Section{
		{Type: eif.SectionKernel, Data: []byte("k")},
		{Type: eif.SectionCmdline, Data: []byte("c")},
		{Type: eif.SectionRamdisk, Data: bytes.Repeat([]byte("r"), 3<<20)},
	})
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.eif")
	writeFile(t, good, buf.Bytes())
	bad := filepath.Join(dir, "bad.eif")
	writeFile(t, bad, append(buf.Bytes(), 0))

	code, out, _ := runCtl("eif", "inspect", "--json", good)
	if code != ExitOK {
		t.Fatalf("good image: exit %d", code)
	}
	var got eifJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.PCRs["0"] != ms.PCR0.String() || got.PCRs["2"] != ms.PCR2.String() || len(got.PCRs) != 3 {
		t.Errorf("PCRs %v, want those Write computed", got.PCRs)
	}
	// 3 MiB and a bit, four times over, rounded up.
	if got.MinEnclaveMemoryMiB != 13 {
		t.Errorf("min_enclave_memory_mib %d, want 13", got.MinEnclaveMemoryMiB)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{bad}, ExitFail, "invalid: eif: malformed image: bytes follow the last section"},
		{[]string{filepath.Join(dir, "missing.eif")}, ExitUsage, "no such file"},
		{[]string{dir}, ExitUsage, "is a directory"},
		{nil, ExitUsage, "want 1 argument"},
		{[]string{good, good}, ExitUsage, "want 1 argument"},
	} {
		code, out, errOut := runCtl(append([]string{"eif", "inspect"}, c.args...)...)
		if code != c.code || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("eif inspect %v: exit %d, stdout %q, stderr %q; want %d and %q", c.args, code, out, errOut, c.code, c.want)
		}
	}
}

// runCtl runs cosignerctl with args and returns its exit code and output.
func runCtl(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, IO{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

func TestMinEnclaveMemory(t *testing.T) {
	for size, want := range map[int64]int64{0: 0, 1: 1, 256 << 10: 1, 256<<10 + 1: 2, 100 << 20: 400} {
		if got := minEnclaveMemoryMiB(size); got != want {
			t.Errorf("minEnclaveMemoryMiB(%d) = %d, want %d", size, got, want)
		}
	}
}
