package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/parent/app"
	"github.com/nitro-cosigner/nitro-cosigner/parent/broker/natsdev"
	"github.com/nitro-cosigner/nitro-cosigner/parent/health"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/link"
)

// httpClient dials addr for every request (unix or TCP) and keeps no
// idle connection.
func httpClient(network, addr string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return new(net.Dialer).DialContext(ctx, network, addr)
		},
	}}
}

// readyz fetches /readyz and returns the status code and report.
func readyz(t *testing.T, hostPort string) (int, health.Report) {
	t.Helper()
	resp, err := httpClient("tcp", hostPort).Get("http://parent" + health.PathReady)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep health.Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatalf("decoding /readyz: %v", err)
	}
	return resp.StatusCode, rep
}

// waitReady polls /readyz until it answers 200.
func waitReady(t *testing.T, hostPort string) health.Report {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, rep := readyz(t, hostPort)
		if code == http.StatusOK {
			return rep
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d after 20s: %+v", code, rep)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func checkResult(t *testing.T, rep health.Report, name string, ok bool, reason string) {
	t.Helper()
	for _, r := range rep.Checks {
		if r.Name == name {
			if r.OK != ok || r.Reason != reason {
				t.Fatalf("check %s: ok %v reason %q, want ok %v reason %q", name, r.OK, r.Reason, ok, reason)
			}
			return
		}
	}
	t.Fatalf("no check %s in %+v", name, rep.Checks)
}

// A frame goes from alice's enclave link through her relay, NATS and
// bob's relay to bob's enclave link, and the ACKs come back; alice's
// /readyz fails until her enclave link is up, then passes.
func TestRelayOverNATS(t *testing.T) {
	srv, err := natsdev.NewEmbeddedNATS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	dir := shortDir(t)
	cfg := func(id string) app.Config {
		return app.Config{CosignerID: id, Broker: app.BrokerNATS, NATSURL: srv.URL(), BrokerProvision: true,
			EnclaveLink: "unix://" + filepath.Join(dir, id+".sock"), HealthListen: "tcp://127.0.0.1:0"}
	}
	alice := startParent(t, "alice", cfg("alice"))
	startParent(t, "bob", cfg("bob"))
	hz := hostPort(t, alice.addr(t, "health"))

	code, rep := readyz(t, hz)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz without an enclave link: %d, want 503", code)
	}
	checkResult(t, rep, "enclave-link", false, "no enclave link")

	a := openLink(t, "unix://"+filepath.Join(dir, "alice.sock"))
	b := openLink(t, "unix://"+filepath.Join(dir, "bob.sock"))
	rep = waitReady(t, hz)
	checkResult(t, rep, "broker", true, "")
	checkResult(t, rep, "enclave-link", true, "")

	frame := []byte("signed frame for bob")
	if err := a.Write(link.Record{Kind: link.KindOut, Seq: 1, To: "bob", Frame: frame}); err != nil {
		t.Fatal(err)
	}
	if r := readRecord(t, a, 20*time.Second); r.Kind != link.KindAck || r.Seq != 1 {
		t.Fatalf("alice got %v %d, want ACK 1", r.Kind, r.Seq)
	}
	in := readRecord(t, b, 20*time.Second)
	if in.Kind != link.KindIn || !bytes.Equal(in.Frame, frame) {
		t.Fatalf("bob got %v %q, want IN %q", in.Kind, in.Frame, frame)
	}
	if err := b.Write(link.Record{Kind: link.KindAck, Seq: in.Seq}); err != nil {
		t.Fatal(err)
	}
}

// echoServer accepts TCP connections and echoes them until the test
// ends; close stops it.
func echoServer(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return l
}

// echoOnce writes msg on c and reads it back.
func echoOnce(t *testing.T, c net.Conn, r io.Reader, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(r, got); err != nil || string(got) != msg {
		t.Fatalf("echo: got %q, %v", got, err)
	}
}

// connect sends CONNECT target through the proxy at the unix socket path
// and returns the status code and the connection.
func connect(t *testing.T, path, target string) (int, net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, c, br
}

// The egress proxy tunnels to the allowlisted target only.
func TestEgressAllowlist(t *testing.T) {
	allowed, other := echoServer(t), echoServer(t)
	dir := shortDir(t)
	sock := filepath.Join(dir, "egress.sock")
	startParent(t, "egress", app.Config{EgressListen: "unix://" + sock, EgressAllow: []string{allowed.Addr().String()}})

	code, c, br := connect(t, sock, allowed.Addr().String())
	if code != http.StatusOK {
		t.Fatalf("CONNECT to the allowlisted target: %d", code)
	}
	echoOnce(t, c, br, "through the tunnel")
	for _, target := range []string{other.Addr().String(), "example.com:443"} {
		if code, _, _ := connect(t, sock, target); code != http.StatusForbidden {
			t.Errorf("CONNECT %s: %d, want 403", target, code)
		}
	}
}

// The ingress forwards to the enclave's API address, and /readyz follows
// whether that address accepts connections.
func TestIngressAndHealth(t *testing.T) {
	api := echoServer(t)
	p := startParent(t, "ingress", app.Config{
		IngressListen: "tcp://127.0.0.1:0", IngressEnclave: "tcp://" + api.Addr().String(),
		HealthListen: "tcp://127.0.0.1:0",
	})
	c, err := net.Dial("tcp", hostPort(t, p.addr(t, "ingress")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoOnce(t, c, c, "to the enclave and back")

	hz := hostPort(t, p.addr(t, "health"))
	checkResult(t, waitReady(t, hz), "enclave-api", true, "")
	resp, err := httpClient("tcp", hz).Get("http://parent/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	api.Close()
	code, rep := readyz(t, hz)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the enclave API down: %d, want 503", code)
	}
	checkResult(t, rep, "enclave-api", false, "unreachable")
}

// The credentials server hands out the host's default chain (here the
// environment).
func TestCredsServed(t *testing.T) {
	isolateAWS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDAPPTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "app-test-secret")
	sock := filepath.Join(shortDir(t), "creds.sock")
	startParent(t, "creds", app.Config{CredsListen: "unix://" + sock})
	resp, err := httpClient("unix", sock).Get("http://parent/v1/credentials")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		AccessKeyID string `json:"access_key_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, %v", resp.StatusCode, err)
	}
	if got.AccessKeyID != "AKIDAPPTEST" {
		t.Fatalf("access key %q", got.AccessKeyID)
	}
}

// isolateAWS keeps the host's AWS files and instance metadata out of a
// test.
func isolateAWS(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{"AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

// A listener that cannot be bound fails the start, and what was bound
// before it is released.
func TestStartFailureReleases(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	sock := filepath.Join(shortDir(t), "egress.sock")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err = app.Run(ctx, app.Config{EgressListen: "unix://" + sock, HealthListen: "tcp://" + busy.Addr().String()}, discard())
	if err == nil || errors.Is(err, app.ErrConfig) || !strings.Contains(err.Error(), "health") {
		t.Fatalf("Run = %v, want a health listen failure", err)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the egress socket is left behind: %v", err)
	}
}

// An unreachable NATS server fails the start promptly.
func TestNATSUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err = app.Run(ctx, app.Config{CosignerID: "alice", Broker: app.BrokerNATS, NATSURL: url,
		EnclaveLink: "unix://" + filepath.Join(shortDir(t), "l.sock")}, discard())
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Run = %v (ctx %v), want a connection failure before the deadline", err, ctx.Err())
	}
}

// Run refuses a bad Config with ErrConfig before binding anything.
func TestRunValidates(t *testing.T) {
	err := app.Run(t.Context(), app.Config{Broker: "rabbitmq"}, discard())
	if !errors.Is(err, app.ErrConfig) {
		t.Fatalf("Run = %v, want ErrConfig", err)
	}
}

// SQS without a region anywhere is a configuration error, found at start.
func TestSQSNoRegion(t *testing.T) {
	isolateAWS(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err := app.Run(ctx, app.Config{CosignerID: "alice", Broker: app.BrokerSQS, SQSEndpoint: "http://127.0.0.1:1",
		EnclaveLink: "unix://" + filepath.Join(shortDir(t), "l.sock")}, discard())
	if !errors.Is(err, app.ErrConfig) || !strings.Contains(err.Error(), "--sqs-region") {
		t.Fatalf("Run = %v, want ErrConfig naming --sqs-region", err)
	}
}
