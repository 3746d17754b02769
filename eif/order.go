package eif

// sequence checks the order of an image's sections as they come: kernel,
// cmdline, at most one metadata section (version 4), one or more ramdisks,
// at most one signature (version 3 and later), last.
type sequence struct {
	version  uint16
	n        int // sections seen
	ramdisks int
	metadata bool
	signed   bool
}

// next checks that a section of type t may come now and records it.
func (s *sequence) next(t SectionType) error {
	i := s.n
	s.n++
	switch {
	case i == 0 && t != SectionKernel:
		return malformed("section 0 is %s, want kernel", t)
	case i == 1 && t != SectionCmdline:
		return malformed("section 1 is %s, want cmdline", t)
	case i < 2:
		return nil
	case s.signed:
		return malformed("section %d (%s) follows the signature, which must be last", i, t)
	}
	switch t {
	case SectionMetadata:
		if s.version < 4 || s.metadata || s.ramdisks > 0 {
			return malformed("section %d: a metadata section is allowed once, in version 4, right after the cmdline", i)
		}
		s.metadata = true
	case SectionRamdisk:
		s.ramdisks++
	case SectionSignature:
		if s.version < 3 || s.ramdisks == 0 {
			return malformed("section %d: a signature section is allowed once, from version 3, after the ramdisks", i)
		}
		s.signed = true
	default:
		return malformed("section %d is %s, not allowed here", i, t)
	}
	return nil
}

// done checks that the sections seen make a whole image.
func (s *sequence) done() error {
	if s.ramdisks == 0 {
		return malformed("no ramdisk section")
	}
	return nil
}

// ramdiskIndex is the index among ramdisks of the last section recorded,
// if it was a ramdisk.
func (s *sequence) ramdiskIndex() int { return s.ramdisks - 1 }
