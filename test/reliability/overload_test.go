//go:build !release

package reliability_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"maps"
	"math/big"
	"net"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/api"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
	"github.com/nitro-cosigner/nitro-cosigner/test/internal/mpcharness"
)

// Overload bounds.
const (
	overloadCalls   = 1000
	overloadCallers = 50 // client certificates; each within its rate limit
	maxHeapGrowth   = 512 << 20
	// quickRefusal bounds how long a RESOURCE_EXHAUSTED may take: a refusal
	// comes at admission, not behind the signs (which may take a minute),
	// and 10 s leaves room for 1,000 goroutines sharing two loaded cores
	// with the server under the race detector. It is not a speed target.
	quickRefusal = 10 * time.Second
)

// TestOverload makes 1,000 concurrent Sign calls to one cosigner's real
// API server (TLS, mutual authentication, interceptors, idempotency,
// operation table) over a real node and its two peers (in process), from
// 50 callers. Every call must either complete (a sign operation in a final
// state, its signature valid when it succeeded) or get RESOURCE_EXHAUSTED,
// the refusals within quickRefusal (connections are set up first); no
// other status. The heap may not grow by more than 512 MiB during the
// load; once the load stops, the goroutine count goes back to where it
// was, and once everything is shut down no goroutine is left (goleak).
func TestOverload(t *testing.T) {
	began := time.Now()
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) }) // registered first: runs last
	// The short version admits a quarter of the default's operations at
	// once: the limit still bites, with a quarter of the signs to compute
	// under the race detector. The long version keeps the API's default.
	calls, inFlight := overloadCalls, api.DefaultMaxInFlight/4
	if long {
		calls, inFlight = 3*overloadCalls, api.DefaultMaxInFlight
	}
	s := newStack(t, stackOptions{})
	key := s.createKey(t, mpc.SchemeTaproot)
	for _, id := range mpcharness.ABC {
		s.waitHolds(t, id, key)
	}
	addr, clientCert := serveAPI(t, s, inFlight)

	baseGoroutines := runtime.NumGoroutine()
	heap := watchHeap()
	conns := dialCallers(t, addr, clientCert, overloadCallers)
	res := overload(t, conns, key, calls)
	for _, cc := range conns {
		cc.Close()
	}
	peak := heap.stop()
	settled := waitGoroutines(baseGoroutines+20, time.Minute)

	t.Logf("%d calls: %d completed (%d signed, states %v), %d RESOURCE_EXHAUSTED (slowest refusal %v), slowest completion %v",
		calls, res.completed.Load(), res.signed.Load(), res.states(), res.exhausted.Load(), res.slowestRefusal(), res.slowestDone())
	t.Logf("heap grew by at most %d MiB; goroutines %d before the load, %d after it", peak>>20, baseGoroutines, settled)
	if res.other.Load() > 0 {
		t.Errorf("%d calls ended with another status: %v", res.other.Load(), res.otherCodes())
	}
	if got := res.completed.Load() + res.exhausted.Load(); got != int64(calls) {
		t.Errorf("%d of %d calls accounted for", got, calls)
	}
	if res.exhausted.Load() == 0 || res.signed.Load() == 0 {
		t.Errorf("the load neither hit the limits nor signed: %d refused, %d signed", res.exhausted.Load(), res.signed.Load())
	}
	if d := res.slowestRefusal(); d > quickRefusal {
		t.Errorf("a RESOURCE_EXHAUSTED took %v", d)
	}
	if peak > maxHeapGrowth {
		t.Errorf("the heap grew by %d MiB under load", peak>>20)
	}
	if settled > baseGoroutines+20 {
		t.Errorf("%d goroutines remain after the load, %d before", settled, baseGoroutines)
	}
	summary.add("overload", func(r *row) {
		r.sessions += int(res.completed.Load() + res.exhausted.Load() + res.other.Load())
		r.duration += time.Since(began)
		r.note = fmt.Sprintf("%d completed, %d RESOURCE_EXHAUSTED (slowest %v; in flight at most %d), heap +%d MiB, goroutines %d->%d",
			res.completed.Load(), res.exhausted.Load(), res.slowestRefusal().Round(time.Millisecond), inFlight, peak>>20, baseGoroutines, settled)
	})
}

// serveAPI serves alice's node on loopback with the API's defaults but
// maxInFlight, and returns its address and a client CA's signer for
// caller certificates.
func serveAPI(t *testing.T, s *stack, maxInFlight int) (string, *clientCA) {
	t.Helper()
	ca := newClientCA(t)
	srv, err := api.New(api.Config{Node: s.nodes["alice"].node, ServerCert: mpcharness.Must(api.NewServerCert("alice", time.Now())),
		ClientCAs: ca.pool, Idempotency: s.nodes["alice"].ks, MaxInFlight: maxInFlight, Logger: s.logger("alice", "api")})
	if err != nil {
		t.Fatal(err)
	}
	l := mpcharness.Must(net.Listen("tcp", "127.0.0.1:0"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().String(), ca
}

// clientCA issues caller certificates with the signer role.
type clientCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newClientCA(t *testing.T) *clientCA {
	t.Helper()
	key := mpcharness.Must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "reliability client CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	cert := mpcharness.Must(x509.ParseCertificate(mpcharness.Must(x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key))))
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &clientCA{cert: cert, key: key, pool: pool}
}

func (ca *clientCA) issue(t *testing.T, n int) tls.Certificate {
	t.Helper()
	key := mpcharness.Must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	role := mpcharness.Must(url.Parse("urn:nitro-cosigner:role:signer"))
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(n) + 2), Subject: pkix.Name{CommonName: fmt.Sprint("caller-", n)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, URIs: []*url.URL{role}}
	der := mpcharness.Must(x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key))
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// dialCallers opens one connection per caller certificate.
func dialCallers(t *testing.T, addr string, ca *clientCA, n int) []*grpc.ClientConn {
	t.Helper()
	var conns []*grpc.ClientConn
	for i := range n {
		cert := ca.issue(t, i)
		// The server certificate is made inside the enclave; clients pin it
		// after attestation (pkg/apiclient). This test only loads the API.
		cfg := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}}
		cc := mpcharness.Must(grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg))))
		// Connect (TLS handshake, authentication) before the load: one
		// cheap call, within the caller's rate limit.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := cosignerv1.NewSigningServiceClient(cc).GetSignOperation(ctx,
			&cosignerv1.GetSignOperationRequest{Name: "signOperations/" + strings.Repeat("0", 32)})
		cancel()
		if status.Code(err) != codes.NotFound {
			t.Fatalf("connecting caller %d: %v", i, err)
		}
		conns = append(conns, cc)
	}
	return conns
}

// results counts the calls' outcomes.
type results struct {
	completed, signed, exhausted, other atomic.Int64

	mu       sync.Mutex
	refusals []time.Duration
	done     []time.Duration
	stateN   map[string]int
	codes    map[codes.Code]int
}

func (r *results) record(d time.Duration, op *cosignerv1.SignOperation, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch code := status.Code(err); {
	case err == nil:
		r.completed.Add(1)
		r.done = append(r.done, d)
		r.stateN[strings.TrimPrefix(op.GetState().String(), "SIGN_OPERATION_STATE_")+" "+strings.TrimPrefix(op.GetFailureReason().String(), "SIGN_FAILURE_REASON_")]++
	case code == codes.ResourceExhausted:
		r.exhausted.Add(1)
		r.refusals = append(r.refusals, d)
	default:
		r.other.Add(1)
		r.codes[code]++
	}
}

func (r *results) slowestRefusal() time.Duration { return slowest(&r.mu, r.refusals) }
func (r *results) slowestDone() time.Duration    { return slowest(&r.mu, r.done) }

func slowest(mu *sync.Mutex, ds []time.Duration) time.Duration {
	mu.Lock()
	defer mu.Unlock()
	if len(ds) == 0 {
		return 0
	}
	return slices.Max(ds)
}

func (r *results) states() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.stateN)
}

func (r *results) otherCodes() map[codes.Code]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.codes
}

// overload starts all calls at once and waits for every one. A call whose
// operation is still PENDING after max_wait follows it to its end.
func overload(t *testing.T, conns []*grpc.ClientConn, key api.Key, calls int) *results {
	t.Helper()
	res := &results{stateN: map[string]int{}, codes: map[codes.Code]int{}}
	start := make(chan struct{})
	var wg sync.WaitGroup
	name := "keys/" + key.Info.Key.String()
	for i := range calls {
		client := cosignerv1.NewSigningServiceClient(conns[i%len(conns)])
		wg.Go(func() {
			digest := sha256.Sum256([]byte(fmt.Sprint("overload ", i)))
			<-start
			began := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			resp, err := client.Sign(ctx, &cosignerv1.SignRequest{IdempotencyKey: apiclient.NewIdempotencyKey(), Key: name,
				MaxWait: durationpb.New(time.Minute),
				Payload: &cosignerv1.SignRequest_RawDigest{RawDigest: &cosignerv1.RawDigest{Digest: digest[:]}}})
			op := resp.GetOperation()
			for err == nil && op.GetState() < cosignerv1.SignOperationState_SIGN_OPERATION_STATE_SUCCEEDED {
				time.Sleep(200 * time.Millisecond)
				var got *cosignerv1.GetSignOperationResponse
				got, err = client.GetSignOperation(ctx, &cosignerv1.GetSignOperationRequest{Name: op.GetName()})
				op = got.GetOperation()
			}
			if err == nil && op.GetState() == cosignerv1.SignOperationState_SIGN_OPERATION_STATE_SUCCEEDED {
				if !mpcharness.SchnorrValid(t, key.Info.PublicKey, digest[:], sigOf(op.GetRawDigest().GetSignature())) {
					t.Errorf("INVALID SIGNATURE returned under load")
				}
				res.signed.Add(1)
			}
			res.record(time.Since(began), op, err)
		})
	}
	close(start)
	wg.Wait()
	return res
}

func sigOf(raw []byte) mpc.Signature {
	var s mpc.Signature
	if len(raw) == 64 {
		copy(s.R[:], raw[:32])
		copy(s.S[:], raw[32:])
	}
	return s
}

// heapWatch samples the heap while the load runs.
type heapWatch struct {
	stopc chan struct{}
	done  chan uint64
}

func watchHeap() *heapWatch {
	h := &heapWatch{stopc: make(chan struct{}), done: make(chan uint64, 1)}
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	base := m.HeapAlloc
	go func() {
		var peak uint64
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > base {
				peak = max(peak, m.HeapAlloc-base)
			}
			select {
			case <-h.stopc:
				h.done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

func (h *heapWatch) stop() uint64 {
	close(h.stopc)
	return <-h.done
}

// waitGoroutines waits up to d for the goroutine count to fall to want,
// and returns the last count.
func waitGoroutines(want int, d time.Duration) int {
	end := time.Now().Add(d)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(end) {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
}
