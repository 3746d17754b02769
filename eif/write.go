package eif

import (
	"hash/crc32"
	"io"
)

// Write writes the EIF made of h and sections to w, as EifBuilder lays it
// out, and returns its measurements. Sections must form a whole image in
// the order Read accepts, each with its data (Size may be left zero; if
// set it must be len(Data)). Write refuses, with an error wrapping
// ErrMalformed, anything Read would refuse, so that what it writes reads
// back to the same header and sections.
func Write(w io.Writer, h Header, sections []Section) (Measurements, error) {
	raw, ms, err := prepare(h, sections)
	if err != nil {
		return Measurements{}, err
	}
	crc := crc32.NewIEEE()
	crc.Write(raw.marshal()[:crcOffset])
	for _, s := range sections {
		crc.Write(marshalSectionHeader(s.Type, uint64(len(s.Data))))
		crc.Write(s.Data)
	}
	raw.crc = crc.Sum32()
	if _, err := w.Write(raw.marshal()); err != nil {
		return Measurements{}, err
	}
	for _, s := range sections {
		if _, err := w.Write(marshalSectionHeader(s.Type, uint64(len(s.Data)))); err != nil {
			return Measurements{}, err
		}
		if _, err := w.Write(s.Data); err != nil {
			return Measurements{}, err
		}
	}
	return ms, nil
}

// Measure returns the measurements of the image made of h and sections,
// which must be valid for Write.
func Measure(h Header, sections []Section) (Measurements, error) {
	_, ms, err := prepare(h, sections)
	return ms, err
}

// prepare checks h and sections, lays out the header (without its CRC)
// and measures the sections.
func prepare(h Header, sections []Section) (*rawHeader, Measurements, error) {
	raw := &rawHeader{Header: h}
	if err := raw.checkFields(); err != nil {
		return nil, Measurements{}, err
	}
	if len(sections) < 3 || len(sections) > MaxSections {
		return nil, Measurements{}, malformed("%d sections (want 3 to %d)", len(sections), MaxSections)
	}
	raw.count = uint16(len(sections))
	seq := sequence{version: h.Version}
	m := newMeasurer()
	off := uint64(HeaderSize)
	for i, s := range sections {
		if err := checkSection(&seq, i, s); err != nil {
			return nil, Measurements{}, err
		}
		m.writer(s.Type, seq.ramdiskIndex()).Write(s.Data)
		if err := m.checkSmall(s.Type, s.Data); err != nil {
			return nil, Measurements{}, err
		}
		raw.offsets[i], raw.sizes[i] = off, uint64(len(s.Data))
		off += SectionHeaderSize + uint64(len(s.Data))
	}
	if err := seq.done(); err != nil {
		return nil, Measurements{}, err
	}
	return raw, m.result(), nil
}

// checkSection checks section i for Write and records it in seq.
func checkSection(seq *sequence, i int, s Section) error {
	n := uint64(len(s.Data))
	switch {
	case s.Size != 0 && s.Size != n:
		return malformed("section %d: Size is %d but it has %d bytes of data", i, s.Size, n)
	case s.Type < SectionKernel || s.Type > SectionMetadata:
		return malformed("section %d has unknown %s", i, s.Type)
	case s.Type == SectionKernel && n == 0:
		return malformed("the kernel section is empty")
	case maxSmall(s.Type) > 0 && n > maxSmall(s.Type):
		return malformed("the %s section is %d bytes, more than %d", s.Type, n, maxSmall(s.Type))
	}
	return seq.next(s.Type)
}
