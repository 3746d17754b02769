package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nitro-cosigner/nitro-cosigner/eif"
)

// TestEIFScripts runs the eif inspect scripts of testdata/eif against the
// synthetic images writeEIFFixtures puts in each script's directory.
func TestEIFScripts(t *testing.T) {
	certPEM, err := os.ReadFile("../../eif/testdata/signing-cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/eif",
		Setup: func(env *testscript.Env) error {
			return writeEIFFixtures(env.WorkDir, certPEM)
		},
	})
}

// writeEIFFixtures writes unsigned.eif and signed.eif (whose PCRs the
// scripts hold, computed with sha384sum), and damaged copies.
func writeEIFFixtures(dir string, certPEM []byte) error {
	sig, err := eif.MarshalSignature(certPEM, []byte("COSE_Sign1 placeholder"))
	if err != nil {
		return err
	}
	sections := []eif.Section{
		{Type: eif.SectionKernel, Data: []byte("kernel-bytes")},
		{Type: eif.SectionCmdline, Data: []byte("console=ttyS0 reboot=k")},
		{Type: eif.SectionMetadata, Data: []byte(`{"ImageName":"cosigner-enclave"}`)},
		{Type: eif.SectionRamdisk, Data: []byte("bootstrap-ramdisk")},
		{Type: eif.SectionRamdisk, Data: []byte("application-ramdisk")},
	}
	h := eif.Header{Version: eif.CurrentVersion, DefaultMemory: 1 << 30, DefaultCPUs: 2}
	unsigned, err := encodeEIF(h, sections)
	if err != nil {
		return err
	}
	signed, err := encodeEIF(h, append(sections, eif.Section{Type: eif.SectionSignature, Data: sig}))
	if err != nil {
		return err
	}
	badCRC := bytes.Clone(unsigned)
	badCRC[len(badCRC)-1] ^= 1
	version9 := bytes.Clone(unsigned)
	binary.BigEndian.PutUint16(version9[4:], 9)
	for name, b := range map[string][]byte{
		"unsigned.eif": unsigned, "signed.eif": signed, "badcrc.eif": badCRC,
		"truncated.eif": unsigned[:len(unsigned)-5], "version9.eif": version9,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func encodeEIF(h eif.Header, sections []eif.Section) ([]byte, error) {
	var buf bytes.Buffer
	_, err := eif.Write(&buf, h, sections)
	return buf.Bytes(), err
}
