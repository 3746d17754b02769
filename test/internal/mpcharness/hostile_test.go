package mpcharness

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
)

// memBroker records what is published to it.
type memBroker struct {
	mu  sync.Mutex
	got []Sent
}

func (m *memBroker) Publish(_ context.Context, to string, frame []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, Sent{to, bytes.Clone(frame)})
	return nil
}

func (m *memBroker) stored() []Sent {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Sent(nil), m.got...)
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
		check  func(t *testing.T, l *Ledger, got []Sent, s HostileStats)
	}{
		{"honest", Rates{}, 4, func(t *testing.T, l *Ledger, got []Sent, s HostileStats) {
			for i, g := range got {
				if !bytes.Equal(g.Frame, frames[i]) || g.To != "bob" {
					t.Errorf("stored %d: %q to %s, want %q to bob", i, g.Frame, g.To, frames[i])
				}
			}
			if s.Faults() != 0 {
				t.Errorf("an honest broker counted faults: %+v", s)
			}
		}},
		{"drop", Rates{Drop: 1}, 0, func(t *testing.T, _ *Ledger, _ []Sent, s HostileStats) {
			if s.Dropped != 4 {
				t.Errorf("Dropped = %d, want 4", s.Dropped)
			}
		}},
		{"duplicate", Rates{Duplicate: 1}, 8, func(t *testing.T, _ *Ledger, got []Sent, s HostileStats) {
			if s.Duplicated != 4 || !bytes.Equal(got[0].Frame, got[1].Frame) {
				t.Errorf("Duplicated = %d; stored %q", s.Duplicated, got)
			}
		}},
		{"alter", Rates{Alter: 1}, 8, func(t *testing.T, l *Ledger, got []Sent, s HostileStats) {
			for i := 0; i < len(got); i += 2 {
				orig, alt := got[i].Frame, got[i+1].Frame
				if bytes.Equal(orig, alt) || len(orig) != len(alt) || l.Kind("bob", SumOf(alt)) != KindForged {
					t.Errorf("altered copy of %q: %q", orig, alt)
				}
			}
		}},
		{"replay", Rates{Replay: 1}, 7, func(t *testing.T, l *Ledger, got []Sent, s HostileStats) {
			for _, g := range got {
				if l.Kind(g.To, SumOf(g.Frame)) != KindGenuine {
					t.Errorf("replayed %q is not a frame published before", g.Frame)
				}
			}
			if s.Replayed != 3 {
				t.Errorf("Replayed = %d, want 3 (nothing to replay before the first frame)", s.Replayed)
			}
		}},
		// Each frame is held until the next one comes; the last one never
		// comes out (MaxHold is an hour) and is lost at Close.
		{"reorder", Rates{Reorder: 1}, 3, func(t *testing.T, _ *Ledger, got []Sent, s HostileStats) {
			if s.Reordered != 4 || slices.ContainsFunc(got, func(g Sent) bool { return bytes.Equal(g.Frame, frames[3]) }) {
				t.Errorf("Reordered = %d; stored %q, want all but the last", s.Reordered, got)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem, l := &memBroker{}, NewLedger()
			h := NewHostile(mem, HostileConfig{Rates: tc.rates, Seed: 1, HoldFor: 1, MaxHold: time.Hour, Ledger: l})
			for _, f := range frames {
				if err := h.Publish(t.Context(), "bob", f); err != nil {
					t.Fatal(err)
				}
			}
			for deadline := time.Now().Add(Patience); len(mem.stored()) < tc.stored && time.Now().Before(deadline); {
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
	rates := Rates{Drop: 0.2, Duplicate: 0.2, Reorder: 0.1, Delay: 0.1, Replay: 0.1, Alter: 0.1}
	var runs [2]HostileStats
	for i := range runs {
		h := NewHostile(&memBroker{}, HostileConfig{Rates: rates, Seed: 7, Stream: 3, MaxDelay: time.Microsecond, Ledger: NewLedger()})
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
