package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// Export format constants.
const (
	ExportFormat  = "nitro-cosigner-audit-export"
	ExportVersion = 1

	// MaxLineSize bounds one line of an export, its newline included.
	MaxLineSize = 64 << 10
	// MaxAttestationSize bounds the attestation document a header carries.
	MaxAttestationSize = 16 << 10
)

// timeLayout is how lines show times: UTC, always three fractional digits.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

var b64 = base64.StdEncoding.Strict()

// Header is what an export starts with.
type Header struct {
	CosignerID  string
	IdentityKey ed25519.PublicKey
	FirstSeq    uint64         // the first entry's sequence number (>= 1)
	PrevHash    [HashSize]byte // the hash of entry FirstSeq-1; zeros when FirstSeq is 1
	Attestation []byte         // optional: the attestation document binding IdentityKey
}

// headerLine is the header's line. Field order is the line's key order.
type headerLine struct {
	Format      string `json:"format"`
	Version     int    `json:"version"`
	CosignerID  string `json:"cosigner_id"`
	IdentityKey string `json:"identity_key"`
	FirstSeq    uint64 `json:"first_seq"`
	PrevHash    string `json:"prev_hash"`
	Attestation string `json:"attestation,omitempty"`
}

// entryLine is one entry's line: a readable copy of the entry's fields,
// then the signed encoding itself, its hash and signature.
type entryLine struct {
	Seq       uint64            `json:"seq"`
	Time      string            `json:"time"`
	Cosigner  string            `json:"cosigner"`
	Type      string            `json:"type"`
	Actor     string            `json:"actor,omitempty"`
	KeyID     string            `json:"key_id,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	Decision  string            `json:"decision,omitempty"`
	Reason    string            `json:"reason,omitempty"`
	Details   map[string]string `json:"details,omitempty"`
	PrevHash  string            `json:"prev_hash"`
	Hash      string            `json:"hash"`
	Entry     string            `json:"entry"`
	Sig       string            `json:"sig"`
}

// end is the signed end record of an export.
type end struct {
	LastSeq  uint64
	LastHash [HashSize]byte
	Time     time.Time
	Sig      []byte
}

type endLine struct {
	End      bool   `json:"end"`
	LastSeq  uint64 `json:"last_seq"`
	LastHash string `json:"last_hash"`
	Time     string `json:"time"`
	Sig      string `json:"sig"`
}

// endSigned is what the end record's signature covers, after EndLabel and
// a zero byte, in Core Deterministic Encoding.
type endSigned struct {
	_                 struct{} `cbor:",toarray"`
	CosignerID        string
	IdentityKey       []byte
	FirstSeq          uint64
	PrevHash          []byte
	LastSeq           uint64
	LastHash          []byte
	TimeMillis        int64
	AttestationDigest []byte // SHA-256 of the attestation, empty without one
}

func (h Header) validate() error {
	switch {
	case !validName(h.CosignerID):
		return errors.New("malformed cosigner ID")
	case len(h.IdentityKey) != ed25519.PublicKeySize:
		return errors.New("identity key is not an Ed25519 public key")
	case h.FirstSeq == 0 || h.FirstSeq > math.MaxInt64:
		return errors.New("first_seq out of range")
	case h.FirstSeq == 1 && h.PrevHash != [HashSize]byte{}:
		return errors.New("an export from entry 1 must have a zero prev_hash")
	case len(h.Attestation) > MaxAttestationSize:
		return fmt.Errorf("attestation longer than %d bytes", MaxAttestationSize)
	}
	return nil
}

func (h Header) line() []byte {
	l := headerLine{
		Format: ExportFormat, Version: ExportVersion, CosignerID: h.CosignerID,
		IdentityKey: hex.EncodeToString(h.IdentityKey), FirstSeq: h.FirstSeq,
		PrevHash: hex.EncodeToString(h.PrevHash[:]),
	}
	if len(h.Attestation) > 0 {
		l.Attestation = b64.EncodeToString(h.Attestation)
	}
	return marshalLine(l)
}

func parseHeader(line []byte) (Header, error) {
	var l headerLine
	if err := json.Unmarshal(line, &l); err != nil {
		return Header{}, errors.New("malformed header")
	}
	if l.Format != ExportFormat || l.Version != ExportVersion {
		return Header{}, errors.New("not an audit export of a supported version")
	}
	h := Header{CosignerID: l.CosignerID, FirstSeq: l.FirstSeq}
	var err1, err2, err3 error
	h.IdentityKey, err1 = hex.DecodeString(l.IdentityKey)
	err2 = decodeHash(&h.PrevHash, l.PrevHash)
	h.Attestation, err3 = b64.DecodeString(l.Attestation)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Header{}, errors.New("malformed header")
	}
	if len(h.Attestation) == 0 {
		h.Attestation = nil
	}
	if err := h.validate(); err != nil {
		return Header{}, err
	}
	if !equalLine(h.line(), line) {
		return Header{}, errors.New("header is not in canonical form")
	}
	return h, nil
}

func entryLineOf(r Record) []byte {
	e := r.Entry
	return marshalLine(entryLine{
		Seq: e.Seq, Time: e.Time.UTC().Format(timeLayout), Cosigner: e.CosignerID,
		Type: string(e.Type), Actor: e.Actor, KeyID: e.KeyID, RequestID: e.RequestID,
		Decision: string(e.Decision), Reason: e.Reason, Details: e.Details,
		PrevHash: hex.EncodeToString(e.PrevHash[:]), Hash: hex.EncodeToString(r.Hash[:]),
		Entry: b64.EncodeToString(r.Raw), Sig: b64.EncodeToString(r.Sig),
	})
}

// parseEntryLine returns the encoded entry and signature a line carries.
// Only they are trusted: the caller checks that the readable fields match.
func parseEntryLine(line []byte) (raw, sig []byte, err error) {
	var l entryLine
	if err := json.Unmarshal(line, &l); err != nil {
		return nil, nil, errors.New("malformed line")
	}
	raw, err1 := b64.DecodeString(l.Entry)
	sig, err2 := b64.DecodeString(l.Sig)
	if err1 != nil || err2 != nil {
		return nil, nil, errors.New("malformed line")
	}
	return raw, sig, nil
}

func (e end) line() []byte {
	return marshalLine(endLine{
		End: true, LastSeq: e.LastSeq, LastHash: hex.EncodeToString(e.LastHash[:]),
		Time: e.Time.UTC().Format(timeLayout), Sig: b64.EncodeToString(e.Sig),
	})
}

func parseEnd(line []byte) (end, error) {
	var l endLine
	if err := json.Unmarshal(line, &l); err != nil || !l.End {
		return end{}, errors.New("malformed end record")
	}
	e := end{LastSeq: l.LastSeq}
	t, err1 := time.Parse(timeLayout, l.Time)
	sig, err2 := b64.DecodeString(l.Sig)
	err3 := decodeHash(&e.LastHash, l.LastHash)
	if err := errors.Join(err1, err2, err3); err != nil {
		return end{}, errors.New("malformed end record")
	}
	e.Time, e.Sig = t.UTC(), sig
	if t.Before(time.UnixMilli(0)) || t.After(maxTime) {
		return end{}, errors.New("end record time out of range")
	}
	if !equalLine(e.line(), line) {
		return end{}, errors.New("end record is not in canonical form")
	}
	return e, nil
}

// endMessage is what the end record's signature covers: the header, the
// last entry and the export time.
func endMessage(h Header, e end) []byte {
	s := endSigned{
		CosignerID: h.CosignerID, IdentityKey: h.IdentityKey, FirstSeq: h.FirstSeq,
		PrevHash: h.PrevHash[:], LastSeq: e.LastSeq, LastHash: e.LastHash[:],
		TimeMillis: e.Time.UnixMilli(), AttestationDigest: []byte{},
	}
	if len(h.Attestation) > 0 {
		d := sha256.Sum256(h.Attestation)
		s.AttestationDigest = d[:]
	}
	b, err := encMode.Marshal(s)
	if err != nil {
		panic(err) // fixed types: cannot fail
	}
	return append(append([]byte(EndLabel), 0), b...)
}

func decodeHash(dst *[HashSize]byte, s string) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != HashSize {
		return errors.New("malformed hash")
	}
	copy(dst[:], b)
	return nil
}

// marshalLine encodes a line's value. The types above cannot fail to
// encode.
func marshalLine(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func equalLine(canonical, line []byte) bool {
	return string(canonical) == string(line)
}
