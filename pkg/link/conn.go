package link

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultPingInterval     = 5 * time.Second
	DefaultIdleTimeout      = 20 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
)

// ErrIdle is returned by Read when nothing arrived for the idle timeout.
var ErrIdle = errors.New("link: peer silent for the idle timeout")

// ErrConfig is returned for an unusable Config.
var ErrConfig = errors.New("link: bad configuration")

// Config tunes one side of a link. The zero value uses the defaults.
type Config struct {
	// MaxFrame is the largest frame this side accepts from its peer: the
	// enclave's limit for IN, the parent's (its broker's) for OUT. It is
	// announced in the handshake. Default DefaultMaxFrame, at most
	// MaxFrameLimit.
	MaxFrame int
	// PingInterval is how often KeepAlive sends PING.
	PingInterval time.Duration
	// IdleTimeout ends the link when nothing arrived for this long; it
	// must exceed the peer's PingInterval.
	IdleTimeout time.Duration
	// WriteTimeout bounds writing one record.
	WriteTimeout time.Duration
	// HandshakeTimeout bounds the handshake.
	HandshakeTimeout time.Duration
}

// WithDefaults returns c with defaults for its zero fields, or ErrConfig.
func (c Config) WithDefaults() (Config, error) {
	if c.MaxFrame < 0 || c.MaxFrame > MaxFrameLimit || c.PingInterval < 0 ||
		c.IdleTimeout < 0 || c.WriteTimeout < 0 || c.HandshakeTimeout < 0 {
		return c, fmt.Errorf("%w: a limit is negative or too large", ErrConfig)
	}
	c.MaxFrame = orDefault(c.MaxFrame, DefaultMaxFrame)
	c.PingInterval = orDefault(c.PingInterval, DefaultPingInterval)
	c.IdleTimeout = orDefault(c.IdleTimeout, max(DefaultIdleTimeout, 4*c.PingInterval))
	c.WriteTimeout = orDefault(c.WriteTimeout, DefaultWriteTimeout)
	c.HandshakeTimeout = orDefault(c.HandshakeTimeout, DefaultHandshakeTimeout)
	if c.IdleTimeout <= c.PingInterval {
		return c, fmt.Errorf("%w: IdleTimeout must exceed PingInterval", ErrConfig)
	}
	return c, nil
}

func orDefault[T int | time.Duration](v, d T) T {
	if v == 0 {
		return d
	}
	return v
}

type role uint8

const (
	roleEnclave role = iota + 1
	roleParent
)

// Conn is one link connection after its handshake. Read must be called
// from one goroutine at a time; Write, KeepAlive and Close from any.
type Conn struct {
	nc      net.Conn
	br      *bufio.Reader
	cfg     Config
	role    role
	version uint16
	peerMax int
	nonce   atomic.Uint64

	// hsDeadline bounds every read and write during the handshake.
	hsDeadline time.Time

	wmu  sync.Mutex
	head []byte // scratch for Write, under wmu
}

func newConn(nc net.Conn, cfg Config, r role) *Conn {
	return &Conn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), cfg: cfg, role: r}
}

// Open runs the enclave's side of the handshake on nc: it sends HELLO and
// reads WELCOME. ctx and the HandshakeTimeout bound it. On failure it
// closes nc.
func Open(ctx context.Context, nc net.Conn, cfg Config) (*Conn, error) {
	c, err := handshake(ctx, nc, cfg, roleEnclave, (*Conn).openSteps)
	if err != nil {
		return nil, fmt.Errorf("link: handshake: %w", err)
	}
	return c, nil
}

// Accept runs the parent's side of the handshake on nc: it reads HELLO
// and answers WELCOME, or closes nc if the enclave speaks no version this
// package does. ctx and the HandshakeTimeout bound it. On failure it
// closes nc.
func Accept(ctx context.Context, nc net.Conn, cfg Config) (*Conn, error) {
	c, err := handshake(ctx, nc, cfg, roleParent, (*Conn).acceptSteps)
	if err != nil {
		return nil, fmt.Errorf("link: handshake: %w", err)
	}
	return c, nil
}

// handshake runs steps on a new Conn within the handshake's deadline.
// If ctx ends first, nc is closed, which ends the steps.
func handshake(ctx context.Context, nc net.Conn, cfg Config, r role, steps func(*Conn) error) (*Conn, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		nc.Close()
		return nil, err
	}
	c := newConn(nc, cfg, r)
	c.hsDeadline = time.Now().Add(cfg.HandshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(c.hsDeadline) {
		c.hsDeadline = d
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	err = steps(c)
	if !stop() {
		err = ctx.Err()
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	c.hsDeadline = time.Time{}
	return c, nil
}

// deadline is when a read or write that starts now must end: the
// handshake's deadline during the handshake, d from now after it.
func (c *Conn) deadline(d time.Duration) time.Time {
	if !c.hsDeadline.IsZero() {
		return c.hsDeadline
	}
	return time.Now().Add(d)
}

func (c *Conn) openSteps() error {
	hello := Hello{MinVersion: MinVersion, MaxVersion: Version, MaxFrame: uint32(c.cfg.MaxFrame)}
	if err := c.write(Record{Kind: KindHello, Hello: hello}); err != nil {
		return err
	}
	r, err := c.readRecord()
	switch {
	case err != nil:
		return err
	case r.Kind != KindWelcome:
		return malformed("WELCOME expected")
	case r.Welcome.Version < MinVersion || r.Welcome.Version > Version:
		return ErrVersion
	}
	c.version, c.peerMax = r.Welcome.Version, int(r.Welcome.MaxFrame)
	return nil
}

func (c *Conn) acceptSteps() error {
	r, err := c.readRecord()
	switch {
	case err != nil:
		return err
	case r.Kind != KindHello:
		return malformed("HELLO expected")
	}
	v, err := negotiate(r.Hello)
	if err != nil {
		return err
	}
	c.version, c.peerMax = v, int(r.Hello.MaxFrame)
	return c.write(Record{Kind: KindWelcome, Welcome: Welcome{Version: v, MaxFrame: uint32(c.cfg.MaxFrame)}})
}

// negotiate picks the highest version both sides speak.
func negotiate(h Hello) (uint16, error) {
	v := min(h.MaxVersion, Version)
	if v < h.MinVersion || v < MinVersion {
		return 0, ErrVersion
	}
	return v, nil
}

// Version is the protocol version agreed in the handshake.
func (c *Conn) Version() uint16 { return c.version }

// PeerMaxFrame is the largest frame the peer accepts: Write refuses a
// larger one with ErrFrameTooLarge.
func (c *Conn) PeerMaxFrame() int { return c.peerMax }

// Close closes the connection; blocked Read and Write calls return.
func (c *Conn) Close() error { return c.nc.Close() }

// Read returns the next OUT or ACK record (on the parent's side) or IN or
// ACK record (on the enclave's). It answers PING with PONG itself and
// skips PONG. Any error ends the link: the caller closes the Conn. A
// returned Frame belongs to the caller.
func (c *Conn) Read() (Record, error) {
	for {
		r, err := c.readRecord()
		if err != nil {
			return Record{}, err
		}
		switch {
		case r.Kind == KindPing:
			if err := c.Write(Record{Kind: KindPong, Seq: r.Seq}); err != nil {
				return Record{}, err
			}
		case r.Kind == KindPong:
		case !c.receives(r.Kind):
			return Record{}, malformed("record kind not allowed in this direction")
		default:
			return r, nil
		}
	}
}

// receives reports whether this side may receive k after the handshake.
func (c *Conn) receives(k Kind) bool {
	if c.role == roleParent {
		return k == KindOut || k == KindAck
	}
	return k == KindIn || k == KindAck
}

// sends reports whether this side may send k after the handshake.
func (c *Conn) sends(k Kind) bool {
	if k == KindAck || k == KindPing || k == KindPong {
		return true
	}
	return k == KindOut && c.role == roleEnclave || k == KindIn && c.role == roleParent
}

// maxRecord is the largest length field this side accepts.
func (c *Conn) maxRecord() uint32 { return uint32(1 + outFixed + MaxIDLen + c.cfg.MaxFrame) }

// readRecord reads and parses one record within the idle timeout.
func (c *Conn) readRecord() (Record, error) {
	c.nc.SetReadDeadline(c.deadline(c.cfg.IdleTimeout))
	var n [4]byte
	if _, err := io.ReadFull(c.br, n[:]); err != nil {
		return Record{}, readErr(err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size == 0 || size > c.maxRecord() {
		return Record{}, malformed("bad record length")
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(c.br, body); err != nil {
		return Record{}, readErr(err)
	}
	return Parse(body, c.cfg.MaxFrame)
}

func readErr(err error) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ErrIdle
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("link: reading: connection closed mid-record: %w", err)
	}
	return fmt.Errorf("link: reading: %w", err)
}

// Write sends one record within the WriteTimeout. It checks r as the peer
// will (a frame above PeerMaxFrame is ErrFrameTooLarge) and sends nothing
// if r fails. A failed write closes the connection, since part of the
// record may have gone out. Write is safe for concurrent use.
func (c *Conn) Write(r Record) error {
	if !c.sends(r.Kind) {
		return malformed("record kind not allowed in this direction")
	}
	return c.write(r)
}

func (c *Conn) write(r Record) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	head, err := appendHead(c.head[:0], r, c.peerMax)
	if err != nil {
		return err
	}
	c.head = head
	c.nc.SetWriteDeadline(c.deadline(c.cfg.WriteTimeout))
	bufs := net.Buffers{head, r.Frame}
	if _, err := bufs.WriteTo(c.nc); err != nil {
		c.nc.Close()
		return fmt.Errorf("link: writing %v: %w", r.Kind, err)
	}
	return nil
}

// KeepAlive sends PING every PingInterval until ctx ends (it returns nil)
// or a write fails (it returns the error).
func (c *Conn) KeepAlive(ctx context.Context) error {
	t := time.NewTicker(c.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := c.Write(Record{Kind: KindPing, Seq: c.nonce.Add(1)}); err != nil {
			return err
		}
	}
}
