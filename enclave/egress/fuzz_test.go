package egress

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

// scriptConn is a net.Conn whose peer sent resp and then closed.
type scriptConn struct {
	net.Conn // nil: only Read and Write are used
	resp     io.Reader
}

func (c *scriptConn) Read(b []byte) (int, error)  { return c.resp.Read(b) }
func (c *scriptConn) Write(b []byte) (int, error) { return len(b), nil }

// FuzzConnectResponse feeds arbitrary proxy answers to connect. It must not
// panic; it must fail with ErrDenied or ErrProxy unless it succeeds; and on
// success the tunnel must yield exactly the bytes after the response
// header, so nothing of the tunnel is lost or taken from the header.
func FuzzConnectResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n\x16\x03\x01"))
	f.Add([]byte("HTTP/1.0 200 OK\n\nrest"))
	f.Add([]byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, resp []byte) {
		conn, err := connect(&scriptConn{resp: bytes.NewReader(resp)}, "kms.example.com:443")
		if err != nil {
			if !errors.Is(err, ErrDenied) && !errors.Is(err, ErrProxy) {
				t.Fatalf("err = %v", err)
			}
			return
		}
		rest, err := io.ReadAll(conn)
		if err != nil {
			t.Fatal(err)
		}
		head, ok := bytes.CutSuffix(resp, rest)
		if !ok || !(bytes.HasSuffix(head, []byte("\n\n")) || bytes.HasSuffix(head, []byte("\n\r\n"))) {
			t.Fatalf("header %q, tunnel %q", head, rest)
		}
		if !bytes.HasPrefix(head, []byte("HTTP/1.")) {
			t.Fatalf("accepted %q", head)
		}
	})
}
