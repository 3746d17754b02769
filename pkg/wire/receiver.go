package wire

import (
	"crypto/hpke"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
)

// Defaults of ReceiverConfig.
const (
	DefaultWindow                = time.Minute
	DefaultMaxCachedAttestations = 256
	DefaultMaxReplayEntries      = 1 << 18 // about 25 MB at most
	DefaultMaxReplaySessions     = 4096
	DefaultMaxFramesPerSession   = 1024
)

// ReceiverConfig configures a Receiver.
type ReceiverConfig struct {
	Self       string         // our cosigner ID
	Encryption *EncryptionKey // opens direct payloads sent to us
	Roster     *Roster        // who may send, with what keys and PCRs
	Sessions   Sessions       // who takes part in which session

	// Roots are the attestation roots. Nil means the pinned AWS Nitro
	// root; pass the attestsim CA's roots only in development.
	Roots *x509.CertPool
	// AllowDebug accepts documents of debug-mode enclaves (PCR0..2 zero).
	// Never in production.
	AllowDebug bool
	// MaxAttestationAge, if positive, refuses documents older than this
	// (besides their chain, which must be valid at our clock).
	MaxAttestationAge time.Duration

	// Window is how far a frame's timestamp may be from our clock, either
	// way. Zero means DefaultWindow.
	Window time.Duration
	// Clock defaults to time.Now.
	Clock func() time.Time

	// Memory caps; zero means the default. Frames that would pass a
	// replay cap are refused (DropReplayCapacity).
	MaxCachedAttestations int
	MaxReplayEntries      int
	MaxReplaySessions     int
	MaxFramesPerSession   int
}

// Message is an accepted frame.
type Message struct {
	Session   SessionID
	Protocol  string
	Round     uint16
	From      string
	To        string // the recipient: us, for broadcasts too
	Broadcast bool
	Seq       uint64
	Time      time.Time // the sender's timestamp
	Payload   []byte    // plaintext (direct payloads decrypted)
	// AttestationDigest is the SHA-256 of the sender's attestation
	// document that vouched for this frame.
	AttestationDigest [digestSize]byte
}

// Receiver verifies frames for one cosigner. It is safe for concurrent use.
type Receiver struct {
	self     string
	hpkeKey  hpke.PrivateKey
	roster   *Roster
	sessions Sessions
	roots    *x509.CertPool
	debug    bool          // AllowDebug
	maxAge   time.Duration // MaxAttestationAge
	window   int64         // ms
	clock    func() time.Time

	cache  *attCache
	replay *replayGuard
	stats  counters
}

// NewReceiver checks the configuration and returns a Receiver.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	if err := checkReceiverConfig(cfg); err != nil {
		return nil, err
	}
	key, err := hpkePrivate(cfg.Encryption.priv)
	if err != nil {
		return nil, errors.New("wire: receiver: encryption key rejected by HPKE")
	}
	cfg = withDefaults(cfg)
	window := cfg.Window.Milliseconds()
	return &Receiver{
		self:     cfg.Self,
		hpkeKey:  key,
		roster:   cfg.Roster,
		sessions: cfg.Sessions,
		roots:    cfg.Roots,
		debug:    cfg.AllowDebug,
		maxAge:   cfg.MaxAttestationAge,
		window:   window,
		clock:    cfg.Clock,
		cache:    newAttCache(cfg.MaxCachedAttestations),
		replay:   newReplayGuard(cfg.MaxReplayEntries, cfg.MaxReplaySessions, cfg.MaxFramesPerSession, window),
	}, nil
}

func checkReceiverConfig(cfg ReceiverConfig) error {
	switch {
	case !validName(cfg.Self, MaxIDSize):
		return errors.New("wire: receiver: invalid ID")
	case cfg.Encryption == nil:
		return errors.New("wire: receiver: no encryption key")
	case cfg.Roster == nil:
		return errors.New("wire: receiver: no roster")
	case cfg.Sessions == nil:
		return errors.New("wire: receiver: no sessions")
	case cfg.Window < 0 || cfg.MaxAttestationAge < 0 ||
		cfg.MaxCachedAttestations < 0 || cfg.MaxReplayEntries < 0 ||
		cfg.MaxReplaySessions < 0 || cfg.MaxFramesPerSession < 0:
		return errors.New("wire: receiver: negative limit")
	}
	self := cfg.Roster.lookup(cfg.Self)
	if self != nil && subtle.ConstantTimeCompare(self.Encryption.Bytes(), cfg.Encryption.Public().Bytes()) != 1 {
		return errors.New("wire: receiver: encryption key differs from the roster's")
	}
	return nil
}

func withDefaults(cfg ReceiverConfig) ReceiverConfig {
	cfg.Window = orDefault(cfg.Window, DefaultWindow)
	cfg.MaxCachedAttestations = orDefault(cfg.MaxCachedAttestations, DefaultMaxCachedAttestations)
	cfg.MaxReplayEntries = orDefault(cfg.MaxReplayEntries, DefaultMaxReplayEntries)
	cfg.MaxReplaySessions = orDefault(cfg.MaxReplaySessions, DefaultMaxReplaySessions)
	cfg.MaxFramesPerSession = orDefault(cfg.MaxFramesPerSession, DefaultMaxFramesPerSession)
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return cfg
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// policy is a member's attestation policy: its PCRs, its identity binding
// in user_data, debug refused unless allowed.
func (r *Receiver) policy(m *member) attestation.Policy {
	return attestation.Policy{PCRs: m.PCRs, AllowDebug: r.debug, UserData: attestation.Equal(m.binding), MaxAge: r.maxAge}
}

// Receive verifies one frame and returns its message, or an error wrapping
// [ErrDropped] whose [DropError] names the reason (and nothing from the
// frame); never both. Every refusal is counted in Stats. The checks, in
// order:
//
//  1. The frame is at most MaxFrameSize bytes, a canonically encoded tagged
//     COSE_Sign1 with protected header {1: -8} (EdDSA), an empty unprotected
//     header and a 64-byte signature; its payload is a canonical CBOR map
//     with no duplicate or unknown keys, of version [Version], whose fields
//     have their types and sizes (DropMalformed, DropVersion).
//  2. The sender is not us (DropOwnFrame) and is in the roster
//     (DropUnknownSender).
//  3. The frame is addressed to us, whether direct or broadcast
//     (DropWrongRecipient).
//  4. The session lists both the sender and us as parties
//     (DropNotInSession) and was not ended here (DropSessionEnded).
//  5. The signature verifies with the sender's roster identity key
//     (DropBadSignature).
//  6. The timestamp is within the window of our clock (DropStale).
//  7. (session, sender, round, sequence) was not accepted before
//     (DropReplay).
//  8. The sender's attestation document, found in the cache by the digest
//     in the header or attached (and then of that digest,
//     DropAttestationMismatch), verifies against the trusted roots at our
//     clock (DropAttestationInvalid, DropAttestationExpired) and passes the
//     sender's policy: not debug unless allowed (DropAttestationDebug), the
//     roster's PCRs (DropAttestationPCR), user_data equal to the binding of
//     the sender's roster keys (DropAttestationBinding), and the maximum
//     age (DropAttestationExpired). No document at all is
//     DropUnknownAttestation. A verified document is cached by digest
//     until its chain expires.
//  9. A direct payload opens with our key, bound to the header
//     (DropDecrypt).
//  10. The frame is recorded in the replay guard, which rechecks step 7
//     atomically (DropReplay) and may be full (DropReplayCapacity).
func (r *Receiver) Receive(raw []byte) (*Message, error) {
	msg, err := r.receive(raw)
	if err != nil {
		reason := reasonOf(err)
		r.stats.drop(reason)
		return nil, drop(reason)
	}
	r.stats.accepted.Add(1)
	return msg, nil
}

func (r *Receiver) receive(raw []byte) (*Message, error) {
	f, err := parseFrame(raw)
	if err != nil {
		return nil, err
	}
	b := &f.body
	now := r.clock()
	sender, err := r.checkRouting(b, now)
	if err != nil {
		return nil, err
	}
	if f.msg.Verify(nil, sender.verifier) != nil {
		return nil, drop(DropBadSignature)
	}
	return r.checkSigned(b, sender, now)
}

// checkRouting runs checks 2 to 4 and returns the sender.
func (r *Receiver) checkRouting(b *body, now time.Time) (*member, error) {
	if b.From == r.self {
		return nil, drop(DropOwnFrame)
	}
	sender := r.roster.lookup(b.From)
	switch {
	case sender == nil:
		return nil, drop(DropUnknownSender)
	case b.To != r.self:
		return nil, drop(DropWrongRecipient)
	case !r.sessions.IsParty(b.session(), b.From) || !r.sessions.IsParty(b.session(), r.self):
		return nil, drop(DropNotInSession)
	case r.replay.ended(b.session(), now.UnixMilli()):
		return nil, drop(DropSessionEnded)
	}
	return sender, nil
}

// checkSigned runs checks 6 to 10 on a frame whose signature verified.
func (r *Receiver) checkSigned(b *body, sender *member, now time.Time) (*Message, error) {
	nowMS, ts := now.UnixMilli(), int64(b.TimeMS)
	if ts < nowMS-r.window || ts > nowMS+r.window {
		return nil, drop(DropStale)
	}
	key := replayKey{from: b.From, round: b.Round, seq: b.Seq}
	if reason := r.replay.check(b.session(), key, nowMS); reason != 0 {
		return nil, drop(reason)
	}
	if err := r.checkAttestation(b, sender, now); err != nil {
		return nil, err
	}
	payload, err := r.openPayload(b)
	if err != nil {
		return nil, err
	}
	if reason := r.replay.add(b.session(), key, ts+r.window, nowMS); reason != 0 {
		return nil, drop(reason)
	}
	return newMessage(b, payload), nil
}

// checkAttestation runs check 8.
func (r *Receiver) checkAttestation(b *body, sender *member, now time.Time) error {
	digest := [digestSize]byte(b.AttDigest)
	if b.Attestation != nil && attestation.DocDigest(b.Attestation) != digest {
		return drop(DropAttestationMismatch)
	}
	if doc, ok := r.cache.get(digest, now); ok {
		return r.checkPolicy(doc, sender, now)
	}
	if b.Attestation == nil {
		return drop(DropUnknownAttestation)
	}
	doc, err := r.verifyDocument(b.Attestation, now)
	if err != nil {
		return err
	}
	if err := r.checkPolicy(doc, sender, now); err != nil {
		return err
	}
	r.cache.put(doc, now)
	return nil
}

// verifyDocument verifies a document at now; one that would have verified
// when it was made is named expired rather than invalid.
func (r *Receiver) verifyDocument(raw []byte, now time.Time) (*attestation.Document, error) {
	doc, err := attestation.Verify(raw, attestation.VerifyOptions{Time: now, Roots: r.roots})
	if err == nil {
		return doc, nil
	}
	if errors.Is(err, attestation.ErrChain) && r.validWhenMade(raw) {
		return nil, drop(DropAttestationExpired)
	}
	return nil, drop(DropAttestationInvalid)
}

func (r *Receiver) validWhenMade(raw []byte) bool {
	made, err := attestation.UnverifiedTimestamp(raw)
	if err != nil {
		return false
	}
	_, err = attestation.Verify(raw, attestation.VerifyOptions{Time: made, Roots: r.roots})
	return err == nil
}

func (r *Receiver) checkPolicy(doc *attestation.Document, sender *member, now time.Time) error {
	err := r.policy(sender).Check(doc, now)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, attestation.ErrDebug):
		return drop(DropAttestationDebug)
	case errors.Is(err, attestation.ErrPCRMismatch):
		return drop(DropAttestationPCR)
	case errors.Is(err, attestation.ErrFieldMismatch):
		return drop(DropAttestationBinding)
	case errors.Is(err, attestation.ErrStale):
		return drop(DropAttestationExpired)
	default:
		return drop(DropAttestationInvalid)
	}
}

// openPayload runs check 9.
func (r *Receiver) openPayload(b *body) ([]byte, error) {
	if b.Broadcast {
		return b.Payload, nil
	}
	aad, err := b.header()
	if err != nil {
		return nil, drop(DropMalformed)
	}
	pt, err := openDirect(r.hpkeKey, b.Enc, aad, b.Payload)
	if err != nil {
		return nil, drop(DropDecrypt)
	}
	return pt, nil
}

func newMessage(b *body, payload []byte) *Message {
	if payload == nil {
		payload = []byte{}
	}
	return &Message{
		Session:           b.session(),
		Protocol:          b.Protocol,
		Round:             b.Round,
		From:              b.From,
		To:                b.To,
		Broadcast:         b.Broadcast,
		Seq:               b.Seq,
		Time:              time.UnixMilli(int64(b.TimeMS)).UTC(),
		Payload:           payload,
		AttestationDigest: [digestSize]byte(b.AttDigest),
	}
}

// EndSession forgets a session's replay records and refuses its frames from
// now on. Frames timestamped before the end stay inside the window for at
// most two windows, so the session is remembered as ended for that long;
// after that the timestamp check refuses them. Call it when a session
// completes, fails or passes its deadline.
func (r *Receiver) EndSession(session SessionID) {
	r.replay.end(session, r.clock().UnixMilli()+2*r.window)
}

// Stats returns a snapshot of the counters and memory use.
func (r *Receiver) Stats() Stats {
	s := r.stats.snapshot()
	s.CachedAttestations = r.cache.len()
	s.ReplaySessions, s.ReplayEntries = r.replay.size()
	return s
}
