package mpcharness

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sync"
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
	// HostileConfig.HoldFor and MaxHold); Publish returns nil at once.
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

// HostileConfig configures a hostile broker.
type HostileConfig struct {
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
	Ledger *Ledger
}

// HostileStats counts what a hostile broker did.
type HostileStats struct {
	Frames, Bytes uint64 // frames Publish was given (retries included), and their bytes
	Dropped       uint64 // copies lost, replaced frames included
	Duplicated    uint64
	Reordered     uint64
	Delayed       uint64
	Replayed      uint64
	Altered       uint64 // altered copies stored, replacements included
}

// Faults is the number of frames the broker did something to: dropped,
// duplicated, reordered, delayed, replayed or altered copies.
func (s HostileStats) Faults() uint64 {
	return s.Dropped + s.Duplicated + s.Reordered + s.Delayed + s.Replayed + s.Altered
}

func (s HostileStats) plus(o HostileStats) HostileStats {
	return HostileStats{Frames: s.Frames + o.Frames, Bytes: s.Bytes + o.Bytes, Dropped: s.Dropped + o.Dropped,
		Duplicated: s.Duplicated + o.Duplicated, Reordered: s.Reordered + o.Reordered, Delayed: s.Delayed + o.Delayed,
		Replayed: s.Replayed + o.Replayed, Altered: s.Altered + o.Altered}
}

// Hostile is a broker.Broker that drops, duplicates, reorders, delays,
// replays and alters the frames published through it, at set rates, and
// records in its ledger every frame it was given (genuine) and every frame
// it made up (forged). Subscribe is the inner broker's.
type Hostile struct {
	inner  broker.Broker
	cfg    HostileConfig
	ctx    context.Context // ends when Close is called: held frames are then lost
	cancel context.CancelFunc
	wg     sync.WaitGroup // held frames' goroutines

	mu      sync.Mutex
	rates   Rates
	rng     *rand.Rand
	held    []*heldFrame
	replace map[string]func([]byte) []byte // one-shot, by inbox
	closed  bool
	stats   HostileStats
}

type heldFrame struct {
	after   int           // later frames still to go
	release chan struct{} // closed when after reaches 0
}

// NewHostile wraps inner.
func NewHostile(inner broker.Broker, cfg HostileConfig) *Hostile {
	cfg.MaxDelay = orDefault(cfg.MaxDelay, 50*time.Millisecond)
	cfg.HoldFor = orDefault(cfg.HoldFor, 3)
	cfg.MaxHold = orDefault(cfg.MaxHold, 200*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	return &Hostile{
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
func (h *Hostile) SetRates(r Rates) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rates = r
}

// ReplaceNext replaces the next frame published to inbox to by alter's
// result: the frame itself is lost.
func (h *Hostile) ReplaceNext(to string, alter func([]byte) []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.replace[to] = alter
}

// Stats returns the counters.
func (h *Hostile) Stats() HostileStats {
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
	replay *Sent
}

// Publish carries out the plan drawn for frame. It returns the inner
// broker's error for the frame itself only (the relay then publishes it
// again, and a new plan is drawn); extra copies are best effort.
func (h *Hostile) Publish(ctx context.Context, to string, frame []byte) error {
	p := h.plan(to, frame)
	if p.delay > 0 {
		if err := Sleep(ctx, p.delay); err != nil {
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
		h.inner.Publish(ctx, p.replay.To, p.replay.Frame)
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
func (h *Hostile) plan(to string, frame []byte) plan {
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
func (h *Hostile) count(p plan) {
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
func (h *Hostile) hold(to string, frame []byte) {
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

func (h *Hostile) storeHeld(to string, frame []byte) {
	for h.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(h.ctx, time.Second)
		err := h.inner.Publish(ctx, to, frame)
		cancel()
		if err == nil || Sleep(h.ctx, 50*time.Millisecond) != nil {
			return
		}
	}
}

// tick counts one more frame past every held frame and releases those
// whose turn came.
func (h *Hostile) tick() {
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

// Subscribe is the inner broker's.
func (h *Hostile) Subscribe(ctx context.Context, self string, handle broker.Handler) error {
	return h.inner.Subscribe(ctx, self, handle)
}

// MaxFrameSize is the inner broker's.
func (h *Hostile) MaxFrameSize() int { return h.inner.MaxFrameSize() }

// Close drops the frames still held and closes the inner broker.
func (h *Hostile) Close() error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
	return h.inner.Close()
}

// Sleep waits for d or until ctx ends, and then returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
