package mpcharness

import (
	"bytes"
	"crypto/sha256"
	"sync"
)

// Sum names a frame by its SHA-256.
type Sum [sha256.Size]byte

// SumOf returns frame's Sum.
func SumOf(frame []byte) Sum { return sha256.Sum256(frame) }

// Sent is a frame and the inbox it was published to.
type Sent struct {
	To    string
	Frame []byte
}

// maxHistory bounds the frames a ledger keeps for replays.
const maxHistory = 512

// Ledger knows every frame a cluster's relays published (genuine, by
// inbox) and every frame its hostile brokers made up (forged), and keeps
// recent genuine frames to replay.
type Ledger struct {
	mu      sync.Mutex
	byInbox map[string][][]byte // genuine frames, first publication order
	isReal  map[string]map[Sum]bool
	forged  map[Sum]bool
	history []Sent // ring of the last maxHistory genuine publications
	next    int
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{byInbox: map[string][][]byte{}, isReal: map[string]map[Sum]bool{}, forged: map[Sum]bool{}}
}

// genuine records a frame a relay published to inbox to.
func (l *Ledger) genuine(to string, frame []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := SumOf(frame)
	if l.isReal[to] == nil {
		l.isReal[to] = map[Sum]bool{}
	}
	if !l.isReal[to][s] {
		l.isReal[to][s] = true
		l.byInbox[to] = append(l.byInbox[to], bytes.Clone(frame))
	}
	e := Sent{to, bytes.Clone(frame)}
	if len(l.history) < maxHistory {
		l.history = append(l.history, e)
	} else {
		l.history[l.next] = e
		l.next = (l.next + 1) % maxHistory
	}
}

// forge records a frame a hostile broker made up and returns it.
func (l *Ledger) forge(frame []byte) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forged[SumOf(frame)] = true
	return frame
}

// earlier returns the genuine publication chosen by pick, or nil if there
// was none yet.
func (l *Ledger) earlier(pick uint64) *Sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.history) == 0 {
		return nil
	}
	e := l.history[pick%uint64(len(l.history))]
	return &e
}

// Kind classifies a frame delivered to inbox to.
func (l *Ledger) Kind(to string, s Sum) FrameKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.isReal[to][s]:
		return KindGenuine
	case l.forged[s]:
		return KindForged
	}
	return KindForeign
}

// FramesTo returns the genuine frames published to inbox to so far.
func (l *Ledger) FramesTo(to string) [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]byte(nil), l.byInbox[to]...)
}

// FrameKind is what a delivered frame is, to the ledger.
type FrameKind uint8

const (
	KindGenuine FrameKind = iota // a relay published it to this inbox
	KindForged                   // a hostile broker made it up
	KindForeign                  // neither: injected, or meant for another inbox
)
