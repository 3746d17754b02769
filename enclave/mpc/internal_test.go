package mpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/taurusgroup/multi-party-sig/pkg/protocol"
	"go.uber.org/goleak"
)

func TestSecretsPrintRedacted(t *testing.T) {
	defer goleak.VerifyNone(t)
	share := Secret("SHARE-BYTES-THAT-MUST-NOT-LEAK")
	rec := KeyRecord{Self: "alice", Share: share}
	holders := []any{
		share, rec, &rec,
		&keyState{meta: rec}, keyState{},
		&presig{id: PresignatureID{1}}, presig{},
	}
	for _, v := range holders {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			if out := fmt.Sprintf(verb, v); leaks(out) {
				t.Errorf("%s of %T leaks: %s", verb, v, out)
			}
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "v", v)
		if bytes.Contains(buf.Bytes(), []byte("SHARE")) {
			t.Errorf("slog of %T leaks: %s", v, buf.String())
		}
	}
	if _, err := json.Marshal(rec); err == nil {
		t.Error("json.Marshal encoded a share")
	}
}

// leaks spots the share's bytes as text, hex or decimal.
func leaks(out string) bool {
	for _, s := range []string{"SHARE", "534841", "83 72 65"} {
		if bytes.Contains([]byte(out), []byte(s)) {
			return true
		}
	}
	return false
}

func sampleMessage() *protocol.Message {
	m := &protocol.Message{
		SSID: []byte("ssid"), From: "alice", To: "bob", Protocol: "cmp/sign",
		Data: []byte{0xa1, 0x01, 0x02}, Broadcast: false, BroadcastVerification: []byte{9},
	}
	setRound(&m.RoundNumber, 3)
	return m
}

func TestDecodeMessageRoundTrip(t *testing.T) {
	want := sampleMessage()
	b, err := want.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.From != want.From || got.To != want.To || got.RoundNumber != want.RoundNumber ||
		!bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.SSID, want.SSID) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	env := Envelope{From: "alice", To: "bob", Protocol: "cmp/sign", Round: 3}
	if err := checkRouting(env, got); err != nil {
		t.Fatal(err)
	}
	env.From = "carol"
	if checkRouting(env, got) == nil {
		t.Fatal("a payload from alice passed in an envelope from carol")
	}
}

// FuzzDecodeMessage: decoding never panics, and what decodes re-encodes to
// something that decodes to the same message.
func FuzzDecodeMessage(f *testing.F) {
	b, _ := sampleMessage().MarshalBinary()
	f.Add(b)
	f.Add([]byte{0xa0})
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeMessage(data)
		if err != nil {
			return
		}
		again, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := decodeMessage(again)
		if err != nil || m2.From != m.From || m2.To != m.To || m2.RoundNumber != m.RoundNumber ||
			!bytes.Equal(m2.Data, m.Data) || m2.Broadcast != m.Broadcast || m2.Protocol != m.Protocol {
			t.Fatalf("round trip changed the message: %v", err)
		}
	})
}

// FuzzParseProposal: proposals are attacker-controlled; parsing never
// panics and accepted ones name a valid, sorted signer set.
func FuzzParseProposal(f *testing.F) {
	good, _ := encMode.Marshal(&proposal{Key: make([]byte, 32), Signers: []string{"b", "a"}})
	f.Add(good)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		job, ok := parseProposal(data)
		if !ok {
			return
		}
		if _, err := sortedParties(job.signers); err != nil {
			t.Fatalf("accepted an invalid signer set: %v", err)
		}
	})
}

func TestRouterHoldsEarlyMessagesWithinBounds(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newRouter(func() time.Time { return now })
	for i := range maxPendingSessions + 10 {
		for range maxPendingPerSession + 5 {
			r.deliver(Envelope{Session: SessionID{byte(i), byte(i >> 8), 1}})
		}
	}
	if len(r.pending) != maxPendingSessions {
		t.Fatalf("%d pending sessions, bound %d", len(r.pending), maxPendingSessions)
	}
	for _, box := range r.pending {
		if len(box.envs) != maxPendingPerSession {
			t.Fatalf("%d pending messages, bound %d", len(box.envs), maxPendingPerSession)
		}
	}
	now = now.Add(pendingTTL + time.Second)
	r.deliver(Envelope{Session: SessionID{0xee}})
	if len(r.pending) != 1 {
		t.Fatalf("expired boxes kept: %d", len(r.pending))
	}
}

func TestRouterDeliversEarlyMessagesAndRefusesReuse(t *testing.T) {
	r := newRouter(time.Now)
	id := SessionID{7}
	r.deliver(Envelope{Session: id, Round: 2})
	s := newSession(id, OpSign, "alice", []PartyID{"alice", "bob"}, nil)
	if err := r.register(s); err != nil {
		t.Fatal(err)
	}
	if len(s.inbox) != 1 {
		t.Fatalf("early message not delivered: %d", len(s.inbox))
	}
	r.unregister(id)
	r.deliver(Envelope{Session: id})
	if len(r.pending) != 0 {
		t.Fatal("kept a message for a finished session")
	}
	if err := r.register(s); err != ErrSessionIDReused {
		t.Fatalf("got %v, want ErrSessionIDReused", err)
	}
}

func testEngine(t *testing.T, self PartyID) *Engine {
	t.Helper()
	e, err := New(Config{Self: self, Transport: nopTransport{}, Store: nopStore{}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type nopTransport struct{}

func (nopTransport) Send(context.Context, Envelope) error { return nil }
func (nopTransport) Receive(ctx context.Context) (Envelope, error) {
	<-ctx.Done()
	return Envelope{}, ctx.Err()
}

type nopStore struct{}

func (nopStore) PutKey(context.Context, KeyRecord) error { return nil }
func (nopStore) GetKey(context.Context, KeyID) (KeyRecord, error) {
	return KeyRecord{}, ErrKeyNotFound
}

// Many goroutines take the same presignature; exactly one gets it.
func TestTakePresigIsAtomic(t *testing.T) {
	defer goleak.VerifyNone(t)
	e := testEngine(t, "alice")
	signers := []PartyID{"alice", "bob"}
	pk := makePoolKey(KeyID{1}, signers)
	for round := range 50 {
		id := PresignatureID{byte(round), 1}
		e.addPresig(pk, signers, 0, &presig{id: id})
		var wins sync.WaitGroup
		got := make(chan bool, 16)
		for range 16 {
			wins.Add(1)
			go func() {
				defer wins.Done()
				_, err := e.takePresig(KeyID{1}, signers, 0, id)
				got <- err == nil
			}()
		}
		wins.Wait()
		close(got)
		n := 0
		for ok := range got {
			if ok {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("round %d: %d takers got the presignature", round, n)
		}
	}
}

func TestPoolClaimAndRefillRules(t *testing.T) {
	cfg := PoolConfig{Target: 4, LowWater: 2}.withDefaults()
	now := time.Unix(0, 0)
	p := newPresigPool(KeyID{1}, []PartyID{"alice", "bob"}, 0, "alice")
	p.refill = true
	if !p.proposer || p.wants(cfg, now) != 1 {
		t.Fatalf("alice should propose one session: proposer %v, wants %d", p.proposer, p.wants(cfg, now))
	}
	for i := range 3 {
		p.add(&presig{id: PresignatureID{byte(i + 1)}, since: now}, cfg.capacity())
	}
	if n := p.wants(cfg, now); n != 1 {
		t.Fatalf("below target after a refill started: wants %d, want 1", n)
	}
	p.add(&presig{id: PresignatureID{9}, since: now}, cfg.capacity())
	if n := p.wants(cfg, now); n != 0 {
		t.Fatalf("at target: wants %d", n)
	}
	id, ok := p.claim(now, time.Minute)
	if !ok || id != (PresignatureID{1}) {
		t.Fatalf("claim should hand out the oldest: %v %v", id, ok)
	}
	if p.take(id) == nil || p.take(id) != nil {
		t.Fatal("a claimed presignature must be taken exactly once")
	}
	p.claim(now, time.Minute)
	p.claim(now.Add(2*time.Minute), time.Minute)
	if len(p.claimed) != 1 || p.stats.Evicted != 1 {
		t.Fatalf("expired claims kept: %d claimed, %d evicted", len(p.claimed), p.stats.Evicted)
	}
	bob := newPresigPool(KeyID{1}, []PartyID{"alice", "bob"}, 0, "bob")
	bob.refill = true
	if bob.proposer || bob.wants(cfg, now) != 0 {
		t.Fatal("bob must never propose for {alice, bob}")
	}
}

func TestProposalsAreCheckedBeforeJoining(t *testing.T) {
	e := testEngine(t, "bob")
	signers := []PartyID{"alice", "bob"}
	e.pool(KeyID{1}, signers, 3).refill = true
	e.pool(KeyID{2}, signers, 0) // refill not enabled
	prop := func(key KeyID, epoch uint64, ss ...string) []byte {
		b, _ := encMode.Marshal(&proposal{Key: key[:], Epoch: epoch, Signers: ss})
		return b
	}
	for name, tc := range map[string]struct {
		from    PartyID
		payload []byte
		want    verdict
	}{
		"good":            {"alice", prop(KeyID{1}, 3, "bob", "alice"), join},
		"not proposer":    {"carol", prop(KeyID{1}, 3, "bob", "alice"), ignore},
		"wrong epoch":     {"alice", prop(KeyID{1}, 2, "bob", "alice"), refuse},
		"unknown pool":    {"alice", prop(KeyID{9}, 3, "bob", "alice"), refuse},
		"refill disabled": {"alice", prop(KeyID{2}, 0, "bob", "alice"), refuse},
		"not a signer":    {"alice", prop(KeyID{1}, 3, "alice", "carol"), ignore},
		"garbage":         {"alice", []byte{0x01, 0x02}, ignore},
	} {
		t.Run(name, func(t *testing.T) {
			id, _ := NewSessionID()
			env := Envelope{Session: id, From: tc.from, To: "bob", Payload: tc.payload}
			if _, v := e.judgeProposal(env); v != tc.want {
				t.Fatalf("verdict %v, want %v", v, tc.want)
			}
			if _, v := e.judgeProposal(env); v != ignore {
				t.Fatalf("a repeated proposal got verdict %v, want ignore", v)
			}
		})
	}
}

type brokenTransport struct{ nopTransport }

func (brokenTransport) Receive(context.Context) (Envelope, error) {
	return Envelope{}, fmt.Errorf("link down")
}

func TestRunLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t)
	e := testEngine(t, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	for !e.isRunning() {
		time.Sleep(time.Millisecond)
	}
	if err := e.Run(ctx); err != errRunning {
		t.Fatalf("second Run: got %v, want errRunning", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	e.tr = brokenTransport{}
	if err := e.Run(context.Background()); err == nil {
		t.Fatal("Run hid a transport failure")
	}
}
