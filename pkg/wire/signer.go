package wire

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/veraison/go-cose"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
)

// Frame is what a Signer seals: one protocol message from us to one
// recipient.
type Frame struct {
	Session  SessionID
	Protocol string // 1..MaxProtocolSize bytes of printable ASCII
	Round    uint16
	// To is the recipient, required for every frame: a roster member
	// other than us. Only that member's Receiver accepts the frame.
	To string
	// Broadcast marks the payload as a broadcast message: the same payload
	// goes to every party, sealed once per recipient, and is signed only.
	// A direct frame's payload is also encrypted to To's roster
	// encryption key.
	Broadcast bool
	Payload   []byte // at most MaxPayloadSize bytes once sealed
	// Attach forces the attestation document into the frame. Without it
	// the Signer attaches the document to the frames of the first round of
	// broadcasts and of the first round of direct frames it sends to each
	// recipient in each session, and again after SetAttestation; with
	// SignerConfig.AttachEvery, to a frame for a recipient when it was last
	// sent to that recipient longer ago than that, in any session.
	Attach bool
}

// SignerConfig configures a Signer.
type SignerConfig struct {
	ID          string       // our cosigner ID
	Identity    *IdentityKey // signs every frame
	Roster      *Roster      // recipients' encryption keys
	Attestation []byte       // our current attestation document
	Clock       func() time.Time
	// AttachEvery, if positive, attaches the document to each recipient
	// at most this often across all sessions (and at once after
	// SetAttestation) instead of once per session: a receiver caches
	// documents, so a one-round session then carries none. A receiver
	// that lost its cache (a restart) holds the frames it cannot verify
	// until the next attachment reaches it (enclave/peer's HoldFor must be
	// longer than AttachEvery).
	AttachEvery time.Duration
}

// maxAttachLog bounds the Signer's memory of which (session, recipient,
// broadcast or direct) keys were sent the document; the oldest entries are
// forgotten first (which only means one more attachment).
const maxAttachLog = 4096

// Signer seals our frames. It is safe for concurrent use.
type Signer struct {
	id     string
	signer cose.Signer
	roster *Roster
	clock  func() time.Time

	mu       sync.Mutex
	doc      []byte
	digest   [digestSize]byte
	seq      uint64
	attached attachLog
	every    time.Duration        // AttachEvery
	lastSent map[string]time.Time // with every: when each recipient was last sent the document
}

// NewSigner checks the configuration and returns a Signer. If the roster
// lists our ID, its identity key must be ours.
func NewSigner(cfg SignerConfig) (*Signer, error) {
	if err := checkSignerConfig(cfg); err != nil {
		return nil, err
	}
	signer, err := cose.NewSigner(cose.AlgorithmEdDSA, cfg.Identity.priv)
	if err != nil {
		return nil, errors.New("wire: identity key rejected by COSE")
	}
	s := &Signer{id: cfg.ID, signer: signer, roster: cfg.Roster, clock: cfg.Clock, every: cfg.AttachEvery}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.seq, err = firstSeq(); err != nil {
		return nil, err
	}
	if err := s.SetAttestation(cfg.Attestation); err != nil {
		return nil, err
	}
	return s, nil
}

// firstSeq is where a Signer's sequence numbers start: a random 62-bit
// number, not 0. A cosigner that restarts gets a new Signer for the same
// identity and the same long-lived sessions (coord's control session);
// counting from 1 again would repeat its predecessor's (session, sender,
// round, seq) keys, and receivers would drop its frames as replays for up
// to two windows. Two random starts collide with negligible probability.
func firstSeq() (uint64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("wire: signer: %w", err)
	}
	return binary.BigEndian.Uint64(b[:]) >> 2, nil
}

func checkSignerConfig(cfg SignerConfig) error {
	switch {
	case !validName(cfg.ID, MaxIDSize):
		return errors.New("wire: signer: invalid ID")
	case cfg.Identity == nil:
		return errors.New("wire: signer: no identity key")
	case cfg.Roster == nil:
		return errors.New("wire: signer: no roster")
	case cfg.AttachEvery < 0:
		return errors.New("wire: signer: negative AttachEvery")
	}
	if self := cfg.Roster.lookup(cfg.ID); self != nil &&
		subtle.ConstantTimeCompare(self.Identity, cfg.Identity.Public()) != 1 {
		return errors.New("wire: signer: identity key differs from the roster's")
	}
	return nil
}

// SetAttestation replaces our attestation document (after a refresh). The
// next frame to each recipient carries the new document. It checks the
// document's structure only: its signer cannot verify its own chain.
func (s *Signer) SetAttestation(raw []byte) error {
	if _, err := attestation.UnverifiedTimestamp(raw); err != nil {
		return fmt.Errorf("wire: signer: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc = bytes.Clone(raw)
	s.digest = attestation.DocDigest(raw)
	s.attached.reset()
	s.lastSent = nil
	return nil
}

// AttachNext makes the next frame to recipient carry the document (with
// AttachEvery): the recipient restarted, and its cache is empty.
func (s *Signer) AttachNext(recipient string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.lastSent, recipient)
}

// EndSession forgets which recipients of a session were sent the document.
func (s *Signer) EndSession(session SessionID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attached.forget(session)
}

// Seal returns the envelope of f, signed and addressed to f.To (and, if
// direct, encrypted to f.To). It refuses a frame without a recipient, to
// ourselves or to a cosigner not in the roster.
func (s *Signer) Seal(f Frame) ([]byte, error) {
	to, err := s.checkFrame(f)
	if err != nil {
		return nil, err
	}
	b := s.header(f)
	if f.Broadcast {
		b.Payload = bytes.Clone(f.Payload)
	} else if err := sealBody(b, to, f.Payload); err != nil {
		return nil, err
	}
	return s.sign(b)
}

// checkFrame validates f and returns its recipient.
func (s *Signer) checkFrame(f Frame) (*member, error) {
	switch {
	case !validName(f.Protocol, MaxProtocolSize):
		return nil, errors.New("wire: seal: invalid protocol name")
	case len(f.Payload) > MaxPayloadSize-aeadOverhead:
		return nil, errors.New("wire: seal: payload too large")
	case f.To == "":
		return nil, errors.New("wire: seal: no recipient")
	case f.To == s.id:
		return nil, errors.New("wire: seal: frame to ourselves")
	}
	to := s.roster.lookup(f.To)
	if to == nil {
		return nil, errors.New("wire: seal: recipient not in the roster")
	}
	return to, nil
}

// aeadOverhead is the ChaCha20-Poly1305 tag size.
const aeadOverhead = 16

// header fills every field but the payload, taking a sequence number and
// deciding whether to attach the document.
func (s *Signer) header(f Frame) *body {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	now := s.clock()
	b := &body{
		Version:   Version,
		Session:   bytes.Clone(f.Session[:]),
		Protocol:  f.Protocol,
		Round:     f.Round,
		From:      s.id,
		To:        f.To,
		Broadcast: f.Broadcast,
		Seq:       s.seq,
		TimeMS:    uint64(now.UnixMilli()),
		AttDigest: bytes.Clone(s.digest[:]),
	}
	if f.Attach || s.attachDefault(f, now) {
		b.Attestation = s.doc // never modified: SetAttestation replaces it
	}
	return b
}

// attachDefault is the attachment rule for a frame that does not force it
// (s.mu held).
func (s *Signer) attachDefault(f Frame, now time.Time) bool {
	if s.every <= 0 {
		return s.attached.shouldAttach(attachKey{f.Session, f.To, f.Broadcast}, f.Round)
	}
	last, ok := s.lastSent[f.To]
	if ok && now.Sub(last) < s.every && !now.Before(last) {
		return false
	}
	if s.lastSent == nil {
		s.lastSent = make(map[string]time.Time)
	}
	s.lastSent[f.To] = now
	return true
}

// sealBody encrypts the payload to the recipient, bound to the header.
func sealBody(b *body, to *member, payload []byte) error {
	aad, err := b.header()
	if err != nil {
		return fmt.Errorf("wire: seal: encoding header: %w", err)
	}
	b.Enc, b.Payload, err = sealDirect(to.hpkePub, aad, payload)
	if err != nil {
		return fmt.Errorf("wire: seal: encrypting: %w", err)
	}
	return nil
}

// sign encodes b and signs it as a tagged COSE_Sign1.
func (s *Signer) sign(b *body) ([]byte, error) {
	payload, err := b.encode()
	if err != nil {
		return nil, fmt.Errorf("wire: seal: encoding: %w", err)
	}
	msg := cose.NewSign1Message()
	msg.Headers.Protected.SetAlgorithm(cose.AlgorithmEdDSA)
	msg.Payload = payload
	if err := msg.Sign(rand.Reader, nil, s.signer); err != nil {
		return nil, fmt.Errorf("wire: seal: signing: %w", err)
	}
	out, err := msg.MarshalCBOR()
	if err != nil {
		return nil, fmt.Errorf("wire: seal: encoding: %w", err)
	}
	if len(out) > MaxFrameSize {
		return nil, errors.New("wire: seal: frame too large")
	}
	return out, nil
}

// attachKey names the broadcast or the direct frames to one recipient of a
// session.
type attachKey struct {
	session   SessionID
	to        string
	broadcast bool
}

// attachLog remembers, per (session, recipient, broadcast or direct), the
// first round that carried the current document, so that every frame of
// that round carries it (a round's broadcast and direct frames may arrive
// in any order) and later rounds do not.
type attachLog struct {
	first map[attachKey]uint16
	order []attachKey // insertion order, for eviction
}

func (l *attachLog) shouldAttach(k attachKey, round uint16) bool {
	first, ok := l.first[k]
	if ok {
		return round <= first
	}
	if l.first == nil {
		l.first = make(map[attachKey]uint16)
	}
	if len(l.order) >= maxAttachLog {
		delete(l.first, l.order[0])
		l.order = l.order[1:]
	}
	l.first[k] = round
	l.order = append(l.order, k)
	return true
}

func (l *attachLog) reset() { *l = attachLog{} }

func (l *attachLog) forget(session SessionID) {
	kept := l.order[:0]
	for _, k := range l.order {
		if k.session == session {
			delete(l.first, k)
			continue
		}
		kept = append(kept, k)
	}
	l.order = kept
}
