package hostpath_test

// This test runs both ends of the egress path: the parent's proxy and the
// enclave's dialer under the enclave's real KMS HTTP client.

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	enclaveegress "github.com/nitro-cosigner/nitro-cosigner/enclave/egress"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/kms"
	"github.com/nitro-cosigner/nitro-cosigner/parent/egress"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// trustOnly makes the process's system roots exactly cert's, so that the
// enclave's production client (which verifies against the system roots)
// can be used unchanged. The system roots are loaded once per process, so
// this works only if no earlier test in this binary loaded them: nothing
// else here uses them.
func trustOnly(t *testing.T, srv *httptest.Server) {
	dir := t.TempDir()
	file := filepath.Join(dir, "roots.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(file, block, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", file)
	t.Setenv("SSL_CERT_DIR", dir)
}

// serveProxy runs a proxy on a transport listener until the test ends and
// returns the address the enclave dials.
func serveProxy(t *testing.T, cfg egress.Config) transport.Addr {
	t.Helper()
	p, err := egress.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := transport.Listen(t.Context(), "tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, err := transport.ParseAddr("tcp://" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	return addr
}

func TestEnclaveClientThroughProxy(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from "+r.Host)
	}))
	defer srv.Close()
	trustOnly(t, srv)
	// kms.example.com is allowlisted by name and resolved by the proxy's
	// dialer (here a fixed table); the IP literal is allowlisted exactly and
	// dialed by the default net.Dialer. The test certificate covers both.
	named := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr != "kms.example.com:443" {
			return nil, errors.New("unexpected dial to " + addr)
		}
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
	proxy := serveProxy(t, egress.Config{Allow: []string{"kms.example.com:443"}, Dial: named})
	direct := serveProxy(t, egress.Config{Allow: []string{srv.Listener.Addr().String()}})

	for proxy, url := range map[transport.Addr]string{
		proxy:  "https://kms.example.com/",
		direct: "https://" + srv.Listener.Addr().String() + "/",
	} {
		hc := kms.NewHTTPClient(enclaveegress.Dialer{Proxy: proxy}.DialContext)
		body, err := get(t, hc, url)
		if err != nil || body != "hello from "+hostOf(url) {
			t.Errorf("GET %s through the proxy: %q, %v", url, body, err)
		}
		hc.CloseIdleConnections()
	}

	hc := kms.NewHTTPClient(enclaveegress.Dialer{Proxy: proxy}.DialContext)
	defer hc.CloseIdleConnections()
	_, err := get(t, hc, "https://s3.example.com/")
	if !errors.Is(err, enclaveegress.ErrDenied) {
		t.Fatalf("GET a host off the allowlist: %v, want ErrDenied", err)
	}
	t.Logf("denied: %v", err)
}

func get(t *testing.T, hc *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func hostOf(url string) string {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	return req.URL.Host
}
