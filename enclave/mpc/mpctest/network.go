// Package mpctest provides in-process fakes for the mpc engine: a network
// whose rules drop, duplicate, reorder and tamper with messages, and a
// memory store that can fail before or after persisting. Only tests and the
// devnet import it.
package mpctest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// Action is what a Rule does with an envelope.
type Action int

const (
	// Deliver passes the (possibly modified) envelope on.
	Deliver Action = iota
	// Drop loses it.
	Drop
	// Duplicate delivers it twice.
	Duplicate
)

// Rule decides the fate of one envelope. It may modify *env (tamper,
// rewrite the session ID); the payload is a private copy. Rules run under
// the network's lock, in send order.
type Rule func(env *mpc.Envelope) Action

// ErrClosed is returned by a closed network's transports.
var ErrClosed = errors.New("mpctest: network closed")

// Network connects in-process engines. The zero value is not usable; call
// NewNetwork.
type Network struct {
	mu      sync.Mutex
	boxes   map[mpc.PartyID]*mailbox
	rule    Rule
	reorder bool
	closed  bool
	stats   Stats
}

// Stats counts what the network did.
type Stats struct {
	Sent, Delivered, Dropped, Duplicated, Reordered int
}

type mailbox struct {
	queue  []mpc.Envelope
	seq    []int       // send order of each queued envelope
	at     []time.Time // arrival of each queued envelope
	notify chan struct{}
}

// holdFor is how long, when reordering, a lone envelope waits for a later
// one to overtake it.
const holdFor = 5 * time.Millisecond

// NewNetwork returns a network with a mailbox for each party.
func NewNetwork(parties ...mpc.PartyID) *Network {
	n := &Network{boxes: map[mpc.PartyID]*mailbox{}}
	for _, p := range parties {
		n.boxes[p] = &mailbox{notify: make(chan struct{}, 1)}
	}
	return n
}

// SetRule installs r for every later envelope; nil removes it.
func (n *Network) SetRule(r Rule) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rule = r
}

// SetReorder makes receivers take the newest queued envelope first, and
// hold a lone envelope up to 5 ms for a later one to overtake it, so
// envelopes sent close together arrive in reverse order.
func (n *Network) SetReorder(on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reorder = on
}

// Stats returns the counters so far.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Close makes every Receive and Send fail.
func (n *Network) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	for _, b := range n.boxes {
		wake(b)
	}
}

// Transport returns party's end of the network.
func (n *Network) Transport(party mpc.PartyID) mpc.Transport {
	return &transport{n: n, self: party}
}

type transport struct {
	n    *Network
	self mpc.PartyID
}

// Send applies the rule and queues the result for env.To. The transport
// authenticates the sender: From is overwritten with the sending party.
func (t *transport) Send(ctx context.Context, env mpc.Envelope) error {
	env.From = t.self
	env.Payload = append([]byte(nil), env.Payload...)
	return t.n.send(env)
}

func (n *Network) send(env mpc.Envelope) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	n.stats.Sent++
	act := Deliver
	if n.rule != nil {
		act = n.rule(&env)
	}
	switch act {
	case Drop:
		n.stats.Dropped++
	case Duplicate:
		n.stats.Duplicated++
		n.enqueue(env)
		n.enqueue(env)
	default:
		n.enqueue(env)
	}
	return nil
}

func (n *Network) enqueue(env mpc.Envelope) {
	b := n.boxes[env.To]
	if b == nil {
		return
	}
	b.queue = append(b.queue, env)
	b.seq = append(b.seq, n.stats.Sent)
	b.at = append(b.at, time.Now())
	wake(b)
}

func wake(b *mailbox) {
	select {
	case b.notify <- struct{}{}:
	default:
	}
}

// Receive returns the next envelope for this party.
func (t *transport) Receive(ctx context.Context) (mpc.Envelope, error) {
	for {
		env, wait, err := t.n.next(t.self)
		if err != nil || wait == 0 {
			return env, err
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return mpc.Envelope{}, ctx.Err()
		case <-t.n.boxes[t.self].notify:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// idle is the wait when nothing is queued; a notify ends it sooner.
const idle = time.Hour

// next takes an envelope, or says how long to wait for one.
func (n *Network) next(party mpc.PartyID) (mpc.Envelope, time.Duration, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	b := n.boxes[party]
	if n.closed || b == nil {
		return mpc.Envelope{}, 0, ErrClosed
	}
	if len(b.queue) == 0 {
		return mpc.Envelope{}, idle, nil
	}
	if n.reorder && len(b.queue) == 1 {
		if age := time.Since(b.at[0]); age < holdFor {
			return mpc.Envelope{}, holdFor - age, nil
		}
	}
	return n.take(b), 0, nil
}

func (n *Network) take(b *mailbox) mpc.Envelope {
	i := 0
	if n.reorder {
		i = len(b.queue) - 1
	}
	if i > 0 && b.seq[i] > b.seq[0] {
		n.stats.Reordered++
	}
	env := b.queue[i]
	b.queue = append(b.queue[:i], b.queue[i+1:]...)
	b.seq = append(b.seq[:i], b.seq[i+1:]...)
	b.at = append(b.at[:i], b.at[i+1:]...)
	n.stats.Delivered++
	if len(b.queue) > 0 {
		wake(b)
	}
	return env
}
