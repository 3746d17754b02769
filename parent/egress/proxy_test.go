package egress

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTunnelHalfClose(t *testing.T) {
	up := upstream(t, func(c *net.TCPConn) {
		req, _ := io.ReadAll(c) // until the enclave's half-close
		c.Write(append([]byte("got "), req...))
	})
	h := startProxy(t, Config{Allow: []string{up}})
	c, resp, br := request(t, h.addr, connect(up))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	c.Write([]byte("ping"))
	c.CloseWrite()
	got, err := io.ReadAll(br)
	if err != nil || string(got) != "got ping" {
		t.Fatalf("read %q, %v", got, err)
	}
	h.stop()
	if s := h.p.Stats(); s.Allowed != 1 || s.BytesUp != 4 || s.BytesDown != 8 || s.Active != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestEarlyData: bytes sent right behind the CONNECT header, before the 200,
// reach the target first.
func TestEarlyData(t *testing.T) {
	up := upstream(t, echo)
	h := startProxy(t, Config{Allow: []string{up}})
	c, resp, br := request(t, h.addr, connect(up)+"early")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	c.Write([]byte(" late"))
	c.CloseWrite()
	if got, err := io.ReadAll(br); err != nil || string(got) != "early late" {
		t.Fatalf("read %q, %v", got, err)
	}
	h.stop()
	if s := h.p.Stats(); s.BytesUp != 10 || s.BytesDown != 10 {
		t.Fatalf("stats %+v", s)
	}
}

// TestNameCanonical: the host name is matched case-insensitively and the
// proxy dials the canonical allowlist entry, not the client's spelling.
func TestNameCanonical(t *testing.T) {
	d := &mapDial{table: map[string]string{"kms.example.com:443": upstream(t, echo)}}
	h := startProxy(t, Config{Allow: []string{"KMS.example.com:443"}, Dial: d.dial})
	_, resp, _ := request(t, h.addr, connect("kms.EXAMPLE.com:443"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := d.calls(); len(got) != 1 || got[0] != "tcp kms.example.com:443" {
		t.Fatalf("dialed %q", got)
	}
}

func TestDenied(t *testing.T) {
	d := &mapDial{}
	h := startProxy(t, Config{Allow: []string{"kms.example.com:443", "[::1]:443"}, Dial: d.dial})
	for _, c := range []struct{ target, reason string }{
		{"s3.example.com:443", "not allowlisted"},
		{"kms.example.com:8443", "not allowlisted"},
		{"kms.example.com.evil.test:443", "not allowlisted"},
		{"127.0.0.1:443", "IP literal not allowlisted"},
		{"[::2]:443", "IP literal not allowlisted"},
		{"[::ffff:127.0.0.1]:443", "IP literal not allowlisted"},
	} {
		_, resp, _ := request(t, h.addr, connect(c.target))
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", c.target, resp.StatusCode)
		}
		want := fmt.Sprintf("target=%s reason=%q", c.target, c.reason)
		if !strings.Contains(h.log.String(), want) {
			t.Errorf("%s: log lacks %s", c.target, want)
		}
	}
	if len(d.calls()) != 0 {
		t.Fatalf("dialed %q", d.calls())
	}
	if s := h.p.Stats(); s.Denied != 6 || s.Allowed != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestIPLiteralAllowlisted: an IP literal is allowed only when that literal
// is an entry; [::1] spelled differently is the same address.
func TestIPLiteralAllowlisted(t *testing.T) {
	up := upstream(t, echo)
	_, port, _ := net.SplitHostPort(up)
	h := startProxy(t, Config{Allow: []string{up}})
	for target, want := range map[string]int{
		up:                           http.StatusOK,
		"127.0.0.2:" + port:          http.StatusForbidden,
		"[::ffff:127.0.0.1]:" + port: http.StatusForbidden,
		"127.1:" + port:              http.StatusBadRequest,
		"2130706433:" + port:         http.StatusBadRequest,
		"0x7f.0.0.1:" + port:         http.StatusBadRequest,
	} {
		if _, resp, _ := request(t, h.addr, connect(target)); resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d", target, resp.StatusCode, want)
		}
	}
}

func TestOnlyConnect(t *testing.T) {
	d := &mapDial{table: map[string]string{"kms.example.com:443": upstream(t, echo)}}
	h := startProxy(t, Config{Allow: []string{"kms.example.com:443", "kms.example.com:80"}, Dial: d.dial})
	for _, raw := range []string{
		"GET http://kms.example.com/ HTTP/1.1\r\nHost: kms.example.com\r\n\r\n",
		"GET http://kms.example.com:443/ HTTP/1.1\r\nHost: kms.example.com:443\r\n\r\n",
		"POST https://kms.example.com/ HTTP/1.1\r\nHost: kms.example.com\r\nContent-Length: 2\r\n\r\n{}",
		"GET / HTTP/1.1\r\nHost: kms.example.com:443\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: kms.example.com\r\n\r\n",
		"connect kms.example.com:443 HTTP/1.1\r\n\r\n",
	} {
		_, resp, _ := request(t, h.addr, raw)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "CONNECT" {
			t.Errorf("%q: status %d, Allow %q", firstLine(raw), resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	if len(d.calls()) != 0 {
		t.Fatalf("dialed %q", d.calls())
	}
}

func TestMalformed(t *testing.T) {
	d := &mapDial{}
	h := startProxy(t, Config{Allow: []string{"kms.example.com:443"}, Dial: d.dial})
	for _, raw := range []string{
		"CONNECT kms.example.com HTTP/1.1\r\n\r\n",
		"CONNECT kms.example.com:0443 HTTP/1.1\r\n\r\n",
		"CONNECT http://kms.example.com:443 HTTP/1.1\r\n\r\n",
		"CONNECT /kms.example.com:443 HTTP/1.1\r\n\r\n",
		"CONNECT user@kms.example.com:443 HTTP/1.1\r\n\r\n",
		"CONNECT [kms.example.com]:443 HTTP/1.1\r\n\r\n",
		"CONNECT kms.example.com.:443 HTTP/1.1\r\n\r\n",
		"CONNECT kms.example.com:443 HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody",
		"CONNECT kms.example.com:443 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"CONNECT kms.example.com:443 HTTP/1.1\r\nX: " + strings.Repeat("a", 9<<10) + "\r\n\r\n",
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
		"CONNECT kms.example.com:443 HTTP/9.9\r\n\r\n",
	} {
		_, resp, _ := request(t, h.addr, raw)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%q: status %d, want 400", firstLine(raw), resp.StatusCode)
		}
	}
	if len(d.calls()) != 0 {
		t.Fatalf("dialed %q", d.calls())
	}
}

func TestDialFailure(t *testing.T) {
	d := &mapDial{}
	h := startProxy(t, Config{Allow: []string{"kms.example.com:443"}, Dial: d.dial})
	_, resp, _ := request(t, h.addr, connect("kms.example.com:443"))
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	waitFor(t, func() bool { return h.p.Stats().Active == 0 })
	if s := h.p.Stats(); s.Failed != 1 || s.Allowed != 0 || s.Active != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestCapacity(t *testing.T) {
	up := upstream(t, echo)
	h := startProxy(t, Config{Allow: []string{up}, MaxTunnels: 1, DialTimeout: 200 * time.Millisecond})
	first, resp, br := request(t, h.addr, connect(up))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first: status %d", resp.StatusCode)
	}
	if _, resp, _ := request(t, h.addr, connect(up)); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second: status %d, want 503", resp.StatusCode)
	}
	first.CloseWrite()
	io.ReadAll(br) // the first tunnel ends and frees its slot
	waitFor(t, func() bool { return h.p.Stats().Active == 0 })
	if _, resp, _ := request(t, h.addr, connect(up)); resp.StatusCode != http.StatusOK {
		t.Fatalf("third: status %d", resp.StatusCode)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
	}
}

func TestTimeouts(t *testing.T) {
	up := upstream(t, func(c *net.TCPConn) { io.Copy(io.Discard, c) })
	h := startProxy(t, Config{Allow: []string{up}, HeaderTimeout: 100 * time.Millisecond, IdleTimeout: 100 * time.Millisecond})

	silent, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	resp, err := http.ReadResponse(bufioReader(silent), nil)
	if err != nil || resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("silent client: %v, %v", resp, err)
	}

	idle, resp, br := request(t, h.addr, connect(up))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	readClosed(t, br, idle, 2*time.Second)
}

// TestManyTunnels runs tunnels concurrently, each with its own payload.
func TestManyTunnels(t *testing.T) {
	const n = 48
	up := upstream(t, echo)
	h := startProxy(t, Config{Allow: []string{up}, MaxTunnels: n})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() { errs <- oneTunnel(h.addr, up) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if s := h.p.Stats(); s.Allowed != n || s.BytesUp != n*64<<10 || s.BytesDown != n*64<<10 {
		t.Fatalf("stats %+v", s)
	}
}

func oneTunnel(proxy, target string) error {
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, connect(target))
	br := bufioReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("CONNECT: %v, %v", resp, err)
	}
	msg := make([]byte, 64<<10)
	rand.Read(msg)
	go func() {
		c.Write(msg)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(br)
	if err != nil || !bytes.Equal(got, msg) {
		return fmt.Errorf("echo: %d bytes, %v", len(got), err)
	}
	return nil
}

// TestShutdown: ending the context closes every tunnel on both sides and
// Serve returns; TestMain checks that no goroutine is left.
func TestShutdown(t *testing.T) {
	closed := make(chan struct{}, 3)
	up := upstream(t, func(c *net.TCPConn) {
		io.Copy(io.Discard, c)
		closed <- struct{}{}
	})
	h := startProxy(t, Config{Allow: []string{up}})
	var tunnels []*net.TCPConn
	for range 3 {
		c, resp, _ := request(t, h.addr, connect(up))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		tunnels = append(tunnels, c)
	}
	waitFor(t, func() bool { return h.p.Stats().Active == 3 })
	h.stop()
	for _, c := range tunnels {
		readClosed(t, c, c, 2*time.Second)
	}
	for range 3 {
		select {
		case <-closed:
		case <-time.After(2 * time.Second):
			t.Fatal("a target-side connection is still open")
		}
	}
}

func TestNewRefuses(t *testing.T) {
	for _, cfg := range []Config{
		{Allow: []string{"kms.example.com"}},
		{Allow: []string{"kms.example.com:0"}},
		{Allow: []string{"*.example.com:443"}},
		{Allow: []string{"https://kms.example.com:443"}},
		{Allow: []string{"127.1:443"}},
		{Allow: []string{"[fe80::1%eth0]:443"}},
		{Allow: []string{"kms.example.com:443"}, MaxTunnels: -1},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}
