package relaypath_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	elink "github.com/nitro-cosigner/nitro-cosigner/enclave/link"
	"github.com/nitro-cosigner/nitro-cosigner/parent/relay"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The SQS client's HTTP transport keeps idle connections.
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	)
}

// suite lists the scenarios a backend runs.
type suite struct {
	be          backend
	slowEnclave bool
	// restartBroker, if set, restarts the broker server keeping its data.
	restartBroker func(t *testing.T)
}

func (s suite) run(t *testing.T) {
	t.Run("Exchange", s.exchange)
	t.Run("LinkDrops", s.linkDrops)
	t.Run("ParentRestart", s.parentRestart)
	if s.restartBroker != nil {
		t.Run("BrokerRestart", s.brokerRestart)
	}
	if s.slowEnclave {
		t.Run("SlowEnclave", s.slowEnclaveBounded)
	}
}

// exchange: three cosigners send each other direct frames and broadcasts
// (one publish per recipient), and one large frame each; every frame
// reaches exactly its recipient.
func (s suite) exchange(t *testing.T) {
	cs := newCosigners(t, s.be, 3, nil)
	want := map[*cosigner][]string{}
	add := func(from, to *cosigner, f string) {
		from.send(to, f)
		want[to] = append(want[to], f)
	}
	for _, from := range cs {
		for _, to := range others(cs, from) {
			for i := range 10 {
				add(from, to, fmt.Sprintf("direct %s>%s #%02d", from.id, to.id, i))
			}
			add(from, to, fmt.Sprintf("large %s>%s ", from.id, to.id)+strings.Repeat("x", 512<<10))
		}
		for i := range 5 {
			f := fmt.Sprintf("broadcast %s #%02d", from.id, i)
			for _, to := range others(cs, from) {
				add(from, to, f)
			}
		}
	}
	for _, c := range cs {
		c.got.waitAll(t, s.be.patience, c.id, want[c])
		c.got.expectOnly(t, c.id, want[c])
	}
}

func others(cs []*cosigner, self *cosigner) []*cosigner {
	var out []*cosigner
	for _, c := range cs {
		if c != self {
			out = append(out, c)
		}
	}
	return out
}

// linkDrops: frames flow both ways while the enclave links are cut again
// and again; every frame still arrives (duplicates allowed).
func (s suite) linkDrops(t *testing.T) {
	cs := newCosigners(t, s.be, 2, nil)
	a, b := cs[0], cs[1]
	const n = 200
	var wantA, wantB []string
	for i := range n {
		wantB = append(wantB, fmt.Sprintf("%s>%s #%03d", a.id, b.id, i))
		wantA = append(wantA, fmt.Sprintf("%s>%s #%03d", b.id, a.id, i))
	}
	var wg sync.WaitGroup
	var cuts atomic.Int64
	sending := make(chan struct{})
	wg.Go(func() { paced(a, b, wantB) })
	wg.Go(func() { paced(b, a, wantA) })
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-sending:
				return
			case <-time.After(50 * time.Millisecond):
			}
			cuts.Add(int64(cs[i%2].proxy.sever()))
		}
	})
	a.got.waitAll(t, s.be.patience, a.id, wantA)
	b.got.waitAll(t, s.be.patience, b.id, wantB)
	close(sending)
	wg.Wait()
	if cuts.Load() < 3 {
		t.Fatalf("only %d links were cut: the test proves little", cuts.Load())
	}
	t.Logf("%d links cut", cuts.Load())
	var recovered uint64
	for _, c := range cs {
		recovered += c.client.Stats().Resent + c.relay.Stats().InRetried
	}
	if recovered == 0 {
		t.Error("no cut caught a frame in flight (no resend, no redelivery): the test proves little")
	}
}

// paced sends frames one every 2ms.
func paced(from, to *cosigner, frames []string) {
	for _, f := range frames {
		from.send(to, f)
		time.Sleep(2 * time.Millisecond)
	}
}

// parentRestart: while A's parent is down, frames for A wait in the
// broker and A's enclave holds what it sends, at most its window (Send
// blocks beyond it); after the restart everything is delivered.
func (s suite) parentRestart(t *testing.T) {
	const window = 8
	tune := func(_ *relay.Config, e *elink.Config) {
		if e != nil {
			e.Window = window
		}
	}
	cs := newCosigners(t, s.be, 2, tune)
	a, b := cs[0], cs[1]
	a.send(b, "warm-up a>b")
	b.send(a, "warm-up b>a")
	a.got.waitAll(t, s.be.patience, a.id, []string{"warm-up b>a"})
	b.got.waitAll(t, s.be.patience, b.id, []string{"warm-up a>b"})

	a.stopParent()
	wantA, wantB := []string{"warm-up b>a"}, []string{"warm-up a>b"}
	for i := range 10 {
		f := fmt.Sprintf("b>a while A's parent is down #%d", i)
		b.send(a, f)
		wantA = append(wantA, f)
	}
	for i := range window {
		f := fmt.Sprintf("a>b while A's parent is down #%d", i)
		a.send(b, f)
		wantB = append(wantB, f)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := a.client.Send(ctx, b.id, []byte("beyond the window")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send beyond the window while the parent is down = %v, want a blocked Send", err)
	}
	if st := a.client.Stats(); st.Unacked != window || st.Connected {
		t.Fatalf("enclave A Stats = %+v", st)
	}

	a.startParent(tune)
	a.send(b, "after the restart")
	wantB = append(wantB, "after the restart")
	a.got.waitAll(t, s.be.patience, a.id, wantA)
	b.got.waitAll(t, s.be.patience, b.id, wantB)
	a.got.expectOnly(t, a.id, wantA)
}

// brokerRestart: frames flow both ways while the broker server restarts;
// the relays retry their publishes and the adapters reconnect, and every
// frame arrives.
func (s suite) brokerRestart(t *testing.T) {
	cs := newCosigners(t, s.be, 2, nil)
	a, b := cs[0], cs[1]
	const n = 60
	var wantA, wantB []string
	for i := range n {
		wantB = append(wantB, fmt.Sprintf("%s>%s across a broker restart #%03d", a.id, b.id, i))
		wantA = append(wantA, fmt.Sprintf("%s>%s across a broker restart #%03d", b.id, a.id, i))
	}
	var wg sync.WaitGroup
	wg.Go(func() { paced(a, b, wantB) })
	wg.Go(func() { paced(b, a, wantA) })
	time.Sleep(n / 3 * 2 * time.Millisecond)
	s.restartBroker(t)
	wg.Wait()
	a.got.waitAll(t, s.be.patience, a.id, wantA)
	b.got.waitAll(t, s.be.patience, b.id, wantB)
}

// slowEnclaveBounded: a slow enclave leaves the backlog in the broker:
// its relay never holds more than one inbox frame, however many wait.
func (s suite) slowEnclaveBounded(t *testing.T) {
	cs := newCosigners(t, s.be, 2, nil)
	a, b := cs[0], cs[1]
	b.got.setDelay(15 * time.Millisecond)
	const n = 100
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("to a slow enclave #%03d", i))
	}
	var maxInFlight atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			maxInFlight.Store(max(maxInFlight.Load(), int64(b.relay.Stats().InFlight)))
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	for _, f := range want {
		a.send(b, f)
	}
	deadline := time.Now().Add(s.be.patience)
	for a.relay.Stats().FramesOut < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	distinct, _ := b.got.stats()
	if distinct > n/2 {
		t.Errorf("B took %d of %d frames by the time A's relay published them all: the enclave was not slow", distinct, n)
	}
	t.Logf("when the broker held all %d frames, slow B had taken %d", n, distinct)
	b.got.waitAll(t, s.be.patience, b.id, want)
	close(stop)
	wg.Wait()
	if m := maxInFlight.Load(); m > 1 {
		t.Errorf("B's relay had %d frames in flight to its enclave, want at most 1", m)
	}
}
