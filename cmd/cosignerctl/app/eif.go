package app

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/nitro-cosigner/nitro-cosigner/eif"
)

// enclaveMemoryFactor is nitro-cli's rule: an enclave needs at least four
// times its EIF's size in memory.
const enclaveMemoryFactor = 4

const mib = 1 << 20

func runEIFInspect(_ context.Context, args []string, io IO) int {
	var asJSON bool
	fs := newFlagSet("eif inspect", "FILE", io)
	fs.BoolVar(&asJSON, "json", false, "print the header, sections and PCRs as JSON")
	if code, done := parse(fs, args, 1); done {
		return code
	}
	img, err := readEIF(fs.Arg(0))
	switch {
	case errors.Is(err, eif.ErrMalformed):
		fmt.Fprintf(io.Err, "invalid: %v\n", err)
		return ExitFail
	case err != nil:
		return usageError(io, "eif inspect", err)
	}
	if asJSON {
		return printJSON(io, eifOut(img))
	}
	printEIF(io, img)
	return ExitOK
}

func readEIF(name string) (*eif.Image, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return eif.Read(bufio.NewReaderSize(f, mib), eif.ReadOptions{})
}

// eifJSON is what eif inspect --json prints. PCRs are keyed like
// attestation verify's, so that the two outputs compare with jq.
type eifJSON struct {
	Version             uint16            `json:"version"`
	Arch                string            `json:"arch"`
	DefaultMemory       uint64            `json:"default_memory"`
	DefaultCPUs         uint64            `json:"default_cpus"`
	Size                int64             `json:"size"`
	CRC32               string            `json:"crc32"`
	Sections            []eifSectionJSON  `json:"sections"`
	PCRs                map[string]string `json:"pcrs"`
	MinEnclaveMemoryMiB int64             `json:"min_enclave_memory_mib"`
}

type eifSectionJSON struct {
	Type string `json:"type"`
	Size uint64 `json:"size"`
}

func eifOut(img *eif.Image) eifJSON {
	out := eifJSON{
		Version: img.Header.Version, Arch: img.Header.Arch(),
		DefaultMemory: img.Header.DefaultMemory, DefaultCPUs: img.Header.DefaultCPUs,
		Size: img.Size, CRC32: fmt.Sprintf("%08x", img.CRC32),
		PCRs:                map[string]string{},
		MinEnclaveMemoryMiB: minEnclaveMemoryMiB(img.Size),
	}
	for _, s := range img.Sections {
		out.Sections = append(out.Sections, eifSectionJSON{s.Type.String(), s.Size})
	}
	for i, p := range eifPCRs(img.PCRs) {
		out.PCRs[strconv.Itoa(i)] = p.String()
	}
	return out
}

// eifPCRs lists the PCRs an image determines: 0, 1, 2, and 8 when signed.
func eifPCRs(ms eif.Measurements) map[int]eif.PCR {
	pcrs := map[int]eif.PCR{0: ms.PCR0, 1: ms.PCR1, 2: ms.PCR2}
	if ms.Signed {
		pcrs[8] = ms.PCR8
	}
	return pcrs
}

// minEnclaveMemoryMiB is the least enclave memory nitro-cli accepts for an
// EIF of size bytes, rounded up to whole MiB.
func minEnclaveMemoryMiB(size int64) int64 {
	return (enclaveMemoryFactor*size + mib - 1) / mib
}

func printEIF(io IO, img *eif.Image) {
	h := img.Header
	fmt.Fprintf(io.Out, "EIF version %d, %s, %d bytes, CRC32 %08x (verified)\n", h.Version, h.Arch(), img.Size, img.CRC32)
	fmt.Fprintf(io.Out, "default memory %d bytes, %d CPUs\n", h.DefaultMemory, h.DefaultCPUs)
	fmt.Fprintf(io.Out, "sections:\n")
	for i, s := range img.Sections {
		fmt.Fprintf(io.Out, "  %2d %-9s %12d bytes\n", i, s.Type, s.Size)
	}
	pcrs := eifPCRs(img.PCRs)
	for _, i := range []int{0, 1, 2, 8} {
		if p, ok := pcrs[i]; ok {
			fmt.Fprintf(io.Out, "PCR%d %s\n", i, p)
		}
	}
	if !img.PCRs.Signed {
		fmt.Fprintf(io.Out, "unsigned: no PCR8\n")
	}
	fmt.Fprintf(io.Out, "enclave memory: at least %d MiB (%d times the EIF), plus the tmpfs database\n",
		minEnclaveMemoryMiB(img.Size), enclaveMemoryFactor)
}

// printJSON prints v as indented JSON.
func printJSON(io IO, v any) int {
	enc := json.NewEncoder(io.Out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintln(io.Err, "cosignerctl:", err)
		return ExitFail
	}
	return ExitOK
}
