package eif

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// Sizes and limits of the format.
const (
	HeaderSize        = 548 // bytes of the file header
	SectionHeaderSize = 12  // bytes of each section header
	MaxSections       = 32  // entries of the header's section table
	crcOffset         = HeaderSize - 4
)

// Versions this package reads and writes.
const (
	MinVersion     = 2 // the first version with a CRC
	CurrentVersion = 4 // what nitro-cli writes today
)

// FlagArm64 is the header flag of an aarch64 image (clear: x86_64).
const FlagArm64 = 0x1

// Bounds on the sections kept in memory. nitro-cli writes a cmdline of a
// few hundred bytes, a metadata section of a few KiB and a signature of
// about 2 KiB.
const (
	MaxCmdlineSize   = 64 << 10
	MaxMetadataSize  = 1 << 20
	MaxSignatureSize = 64 << 10
)

// magic is ".eif".
var magic = [4]byte{'.', 'e', 'i', 'f'}

// ErrMalformed reports a file that is not a well-formed EIF. The error
// names the problem; it never repeats file content.
var ErrMalformed = errors.New("eif: malformed image")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// SectionType is the type of a section.
type SectionType uint16

// The section types.
const (
	SectionKernel    SectionType = 1
	SectionCmdline   SectionType = 2
	SectionRamdisk   SectionType = 3
	SectionSignature SectionType = 4
	SectionMetadata  SectionType = 5
)

var sectionNames = map[SectionType]string{
	SectionKernel:    "kernel",
	SectionCmdline:   "cmdline",
	SectionRamdisk:   "ramdisk",
	SectionSignature: "signature",
	SectionMetadata:  "metadata",
}

// String returns the type's name ("kernel", ...) or "type N".
func (t SectionType) String() string {
	if s, ok := sectionNames[t]; ok {
		return s
	}
	return "type " + strconv.Itoa(int(t))
}

// Header holds the header fields an image's author chooses. The section
// count, table, and CRC follow from the sections.
type Header struct {
	Version       uint16 // MinVersion to CurrentVersion
	Flags         uint16 // 0 or FlagArm64
	DefaultMemory uint64 // bytes
	DefaultCPUs   uint64
}

// Arch names the image's architecture: "x86_64" or "aarch64".
func (h Header) Arch() string {
	if h.Flags&FlagArm64 != 0 {
		return "aarch64"
	}
	return "x86_64"
}

// Section is one section of an image.
type Section struct {
	Type SectionType
	Size uint64
	// Data is the section's content. Read always fills it for cmdline,
	// metadata and signature sections, and for the others only with
	// ReadOptions.KeepData. Write needs it for every section.
	Data []byte
}

// rawHeader is the header as stored.
type rawHeader struct {
	Header
	reserved uint16
	count    uint16
	offsets  [MaxSections]uint64
	sizes    [MaxSections]uint64
	unused   uint32
	crc      uint32
}

func (h *rawHeader) marshal() []byte {
	b := make([]byte, 0, HeaderSize)
	b = append(b, magic[:]...)
	b = binary.BigEndian.AppendUint16(b, h.Version)
	b = binary.BigEndian.AppendUint16(b, h.Flags)
	b = binary.BigEndian.AppendUint64(b, h.DefaultMemory)
	b = binary.BigEndian.AppendUint64(b, h.DefaultCPUs)
	b = binary.BigEndian.AppendUint16(b, h.reserved)
	b = binary.BigEndian.AppendUint16(b, h.count)
	for _, o := range h.offsets {
		b = binary.BigEndian.AppendUint64(b, o)
	}
	for _, s := range h.sizes {
		b = binary.BigEndian.AppendUint64(b, s)
	}
	b = binary.BigEndian.AppendUint32(b, h.unused)
	return binary.BigEndian.AppendUint32(b, h.crc)
}

// unmarshalHeader decodes b (HeaderSize bytes) without checking it.
func unmarshalHeader(b []byte) (h rawHeader, magicOK bool) {
	magicOK = [4]byte(b[:4]) == magic
	h.Version = binary.BigEndian.Uint16(b[4:])
	h.Flags = binary.BigEndian.Uint16(b[6:])
	h.DefaultMemory = binary.BigEndian.Uint64(b[8:])
	h.DefaultCPUs = binary.BigEndian.Uint64(b[16:])
	h.reserved = binary.BigEndian.Uint16(b[24:])
	h.count = binary.BigEndian.Uint16(b[26:])
	for i := range MaxSections {
		h.offsets[i] = binary.BigEndian.Uint64(b[28+8*i:])
		h.sizes[i] = binary.BigEndian.Uint64(b[284+8*i:])
	}
	h.unused = binary.BigEndian.Uint32(b[540:])
	h.crc = binary.BigEndian.Uint32(b[crcOffset:])
	return h, magicOK
}

func marshalSectionHeader(t SectionType, size uint64) []byte {
	b := make([]byte, 0, SectionHeaderSize)
	b = binary.BigEndian.AppendUint16(b, uint16(t))
	b = binary.BigEndian.AppendUint16(b, 0)
	return binary.BigEndian.AppendUint64(b, size)
}

// checkFields checks the header fields other than the section table.
func (h *rawHeader) checkFields() error {
	switch {
	case h.Version < MinVersion || h.Version > CurrentVersion:
		return malformed("unsupported version %d (want %d to %d)", h.Version, MinVersion, CurrentVersion)
	case h.Flags&^FlagArm64 != 0:
		return malformed("unknown header flags %#04x", h.Flags)
	case h.reserved != 0 || h.unused != 0:
		return malformed("reserved header fields are not zero")
	}
	return nil
}

// checkTable checks that the section table describes h.count contiguous
// sections starting right after the header and ending by maxSize, and
// returns the file size it implies.
func (h *rawHeader) checkTable(maxSize int64) (int64, error) {
	if h.count < 3 || h.count > MaxSections {
		return 0, malformed("%d sections (want 3 to %d)", h.count, MaxSections)
	}
	end := uint64(HeaderSize)
	for i := range MaxSections {
		if i >= int(h.count) {
			if h.offsets[i] != 0 || h.sizes[i] != 0 {
				return 0, malformed("section table entry %d is set beyond the %d sections", i, h.count)
			}
			continue
		}
		if h.offsets[i] != end {
			return 0, malformed("section %d is at offset %d, want %d", i, h.offsets[i], end)
		}
		if h.sizes[i] > uint64(maxSize) || end+SectionHeaderSize+h.sizes[i] > uint64(maxSize) {
			return 0, malformed("section %d ends beyond the %d-byte limit", i, maxSize)
		}
		end += SectionHeaderSize + h.sizes[i]
	}
	return int64(end), nil
}
