// Package logfwd sends the enclave's log lines to its parent, which logs
// them again (cosigner-parent --enclave-logs-listen). A production enclave
// has no console, so without this its logs are lost.
//
// Writer is an io.Writer for the enclave's slog handler: each Write is one
// record (slog's handlers write a record in one call). Write never blocks
// and never fails: it queues a copy, and when the queue is full, or the
// parent does not take lines fast enough, the line is dropped and counted
// (Dropped), because logging must not stall the cosigner. Run dials the
// parent, sends the queue, and dials again with backoff when the link
// breaks; a line whose write failed is sent again on the next link, but
// lines already written that the parent had not read are lost: delivery
// is best effort.
//
// What crosses: every line the enclave logs at or above its --log-level,
// as it is written. The enclave's logging conventions (pkg/logging) keep
// secrets out by type, but the lines do name keys, sessions, peers and
// policy outcomes, and the parent is untrusted: forwarding is opt-in. On
// the parent, the lines are as trustworthy as the host: anything on it
// can connect to the listener and write lines.
package logfwd

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// Defaults.
const (
	// QueueLines bounds the lines waiting to be sent.
	QueueLines = 4096
	// MaxLine bounds one line; a longer one is cut (the parent cuts at the
	// same length).
	MaxLine = 64 << 10
	// FlushTimeout bounds sending what is queued once Run's context ends.
	FlushTimeout = 2 * time.Second

	dialTimeout  = 5 * time.Second
	writeTimeout = 10 * time.Second
	minBackoff   = 100 * time.Millisecond
	maxBackoff   = 5 * time.Second
)

// Writer queues log lines for the parent. Its methods are safe for
// concurrent use.
type Writer struct {
	addr    transport.Addr
	lines   chan []byte
	dropped atomic.Uint64
	closed  atomic.Bool
}

// New returns a Writer sending to the parent at addr; Run sends.
func New(addr transport.Addr) *Writer {
	return &Writer{addr: addr, lines: make(chan []byte, QueueLines)}
}

// Write queues a copy of p (cut at MaxLine, ending in a newline) and
// returns len(p), nil: it never blocks and never fails.
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed.Load() {
		w.dropped.Add(1)
		return len(p), nil
	}
	line := make([]byte, 0, min(len(p), MaxLine)+1)
	line = append(line, p[:min(len(p), MaxLine)]...)
	if len(line) == 0 || line[len(line)-1] != '\n' {
		line = append(line, '\n')
	}
	select {
	case w.lines <- line:
	default:
		w.dropped.Add(1)
	}
	return len(p), nil
}

// Dropped counts the lines never sent.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Run sends queued lines until ctx ends, then for at most FlushTimeout
// sends what is still queued, and returns. Lines written after that are
// dropped.
func (w *Writer) Run(ctx context.Context) {
	var pending []byte // the line a broken link did not take
	backoff := minBackoff
	for ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		c, err := transport.DialAddr(dctx, w.addr)
		cancel()
		if err != nil {
			sleep(ctx, backoff)
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
		pending = w.send(ctx, c, pending)
		if ctx.Err() != nil {
			w.flush(c, pending)
		}
		c.Close()
	}
	w.closed.Store(true)
}

// send writes lines to c until ctx ends or a write fails; it returns the
// line not written.
func (w *Writer) send(ctx context.Context, c net.Conn, pending []byte) []byte {
	for {
		if pending == nil {
			select {
			case pending = <-w.lines:
			case <-ctx.Done():
				return nil
			}
		}
		c.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := c.Write(pending); err != nil {
			return pending
		}
		pending = nil
	}
}

// flush sends pending and the queued lines to c for at most FlushTimeout.
func (w *Writer) flush(c net.Conn, pending []byte) {
	c.SetWriteDeadline(time.Now().Add(FlushTimeout))
	if pending != nil {
		if _, err := c.Write(pending); err != nil {
			return
		}
	}
	for {
		select {
		case line := <-w.lines:
			if _, err := c.Write(line); err != nil {
				return
			}
		default:
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
