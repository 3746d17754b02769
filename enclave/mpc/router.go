package mpc

import (
	"sync"
	"time"
)

// Bounds on messages held for sessions this engine has not started yet.
// Peers start a session at slightly different times, so early messages are
// kept for a while; the bounds stop a peer from filling memory.
const (
	maxPendingSessions   = 256
	maxPendingPerSession = 64
	pendingTTL           = 30 * time.Second
	// doneMemory is how many finished session IDs are remembered, to drop
	// their late messages and refuse their reuse.
	doneMemory = 4096
)

// router hands incoming envelopes to the session they belong to.
type router struct {
	mu      sync.Mutex
	active  map[SessionID]*session
	pending map[SessionID]*pendingBox
	done    recentIDs
	now     func() time.Time
}

type pendingBox struct {
	envs  []Envelope
	since time.Time
}

func newRouter(now func() time.Time) *router {
	return &router{
		active:  map[SessionID]*session{},
		pending: map[SessionID]*pendingBox{},
		done:    recentIDs{seen: map[SessionID]bool{}},
		now:     now,
	}
}

// register makes s receive its envelopes, including those that came early.
func (r *router) register(s *session) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active[s.id] != nil || r.done.has(s.id) {
		return ErrSessionIDReused
	}
	r.active[s.id] = s
	if box := r.pending[s.id]; box != nil {
		for _, env := range box.envs {
			offer(s, env)
		}
		delete(r.pending, s.id)
	}
	return nil
}

// unregister ends s's delivery and remembers its ID as used.
func (r *router) unregister(id SessionID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.active, id)
	r.done.add(id)
}

// used reports whether id is running or has run here.
func (r *router) used(id SessionID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.active[id] != nil || r.done.has(id)
}

// deliver routes env to its session, or holds it until the session starts.
func (r *router) deliver(env Envelope) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.active[env.Session]; s != nil {
		offer(s, env)
		return
	}
	if r.done.has(env.Session) {
		return
	}
	r.hold(env)
}

// offer queues env for s, dropping it if s's inbox is full: only a flooding
// peer fills it, and the session then ends at its deadline at worst.
func offer(s *session, env Envelope) {
	select {
	case s.inbox <- env:
	default:
	}
}

func (r *router) hold(env Envelope) {
	now := r.now()
	box := r.pending[env.Session]
	if box == nil {
		r.makeRoom(now)
		box = &pendingBox{since: now}
		r.pending[env.Session] = box
	}
	if len(box.envs) < maxPendingPerSession {
		box.envs = append(box.envs, env)
	}
}

// makeRoom drops expired boxes, then the oldest one if still full.
func (r *router) makeRoom(now time.Time) {
	var oldest SessionID
	var oldestSince time.Time
	for id, box := range r.pending {
		if now.Sub(box.since) > pendingTTL {
			delete(r.pending, id)
			continue
		}
		if oldestSince.IsZero() || box.since.Before(oldestSince) {
			oldest, oldestSince = id, box.since
		}
	}
	if len(r.pending) >= maxPendingSessions {
		delete(r.pending, oldest)
	}
}

// recentIDs remembers the last doneMemory IDs added.
type recentIDs struct {
	ring [doneMemory]SessionID
	next int
	seen map[SessionID]bool
}

func (d *recentIDs) has(id SessionID) bool { return d.seen[id] }

func (d *recentIDs) add(id SessionID) {
	if d.seen[id] {
		return
	}
	if old := d.ring[d.next]; !old.IsZero() {
		delete(d.seen, old)
	}
	d.ring[d.next] = id
	d.next = (d.next + 1) % doneMemory
	d.seen[id] = true
}
