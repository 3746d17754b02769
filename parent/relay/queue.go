package relay

import (
	"context"
	"sync"
)

// outFrame is an OUT record waiting to be published.
type outFrame struct {
	to    string
	frame []byte
	seq   uint64
	from  *enclaveLink // where to send the ACK
}

// queue is the bounded FIFO of OUT frames between the link reader and the
// publishers. push blocks while it is full: that is the backpressure.
type queue struct {
	maxLen, maxBytes int

	mu    sync.Mutex
	cond  sync.Cond
	items []outFrame
	bytes int
}

func newQueue(maxLen, maxBytes int) *queue {
	q := &queue{maxLen: maxLen, maxBytes: maxBytes}
	q.cond.L = &q.mu
	return q
}

// push appends f once there is room for it (a frame larger than maxBytes
// waits for an empty queue). It returns ctx's error if ctx ends first.
func (q *queue) push(ctx context.Context, f outFrame) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.wait(ctx, func() bool { return q.fits(len(f.frame)) }) {
		return ctx.Err()
	}
	q.items = append(q.items, f)
	q.bytes += len(f.frame)
	q.cond.Broadcast()
	return nil
}

func (q *queue) fits(n int) bool {
	return len(q.items) == 0 || len(q.items) < q.maxLen && q.bytes+n <= q.maxBytes
}

// pop removes the oldest frame, waiting for one. It reports false if ctx
// ends first.
func (q *queue) pop(ctx context.Context) (outFrame, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.wait(ctx, func() bool { return len(q.items) > 0 }) {
		return outFrame{}, false
	}
	f := q.items[0]
	q.items[0] = outFrame{}
	q.items = q.items[1:]
	q.bytes -= len(f.frame)
	q.cond.Broadcast()
	return f, true
}

// wait waits, with q.mu held, until ready holds. It reports false if ctx
// ends first.
func (q *queue) wait(ctx context.Context, ready func() bool) bool {
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		q.cond.Broadcast()
		q.mu.Unlock()
	})
	defer stop()
	for !ready() {
		if ctx.Err() != nil {
			return false
		}
		q.cond.Wait()
	}
	return true
}

// depth returns the number of frames waiting and their bytes.
func (q *queue) depth() (int, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items), q.bytes
}
