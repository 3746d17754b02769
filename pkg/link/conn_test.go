package link

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fast is a Config with short timers for tests.
var fast = Config{PingInterval: 20 * time.Millisecond, IdleTimeout: 200 * time.Millisecond,
	WriteTimeout: time.Second, HandshakeTimeout: time.Second}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// connected runs both handshakes and returns (enclave, parent).
func connected(t *testing.T, enclaveCfg, parentCfg Config) (*Conn, *Conn) {
	t.Helper()
	a, b := tcpPair(t)
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := Accept(t.Context(), b, parentCfg)
		ch <- res{c, err}
	}()
	e, err := Open(t.Context(), a, enclaveCfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	p := <-ch
	if p.err != nil {
		t.Fatalf("Accept: %v", p.err)
	}
	return e, p.c
}

func TestHandshakeAndFlow(t *testing.T) {
	ecfg, pcfg := fast, fast
	ecfg.MaxFrame, pcfg.MaxFrame = 100, 50
	e, p := connected(t, ecfg, pcfg)
	if e.Version() != Version || p.Version() != Version {
		t.Fatalf("versions %d, %d", e.Version(), p.Version())
	}
	if e.PeerMaxFrame() != 50 || p.PeerMaxFrame() != 100 {
		t.Fatalf("peer limits %d, %d", e.PeerMaxFrame(), p.PeerMaxFrame())
	}
	out := Record{Kind: KindOut, Seq: 1, To: "bob", Frame: bytes.Repeat([]byte{1}, 50)}
	if err := e.Write(out); err != nil {
		t.Fatal(err)
	}
	expectRead(t, p, out)
	in := Record{Kind: KindIn, Seq: 1, Frame: bytes.Repeat([]byte{2}, 100)}
	if err := p.Write(in); err != nil {
		t.Fatal(err)
	}
	expectRead(t, e, in)
	ack := Record{Kind: KindAck, Seq: 1}
	if err := e.Write(ack); err != nil {
		t.Fatal(err)
	}
	expectRead(t, p, ack)
}

func expectRead(t *testing.T, c *Conn, want Record) {
	t.Helper()
	got, err := c.Read()
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if !equal(got, want) {
		t.Fatalf("Read = %v seq %d, want %v seq %d", got.Kind, got.Seq, want.Kind, want.Seq)
	}
}

func TestWriteChecksPeerLimitAndDirection(t *testing.T) {
	ecfg, pcfg := fast, fast
	ecfg.MaxFrame, pcfg.MaxFrame = 10, 20
	e, p := connected(t, ecfg, pcfg)
	if err := e.Write(Record{Kind: KindOut, Seq: 1, To: "b", Frame: make([]byte, 21)}); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("enclave OUT above the parent's limit: %v", err)
	}
	if err := p.Write(Record{Kind: KindIn, Seq: 1, Frame: make([]byte, 11)}); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("parent IN above the enclave's limit: %v", err)
	}
	for _, c := range []struct {
		c *Conn
		k Kind
	}{{e, KindIn}, {p, KindOut}, {e, KindHello}, {p, KindWelcome}} {
		if err := c.c.Write(Record{Kind: c.k, Seq: 1, To: "b", Frame: []byte("x")}); !errors.Is(err, ErrMalformed) {
			t.Errorf("%v from the wrong side: %v", c.k, err)
		}
	}
	// Nothing was sent: the link still works.
	ack := Record{Kind: KindAck, Seq: 4}
	if err := e.Write(ack); err != nil {
		t.Fatal(err)
	}
	expectRead(t, p, ack)
}

func TestReadRefusesWrongDirection(t *testing.T) {
	a, b := tcpPair(t)
	go rawServer(b, Version, 1<<10, Record{Kind: KindOut, Seq: 1, To: "x", Frame: []byte("y")})
	e, err := Open(t.Context(), a, fast)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Read(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("enclave reading OUT: %v, want ErrMalformed", err)
	}
}

// rawServer answers a HELLO with a WELCOME of version v, then writes recs.
func rawServer(c net.Conn, v uint16, maxFrame uint32, recs ...Record) {
	var n [4]byte
	io.ReadFull(c, n[:])
	io.ReadFull(c, make([]byte, binary.BigEndian.Uint32(n[:])))
	b, _ := Marshal(Record{Kind: KindWelcome, Welcome: Welcome{Version: v, MaxFrame: maxFrame}}, 0)
	c.Write(b)
	for _, r := range recs {
		b, _ := Marshal(r, MaxFrameLimit)
		c.Write(b)
	}
}

func TestPingPongAndKeepAlive(t *testing.T) {
	// Ten pings per idle timeout: a loaded CI machine can stall a
	// goroutine for longer than fast's 20 ms ping interval allows.
	keep := fast
	keep.PingInterval, keep.IdleTimeout = 100*time.Millisecond, time.Second
	e, p := connected(t, keep, keep)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.KeepAlive(ctx) }()
	// The enclave sees only the IN below; PINGs are answered inside Read,
	// and the PONGs keep the parent's Read from going idle.
	go func() {
		time.Sleep(5 * keep.IdleTimeout / 2)
		p.Write(Record{Kind: KindIn, Seq: 1, Frame: []byte("late")})
	}()
	expectRead(t, e, Record{Kind: KindIn, Seq: 1, Frame: []byte("late")})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("KeepAlive: %v", err)
	}
}

func TestIdle(t *testing.T) {
	e, _ := connected(t, fast, fast)
	start := time.Now()
	if _, err := e.Read(); !errors.Is(err, ErrIdle) {
		t.Fatalf("Read on a silent link: %v, want ErrIdle", err)
	}
	if d := time.Since(start); d < fast.IdleTimeout {
		t.Fatalf("idle after %v, want at least %v", d, fast.IdleTimeout)
	}
}

func TestVersionMismatch(t *testing.T) {
	a, b := tcpPair(t)
	hello, _ := Marshal(Record{Kind: KindHello, Hello: Hello{MinVersion: 2, MaxVersion: 3, MaxFrame: 10}}, 0)
	a.Write(hello)
	if _, err := Accept(t.Context(), b, fast); !errors.Is(err, ErrVersion) {
		t.Fatalf("Accept of a v2-3 HELLO: %v, want ErrVersion", err)
	}
	a.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("the enclave side reads %v, want EOF", err)
	}

	a, b = tcpPair(t)
	go rawServer(b, 2, 10)
	if _, err := Open(t.Context(), a, fast); !errors.Is(err, ErrVersion) {
		t.Fatalf("Open with a v2 WELCOME: %v, want ErrVersion", err)
	}
}

func TestHandshakeRefusesOtherFirstRecord(t *testing.T) {
	a, b := tcpPair(t)
	ping, _ := Marshal(Record{Kind: KindPing, Seq: 1}, 0)
	a.Write(ping)
	if _, err := Accept(t.Context(), b, fast); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Accept after PING: %v, want ErrMalformed", err)
	}
	a, b = tcpPair(t)
	go func() { b.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")) }()
	if _, err := Open(t.Context(), a, fast); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Open against an HTTP server: %v, want ErrMalformed", err)
	}
}

func TestHandshakeTimeoutAndCancel(t *testing.T) {
	a, _ := tcpPair(t)
	start := time.Now()
	if _, err := Open(t.Context(), a, fast); err == nil {
		t.Fatal("Open against a silent peer succeeded")
	}
	if d := time.Since(start); d > 3*fast.HandshakeTimeout {
		t.Fatalf("Open took %v", d)
	}
	_, b := tcpPair(t)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	cfg := fast
	cfg.HandshakeTimeout = time.Minute
	if _, err := Accept(ctx, b, cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("Accept after cancel: %v, want context.Canceled", err)
	}
}

func TestOversizeLengthRefusedBeforeReading(t *testing.T) {
	ecfg := fast
	ecfg.MaxFrame = 100
	a, b := tcpPair(t)
	go func() {
		rawServer(b, Version, 100)
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(1+outFixed+MaxIDLen+100+1))
		b.Write(n[:]) // and never the body
	}()
	e, err := Open(t.Context(), a, ecfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Read(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Read of an oversize length: %v, want ErrMalformed", err)
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []Config{
		{MaxFrame: -1}, {MaxFrame: MaxFrameLimit + 1}, {PingInterval: -1},
		{PingInterval: time.Second, IdleTimeout: time.Second},
	} {
		if _, err := c.WithDefaults(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", c, err)
		}
	}
	c, err := Config{PingInterval: 10 * time.Second}.WithDefaults()
	if err != nil || c.IdleTimeout != 40*time.Second || c.MaxFrame != DefaultMaxFrame {
		t.Errorf("defaults: %+v, %v", c, err)
	}
}
