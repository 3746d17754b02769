package relay

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/link"
)

var (
	errNoEnclave   = errors.New("relay: no enclave link")
	errLinkDown    = errors.New("relay: enclave link went down before its ACK")
	errAckTimeout  = errors.New("relay: no ACK from the enclave in time")
	errEnclaveBusy = errors.New("relay: too many IN records unacknowledged")
)

// enclaveLink is one enclave connection after its handshake.
type enclaveLink struct {
	conn   *link.Conn
	ctx    context.Context // ends when the link closes
	cancel context.CancelFunc

	mu      sync.Mutex
	nextSeq uint64
	pending map[uint64]chan struct{} // IN seq → closed on its ACK
}

func newEnclaveLink(ctx context.Context, c *link.Conn) *enclaveLink {
	ctx, cancel := context.WithCancel(ctx)
	return &enclaveLink{conn: c, ctx: ctx, cancel: cancel, pending: make(map[uint64]chan struct{})}
}

// close ends the link: blocked reads, writes and waits for ACKs return.
func (l *enclaveLink) close() {
	l.cancel()
	l.conn.Close()
}

func (l *enclaveLink) closed() bool { return l.ctx.Err() != nil }

// deliver sends frame as an IN record and waits up to d for its ACK.
func (l *enclaveLink) deliver(ctx context.Context, frame []byte, d time.Duration) error {
	acked, err := l.send(frame)
	if err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-acked:
		return nil
	case <-l.ctx.Done():
		return errLinkDown
	case <-t.C:
		return errAckTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send numbers frame, records it as pending and writes it. A record stays
// pending until ACKed or the link ends, even after deliver stopped
// waiting, so the link never has more than link.MaxInFlight.
func (l *enclaveLink) send(frame []byte) (<-chan struct{}, error) {
	l.mu.Lock()
	if len(l.pending) >= link.MaxInFlight {
		l.mu.Unlock()
		return nil, errEnclaveBusy
	}
	l.nextSeq++
	seq, acked := l.nextSeq, make(chan struct{})
	l.pending[seq] = acked
	l.mu.Unlock()
	if err := l.conn.Write(link.Record{Kind: link.KindIn, Seq: seq, Frame: frame}); err != nil {
		l.close()
		return nil, err
	}
	return acked, nil
}

// acked resolves an IN record. An unknown number (a late or repeated ACK)
// is ignored.
func (l *enclaveLink) acked(seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ch, ok := l.pending[seq]; ok {
		delete(l.pending, seq)
		close(ch)
	}
}

func (l *enclaveLink) inFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending)
}

// ackOut tells the enclave the relay is done with OUT record seq. If the
// link is gone the ACK is dropped; the enclave sends the frame again.
func (l *enclaveLink) ackOut(seq uint64) {
	if l.closed() {
		return
	}
	if err := l.conn.Write(link.Record{Kind: link.KindAck, Seq: seq}); err != nil {
		l.close()
	}
}

// activeLink holds the one link in use.
type activeLink struct {
	mu      sync.Mutex
	cur     *enclaveLink
	changed chan struct{} // closed and replaced whenever cur changes
}

func newActiveLink() *activeLink { return &activeLink{changed: make(chan struct{})} }

// set makes l the active link and closes the one before it.
func (a *activeLink) set(l *enclaveLink) {
	a.mu.Lock()
	old := a.cur
	a.cur = l
	a.notifyLocked()
	a.mu.Unlock()
	if old != nil {
		old.close()
	}
}

// clear forgets l if it is still the active link.
func (a *activeLink) clear(l *enclaveLink) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur == l {
		a.cur = nil
		a.notifyLocked()
	}
}

func (a *activeLink) notifyLocked() {
	close(a.changed)
	a.changed = make(chan struct{})
}

// current returns the active link, or nil.
func (a *activeLink) current() *enclaveLink {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur == nil || a.cur.closed() {
		return nil
	}
	return a.cur
}

// wait returns the active link, waiting up to d for one.
func (a *activeLink) wait(ctx context.Context, d time.Duration) (*enclaveLink, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		a.mu.Lock()
		l, changed := a.cur, a.changed
		a.mu.Unlock()
		if l != nil && !l.closed() {
			return l, nil
		}
		select {
		case <-changed:
		case <-t.C:
			return nil, errNoEnclave
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// serveLink runs one enclave connection: the handshake, then reading
// until the link fails, is replaced or ctx ends.
func (r *Relay) serveLink(ctx context.Context, nc net.Conn) {
	remote := nc.RemoteAddr().String()
	c, err := link.Accept(ctx, nc, r.cfg.Link)
	if err != nil {
		r.log.Warn("enclave link handshake failed", "remote", remote, "err", err)
		return
	}
	l := newEnclaveLink(ctx, c)
	r.links.Add(1)
	r.active.set(l)
	r.log.Info("enclave link up", "remote", remote, "enclave_max_frame", c.PeerMaxFrame())
	err = r.runLink(l)
	r.active.clear(l)
	r.log.Info("enclave link down", "remote", remote, "err", err)
}

// runLink reads the link and pings it until either fails or the link is
// closed.
func (r *Relay) runLink(l *enclaveLink) error {
	var wg sync.WaitGroup
	wg.Go(func() {
		l.conn.KeepAlive(l.ctx)
		l.close()
	})
	err := r.readLink(l)
	l.close()
	wg.Wait()
	return err
}

// readLink queues OUT records and resolves ACKs until the link fails.
func (r *Relay) readLink(l *enclaveLink) error {
	for {
		rec, err := l.conn.Read()
		if err != nil {
			return err
		}
		if rec.Kind == link.KindAck {
			l.acked(rec.Seq)
			continue
		}
		f := outFrame{to: rec.To, frame: rec.Frame, seq: rec.Seq, from: l}
		if err := r.queue.push(l.ctx, f); err != nil {
			return err
		}
	}
}
