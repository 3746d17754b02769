package eif

import (
	"bytes"
	"errors"
	"testing"
)

func fuzzSeeds(f *testing.F) {
	for _, ri := range images(f) {
		f.Add(ri.bytes())
	}
	tiny := rawImage{4, 0, 1 << 30, 2, []rawSection{{1, []byte("k")}, {2, []byte("c")}, {5, []byte("{}")}, {3, []byte("r")}}}
	f.Add(tiny.bytes())
	f.Add([]byte(".eif"))
	f.Add(make([]byte, HeaderSize))
}

// FuzzRead checks that Read never panics, fails on bytes only with
// ErrMalformed, and that whatever it accepts Write reproduces byte for
// byte with the same measurements (so no two accepted files mean the same
// image, and nothing in an accepted file escapes the checks).
func FuzzRead(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) { checkRoundTrip(t, in) })
}

// FuzzReadValidCRC is FuzzRead on inputs whose CRC has been fixed, so that
// the fuzzer reaches the checks that come after the layout's.
func FuzzReadValidCRC(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		fixCRC(in)
		checkRoundTrip(t, in)
	})
}

func checkRoundTrip(t *testing.T, in []byte) {
	img, err := Read(bytes.NewReader(in), ReadOptions{MaxSize: 1 << 20, KeepData: true})
	if err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("Read error %v does not wrap ErrMalformed", err)
		}
		return
	}
	var out bytes.Buffer
	ms, err := Write(&out, img.Header, img.Sections)
	if err != nil {
		t.Fatalf("Write of an accepted image: %v", err)
	}
	if !bytes.Equal(out.Bytes(), in) {
		t.Fatal("Write(Read(x)) != x")
	}
	if ms != img.PCRs {
		t.Fatalf("Write's measurements %+v differ from Read's %+v", ms, img.PCRs)
	}
}
