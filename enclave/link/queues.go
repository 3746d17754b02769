package link

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"

	plink "github.com/nitro-cosigner/nitro-cosigner/pkg/link"
)

// outFrame is a frame in the window: queued or sent, not yet ACKed.
type outFrame struct {
	seq   uint64
	to    string
	frame []byte
	gen   uint64 // the link generation that last carried it; 0: none
}

// outbox is the window of frames the parent has not ACKed.
type outbox struct {
	maxLen, maxBytes int

	mu      sync.Mutex
	cond    sync.Cond
	frames  []*outFrame // in sequence order
	bytes   int
	nextSeq uint64
	peerMax int // the last parent's limit; 0 before the first link
	closed  bool
}

func newOutbox(maxLen, maxBytes int) *outbox {
	o := &outbox{maxLen: maxLen, maxBytes: maxBytes}
	o.cond.L = &o.mu
	return o
}

// add copies frame into the window once there is room.
func (o *outbox) add(ctx context.Context, to string, frame []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	limit := plink.MaxFrameLimit
	if o.peerMax > 0 {
		limit = o.peerMax
	}
	if len(frame) > limit {
		return ErrFrameTooLarge
	}
	if !wait(ctx, &o.cond, func() bool { return o.closed || o.fits(len(frame)) }) {
		return ctx.Err()
	}
	if o.closed {
		return ErrClosed
	}
	o.nextSeq++
	o.frames = append(o.frames, &outFrame{seq: o.nextSeq, to: to, frame: bytes.Clone(frame)})
	o.bytes += len(frame)
	o.cond.Broadcast()
	return nil
}

func (o *outbox) fits(n int) bool {
	return len(o.frames) == 0 || len(o.frames) < o.maxLen && o.bytes+n <= o.maxBytes
}

// next returns the oldest frame link generation gen has not carried,
// marking it carried, and whether an earlier link carried it. It waits
// for one; it reports false once ctx ends or the outbox is closed.
func (o *outbox) next(ctx context.Context, gen uint64) (f outFrame, again, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var found *outFrame
	ready := func() bool {
		found = o.unsent(gen)
		return o.closed || found != nil
	}
	if !wait(ctx, &o.cond, ready) || o.closed {
		return outFrame{}, false, false
	}
	again = found.gen != 0
	found.gen = gen
	return *found, again, true
}

func (o *outbox) unsent(gen uint64) *outFrame {
	for _, f := range o.frames {
		if f.gen < gen {
			return f
		}
	}
	return nil
}

// ack removes frame seq from the window. It reports whether it was there.
func (o *outbox) ack(seq uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, f := range o.frames {
		if f.seq == seq {
			o.bytes -= len(f.frame)
			o.frames = slices.Delete(o.frames, i, i+1)
			o.cond.Broadcast()
			return true
		}
	}
	return false
}

func (o *outbox) setPeerMax(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.peerMax = n
}

func (o *outbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.frames)
}

// close wakes every waiter; add then fails with ErrClosed.
func (o *outbox) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	o.cond.Broadcast()
}

// errTooManyIn is the parent breaking the in-flight limit.
var errTooManyIn = errors.New("enclave/link: the parent sent more unacknowledged frames than allowed")

// inFrame is an IN record waiting for Receive.
type inFrame struct {
	frame []byte
	seq   uint64
	from  *session
}

// inbox holds IN frames between the link reader and the dispatcher.
// Each link may have at most plink.MaxInFlight frames waiting, and a
// link's frames leave with it, so it holds at most that many.
type inbox struct {
	mu     sync.Mutex
	cond   sync.Cond
	frames []inFrame
}

func newInbox() *inbox {
	in := &inbox{}
	in.cond.L = &in.mu
	return in
}

// push appends f, or fails if its link has too many frames waiting.
func (in *inbox) push(f inFrame) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for _, g := range in.frames {
		if g.from == f.from {
			n++
		}
	}
	if n >= plink.MaxInFlight {
		return errTooManyIn
	}
	in.frames = append(in.frames, f)
	in.cond.Broadcast()
	return nil
}

// pop removes the oldest frame, waiting for one. It reports false once
// ctx ends.
func (in *inbox) pop(ctx context.Context) (inFrame, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !wait(ctx, &in.cond, func() bool { return len(in.frames) > 0 }) {
		return inFrame{}, false
	}
	f := in.frames[0]
	in.frames[0] = inFrame{}
	in.frames = in.frames[1:]
	return f, true
}

// dropSession forgets the frames of a link that ended: they cannot be
// ACKed, and the parent delivers them again.
func (in *inbox) dropSession(s *session) {
	in.mu.Lock()
	defer in.mu.Unlock()
	kept := in.frames[:0]
	for _, f := range in.frames {
		if f.from != s {
			kept = append(kept, f)
		}
	}
	clear(in.frames[len(kept):])
	in.frames = kept
}

// wait waits on cond, whose lock is held, until ready holds. It reports
// false if ctx ends first.
func wait(ctx context.Context, cond *sync.Cond, ready func() bool) bool {
	stop := context.AfterFunc(ctx, func() {
		cond.L.Lock()
		cond.Broadcast()
		cond.L.Unlock()
	})
	defer stop()
	for !ready() {
		if ctx.Err() != nil {
			return false
		}
		cond.Wait()
	}
	return true
}
