package link

import (
	"context"
	"errors"
	"sync"

	plink "github.com/nitro-cosigner/nitro-cosigner/pkg/link"
)

// session is one link to the parent.
type session struct {
	conn   *plink.Conn
	gen    uint64
	ctx    context.Context // ends when the link closes
	cancel context.CancelFunc
}

func (s *session) close() {
	s.cancel()
	s.conn.Close()
}

// ack ACKs IN record seq, unless the link is gone (the parent then
// delivers the frame again).
func (s *session) ack(seq uint64) {
	if s.ctx.Err() != nil {
		return
	}
	if err := s.conn.Write(plink.Record{Kind: plink.KindAck, Seq: seq}); err != nil {
		s.close()
	}
}

// serve runs one link until it fails or ctx ends: a writer sends the
// window's frames (all of them again on a new link), a pinger keeps the
// link alive, and this goroutine reads.
func (c *Client) serve(ctx context.Context, conn *plink.Conn) {
	c.gen++
	s := &session{conn: conn, gen: c.gen}
	s.ctx, s.cancel = context.WithCancel(ctx)
	c.connects.Add(1)
	c.connected.Store(true)
	c.log.Info("link up", "parent_max_frame", conn.PeerMaxFrame())
	c.out.setPeerMax(conn.PeerMaxFrame())
	var wg sync.WaitGroup
	wg.Go(func() { c.writeLoop(s); s.close() })
	wg.Go(func() { conn.KeepAlive(s.ctx); s.close() })
	err := c.readLoop(s)
	s.close()
	wg.Wait()
	c.in.dropSession(s)
	c.connected.Store(false)
	c.log.Info("link down", "err", err)
}

// writeLoop writes every frame of the window this link has not carried
// yet, in order, until the link fails.
func (c *Client) writeLoop(s *session) {
	for {
		r, again, ok := c.out.next(s.ctx, s.gen)
		if !ok {
			return
		}
		err := s.conn.Write(plink.Record{Kind: plink.KindOut, Seq: r.seq, To: r.to, Frame: r.frame})
		switch {
		case errors.Is(err, plink.ErrFrameTooLarge):
			c.out.ack(r.seq)
			c.dropped.Add(1)
			c.log.Warn("dropping a frame larger than the parent accepts", "to", r.to, "bytes", len(r.frame))
			continue
		case err != nil:
			return
		}
		c.sent.Add(1)
		if again {
			c.resent.Add(1)
		}
	}
}

// readLoop hands IN records to the dispatcher and resolves ACKs until
// the link fails.
func (c *Client) readLoop(s *session) error {
	for {
		r, err := s.conn.Read()
		if err != nil {
			return err
		}
		if r.Kind == plink.KindAck {
			if c.out.ack(r.Seq) {
				c.acked.Add(1)
			}
			continue
		}
		if err := c.in.push(inFrame{frame: r.Frame, seq: r.Seq, from: s}); err != nil {
			return err
		}
	}
}

// dispatch calls Receive for each IN frame and ACKs it, until ctx ends.
func (c *Client) dispatch(ctx context.Context) {
	for {
		f, ok := c.in.pop(ctx)
		if !ok {
			return
		}
		c.cfg.Receive(ctx, f.frame)
		if ctx.Err() != nil {
			return // Receive may have stopped short: no ACK
		}
		c.received.Add(1)
		f.from.ack(f.seq)
	}
}
