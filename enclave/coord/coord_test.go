package coord_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"go.uber.org/goleak"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/coord"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc/mpctest"
)

var abc = []mpc.PartyID{"alice", "bob", "carol"}

// judge is a test Judge: it hashes the request into the digest (as a real
// one parses the payload), and can refuse or stall.
type judge struct {
	mu      sync.Mutex
	refuse  coord.Code
	hashTag []byte // prefixed to the request before hashing
	stall   time.Duration
	extra   int // digests beyond the proposal's count, as a different parse would give
	calls   atomic.Int32
	done    []error
}

func (j *judge) Judge(ctx context.Context, _ mpc.PartyID, p *coord.Proposal) (coord.Task, error) {
	j.calls.Add(1)
	j.mu.Lock()
	refuse, tag, stall, extra := j.refuse, j.hashTag, j.stall, j.extra
	j.mu.Unlock()
	if stall > 0 {
		select {
		case <-time.After(stall):
		case <-ctx.Done():
			return coord.Task{}, ctx.Err()
		}
	}
	if refuse != 0 {
		return coord.Task{}, &coord.Refusal{Code: refuse, Err: errors.New("test says no")}
	}
	var reqs []mpc.SignRequest
	for i := range int(p.Signs) + extra {
		d := digestOf(tag, p.Request, i)
		reqs = append(reqs, mpc.SignRequest{Digest: d[:]})
	}
	return coord.Task{Signs: reqs, Done: j.record}, nil
}

// digestOf is what the test Judge signs: the i-th digest of a request.
func digestOf(tag, request []byte, i int) [32]byte {
	return sha256.Sum256(append(append(append([]byte{}, tag...), request...), byte(i)))
}

func (j *judge) record(_ coord.Result, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.done = append(j.done, err)
}

func (j *judge) outcomes() []error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]error(nil), j.done...)
}

// openLog is a test Sessions that records what is open.
type openLog struct {
	mu   sync.Mutex
	open map[mpc.SessionID]bool
}

func (o *openLog) Open(id mpc.SessionID, _ []mpc.PartyID) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.open[id] {
		return errors.New("opened twice")
	}
	o.open[id] = true
	return nil
}

func (o *openLog) Close(id mpc.SessionID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.open, id)
}

func (o *openLog) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.open)
}

type node struct {
	coord    *coord.Coordinator
	judge    *judge
	sessions *openLog
}

type cluster struct {
	net   *mpctest.Network
	nodes map[mpc.PartyID]*node
}

func newCluster(t *testing.T, maxSessions int) *cluster {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	c := &cluster{net: mpctest.NewNetwork(abc...), nodes: map[mpc.PartyID]*node{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait(); c.net.Close() })
	for _, id := range abc {
		mux := coord.NewMux(c.net.Transport(id))
		eng, err := mpc.New(mpc.Config{Self: id, Transport: mux.Engine(), Store: mpctest.NewMemStore()})
		if err != nil {
			t.Fatal(err)
		}
		n := &node{judge: &judge{}, sessions: &openLog{open: map[mpc.SessionID]bool{}}}
		n.coord, err = coord.New(coord.Config{Self: id, Mux: mux, Sessions: n.sessions, Engine: eng,
			Judge: n.judge, MaxSessions: maxSessions})
		if err != nil {
			t.Fatal(err)
		}
		c.nodes[id] = n
		for _, run := range []func(context.Context) error{mux.Run, eng.Run, n.coord.Run} {
			wg.Go(func() {
				if err := run(ctx); err != nil {
					t.Errorf("%s: Run = %v", id, err)
				}
			})
		}
	}
	return c
}

func proposal(t *testing.T, op coord.Op, parties []mpc.PartyID, d time.Duration) coord.Proposal {
	t.Helper()
	id, err := mpc.NewSessionID()
	if err != nil {
		t.Fatal(err)
	}
	return coord.Proposal{Session: id, Op: op, Parties: parties, Threshold: 2, Deadline: time.Now().Add(d)}
}

func (c *cluster) keygen(t *testing.T) mpc.KeyInfo {
	t.Helper()
	res, err := c.nodes["alice"].coord.Initiate(context.Background(), proposal(t, coord.OpFROSTKeygen, abc, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// The other parties' Done ran before or shortly after alice's result.
	for _, id := range abc {
		waitFor(t, func() bool { return len(c.nodes[id].judge.outcomes()) == 1 })
		if err := c.nodes[id].judge.outcomes()[0]; err != nil {
			t.Fatalf("%s: keygen: %v", id, err)
		}
	}
	return res.Key
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestKeygenAndSignAcrossParties(t *testing.T) {
	c := newCluster(t, 0)
	key := c.keygen(t)
	p := proposal(t, coord.OpSign, []mpc.PartyID{"bob", "carol"}, time.Minute)
	p.Key, p.Request, p.Signs = key.Key, []byte("spend three inputs"), 3
	res, err := c.nodes["bob"].coord.Initiate(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Signatures) != 3 {
		t.Fatalf("got %d signatures, want 3", len(res.Signatures))
	}
	for i, s := range res.Signatures {
		pub, err := schnorr.ParsePubKey(s.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := schnorr.ParseSignature(append(s.R[:], s.S[:]...))
		if err != nil {
			t.Fatal(err)
		}
		digest := digestOf(nil, p.Request, i)
		if !sig.Verify(digest[:], pub) {
			t.Fatalf("signature %d: btcd does not verify it over the digest each party computed", i)
		}
	}
	if n := c.nodes["alice"].judge.calls.Load(); n != 1 {
		t.Errorf("alice judged %d proposals; she is not a signer", n)
	}
	for _, id := range abc {
		waitFor(t, func() bool { return c.nodes[id].sessions.count() == 0 })
	}
}

// A signer that computes a different digest (its own parse of the request
// disagrees) makes the sign fail: nobody signs a digest it did not compute.
func TestSignerComputesItsOwnDigest(t *testing.T) {
	c := newCluster(t, 0)
	key := c.keygen(t)
	c.nodes["carol"].judge.hashTag = []byte("carol reads the request differently")
	p := proposal(t, coord.OpSign, []mpc.PartyID{"bob", "carol"}, 5*time.Second)
	p.Key, p.Request, p.Signs = key.Key, []byte("request"), 1
	if res, err := c.nodes["bob"].coord.Initiate(context.Background(), p); err == nil {
		t.Fatalf("sign succeeded with disagreeing digests: %+v", res.Signatures)
	}
}

// A presignature refusal reaches the initiator with its own code (the
// initiator retries on it), not as an internal failure.
func TestPresignatureRefusalKeepsItsCode(t *testing.T) {
	c := newCluster(t, 0)
	c.nodes["carol"].judge.refuse = coord.CodePresignature
	_, err := c.nodes["alice"].coord.Initiate(context.Background(), proposal(t, coord.OpFROSTKeygen, abc, 10*time.Second))
	var refused *coord.RefusedError
	if !errors.As(err, &refused) || refused.Party != "carol" || refused.Code != coord.CodePresignature {
		t.Fatalf("got %v, want carol's presignature refusal", err)
	}
}

func TestRefusalNamesPartyAndCode(t *testing.T) {
	c := newCluster(t, 0)
	c.nodes["carol"].judge.refuse = coord.CodePolicy
	_, err := c.nodes["alice"].coord.Initiate(context.Background(), proposal(t, coord.OpFROSTKeygen, abc, 10*time.Second))
	var refused *coord.RefusedError
	if !errors.As(err, &refused) || refused.Party != "carol" || refused.Code != coord.CodePolicy {
		t.Fatalf("got %v, want carol's policy refusal", err)
	}
	// Bob accepted, then heard the cancel instead of waiting for the deadline.
	waitFor(t, func() bool { return len(c.nodes["bob"].judge.outcomes()) == 1 })
	if got := c.nodes["bob"].judge.outcomes()[0]; !errors.Is(got, coord.ErrCancelled) {
		t.Errorf("bob: %v, want ErrCancelled", got)
	}
}

func TestLostAcceptEndsAtDeadline(t *testing.T) {
	c := newCluster(t, 0)
	c.net.SetRule(func(env *mpc.Envelope) mpctest.Action {
		if env.From == "carol" && env.Session == coord.ControlSession {
			return mpctest.Drop
		}
		return mpctest.Deliver
	})
	began := time.Now()
	_, err := c.nodes["alice"].coord.Initiate(context.Background(), proposal(t, coord.OpFROSTKeygen, abc, time.Second))
	var none *coord.NoAnswerError
	if !errors.Is(err, coord.ErrDeadline) || !errors.As(err, &none) || len(none.Missing) != 1 || none.Missing[0] != "carol" {
		t.Fatalf("got %v, want ErrDeadline naming carol", err)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("took %v with a 1s deadline", took)
	}
	waitFor(t, func() bool { return len(c.nodes["carol"].judge.outcomes()) == 1 })
	if got := c.nodes["carol"].judge.outcomes()[0]; got == nil {
		t.Error("carol ran a session alice gave up on")
	}
}

// A proposal delivered twice is judged once.
func TestReplayedProposalIgnored(t *testing.T) {
	c := newCluster(t, 0)
	c.net.SetRule(func(env *mpc.Envelope) mpctest.Action {
		if env.From == "alice" && env.Session == coord.ControlSession {
			return mpctest.Duplicate
		}
		return mpctest.Deliver
	})
	c.keygen(t)
	for _, id := range []mpc.PartyID{"bob", "carol"} {
		if n := c.nodes[id].judge.calls.Load(); n != 1 {
			t.Errorf("%s judged the proposal %d times", id, n)
		}
	}
}

func TestBusyPartyRefuses(t *testing.T) {
	c := newCluster(t, 1)
	c.nodes["bob"].judge.stall = 2 * time.Second
	first := make(chan error, 1)
	go func() {
		_, err := c.nodes["alice"].coord.Initiate(context.Background(), proposal(t, coord.OpFROSTKeygen, abc, 20*time.Second))
		first <- err
	}()
	waitFor(t, func() bool { return c.nodes["bob"].judge.calls.Load() == 1 })
	_, err := c.nodes["carol"].coord.Initiate(context.Background(), proposal(t, coord.OpFROSTKeygen, abc, 20*time.Second))
	var refused *coord.RefusedError
	if !errors.As(err, &refused) || refused.Party != "bob" || refused.Code != coord.CodeBusy {
		t.Errorf("got %v, want bob busy", err)
	}
	if err := <-first; err != nil {
		t.Errorf("first session: %v", err)
	}
}

func TestInitiateRefusesBadProposals(t *testing.T) {
	c := newCluster(t, 0)
	good := proposal(t, coord.OpFROSTKeygen, abc, time.Minute)
	for name, edit := range map[string]func(*coord.Proposal){
		"zero session":       func(p *coord.Proposal) { p.Session = mpc.SessionID{} },
		"control session":    func(p *coord.Proposal) { p.Session = coord.ControlSession },
		"unknown op":         func(p *coord.Proposal) { p.Op = 99 },
		"not a party":        func(p *coord.Proposal) { p.Parties = []mpc.PartyID{"bob", "carol"} },
		"repeated party":     func(p *coord.Proposal) { p.Parties = []mpc.PartyID{"alice", "bob", "bob"} },
		"one party":          func(p *coord.Proposal) { p.Parties = []mpc.PartyID{"alice"} },
		"past deadline":      func(p *coord.Proposal) { p.Deadline = time.Now().Add(-time.Second) },
		"far deadline":       func(p *coord.Proposal) { p.Deadline = time.Now().Add(time.Hour) },
		"huge request":       func(p *coord.Proposal) { p.Request = bytes.Repeat([]byte{1}, coord.MaxRequest+1) },
		"keygen with signs":  func(p *coord.Proposal) { p.Signs = 1 },
		"sign without signs": func(p *coord.Proposal) { p.Op = coord.OpSign },
		"too many signs":     func(p *coord.Proposal) { p.Op, p.Signs = coord.OpSign, coord.MaxSigns+1 },
		"presig for two":     func(p *coord.Proposal) { p.Op, p.Signs, p.Presignature = coord.OpSign, 2, mpc.PresignatureID{1} },
	} {
		t.Run(name, func(t *testing.T) {
			p := good
			edit(&p)
			if _, err := c.nodes["alice"].coord.Initiate(context.Background(), p); !errors.Is(err, coord.ErrInvalid) {
				t.Errorf("got %v, want ErrInvalid", err)
			}
		})
	}
	if n := c.nodes["alice"].judge.calls.Load(); n != 0 {
		t.Errorf("the judge saw %d invalid proposals", n)
	}
}

// A party whose own parse gives another number of digests refuses before
// any session runs.
func TestDigestCountMismatchRefused(t *testing.T) {
	c := newCluster(t, 0)
	key := c.keygen(t)
	c.nodes["carol"].judge.extra = 1
	p := proposal(t, coord.OpSign, []mpc.PartyID{"bob", "carol"}, 10*time.Second)
	p.Key, p.Request, p.Signs = key.Key, []byte("request"), 2
	_, err := c.nodes["bob"].coord.Initiate(context.Background(), p)
	var refused *coord.RefusedError
	if !errors.As(err, &refused) || refused.Party != "carol" || refused.Code != coord.CodeInvalid {
		t.Fatalf("got %v, want carol refusing as invalid", err)
	}
}
