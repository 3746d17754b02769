package cliflag

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestPCRs(t *testing.T) {
	p := PCRs{}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(p, "pcr", "")
	h48 := strings.Repeat("ab", 48)
	if err := fs.Parse([]string{"--pcr", "0=" + h48, "--pcr", "8=0x" + strings.Repeat("CD", 48)}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p[0], bytes.Repeat([]byte{0xab}, 48)) || !bytes.Equal(p[8], bytes.Repeat([]byte{0xcd}, 48)) {
		t.Fatalf("parsed %v", p)
	}
	if got := p.String(); !strings.HasPrefix(got, "0="+h48+",8=") {
		t.Fatalf("String() = %q", got)
	}
	for _, bad := range []string{"0", "x=ab", "16=" + h48, "1=" + strings.Repeat("ab", 32), "-1=" + h48, "1=zz", "1=abcd", "0=" + h48} {
		if err := p.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}

func TestHex(t *testing.T) {
	var h Hex
	if err := h.Set("0xDEADbeef"); err != nil || h.String() != "deadbeef" {
		t.Fatalf("Hex = %q, %v", h.String(), err)
	}
	if err := h.Set("abc"); err == nil {
		t.Fatal("odd-length hex accepted")
	}
}

func TestPrintDefaults(t *testing.T) {
	var out bytes.Buffer
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(&out)
	fs.String("log-level", "info", "log `level`")
	fs.Bool("json", false, "print JSON")
	PrintDefaults(fs)
	want := "  --json\n    \tprint JSON\n  --log-level level\n    \tlog level (default \"info\")\n"
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}
