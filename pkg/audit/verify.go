package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// BrokenLinkError names the first place where an export stops verifying.
//
// Seq is the sequence number the chain expected at that place: the entry
// that is malformed, tampered with, wrongly signed, missing or out of
// order. Seq 0 names the header. A problem with the end record (absent,
// wrong, or followed by more data) names the entry after the last one that
// verified, because that is where completeness can no longer be shown.
type BrokenLinkError struct {
	Seq    uint64
	Line   int // 1-based line of the export, 0 if unknown
	Reason string
}

func (e *BrokenLinkError) Error() string {
	where := fmt.Sprintf("entry %d", e.Seq)
	if e.Seq == 0 {
		where = "header"
	}
	if e.Line > 0 {
		where += fmt.Sprintf(" (line %d)", e.Line)
	}
	return "audit: " + where + ": " + e.Reason
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// IdentityKey, if set, is the identity key the export must be signed
	// by. Without it Verify checks that the export is intact and
	// self-consistent under the key its header names, which says nothing
	// about who wrote it.
	IdentityKey ed25519.PublicKey
}

// Summary describes a verified export.
type Summary struct {
	CosignerID  string
	IdentityKey ed25519.PublicKey
	Pinned      bool // IdentityKey equals VerifyOptions.IdentityKey
	// Attestation is the document the header carries, covered by the end
	// record's signature but not evaluated here (see pkg/attestation).
	Attestation []byte
	FirstSeq    uint64
	LastSeq     uint64 // FirstSeq-1 when the export holds no entry
	PrevHash    [HashSize]byte
	LastHash    [HashSize]byte
	ExportedAt  time.Time
	Types       map[Type]uint64 // entries per type
}

// Entries returns the number of entries the export holds.
func (s Summary) Entries() uint64 { return s.LastSeq + 1 - s.FirstSeq }

// Verify reads an export from r and checks, in order:
//
//   - the header: the format and version, well-formed fields, canonical
//     form, and (if opts.IdentityKey is set) that its identity key is the
//     pinned one;
//   - each entry line: that it is at most MaxLineSize bytes and ends in a
//     newline; that its encoded entry decodes strictly (UnmarshalEntry);
//     that its sequence number is the next one (the header's first_seq,
//     then +1 each); that it names the header's cosigner; that its
//     prev_hash is the previous entry's hash (the header's prev_hash for
//     the first); that the identity key's signature over its recomputed
//     hash verifies; and that the whole line, readable fields included, is
//     byte for byte the line this package writes for that signed entry;
//   - the end record: that it follows the last entry, names its sequence
//     number and hash, and carries a valid signature over the header, the
//     last entry and the export time; and that nothing follows it.
//
// It reads one line at a time and keeps only the previous hash, so memory
// stays bounded whatever the export's length. It returns a Summary or an
// error, never both: a *BrokenLinkError for the first check that fails, or
// an error wrapping the reader's for an I/O failure.
func Verify(r io.Reader, opts VerifyOptions) (Summary, error) {
	x, err := newReader(r, opts.IdentityKey)
	if err != nil {
		return Summary{}, err
	}
	types := map[Type]uint64{}
	for {
		rec, done, err := x.next()
		if err != nil {
			return Summary{}, err
		}
		if done {
			break
		}
		types[rec.Entry.Type]++
	}
	return Summary{
		CosignerID: x.h.CosignerID, IdentityKey: x.h.IdentityKey, Pinned: opts.IdentityKey != nil,
		Attestation: x.h.Attestation, FirstSeq: x.h.FirstSeq, LastSeq: x.end.LastSeq,
		PrevHash: x.h.PrevHash, LastHash: x.end.LastHash, ExportedAt: x.end.Time, Types: types,
	}, nil
}

// reader walks an export, checking as it goes.
type reader struct {
	br   *bufio.Reader
	line int
	h    Header
	seq  uint64         // the next expected sequence number
	prev [HashSize]byte // the hash the next entry must link to
	end  end            // set once the end record verified
}

func newReader(r io.Reader, pin ed25519.PublicKey) (*reader, error) {
	x := &reader{br: bufio.NewReaderSize(r, MaxLineSize)}
	line, err := x.readLine()
	if errors.Is(err, io.EOF) {
		x.line++ // where the header should be
		err = x.broken("empty export")
	}
	if err != nil {
		return nil, err
	}
	if x.h, err = parseHeader(line); err != nil {
		return nil, x.brokenAt(0, err.Error())
	}
	if pin != nil && subtle.ConstantTimeCompare(pin, x.h.IdentityKey) != 1 {
		return nil, x.brokenAt(0, "identity key is not the pinned key")
	}
	x.seq, x.prev = x.h.FirstSeq, x.h.PrevHash
	return x, nil
}

// next returns the next verified record, or done once the end record and
// the end of input verified.
func (x *reader) next() (rec Record, done bool, err error) {
	line, err := x.readLine()
	if errors.Is(err, io.EOF) {
		x.line++ // where the end record should be
		err = x.broken("export ends without its end record (truncated)")
	}
	if err != nil {
		return Record{}, false, err
	}
	if bytes.HasPrefix(line, []byte(`{"end":`)) {
		return Record{}, true, x.finish(line)
	}
	rec, err = x.entry(line)
	return rec, false, err
}

func (x *reader) entry(line []byte) (Record, error) {
	raw, sig, err := parseEntryLine(line)
	if err != nil {
		return Record{}, x.broken(err.Error())
	}
	e, err := UnmarshalEntry(raw)
	if err != nil {
		return Record{}, x.broken(strings.TrimPrefix(err.Error(), "audit: "))
	}
	if err := x.link(e); err != nil {
		return Record{}, err
	}
	rec := Record{Entry: e, Raw: raw, Hash: EntryHash(raw), Sig: sig}
	if verifySig(x.h.IdentityKey, signedMessage(rec.Hash), sig) != nil {
		return Record{}, x.broken("signature does not verify")
	}
	if !equalLine(entryLineOf(rec), line) {
		return Record{}, x.broken("line differs from its signed entry (edited field or non-canonical form)")
	}
	x.seq++
	x.prev = rec.Hash
	return rec, nil
}

// link checks that e is the entry the chain expects next.
func (x *reader) link(e Entry) error {
	switch {
	case e.Seq != x.seq:
		return x.broken(fmt.Sprintf("expected entry %d, found entry %d (missing, repeated or reordered)", x.seq, e.Seq))
	case e.CosignerID != x.h.CosignerID:
		return x.broken("entry names another cosigner than the header")
	case e.PrevHash != x.prev && x.seq == x.h.FirstSeq:
		return x.broken("prev_hash is not the header's prev_hash")
	case e.PrevHash != x.prev:
		return x.broken(fmt.Sprintf("prev_hash is not the hash of entry %d", x.seq-1))
	}
	return nil
}

// finish checks the end record and that nothing follows it.
func (x *reader) finish(line []byte) error {
	e, err := parseEnd(line)
	switch {
	case err != nil:
		return x.broken(err.Error())
	case e.LastSeq >= x.seq:
		return x.broken(fmt.Sprintf("expected entry %d, found the end record (entries removed)", x.seq))
	case e.LastSeq+1 != x.seq:
		return x.broken(fmt.Sprintf("end record does not name entry %d as the last", x.seq-1))
	case e.LastHash != x.prev:
		return x.broken("end record does not name the last entry's hash")
	case verifySig(x.h.IdentityKey, endMessage(x.h, e), e.Sig) != nil:
		return x.broken("end record signature does not verify")
	}
	if _, err := x.br.ReadByte(); !errors.Is(err, io.EOF) {
		x.line++
		if err != nil {
			return fmt.Errorf("audit: reading export: %w", err)
		}
		return x.broken("data after the end record")
	}
	x.end = e
	return nil
}

// readLine returns the next line without its newline, io.EOF at a clean
// end of input, a *BrokenLinkError for an overlong or
// unterminated line, or an I/O error.
func (x *reader) readLine() ([]byte, error) {
	b, err := x.br.ReadSlice('\n')
	switch {
	case err == nil:
		x.line++
		return b[:len(b)-1], nil
	case errors.Is(err, io.EOF) && len(b) == 0:
		return nil, io.EOF
	}
	x.line++
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, x.broken(fmt.Sprintf("line longer than %d bytes", MaxLineSize))
	case errors.Is(err, io.EOF):
		return nil, x.broken("last line is not terminated (truncated)")
	}
	return nil, fmt.Errorf("audit: reading export: %w", err)
}

// broken returns a BrokenLinkError at the current line for the expected
// entry (0, the header, until the header is read).
func (x *reader) broken(reason string) error {
	return x.brokenAt(x.seq, reason)
}

func (x *reader) brokenAt(seq uint64, reason string) error {
	return &BrokenLinkError{Seq: seq, Line: x.line, Reason: reason}
}
