package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// ErrIdle is returned by Pipe when no byte moved in either direction for
// the idle timeout.
var ErrIdle = errors.New("transport: connection idle")

// copyBufSize is the size of each direction's copy buffer.
const copyBufSize = 32 << 10

// PipeOptions tunes Pipe. The zero value pipes with no idle timeout and no
// live counters.
type PipeOptions struct {
	// Idle ends the pipe when no byte moved in either direction for this
	// long. Zero or less: no idle timeout.
	Idle time.Duration
	// AToB and BToA, when not nil, are increased as bytes are written, so
	// that metrics follow long-lived connections.
	AToB, BToA *atomic.Uint64
}

// Result is what one Pipe moved.
type Result struct {
	AToB, BToA int64
}

// Pipe copies bytes both ways between a and b, unchanged, and returns when
// both directions have ended. It owns a and b and closes both before
// returning.
//
// When one side ends its sending half (EOF), Pipe ends the sending half of
// the other (CloseWrite, where the connection supports it: TCP, unix and
// vsock do) and keeps copying the other direction: half-closed connections
// work. An error in either direction, the idle timeout (ErrIdle) or the
// end of ctx (ctx.Err()) closes both connections at once. Pipe returns
// nil after two clean EOFs, otherwise the first error.
//
// Pipe is the parent's one byte pipe: the ingress forwarder and the
// egress proxy both use it. It never looks at the bytes.
func Pipe(ctx context.Context, a, b net.Conn, opts PipeOptions) (Result, error) {
	p := &pipeState{idle: opts.Idle, start: time.Now()}
	stop := context.AfterFunc(ctx, func() { closeBoth(a, b) })
	defer stop()
	errs := make(chan error, 2)
	go func() { errs <- p.copy(b, a, &p.aToB, opts.AToB) }()
	go func() { errs <- p.copy(a, b, &p.bToA, opts.BToA) }()
	var first error
	for range 2 {
		if err := <-errs; err != nil && first == nil {
			first = err
			closeBoth(a, b)
		}
	}
	closeBoth(a, b)
	if ctx.Err() != nil {
		first = ctx.Err()
	}
	return Result{AToB: p.aToB.Load(), BToA: p.bToA.Load()}, first
}

// pipeState is the state both directions share: the time of the last byte
// moved, on the monotonic clock, as an offset from start.
type pipeState struct {
	idle       time.Duration
	start      time.Time
	last       atomic.Int64
	aToB, bToA atomic.Int64
}

func (p *pipeState) touch() { p.last.Store(int64(time.Since(p.start))) }

// deadline is when the pipe becomes idle if nothing moves before then.
func (p *pipeState) deadline() time.Time {
	if p.idle <= 0 {
		return time.Time{}
	}
	return p.start.Add(time.Duration(p.last.Load()) + p.idle)
}

// copy moves bytes from src to dst until src's EOF (then it half-closes
// dst) or an error.
func (p *pipeState) copy(dst, src net.Conn, n *atomic.Int64, live *atomic.Uint64) error {
	buf := make([]byte, copyBufSize)
	for {
		src.SetReadDeadline(p.deadline())
		nr, rerr := src.Read(buf)
		if nr > 0 {
			if err := p.write(dst, buf[:nr], n, live); err != nil {
				return err
			}
		}
		switch {
		case rerr == nil:
		case errors.Is(rerr, io.EOF):
			closeWrite(dst)
			return nil
		case !errors.Is(rerr, os.ErrDeadlineExceeded):
			return rerr
		case !time.Now().Before(p.deadline()):
			return ErrIdle
		}
	}
}

// write writes b to dst, counting what went through.
func (p *pipeState) write(dst net.Conn, b []byte, n *atomic.Int64, live *atomic.Uint64) error {
	p.touch()
	dst.SetWriteDeadline(p.deadline())
	nw, err := dst.Write(b)
	n.Add(int64(nw))
	if live != nil {
		live.Add(uint64(nw))
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return ErrIdle
	}
	p.touch()
	return err
}

// closeWrite ends c's sending half if c supports it.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

func closeBoth(a, b net.Conn) {
	a.Close()
	b.Close()
}
