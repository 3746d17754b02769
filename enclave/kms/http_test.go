package kms

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// recordingDial dials directly and records the addresses it was asked for.
type recordingDial struct {
	mu    sync.Mutex
	addrs []string
}

func (d *recordingDial) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, network+" "+addr)
	d.mu.Unlock()
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

func TestHTTPClientDialsAndVerifiesTLS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/", http.StatusFound)
		}
	}))
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	d := &recordingDial{}
	hc := newHTTPClient(d.dial, roots)
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(srv.URL)
	if err != nil {
		t.Fatalf("GET through the dial function: %v", err)
	}
	resp.Body.Close()
	if want := "tcp " + srv.Listener.Addr().String(); len(d.addrs) != 1 || d.addrs[0] != want {
		t.Errorf("dialled %q, want [%q]", d.addrs, want)
	}
	if _, err := hc.Get(srv.URL + "/redirect"); !errors.Is(err, errRedirect) {
		t.Errorf("redirect: got %v, want it refused", err)
	}

	system := NewHTTPClient(d.dial)
	defer system.CloseIdleConnections()
	_, err = system.Get(srv.URL)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("a certificate from an unknown CA: got %v, want it refused", err)
	}
}
