package mpcpath_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
)

// Rates are the probabilities, each from 0 to 1, that the hostile broker
// does something to one published frame. They are drawn independently for
// every Publish call.
type Rates struct {
	// Drop loses the frame (each copy, if duplicated, on its own draw);
	// Publish still returns nil, so nobody sends it again.
	Drop float64
	// Duplicate stores the frame twice.
	Duplicate float64
	// Reorder holds the frame back and stores it after later frames (see
	// hostileConfig.HoldFor and MaxHold); Publish returns nil at once.
	Reorder float64
	// Delay stalls Publish for up to MaxDelay before it stores anything,
	// which reorders frames the relay publishes concurrently.
	Delay float64
	// Replay stores again an earlier frame, of any sender and any session
	// (including ended ones), in the inbox it was first published to.
	Replay float64
	// Alter stores, besides the frame, a copy with one to three bytes
	// changed.
	Alter float64
}

// hostileConfig configures a hostile broker.
type hostileConfig struct {
	Rates
	// Seed and Stream seed the choices: one broker's choices depend only on
	// them and on how many frames it was given before, not on timing.
	Seed, Stream uint64
	// MaxDelay bounds Delay (default 50ms; keep it under the relay's
	// AttemptTimeout).
	MaxDelay time.Duration
	// A held frame is stored after HoldFor later frames (default 3) or
	// MaxHold (default 200ms), whichever comes first.
	HoldFor int
	MaxHold time.Duration
	// Ledger is shared by the brokers of a cluster; required.
	Ledger *ledger
}

// hostileStats counts what a hostile broker did.
type hostileStats struct {
	Frames, Bytes uint64 // frames Publish was given (retries included), and their bytes
	Dropped       uint64 // copies lost, replaced frames included
	Duplicated    uint64
	Reordered     uint64
	Delayed       uint64
	Replayed      uint64
	Altered       uint64 // altered copies stored, replacements included
}

// hostile is a broker.Broker that drops, duplicates, reorders, delays,
// replays and alters the frames published through it, at set rates, and
// records in its ledger every frame it was given (genuine) and every frame
// it made up (forged). Subscribe is the inner broker's.
type hostile struct {
	inner  broker.Broker
	cfg    hostileConfig
	ctx    context.Context // ends when Close is called: held frames are then lost
	cancel context.CancelFunc
	wg     sync.WaitGroup // held frames' goroutines

	mu      sync.Mutex
	rates   Rates
	rng     *rand.Rand
	held    []*heldFrame
	replace map[string]func([]byte) []byte // one-shot, by inbox
	closed  bool
	stats   hostileStats
}

type heldFrame struct {
	after   int           // later frames still to go
	release chan struct{} // closed when after reaches 0
}

func newHostile(inner broker.Broker, cfg hostileConfig) *hostile {
	cfg.MaxDelay = orDefault(cfg.MaxDelay, 50*time.Millisecond)
	cfg.HoldFor = orDefault(cfg.HoldFor, 3)
	cfg.MaxHold = orDefault(cfg.MaxHold, 200*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	return &hostile{
		inner: inner, cfg: cfg, ctx: ctx, cancel: cancel, rates: cfg.Rates,
		rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Stream)), replace: map[string]func([]byte) []byte{},
	}
}

func orDefault[T comparable](v, d T) T {
	var zero T
	if v == zero {
		return d
	}
	return v
}

// SetRates changes the rates from the next frame on.
func (h *hostile) SetRates(r Rates) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rates = r
}

// ReplaceNext replaces the next frame published to inbox to by alter's
// result: the frame itself is lost.
func (h *hostile) ReplaceNext(to string, alter func([]byte) []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.replace[to] = alter
}

// Stats returns the counters.
func (h *hostile) Stats() hostileStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stats
}

// plan is what the hostile broker does with one frame.
type plan struct {
	delay  time.Duration
	hold   bool
	drop   [2]bool // the first and the duplicate copy
	dup    bool
	extra  [][]byte // altered copies, stored besides the frame
	replay *sent
}

// Publish carries out the plan drawn for frame. It returns the inner
// broker's error for the frame itself only (the relay then publishes it
// again, and a new plan is drawn); extra copies are best effort.
func (h *hostile) Publish(ctx context.Context, to string, frame []byte) error {
	p := h.plan(to, frame)
	if p.delay > 0 {
		if err := sleep(ctx, p.delay); err != nil {
			return err
		}
	}
	if !p.hold && !p.drop[0] {
		if err := h.inner.Publish(ctx, to, frame); err != nil {
			return err
		}
	}
	if p.dup && !p.drop[1] {
		h.inner.Publish(ctx, to, frame)
	}
	for _, f := range p.extra {
		h.inner.Publish(ctx, to, f)
	}
	if p.replay != nil {
		h.inner.Publish(ctx, p.replay.to, p.replay.frame)
	}
	h.tick()
	if p.hold { // after the tick: only later frames count
		h.hold(to, frame)
	}
	return nil
}

// plan draws the fate of one frame. It always makes the same number of
// draws, so that a broker's choices depend only on its seed and on how
// many frames came before.
func (h *hostile) plan(to string, frame []byte) plan {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, rng := h.rates, h.rng
	roll := func(p float64) bool { return rng.Float64() < p }
	p := plan{drop: [2]bool{roll(r.Drop), roll(r.Drop)}, dup: roll(r.Duplicate), hold: roll(r.Reorder)}
	delay, frac := roll(r.Delay), rng.Float64()
	replay, pick := roll(r.Replay), rng.Uint64()
	alter, alterSeed := roll(r.Alter), rng.Uint64()

	h.stats.Frames++
	h.stats.Bytes += uint64(len(frame))
	if delay {
		p.delay = time.Duration(frac * float64(h.cfg.MaxDelay))
	}
	if replay {
		p.replay = h.cfg.Ledger.earlier(pick)
	}
	h.cfg.Ledger.genuine(to, frame)
	if alter {
		p.extra = append(p.extra, h.cfg.Ledger.forge(alterBytes(frame, alterSeed)))
	}
	if fn := h.replace[to]; fn != nil {
		delete(h.replace, to)
		p = plan{drop: [2]bool{true, true}, extra: [][]byte{h.cfg.Ledger.forge(fn(frame))}}
	}
	h.count(p)
	return p
}

// count adds a plan's doings to the counters.
func (h *hostile) count(p plan) {
	if p.delay > 0 {
		h.stats.Delayed++
	}
	switch {
	case p.hold:
		h.stats.Reordered++
	case p.drop[0]:
		h.stats.Dropped++
	}
	if p.dup {
		h.stats.Duplicated++
		if p.drop[1] {
			h.stats.Dropped++
		}
	}
	h.stats.Altered += uint64(len(p.extra))
	if p.replay != nil {
		h.stats.Replayed++
	}
}

// alterBytes returns a copy of frame with one to three bytes changed, at
// positions drawn from seed.
func alterBytes(frame []byte, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 0))
	out := bytes.Clone(frame)
	for range 1 + rng.IntN(3) {
		out[rng.IntN(len(out))] ^= byte(1 + rng.IntN(255))
	}
	if bytes.Equal(out, frame) { // two changes of one byte cancelled out
		out[len(out)-1] ^= 1
	}
	return out
}

// hold stores frame once HoldFor later frames went through or MaxHold
// passed, retrying until it is stored or the broker is closed.
func (h *hostile) hold(to string, frame []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	f := &heldFrame{after: h.cfg.HoldFor, release: make(chan struct{})}
	h.held = append(h.held, f)
	h.wg.Go(func() {
		timer := time.NewTimer(h.cfg.MaxHold)
		defer timer.Stop()
		select {
		case <-f.release:
		case <-timer.C:
		case <-h.ctx.Done():
			return
		}
		h.storeHeld(to, frame)
	})
}

func (h *hostile) storeHeld(to string, frame []byte) {
	for h.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(h.ctx, time.Second)
		err := h.inner.Publish(ctx, to, frame)
		cancel()
		if err == nil || sleep(h.ctx, 50*time.Millisecond) != nil {
			return
		}
	}
}

// tick counts one more frame past every held frame and releases those
// whose turn came.
func (h *hostile) tick() {
	h.mu.Lock()
	defer h.mu.Unlock()
	kept := h.held[:0]
	for _, f := range h.held {
		if f.after--; f.after <= 0 {
			close(f.release)
			continue
		}
		kept = append(kept, f)
	}
	h.held = kept
}

func (h *hostile) Subscribe(ctx context.Context, self string, handle broker.Handler) error {
	return h.inner.Subscribe(ctx, self, handle)
}

func (h *hostile) MaxFrameSize() int { return h.inner.MaxFrameSize() }

// Close drops the frames still held and closes the inner broker.
func (h *hostile) Close() error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
	return h.inner.Close()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sum names a frame by its SHA-256.
type sum [sha256.Size]byte

func sha256Sum(frame []byte) sum { return sha256.Sum256(frame) }

// sent is a frame and the inbox it was published to.
type sent struct {
	to    string
	frame []byte
}

// maxHistory bounds the frames a ledger keeps for replays.
const maxHistory = 512

// ledger knows every frame a cluster's relays published (genuine, by
// inbox) and every frame its hostile brokers made up (forged), and keeps
// recent genuine frames to replay.
type ledger struct {
	mu      sync.Mutex
	byInbox map[string][][]byte // genuine frames, first publication order
	isReal  map[string]map[sum]bool
	forged  map[sum]bool
	history []sent // ring of the last maxHistory genuine publications
	next    int
}

func newLedger() *ledger {
	return &ledger{byInbox: map[string][][]byte{}, isReal: map[string]map[sum]bool{}, forged: map[sum]bool{}}
}

// genuine records a frame a relay published to inbox to.
func (l *ledger) genuine(to string, frame []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := sha256Sum(frame)
	if l.isReal[to] == nil {
		l.isReal[to] = map[sum]bool{}
	}
	if !l.isReal[to][s] {
		l.isReal[to][s] = true
		l.byInbox[to] = append(l.byInbox[to], bytes.Clone(frame))
	}
	e := sent{to, bytes.Clone(frame)}
	if len(l.history) < maxHistory {
		l.history = append(l.history, e)
	} else {
		l.history[l.next] = e
		l.next = (l.next + 1) % maxHistory
	}
}

// forge records a frame a hostile broker made up and returns it.
func (l *ledger) forge(frame []byte) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forged[sha256Sum(frame)] = true
	return frame
}

// earlier returns the genuine publication chosen by pick, or nil if there
// was none yet.
func (l *ledger) earlier(pick uint64) *sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.history) == 0 {
		return nil
	}
	e := l.history[pick%uint64(len(l.history))]
	return &e
}

// kind classifies a frame delivered to inbox to.
func (l *ledger) kind(to string, s sum) frameKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.isReal[to][s]:
		return kindGenuine
	case l.forged[s]:
		return kindForged
	}
	return kindForeign
}

// framesTo returns the genuine frames published to inbox to so far.
func (l *ledger) framesTo(to string) [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]byte(nil), l.byInbox[to]...)
}

type frameKind uint8

const (
	kindGenuine frameKind = iota // a relay published it to this inbox
	kindForged                   // a hostile broker made it up
	kindForeign                  // neither: injected, or meant for another inbox
)

// memBroker records what is published to it.
type memBroker struct {
	mu  sync.Mutex
	got []sent
}

func (m *memBroker) Publish(_ context.Context, to string, frame []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, sent{to, bytes.Clone(frame)})
	return nil
}

func (m *memBroker) stored() []sent {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]sent(nil), m.got...)
}

func (m *memBroker) Subscribe(context.Context, string, broker.Handler) error { return nil }
func (m *memBroker) MaxFrameSize() int                                       { return broker.MaxFrameSize }
func (m *memBroker) Close() error                                            { return nil }

// The hostile broker does what its rates say, and counts it.
func TestHostileBroker(t *testing.T) {
	frames := [][]byte{[]byte("frame-0"), []byte("frame-1"), []byte("frame-2"), []byte("frame-3")}
	for _, tc := range []struct {
		name   string
		rates  Rates
		stored int // frames stored in the end
		check  func(t *testing.T, l *ledger, got []sent, s hostileStats)
	}{
		{"honest", Rates{}, 4, func(t *testing.T, l *ledger, got []sent, s hostileStats) {
			for i, g := range got {
				if !bytes.Equal(g.frame, frames[i]) || g.to != "bob" {
					t.Errorf("stored %d: %q to %s, want %q to bob", i, g.frame, g.to, frames[i])
				}
			}
		}},
		{"drop", Rates{Drop: 1}, 0, func(t *testing.T, _ *ledger, _ []sent, s hostileStats) {
			if s.Dropped != 4 {
				t.Errorf("Dropped = %d, want 4", s.Dropped)
			}
		}},
		{"duplicate", Rates{Duplicate: 1}, 8, func(t *testing.T, _ *ledger, got []sent, s hostileStats) {
			if s.Duplicated != 4 || !bytes.Equal(got[0].frame, got[1].frame) {
				t.Errorf("Duplicated = %d; stored %q", s.Duplicated, got)
			}
		}},
		{"alter", Rates{Alter: 1}, 8, func(t *testing.T, l *ledger, got []sent, s hostileStats) {
			for i := 0; i < len(got); i += 2 {
				orig, alt := got[i].frame, got[i+1].frame
				if bytes.Equal(orig, alt) || len(orig) != len(alt) || l.kind("bob", sha256Sum(alt)) != kindForged {
					t.Errorf("altered copy of %q: %q", orig, alt)
				}
			}
		}},
		{"replay", Rates{Replay: 1}, 7, func(t *testing.T, l *ledger, got []sent, s hostileStats) {
			for _, g := range got {
				if l.kind(g.to, sha256Sum(g.frame)) != kindGenuine {
					t.Errorf("replayed %q is not a frame published before", g.frame)
				}
			}
			if s.Replayed != 3 {
				t.Errorf("Replayed = %d, want 3 (nothing to replay before the first frame)", s.Replayed)
			}
		}},
		// Each frame is held until the next one comes; the last one never
		// comes out (MaxHold is an hour) and is lost at Close.
		{"reorder", Rates{Reorder: 1}, 3, func(t *testing.T, _ *ledger, got []sent, s hostileStats) {
			if s.Reordered != 4 || slices.ContainsFunc(got, func(g sent) bool { return bytes.Equal(g.frame, frames[3]) }) {
				t.Errorf("Reordered = %d; stored %q, want all but the last", s.Reordered, got)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem, l := &memBroker{}, newLedger()
			h := newHostile(mem, hostileConfig{Rates: tc.rates, Seed: 1, HoldFor: 1, MaxHold: time.Hour, Ledger: l})
			for _, f := range frames {
				if err := h.Publish(t.Context(), "bob", f); err != nil {
					t.Fatal(err)
				}
			}
			for deadline := time.Now().Add(patience); len(mem.stored()) < tc.stored && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
			got := mem.stored()
			if len(got) != tc.stored {
				t.Fatalf("stored %d frames, want %d: %q", len(got), tc.stored, got)
			}
			tc.check(t, l, got, h.Stats())
		})
	}
}

// Two hostile brokers with the same seed make the same choices.
func TestHostileBrokerSeeded(t *testing.T) {
	var runs [2]hostileStats
	for i := range runs {
		h := newHostile(&memBroker{}, hostileConfig{Rates: dropRates, Seed: 7, Stream: 3, MaxDelay: time.Microsecond, Ledger: newLedger()})
		for j := range 200 {
			h.Publish(t.Context(), "bob", []byte{byte(j), 1, 2, 3})
		}
		h.Close()
		runs[i] = h.Stats()
	}
	if runs[0] != runs[1] || runs[0].Dropped == 0 {
		t.Fatalf("same seed, different choices: %+v and %+v", runs[0], runs[1])
	}
}
