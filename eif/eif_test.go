package eif

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/fxamacker/cbor/v2"
)

// TestReadIndependent reads images laid out by hand and checks the header,
// the sections and the PCRs against an independent computation.
func TestReadIndependent(t *testing.T) {
	_, certDER := testCert(t)
	for name, ri := range images(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			file := ri.bytes()
			img, err := Read(bytes.NewReader(file), ReadOptions{KeepData: true})
			if err != nil {
				t.Fatal(err)
			}
			if img.Header != ri.header() || img.Size != int64(len(file)) ||
				img.CRC32 != binary.BigEndian.Uint32(file[544:]) {
				t.Errorf("header %+v size %d crc %08x", img.Header, img.Size, img.CRC32)
			}
			if len(img.Sections) != len(ri.sections) {
				t.Fatalf("%d sections, want %d", len(img.Sections), len(ri.sections))
			}
			signed := false
			for i, s := range img.Sections {
				want := ri.sections[i]
				if uint16(s.Type) != want.typ || s.Size != uint64(len(want.data)) || !bytes.Equal(s.Data, want.data) {
					t.Errorf("section %d: %s of %d bytes, want type %d of %d", i, s.Type, s.Size, want.typ, len(want.data))
				}
				signed = signed || want.typ == 4
			}
			p0, p1, p2 := ri.pcrs()
			want := Measurements{PCR0: p0, PCR1: p1, PCR2: p2}
			if signed {
				want.PCR8, want.Signed = extendOnce(certDER), true
			}
			if img.PCRs != want {
				t.Errorf("PCRs\n got %+v\nwant %+v", img.PCRs, want)
			}
		})
	}
}

// TestWriteIndependent checks that Write lays out the same bytes as the
// independent layout, and that Measure agrees with Read.
func TestWriteIndependent(t *testing.T) {
	for name, ri := range images(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			ms, err := Write(&buf, ri.header(), ri.sectionList())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), ri.bytes()) {
				t.Fatal("Write differs from the independent layout")
			}
			img, err := Read(&buf, ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if img.PCRs != ms {
				t.Errorf("Write's measurements %+v, Read's %+v", ms, img.PCRs)
			}
			if m2, err := Measure(ri.header(), ri.sectionList()); err != nil || m2 != ms {
				t.Errorf("Measure = %+v, %v", m2, err)
			}
		})
	}
}

// TestPCR3AWSExample checks PCR3 against the worked example of the AWS
// Nitro Enclaves User Guide ("Where to get an enclave's measurements"):
// the role arn:aws:iam::123456789012:role/Webserver.
func TestPCR3AWSExample(t *testing.T) {
	const want = "78fce75db17cd4e0a3fb8dad3ad128ca5e77edbb2b2c7f75329dccd99aa5f6ef4fc1f1a452e315b9e98f9e312e6921e6"
	if got := PCR3("arn:aws:iam::123456789012:role/Webserver").String(); got != want {
		t.Fatalf("PCR3 = %s, want %s", got, want)
	}
}

func TestPCRFunctions(t *testing.T) {
	_, der := testCert(t)
	// The SHA-384 of the certificate's DER, from sha384sum (testdata/README.md).
	const certDigest = "4bb78bafcd0e46bc0adf56ec6b3d0be2cfaf2f31f12586a1aee74078891dc0cad6a865442f182ba08833f4e1db5d37bb"
	digest, _ := hex.DecodeString(certDigest)
	if got, want := PCR8(der), (PCR{}).Extend(digest); got != want {
		t.Errorf("PCR8 = %s, want %s", got, want)
	}
	if got, want := ContentPCR([]byte("ab"), []byte("c")), extendOnce([]byte("abc")); got != want {
		t.Errorf("ContentPCR = %s, want %s", got, want)
	}
	if PCR4("i-1234567890abcdef0") != (PCR{}).Extend([]byte("i-1234567890abcdef0")) {
		t.Error("PCR4 is not the raw extend of the instance ID")
	}
}

// TestReadKeepData checks that without KeepData only the small sections
// are kept.
func TestReadKeepData(t *testing.T) {
	ri := images(t)["v4 signed"]
	img, err := Read(bytes.NewReader(ri.bytes()), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range img.Sections {
		kept := s.Data != nil || s.Size == 0
		if small := maxSmall(s.Type) > 0; kept != small {
			t.Errorf("%s section: data kept %v", s.Type, kept)
		}
	}
}

// TestSignatureByteStrings accepts byte strings where serde writes arrays
// of integers, and measures the same PCR8.
func TestSignatureByteStrings(t *testing.T) {
	certPEM, der := testCert(t)
	sig, err := cbor.Marshal([]map[string][]byte{{"signing_certificate": certPEM, "signature": []byte("sig")}})
	if err != nil {
		t.Fatal(err)
	}
	ri := images(t)["v3 signed"]
	ri.sections[len(ri.sections)-1].data = sig
	img, err := Read(bytes.NewReader(ri.bytes()), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !img.PCRs.Signed || img.PCRs.PCR8 != extendOnce(der) {
		t.Fatalf("PCR8 = %s (signed %v)", img.PCRs.PCR8, img.PCRs.Signed)
	}
}

// mutation changes a valid image; the CRC is fixed afterwards unless
// keepCRC, so that the check under test is the one that fails.
type mutation struct {
	name, base string
	edit       func(t *testing.T, b []byte) []byte
	keepCRC    bool
	want       string
}

func put16(off int, v uint16) func(*testing.T, []byte) []byte {
	return func(_ *testing.T, b []byte) []byte { binary.BigEndian.PutUint16(b[off:], v); return b }
}

func put64(off int, v uint64) func(*testing.T, []byte) []byte {
	return func(_ *testing.T, b []byte) []byte { binary.BigEndian.PutUint64(b[off:], v); return b }
}

// sectionAt returns the offset of section i's header in b.
func sectionAt(b []byte, i int) int { return int(binary.BigEndian.Uint64(b[28+8*i:])) }

func TestReadRejects(t *testing.T) {
	imgs := images(t)
	rebuild := func(base string, edit func(ri *rawImage)) func(*testing.T, []byte) []byte {
		return func(*testing.T, []byte) []byte {
			ri := imgs[base]
			ri.sections = append([]rawSection(nil), ri.sections...)
			edit(&ri)
			return ri.bytes()
		}
	}
	cases := []mutation{
		{"magic", "v4 unsigned", func(_ *testing.T, b []byte) []byte { b[0] = 'E'; return b }, false, "no EIF magic"},
		{"version 1", "v4 unsigned", put16(4, 1), false, "unsupported version 1"},
		{"version 5", "v4 unsigned", put16(4, 5), false, "unsupported version 5"},
		{"unknown flag", "v4 unsigned", put16(6, 2), false, "unknown header flags"},
		{"reserved", "v4 unsigned", put16(24, 1), false, "reserved header fields"},
		{"unused", "v4 unsigned", func(_ *testing.T, b []byte) []byte { b[543] = 1; return b }, false, "reserved header fields"},
		{"two sections", "v4 unsigned", put16(26, 2), false, "2 sections"},
		{"33 sections", "v4 unsigned", put16(26, 33), false, "33 sections"},
		{"first offset", "v4 unsigned", put64(28, 549), false, "section 0 is at offset 549"},
		{"stray table entry", "v4 unsigned", put64(28+8*31, 1), false, "entry 31 is set"},
		{"size beyond limit", "v4 unsigned", put64(284, 1<<40), false, "beyond the"},
		{"table size disagrees", "v4 unsigned", func(_ *testing.T, b []byte) []byte {
			off := sectionAt(b, 1)
			binary.BigEndian.PutUint64(b[off+4:], binary.BigEndian.Uint64(b[off+4:])+1)
			return b
		}, false, "section 1 is"},
		{"section flags", "v4 unsigned", func(_ *testing.T, b []byte) []byte { b[sectionAt(b, 2)+3] = 1; return b }, false, "flags set"},
		{"section type 0", "v4 unsigned", func(_ *testing.T, b []byte) []byte { b[sectionAt(b, 3)+1] = 0; return b }, false, "unknown type 0"},
		{"section type 6", "v4 unsigned", func(_ *testing.T, b []byte) []byte { b[sectionAt(b, 3)+1] = 6; return b }, false, "unknown type 6"},
		{"cmdline first", "v4 unsigned", rebuild("v4 unsigned", func(ri *rawImage) {
			ri.sections[0], ri.sections[1] = ri.sections[1], ri.sections[0]
		}), false, "section 0 is cmdline, want kernel"},
		{"kernel second", "v4 unsigned", rebuild("v4 unsigned", func(ri *rawImage) { ri.sections[1].typ = 1 }), false, "section 1 is kernel"},
		{"empty kernel", "v4 unsigned", rebuild("v4 unsigned", func(ri *rawImage) { ri.sections[0].data = nil }), false, "kernel section is empty"},
		{"metadata in v3", "v3 signed", rebuild("v3 signed", func(ri *rawImage) {
			ri.sections = append(ri.sections[:2], append([]rawSection{{5, []byte("{}")}}, ri.sections[2:]...)...)
		}), false, "metadata section is allowed once"},
		{"metadata after ramdisk", "v4 unsigned", rebuild("v4 unsigned", func(ri *rawImage) {
			ri.sections[2], ri.sections[3] = ri.sections[3], ri.sections[2]
		}), false, "metadata section is allowed once"},
		{"signature in v2", "v2 empty cmdline", rebuild("v3 signed", func(ri *rawImage) { ri.version = 2 }), false, "signature section is allowed once"},
		{"two signatures", "v3 signed", rebuild("v3 signed", func(ri *rawImage) {
			ri.sections = append(ri.sections, ri.sections[len(ri.sections)-1])
		}), false, "follows the signature"},
		{"ramdisk after signature", "v3 signed", rebuild("v3 signed", func(ri *rawImage) {
			ri.sections = append(ri.sections, rawSection{3, []byte("late")})
		}), false, "follows the signature"},
		{"no ramdisk", "v4 unsigned", rebuild("v4 unsigned", func(ri *rawImage) { ri.sections = ri.sections[:3] }), false, "no ramdisk"},
		{"NUL in cmdline", "v4 unsigned", rebuild("v4 unsigned", func(ri *rawImage) { ri.sections[1].data = []byte("a\x00b") }), false, "NUL"},
		{"cmdline too long", "v4 unsigned", rebuild("v4 unsigned", func(ri *rawImage) {
			ri.sections[1].data = bytes.Repeat([]byte("a"), MaxCmdlineSize+1)
		}), false, "cmdline section is"},
		{"metadata not JSON", "v4 unsigned", rebuild("v4 unsigned", func(ri *rawImage) { ri.sections[2].data = []byte("{") }), false, "not JSON"},
		{"signature not CBOR", "v3 signed", rebuild("v3 signed", func(ri *rawImage) { ri.sections[4].data = []byte{0xff} }), false, "not a CBOR array"},
		{"signature empty array", "v3 signed", rebuild("v3 signed", func(ri *rawImage) { ri.sections[4].data = []byte{0x80} }), false, "holds no signature"},
		{"signature not PEM", "v3 signed", rebuild("v3 signed", func(ri *rawImage) {
			ri.sections[4].data = serdeSignature(t, []byte("not a certificate"), []byte("s"))
		}), false, "not one PEM CERTIFICATE"},
		{"signature bad DER", "v3 signed", rebuild("v3 signed", func(ri *rawImage) {
			ri.sections[4].data = serdeSignature(t, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), []byte("s"))
		}), false, "does not parse"},
		{"signature without signature", "v3 signed", rebuild("v3 signed", func(ri *rawImage) {
			pemBytes, _ := testCert(t)
			ri.sections[4].data = serdeSignature(t, pemBytes, nil)
		}), false, "lacks its certificate or its signature"},
		{"trailing byte", "v4 unsigned", func(_ *testing.T, b []byte) []byte { return append(b, 0) }, false, "bytes follow the last section"},
		{"truncated data", "v4 unsigned", func(_ *testing.T, b []byte) []byte { return b[:len(b)-1] }, false, "ends inside section data"},
		{"truncated section header", "v4 unsigned", func(_ *testing.T, b []byte) []byte { return b[:sectionAt(b, 4)+5] }, false, "ends inside a section header"},
		{"truncated header", "v4 unsigned", func(_ *testing.T, b []byte) []byte { return b[:100] }, true, "ends inside the header"},
		{"empty file", "v4 unsigned", func(_ *testing.T, b []byte) []byte { return nil }, true, "ends inside the header"},
		{"CRC", "v4 unsigned", func(_ *testing.T, b []byte) []byte { b[len(b)-1] ^= 1; return b }, true, "CRC32 mismatch"},
		{"CRC field", "v4 unsigned", func(_ *testing.T, b []byte) []byte { b[547] ^= 1; return b }, true, "CRC32 mismatch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := c.edit(t, imgs[c.base].bytes())
			if !c.keepCRC {
				fixCRC(b)
			}
			_, err := Read(bytes.NewReader(b), ReadOptions{MaxSize: 1 << 30})
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Read error %v, want ErrMalformed with %q", err, c.want)
			}
		})
	}
}

// TestReadMaxSize refuses a file larger than MaxSize before reading its
// sections.
func TestReadMaxSize(t *testing.T) {
	b := images(t)["v4 unsigned"].bytes()
	r := &countingReader{r: bytes.NewReader(b)}
	_, err := Read(r, ReadOptions{MaxSize: int64(len(b) - 1)})
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("Read error %v", err)
	}
	if r.n != HeaderSize {
		t.Errorf("Read read %d bytes before refusing, want the %d of the header", r.n, HeaderSize)
	}
	if _, err := Read(bytes.NewReader(b), ReadOptions{MaxSize: int64(len(b))}); err != nil {
		t.Fatalf("a file of exactly MaxSize: %v", err)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestReadIOError returns a reader's own error, not ErrMalformed.
func TestReadIOError(t *testing.T) {
	b := images(t)["v4 unsigned"].bytes()
	boom := errors.New("disk on fire")
	for _, at := range []int{10, 600, len(b) - 1, len(b)} {
		r := io.MultiReader(bytes.NewReader(b[:at]), iotest.ErrReader(boom))
		if _, err := Read(r, ReadOptions{}); !errors.Is(err, boom) || errors.Is(err, ErrMalformed) {
			t.Errorf("error after %d bytes: %v", at, err)
		}
	}
	// One byte at a time still reads.
	if _, err := Read(iotest.OneByteReader(bytes.NewReader(b)), ReadOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestWriteRejects(t *testing.T) {
	ri := images(t)["v4 unsigned"]
	for name, edit := range map[string]func(h *Header, s []Section) []Section{
		"version":       func(h *Header, s []Section) []Section { h.Version = 9; return s },
		"flags":         func(h *Header, s []Section) []Section { h.Flags = 4; return s },
		"size mismatch": func(h *Header, s []Section) []Section { s[1].Size = 1; return s },
		"order":         func(h *Header, s []Section) []Section { s[0], s[1] = s[1], s[0]; return s },
		"no ramdisk":    func(h *Header, s []Section) []Section { return s[:3] },
		"too many": func(h *Header, s []Section) []Section {
			for len(s) <= MaxSections {
				s = append(s, Section{Type: SectionRamdisk, Data: []byte("r")})
			}
			return s
		},
		"unknown type": func(h *Header, s []Section) []Section { s[4].Type = 9; return s },
		"bad metadata": func(h *Header, s []Section) []Section { s[2].Data = []byte("x"); s[2].Size = 0; return s },
	} {
		t.Run(name, func(t *testing.T) {
			h := ri.header()
			s := edit(&h, ri.sectionList())
			var buf bytes.Buffer
			if _, err := Write(&buf, h, s); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Write error %v, want ErrMalformed", err)
			}
			if buf.Len() != 0 {
				t.Error("Write wrote something before failing")
			}
		})
	}
}

func TestSectionTypeString(t *testing.T) {
	if SectionRamdisk.String() != "ramdisk" || SectionType(42).String() != "type 42" {
		t.Fatal(SectionRamdisk.String(), SectionType(42).String())
	}
	if (Header{Flags: FlagArm64}).Arch() != "aarch64" || (Header{}).Arch() != "x86_64" {
		t.Fatal("Arch")
	}
}

// TestMarshalSignature matches the independent serde-style encoding.
func TestMarshalSignature(t *testing.T) {
	certPEM, _ := testCert(t)
	got, err := MarshalSignature(certPEM, []byte("cose"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, serdeSignature(t, certPEM, []byte("cose"))) {
		t.Fatal("MarshalSignature differs from the serde encoding")
	}
	// array(1), map(2), text(19) "signing_certificate", array(len) of
	// uint, the first being '-' (0x2d, a small uint in one byte).
	prefix := append([]byte{0x81, 0xa2, 0x73}, "signing_certificate"...)
	prefix = binary.BigEndian.AppendUint16(append(prefix, 0x99), uint16(len(certPEM)))
	if !bytes.HasPrefix(got, append(prefix, 0x18, '-')) {
		t.Fatalf("MarshalSignature starts % x", got[:32])
	}
	if _, err := MarshalSignature([]byte("no cert"), []byte("cose")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a bad certificate: %v", err)
	}
}
