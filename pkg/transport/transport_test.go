package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/nettest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParseAddr(t *testing.T) {
	for in, want := range map[string]Addr{
		"vsock://16:5000":                 {Scheme: SchemeVsock, CID: 16, Port: 5000},
		"vsock://3:0":                     {Scheme: SchemeVsock, CID: 3, Port: 0},
		"vsock://4294967295:4294967295":   {Scheme: SchemeVsock, CID: 1<<32 - 1, Port: 1<<32 - 1},
		"tcp://127.0.0.1:8443":            {Scheme: SchemeTCP, Host: "127.0.0.1", Port: 8443},
		"tcp://[::1]:0":                   {Scheme: SchemeTCP, Host: "::1", Port: 0},
		"tcp://[::ffff:10.0.0.1]:1":       {Scheme: SchemeTCP, Host: "::ffff:10.0.0.1", Port: 1},
		"tcp://broker.internal:4222":      {Scheme: SchemeTCP, Host: "broker.internal", Port: 4222},
		"tcp://localhost:65535":           {Scheme: SchemeTCP, Host: "localhost", Port: 65535},
		"unix:///run/cosigner/relay.sock": {Scheme: SchemeUnix, Path: "/run/cosigner/relay.sock"},
	} {
		got, err := ParseAddr(in)
		if err != nil || got != want {
			t.Errorf("ParseAddr(%q) = %+v, %v; want %+v", in, got, err, want)
			continue
		}
		if got.String() != in {
			t.Errorf("String() = %q, want %q", got.String(), in)
		}
	}
}

func TestParseAddrRefuses(t *testing.T) {
	for _, in := range []string{
		"", "16:5000", "VSOCK://16:5000", "vsock:16:5000", "http://x:1", "vsock://",
		"vsock://16", "vsock://16:", "vsock://:5000", "vsock://-1:5000", "vsock://+16:5000",
		"vsock://016:5000", "vsock://16:05000", "vsock://4294967296:1", "vsock://16:4294967296",
		"vsock://0x10:5000", "vsock://16:5000/x", "vsock:// 16:5000", "vsock://16:5000:1",
		"tcp://", "tcp://127.0.0.1", "tcp://:8080", "tcp://127.0.0.1:65536", "tcp://127.0.0.1:080",
		"tcp://::1:80", "tcp://[127.0.0.1]:80", "tcp://[::1%lo]:80", "tcp://user@host:80",
		"tcp://host:80/path", "tcp://host:80?q", "tcp://ho_st:80", "tcp://-host:80",
		"tcp://host..x:80", "tcp://host:-1", "tcp://host:+80",
		"unix://relay.sock", "unix://", "unix://" + "/" + strings.Repeat("a", 107),
		"unix:///a\x00b", "unix:///a?b", "unix:///a#b",
	} {
		a, err := ParseAddr(in)
		if err == nil {
			t.Errorf("ParseAddr(%q) = %+v, want an error", in, a)
			continue
		}
		if !errors.Is(err, ErrAddress) {
			t.Errorf("ParseAddr(%q): %v does not wrap ErrAddress", in, err)
		}
	}
}

// TestParseAddrErrorsDoNotEcho: an error names the part, not the input.
func TestParseAddrErrorsDoNotEcho(t *testing.T) {
	for _, in := range []string{"evil<script>://x", "tcp://evil<script>:80", "vsock://evil:1", "unix://evil<script>"} {
		_, err := ParseAddr(in)
		if err == nil || strings.Contains(err.Error(), "evil") {
			t.Errorf("ParseAddr(%q): %v", in, err)
		}
	}
}

func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"vsock://16:5000", "tcp://[::1]:80", "tcp://a.b:1", "unix:///x", "tcp://1.2.3.4:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddr(s)
		if err != nil {
			return
		}
		b, err := ParseAddr(a.String())
		if err != nil || a != b {
			t.Fatalf("%q parsed as %+v, which prints as %q and parses as %+v, %v", s, a, a.String(), b, err)
		}
	})
}

func TestConnTCP(t *testing.T) {
	nettest.TestConn(t, pipe(t, "tcp://127.0.0.1:0"))
}

func TestConnUnix(t *testing.T) {
	dir := shortTempDir(t)
	n := 0
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
		n++
		return makePipe(t, "unix://"+filepath.Join(dir, strconv.Itoa(n)+".sock"))
	})
}

// shortTempDir returns a temporary directory with a path short enough for
// unix sockets.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func pipe(t *testing.T, addr string) nettest.MakePipe {
	return func() (net.Conn, net.Conn, func(), error) { return makePipe(t, addr) }
}

// makePipe listens on addr, dials it and returns both ends.
func makePipe(t *testing.T, addr string) (c1, c2 net.Conn, stop func(), err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := Listen(ctx, addr)
	if err != nil {
		return nil, nil, nil, err
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	c1, err = Dial(ctx, l.Addr().Network()+"://"+l.Addr().String())
	if err != nil {
		l.Close()
		<-accepted
		return nil, nil, nil, err
	}
	c2 = <-accepted
	if c2 == nil {
		c1.Close()
		return nil, nil, nil, errors.New("accept failed")
	}
	return c1, c2, func() { c1.Close(); c2.Close() }, nil
}

func TestDialRefusesPortZero(t *testing.T) {
	if _, err := Dial(context.Background(), "tcp://127.0.0.1:0"); !errors.Is(err, ErrAddress) {
		t.Fatalf("Dial port 0: %v", err)
	}
	if _, err := Listen(context.Background(), "bogus"); !errors.Is(err, ErrAddress) {
		t.Fatalf("Listen bogus: %v", err)
	}
}

// TestVsockBind binds AF_VSOCK where the kernel supports it and skips,
// saying why, where it does not. These machines have no vsock loopback,
// so a connection to ourselves is attempted but not required.
func TestVsockBind(t *testing.T) {
	l, err := Listen(context.Background(), "vsock://4294967295:4294967295")
	if err != nil {
		if unsupported(err) {
			t.Skipf("AF_VSOCK is not available here: %v", err)
		}
		t.Fatalf("vsock listen: %v", err)
	}
	defer l.Close()
	if l.Addr().Network() != "vsock" {
		t.Fatalf("network = %q", l.Addr().Network())
	}
	_, port, err := net.SplitHostPort(l.Addr().String())
	if err != nil {
		t.Fatalf("vsock address %q: %v", l.Addr(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := Dial(ctx, "vsock://1:"+port) // VMADDR_CID_LOCAL
	if err != nil {
		t.Skipf("bound AF_VSOCK, but no vsock loopback to connect through: %v", err)
	}
	c.Close()
}

func unsupported(err error) bool {
	return errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EPROTONOSUPPORT) ||
		errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.EADDRNOTAVAIL) ||
		errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES)
}

func TestServeStopsWithContext(t *testing.T) {
	l, err := Listen(context.Background(), "tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	handled := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, l, func(ctx context.Context, c net.Conn) {
			close(handled)
			io.Copy(c, c) // echo until the connection is closed
		})
	}()
	c, err := Dial(context.Background(), "tcp://"+l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q, %v", buf, err)
	}
	<-handled
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop when its context ended")
	}
	// The listener and the open connection were closed.
	if _, err := c.Read(buf); err == nil {
		t.Fatal("the connection is still open")
	}
	if _, err := Dial(context.Background(), "tcp://"+l.Addr().String()); err == nil {
		t.Fatal("the listener is still open")
	}
}

func TestServeReturnsAcceptError(t *testing.T) {
	l, err := Listen(context.Background(), "tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	err = Serve(context.Background(), l, func(context.Context, net.Conn) {})
	if err == nil || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve on a closed listener: %v", err)
	}
}

func TestUnixSocketLifecycle(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "relay.sock")
	l, err := Listen(context.Background(), "unix://"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(context.Background(), "unix://"+path); err == nil {
		t.Fatal("listened twice on one path")
	}
	l.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file left behind: %v", err)
	}
}
