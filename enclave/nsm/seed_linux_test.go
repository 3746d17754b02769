package nsm

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
)

func TestSeedKernelRNG(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("RNDADDENTROPY needs root")
	}
	if err := SeedKernelRNG(bytes.NewReader(make([]byte, SeedBytes))); err != nil {
		t.Fatal(err)
	}
}

func TestSeedKernelRNGShortSource(t *testing.T) {
	err := SeedKernelRNG(bytes.NewReader(make([]byte, SeedBytes-1)))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want a short-read error", err)
	}
}
