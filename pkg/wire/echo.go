package wire

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// EchoProtocol is the protocol name of echo frames: broadcasts whose round
// is the echoed round and whose payload is the 32-byte [Transcript.Digest].
const EchoProtocol = "nitro-cosigner/echo"

// echoLabel starts every transcript digest.
const echoLabel = "nitro-cosigner broadcast echo v1"

// ErrIncomplete means a round's broadcasts have not all been recorded yet.
var ErrIncomplete = errors.New("wire: echo: round incomplete")

// EchoError names the party whose broadcast or echo disagrees with ours: a
// broadcast that differs from one already recorded (the sender equivocated,
// and both signed frames prove it), or an echo digest that differs from
// ours (the echoer or some broadcaster equivocated; the frames each side
// recorded tell which).
type EchoError struct {
	Party string
	Round uint16
	// Equivocation is true when Party sent two different broadcasts.
	Equivocation bool
}

func (e *EchoError) Error() string {
	if e.Equivocation {
		return fmt.Sprintf("wire: echo: party %q sent two different broadcasts in round %d", e.Party, e.Round)
	}
	return fmt.Sprintf("wire: echo: party %q saw different broadcasts in round %d", e.Party, e.Round)
}

// Transcript records the broadcasts of one session so that the parties can
// confirm, by exchanging digests (an echo round), that they all saw the same
// broadcasts in a round. multi-party-sig does this itself for every round
// but the last (see the package documentation); the adapter uses a
// Transcript for the last broadcast round before it commits a result. It is
// safe for concurrent use.
type Transcript struct {
	session SessionID
	parties []string // sorted

	mu     sync.Mutex
	rounds map[uint16]map[string][sha256.Size]byte
}

// NewTranscript returns an empty transcript for a session's parties (IDs
// from the roster, ourselves included).
func NewTranscript(session SessionID, parties []string) (*Transcript, error) {
	sorted := slices.Sorted(slices.Values(parties))
	if len(sorted) == 0 || len(slices.Compact(slices.Clone(sorted))) != len(sorted) {
		return nil, errors.New("wire: echo: parties empty or repeated")
	}
	return &Transcript{session: session, parties: sorted, rounds: make(map[uint16]map[string][sha256.Size]byte)}, nil
}

// Record adds a party's broadcast of a round: an accepted broadcast
// Message, or our own broadcast as sealed. Recording the same broadcast again
// is a no-op; a different one is an [EchoError] with Equivocation set.
func (t *Transcript) Record(from, protocol string, round uint16, payload []byte) error {
	if !slices.Contains(t.parties, from) {
		return errors.New("wire: echo: not a party of the session")
	}
	h := broadcastHash(protocol, payload)
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := t.rounds[round]
	if seen == nil {
		seen = make(map[string][sha256.Size]byte, len(t.parties))
		t.rounds[round] = seen
	}
	if prev, ok := seen[from]; ok && prev != h {
		return &EchoError{Party: from, Round: round, Equivocation: true}
	}
	seen[from] = h
	return nil
}

func broadcastHash(protocol string, payload []byte) [sha256.Size]byte {
	h := sha256.New()
	writePrefixed(h, []byte(protocol))
	writePrefixed(h, payload)
	return [sha256.Size]byte(h.Sum(nil))
}

// Digest returns the digest of a round's broadcasts, or ErrIncomplete until
// every party's is recorded: SHA-256 over a label, the session, the round
// and, for each party in ID order, its length-prefixed ID and the hash of
// its broadcast.
func (t *Transcript) Digest(round uint16) ([sha256.Size]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := t.rounds[round]
	h := sha256.New()
	h.Write([]byte(echoLabel))
	h.Write(t.session[:])
	h.Write(binary.BigEndian.AppendUint16(nil, round))
	for _, p := range t.parties {
		bh, ok := seen[p]
		if !ok {
			return [sha256.Size]byte{}, ErrIncomplete
		}
		writePrefixed(h, []byte(p))
		h.Write(bh[:])
	}
	return [sha256.Size]byte(h.Sum(nil)), nil
}

// CheckEcho compares a party's echoed digest of a round with ours. It
// returns ErrIncomplete if we cannot compute ours yet, an [EchoError] if
// they differ.
func (t *Transcript) CheckEcho(from string, round uint16, echoed []byte) error {
	if !slices.Contains(t.parties, from) {
		return errors.New("wire: echo: not a party of the session")
	}
	ours, err := t.Digest(round)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(ours[:], echoed) != 1 {
		return &EchoError{Party: from, Round: round}
	}
	return nil
}
