package audit

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrNotContiguous means a Writer was given a record that does not extend
// what it wrote before.
var ErrNotContiguous = errors.New("audit: record does not extend the export")

// Writer writes an export: the header line, one line per record, and the
// signed end record. It is not safe for concurrent use.
type Writer struct {
	w    *bufio.Writer
	h    Header
	s    Signer
	next uint64
	last [HashSize]byte
	err  error // sticky: a failed Writer writes nothing more
}

// NewWriter checks h, writes its line and returns a Writer whose records
// must continue from h.FirstSeq and h.PrevHash. A nil h.IdentityKey is
// taken from s; a non-nil one must be s's. s signs the end record.
func NewWriter(w io.Writer, h Header, s Signer) (*Writer, error) {
	pub := s.Public()
	if h.IdentityKey == nil {
		h.IdentityKey = pub
	}
	if subtle.ConstantTimeCompare(h.IdentityKey, pub) != 1 {
		return nil, errors.New("audit: export header names another identity key")
	}
	h.IdentityKey = bytes.Clone(h.IdentityKey)
	h.Attestation = bytes.Clone(h.Attestation)
	if err := h.validate(); err != nil {
		return nil, fmt.Errorf("audit: export header: %v", err)
	}
	xw := &Writer{w: bufio.NewWriter(w), h: h, s: s, next: h.FirstSeq, last: h.PrevHash}
	if err := xw.writeLine(h.line()); err != nil {
		return nil, err
	}
	return xw, nil
}

// Write appends r, which must be the next entry of the chain (sequence,
// previous hash and cosigner ID).
func (w *Writer) Write(r Record) error {
	if w.err != nil {
		return w.err
	}
	e := r.Entry
	if e.Seq != w.next || e.PrevHash != w.last || e.CosignerID != w.h.CosignerID {
		return fmt.Errorf("%w: entry %d", ErrNotContiguous, e.Seq)
	}
	if err := w.writeLine(entryLineOf(r)); err != nil {
		return err
	}
	w.next++
	w.last = r.Hash
	return nil
}

// Close writes the end record, signed at time at, and flushes. The export
// verifies only once it is written.
func (w *Writer) Close(at time.Time) error {
	if w.err != nil {
		return w.err
	}
	if at.Before(time.UnixMilli(0)) || at.After(maxTime) {
		return errors.New("audit: export time out of range")
	}
	e := end{LastSeq: w.next - 1, LastHash: w.last, Time: time.UnixMilli(at.UnixMilli()).UTC()}
	e.Sig = w.s.Sign(endMessage(w.h, e))
	if err := w.writeLine(e.line()); err != nil {
		return err
	}
	if err := w.w.Flush(); err != nil {
		w.err = fmt.Errorf("audit: writing export: %w", err)
	}
	return w.err
}

func (w *Writer) writeLine(line []byte) error {
	if len(line)+1 > MaxLineSize {
		// Cannot happen within the entry and attestation bounds; checked
		// so that a writer never produces what a verifier refuses.
		w.err = errors.New("audit: export line too long")
		return w.err
	}
	_, err := w.w.Write(line)
	if err == nil {
		err = w.w.WriteByte('\n')
	}
	if err != nil {
		w.err = fmt.Errorf("audit: writing export: %w", err)
	}
	return w.err
}
