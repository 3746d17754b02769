package eif

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"encoding/pem"
	"hash/crc32"
	"os"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// This file builds EIFs and their expected PCRs without the package's own
// code, straight from the layout in aws/aws-nitro-enclaves-image-format
// (src/defs/mod.rs, src/utils/mod.rs), so that tests compare two
// independent computations.

type rawSection struct {
	typ  uint16
	data []byte
}

type rawImage struct {
	version, flags uint16
	mem, cpus      uint64
	sections       []rawSection
}

// bytes lays the image out: a 548-byte header, then each section's
// 12-byte header and data; CRC-32 IEEE of everything but bytes 544..547.
func (ri rawImage) bytes() []byte {
	var out []byte
	out = append(out, ".eif"...)
	out = binary.BigEndian.AppendUint16(out, ri.version)
	out = binary.BigEndian.AppendUint16(out, ri.flags)
	out = binary.BigEndian.AppendUint64(out, ri.mem)
	out = binary.BigEndian.AppendUint64(out, ri.cpus)
	out = binary.BigEndian.AppendUint16(out, 0)
	out = binary.BigEndian.AppendUint16(out, uint16(len(ri.sections)))
	offsets, sizes := make([]byte, 256), make([]byte, 256)
	off := uint64(548)
	for i, s := range ri.sections {
		binary.BigEndian.PutUint64(offsets[8*i:], off)
		binary.BigEndian.PutUint64(sizes[8*i:], uint64(len(s.data)))
		off += 12 + uint64(len(s.data))
	}
	out = append(append(out, offsets...), sizes...)
	out = append(out, make([]byte, 8)...) // unused, then the CRC
	for _, s := range ri.sections {
		out = binary.BigEndian.AppendUint16(out, s.typ)
		out = binary.BigEndian.AppendUint16(out, 0)
		out = binary.BigEndian.AppendUint64(out, uint64(len(s.data)))
		out = append(out, s.data...)
	}
	fixCRC(out)
	return out
}

// fixCRC recomputes the CRC of an EIF in place (if it has a header).
func fixCRC(b []byte) {
	if len(b) < 548 {
		return
	}
	c := crc32.ChecksumIEEE(b[:544])
	c = crc32.Update(c, crc32.IEEETable, b[548:])
	binary.BigEndian.PutUint32(b[544:], c)
}

// extendOnce is SHA-384(48 zero bytes || SHA-384(data)).
func extendOnce(data []byte) PCR {
	d := sha512.Sum384(data)
	return sha512.Sum384(append(make([]byte, 48), d[:]...))
}

// pcrs computes PCR0, PCR1, PCR2 by concatenating the measured sections.
func (ri rawImage) pcrs() (p0, p1, p2 PCR) {
	var all, boot, app []byte
	ramdisks := 0
	for _, s := range ri.sections {
		switch s.typ {
		case 1, 2:
			all, boot = append(all, s.data...), append(boot, s.data...)
		case 3:
			all = append(all, s.data...)
			if ramdisks == 0 {
				boot = append(boot, s.data...)
			} else {
				app = append(app, s.data...)
			}
			ramdisks++
		}
	}
	return extendOnce(all), extendOnce(boot), extendOnce(app)
}

// sections converts ri's sections for Write.
func (ri rawImage) sectionList() []Section {
	var out []Section
	for _, s := range ri.sections {
		out = append(out, Section{Type: SectionType(s.typ), Size: uint64(len(s.data)), Data: s.data})
	}
	return out
}

func (ri rawImage) header() Header {
	return Header{Version: ri.version, Flags: ri.flags, DefaultMemory: ri.mem, DefaultCPUs: ri.cpus}
}

// testCert returns the committed test signing certificate, PEM and DER.
func testCert(t testing.TB) (pemBytes, der []byte) {
	t.Helper()
	b, err := os.ReadFile("testdata/signing-cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("testdata/signing-cert.pem: no PEM block")
	}
	return b, block.Bytes
}

// serdeSignature encodes a signature section the way serde_cbor writes
// Vec<PcrSignature>: an array of maps whose byte vectors are arrays of
// integers.
func serdeSignature(t testing.TB, certPEM []byte, sig []byte) []byte {
	t.Helper()
	ints := func(b []byte) []uint64 {
		out := make([]uint64, len(b))
		for i, c := range b {
			out[i] = uint64(c)
		}
		return out
	}
	type entry struct {
		SigningCertificate []uint64 `cbor:"signing_certificate"`
		Signature          []uint64 `cbor:"signature"`
	}
	b, err := cbor.Marshal([]entry{{ints(certPEM), ints(sig)}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const testMetadata = `{"ImageName":"cosigner-enclave","ImageVersion":"test","BuildMetadata":{"BuildTime":"2026-01-01T00:00:00Z","BuildTool":"test","BuildToolVersion":"0","OperatingSystem":"linux","KernelVersion":"test"},"DockerInfo":{},"CustomMetadata":null}`

// images returns the synthetic images the tests share.
func images(t testing.TB) map[string]rawImage {
	certPEM, _ := testCert(t)
	kernel := bytes.Repeat([]byte("KERNEL"), 1000)
	cmdline := []byte("reboot=k panic=30 pci=off nomodules console=ttyS0 random.trust_cpu=on")
	boot := bytes.Repeat([]byte{0x07, 0x07, 0x01}, 700)
	app := bytes.Repeat([]byte("application ramdisk "), 300)
	sig := serdeSignature(t, certPEM, []byte("COSE_Sign1 over PCR0 (not verified by this package)"))
	return map[string]rawImage{
		"v4 unsigned": {4, 0, 1 << 30, 2, []rawSection{
			{1, kernel}, {2, cmdline}, {5, []byte(testMetadata)}, {3, boot}, {3, app}}},
		"v4 signed": {4, 0, 1 << 30, 2, []rawSection{
			{1, kernel}, {2, cmdline}, {5, []byte(testMetadata)}, {3, boot}, {3, app}, {4, sig}}},
		"v4 three ramdisks arm64": {4, FlagArm64, 2 << 30, 4, []rawSection{
			{1, kernel}, {2, cmdline}, {5, []byte(testMetadata)}, {3, boot}, {3, app}, {3, []byte("third")}}},
		"v4 no metadata one ramdisk": {4, 0, 512 << 20, 1, []rawSection{
			{1, kernel}, {2, cmdline}, {3, boot}}},
		"v3 signed": {3, 0, 1 << 30, 2, []rawSection{
			{1, kernel}, {2, cmdline}, {3, boot}, {3, app}, {4, sig}}},
		"v2 empty cmdline": {2, 0, 1 << 30, 2, []rawSection{
			{1, kernel}, {2, nil}, {3, boot}, {3, nil}}},
	}
}
