package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

const fuzzMaxFrame = 64

// FuzzParse: Parse never panics, and what it accepts has exactly one
// encoding: Marshal gives back the same bytes.
func FuzzParse(f *testing.F) {
	for _, r := range validRecords() {
		if b, err := Marshal(r, fuzzMaxFrame*2); err == nil {
			f.Add(b[4:])
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := Parse(body, fuzzMaxFrame)
		if err != nil {
			return
		}
		if len(r.Frame) > fuzzMaxFrame {
			t.Fatalf("accepted a %d-byte frame", len(r.Frame))
		}
		b, err := Marshal(r, fuzzMaxFrame)
		if err != nil {
			t.Fatalf("Marshal of a parsed record: %v", err)
		}
		if !bytes.Equal(b[4:], body) || binary.BigEndian.Uint32(b) != uint32(len(body)) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", b[4:], body)
		}
	})
}

// FuzzRead: a parent's Conn reading arbitrary bytes after a valid
// handshake never panics, never returns a record it may not receive, and
// stops at the first bad record.
func FuzzRead(f *testing.F) {
	for _, r := range validRecords() {
		if b, err := Marshal(r, fuzzMaxFrame*2); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 3})
	f.Fuzz(func(t *testing.T, stream []byte) {
		hello, _ := Marshal(Record{Kind: KindHello, Hello: Hello{MinVersion: 1, MaxVersion: 1, MaxFrame: 64}}, 0)
		nc := &scriptConn{r: bytes.NewReader(append(hello, stream...))}
		c, err := Accept(t.Context(), nc, Config{MaxFrame: fuzzMaxFrame})
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		for range len(stream) + 1 {
			r, err := c.Read()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalidID) &&
					!errors.Is(err, ErrFrameTooLarge) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				return
			}
			if r.Kind != KindOut && r.Kind != KindAck || len(r.Frame) > fuzzMaxFrame {
				t.Fatalf("Read returned %v with a %d-byte frame", r.Kind, len(r.Frame))
			}
		}
		t.Fatal("Read never stopped")
	})
}

// scriptConn is a net.Conn that reads a script and discards writes.
type scriptConn struct{ r *bytes.Reader }

func (c *scriptConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *scriptConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return nil }
func (c *scriptConn) RemoteAddr() net.Addr             { return nil }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }
