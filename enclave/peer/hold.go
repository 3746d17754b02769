package peer

import (
	"errors"
	"sync"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

// Frames that name an attestation document the Receiver has not cached
// yet (wire.DropUnknownAttestation) are held a short while instead of
// dropped: the frame that carries the document may have been overtaken
// (the relay publishes concurrently; brokers redeliver out of order). When
// a frame is accepted, the held ones are tried again; nothing is accepted
// that the Receiver did not verify in full, and the replay guard sees a
// held frame only when it is accepted. This lets senders attach their
// document to the first frame per recipient and session only
// (Config.LeanAttach) over brokers that reorder.

// Defaults of the holding area.
const (
	DefaultHoldFor  = 5 * time.Second
	holdMaxFrames   = 256
	holdMaxBytes    = 4 << 20
	unknownDocument = wire.DropUnknownAttestation
)

type heldFrame struct {
	raw []byte
	at  time.Time
}

// holding is the bounded set of held frames, oldest first.
type holding struct {
	mu     sync.Mutex
	frames []heldFrame
	bytes  int
}

// add holds raw unless the area is full; it reports whether it did.
func (h *holding) add(raw []byte, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.frames) >= holdMaxFrames || h.bytes+len(raw) > holdMaxBytes {
		return false
	}
	h.frames = append(h.frames, heldFrame{raw: raw, at: now})
	h.bytes += len(raw)
	return true
}

// take removes and returns every held frame.
func (h *holding) take() []heldFrame {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.frames
	h.frames, h.bytes = nil, 0
	return out
}

func unknownAttestation(err error) bool {
	var d *wire.DropError
	return errors.As(err, &d) && d.Reason == unknownDocument
}

// keep holds a frame whose document is not known yet.
func (p *Peer) keep(raw []byte) bool {
	if !p.hold.add(raw, time.Now()) {
		return false
	}
	p.heldFrames.Add(1)
	return true
}

// retryHeld tries the held frames again after a frame was accepted (its
// document is now cached): accepted ones are queued, expired ones dropped,
// the rest held again.
func (p *Peer) retryHeld() {
	frames := p.hold.take()
	now := time.Now()
	for _, f := range frames {
		msg, err := p.recv.Receive(f.raw)
		switch {
		case err == nil:
			p.heldAccepted.Add(1)
			p.accept(msg)
		case unknownAttestation(err) && now.Sub(f.at) < p.holdFor && p.hold.add(f.raw, f.at):
		default:
			p.logDrop(err)
		}
	}
}
