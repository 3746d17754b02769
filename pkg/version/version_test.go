package version

import (
	"runtime"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	old := Version
	t.Cleanup(func() { Version = old })
	Version = "v9.9.9"
	if s := String(); !strings.HasPrefix(s, "v9.9.9 (") || !strings.Contains(s, runtime.Version()) {
		t.Fatalf("String() = %q", s)
	}
	Version = ""
	if s := String(); !strings.HasPrefix(s, "devel (") {
		t.Fatalf("String() without a version = %q", s)
	}
}
