package eif

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash"
	"hash/crc32"
	"io"
)

// DefaultMaxSize is the largest file Read accepts unless told otherwise.
const DefaultMaxSize = 8 << 30

// maxMaxSize keeps every offset computation far from overflow.
const maxMaxSize = 1 << 48

// ReadOptions tune Read.
type ReadOptions struct {
	// MaxSize bounds the whole file, in bytes: 0 means DefaultMaxSize.
	MaxSize int64
	// KeepData keeps the kernel and ramdisk data in Section.Data (the
	// small sections are always kept). It costs as much memory as the file.
	KeepData bool
}

func (o ReadOptions) maxSize() int64 {
	switch {
	case o.MaxSize <= 0:
		return DefaultMaxSize
	case o.MaxSize > maxMaxSize:
		return maxMaxSize
	}
	return o.MaxSize
}

// Image is an EIF as Read found it.
type Image struct {
	Header   Header
	Sections []Section
	CRC32    uint32 // the header's CRC, which Read checked
	Size     int64  // bytes of the file
	PCRs     Measurements
}

// Read reads a whole EIF from r, checks it (see the package documentation
// for every check), and returns its header, sections and measurements. A
// file that is not a well-formed EIF gives an error wrapping ErrMalformed;
// a failure to read r is returned as it is.
func Read(r io.Reader, opts ReadOptions) (*Image, error) {
	crc := crc32.NewIEEE()
	hb := make([]byte, HeaderSize)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, readError(err, "the header")
	}
	h, magicOK := unmarshalHeader(hb)
	if !magicOK {
		return nil, malformed("no EIF magic")
	}
	if err := h.checkFields(); err != nil {
		return nil, err
	}
	size, err := h.checkTable(opts.maxSize())
	if err != nil {
		return nil, err
	}
	crc.Write(hb[:crcOffset])
	img := &Image{Header: h.Header, CRC32: h.crc, Size: size}
	if img.PCRs, err = readSections(r, &h, crc, img, opts.KeepData); err != nil {
		return nil, err
	}
	if err := expectEOF(r); err != nil {
		return nil, err
	}
	if got := crc.Sum32(); got != h.crc {
		return nil, malformed("CRC32 mismatch: the header says %08x, the content gives %08x", h.crc, got)
	}
	return img, nil
}

// readSections reads the h.count sections the table describes, feeding
// crc and the measurements, and appends them to img.
func readSections(r io.Reader, h *rawHeader, crc hash.Hash32, img *Image, keep bool) (Measurements, error) {
	seq := sequence{version: h.Version}
	m := newMeasurer()
	for i := range int(h.count) {
		s, err := readSection(r, h, i, &seq, crc, m, keep)
		if err != nil {
			return Measurements{}, err
		}
		img.Sections = append(img.Sections, s)
	}
	if err := seq.done(); err != nil {
		return Measurements{}, err
	}
	return m.result(), nil
}

func readSection(r io.Reader, h *rawHeader, i int, seq *sequence, crc hash.Hash32, m *measurer, keep bool) (Section, error) {
	sh := make([]byte, SectionHeaderSize)
	if _, err := io.ReadFull(r, sh); err != nil {
		return Section{}, readError(err, "a section header")
	}
	crc.Write(sh)
	s, err := parseSectionHeader(sh, h.sizes[i], i)
	if err != nil {
		return Section{}, err
	}
	if err := seq.next(s.Type); err != nil {
		return Section{}, err
	}
	small := maxSmall(s.Type)
	if small > 0 && s.Size > small {
		return Section{}, malformed("the %s section is %d bytes, more than %d", s.Type, s.Size, small)
	}
	var buf bytes.Buffer
	w := io.MultiWriter(crc, m.writer(s.Type, seq.ramdiskIndex()))
	if small > 0 {
		buf.Grow(int(s.Size))
	}
	if small > 0 || keep {
		w = io.MultiWriter(w, &buf)
	}
	if _, err := io.CopyN(w, r, int64(s.Size)); err != nil {
		return Section{}, readError(err, "section data")
	}
	if small > 0 || keep {
		s.Data = buf.Bytes()
	}
	return s, m.checkSmall(s.Type, s.Data)
}

// parseSectionHeader decodes section i's header and checks it against
// the table's size.
func parseSectionHeader(b []byte, size uint64, i int) (Section, error) {
	s := Section{Type: SectionType(binary.BigEndian.Uint16(b)), Size: binary.BigEndian.Uint64(b[4:])}
	switch {
	case s.Type < SectionKernel || s.Type > SectionMetadata:
		return s, malformed("section %d has unknown %s", i, s.Type)
	case binary.BigEndian.Uint16(b[2:]) != 0:
		return s, malformed("section %d has flags set", i)
	case s.Size != size:
		return s, malformed("section %d is %d bytes, the header table says %d", i, s.Size, size)
	case s.Type == SectionKernel && s.Size == 0:
		return s, malformed("the kernel section is empty")
	}
	return s, nil
}

// expectEOF checks that nothing follows the last section.
func expectEOF(r io.Reader) error {
	var b [1]byte
	n, err := io.ReadFull(r, b[:])
	switch {
	case n > 0:
		return malformed("bytes follow the last section")
	case errors.Is(err, io.EOF):
		return nil
	}
	return err
}

// readError turns a short read into ErrMalformed and returns other read
// errors as they are.
func readError(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return malformed("the file ends inside %s", what)
	}
	return err
}
