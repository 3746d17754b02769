package supervise

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeJSON(t *testing.T) {
	var run runInfo
	out := "Start allocating memory...\nStarted enclave with enclave-cid: 16, memory: 512 MiB, cpu-ids: [1, 3]\n" +
		`{"EnclaveName":"x","EnclaveID":"i-1-enc2","ProcessID":7,"EnclaveCID":16,"NumberOfCPUs":2,"CPUIDs":[1,3],"MemoryMiB":512}` + "\n"
	if err := decodeJSON([]byte(out), &run); err != nil || run.EnclaveID != "i-1-enc2" || run.EnclaveCID != 16 || run.MemoryMiB != 512 {
		t.Fatalf("run-enclave output: %+v, %v", run, err)
	}
	var list []enclaveInfo
	if err := decodeJSON([]byte("[\n  {\"EnclaveID\": \"a\", \"State\": \"RUNNING\"}\n]\n"), &list); err != nil || len(list) != 1 || !list[0].running() {
		t.Fatalf("describe-enclaves output: %+v, %v", list, err)
	}
	for _, bad := range []string{"", "Started enclave\n", "{not json\n", "null\n", "cpu-ids:\n[1, 3]\n"} {
		var v runInfo
		if err := decodeJSON([]byte(bad), &v); err == nil {
			t.Errorf("decodeJSON(%q) accepted", bad)
		}
	}
}

func TestErrText(t *testing.T) {
	got := errText([]byte("[ E26 ] Insufficient memory requested.\n\nFor more details\x1b[31m"))
	if got != ": [ E26 ] Insufficient memory requested. For more details?[31m" {
		t.Fatalf("errText = %q", got)
	}
	if long := errText([]byte(strings.Repeat("x", 2000))); len(long) != len(": ")+maxErrText+len("...") {
		t.Fatalf("errText of a long text: %d bytes", len(long))
	}
	if errText(nil) != "" {
		t.Fatal("errText(nil) not empty")
	}
}

func TestCheckMeasurements(t *testing.T) {
	want := map[int][]byte{0: {0xab, 0xcd}, 2: {0x01}}
	ok := map[string]string{"HashAlgorithm": "Sha384 { ... }", "PCR0": "ABcd", "PCR1": "ff", "PCR2": "01"}
	if err := checkMeasurements("x", ok, want); err != nil {
		t.Fatalf("matching measurements: %v", err)
	}
	for _, bad := range []map[string]string{
		{"PCR0": "abce", "PCR2": "01"},
		{"PCR0": "abcd"},
		{"PCR0": "zz", "PCR2": "01"},
		{"PCR0": "", "PCR2": "01"},
	} {
		if err := checkMeasurements("x", bad, want); !errors.Is(err, ErrPCRMismatch) {
			t.Errorf("%v: %v, want ErrPCRMismatch", bad, err)
		}
	}
	if err := checkMeasurements("x", map[string]string{}, nil); err != nil {
		t.Fatalf("nothing expected: %v", err)
	}
}
