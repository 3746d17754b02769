package wire

import "sync"

// replayKey identifies a frame within its session.
type replayKey struct {
	from  string
	round uint16
	seq   uint64
}

// sessionSeen holds the keys accepted in one session, each with the instant
// (Unix ms) after which the timestamp window refuses that frame anyway.
type sessionSeen struct {
	seen map[replayKey]int64
}

// replayGuard remembers accepted frames for exactly as long as the time
// window could still let a copy through, so its memory is bounded by the
// frames accepted within two windows, and hard-capped by maxEntries in
// all, maxSessions and maxPerSession: when a cap is reached even after
// forgetting expired entries, new frames are refused (fail closed).
type replayGuard struct {
	mu            sync.Mutex
	sessions      map[SessionID]*sessionSeen
	endedUntil    map[SessionID]int64 // ended session -> forget after (Unix ms)
	entries       int
	maxEntries    int
	maxSessions   int
	maxPerSession int
	sweepEvery    int64 // ms
	lastSweep     int64 // Unix ms
}

func newReplayGuard(maxEntries, maxSessions, maxPerSession int, sweepEvery int64) *replayGuard {
	return &replayGuard{
		maxEntries:    maxEntries,
		sessions:      make(map[SessionID]*sessionSeen),
		endedUntil:    make(map[SessionID]int64),
		maxSessions:   maxSessions,
		maxPerSession: maxPerSession,
		sweepEvery:    sweepEvery,
	}
}

// check reports the reason to refuse the key now (0 if none), without
// recording it.
func (g *replayGuard) check(s SessionID, k replayKey, now int64) DropReason {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.checkLocked(s, k, now)
}

// ended reports whether the session was ended and is still remembered.
func (g *replayGuard) ended(s SessionID, now int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.endedUntil[s]
	return ok && now <= until
}

func (g *replayGuard) checkLocked(s SessionID, k replayKey, now int64) DropReason {
	if until, ok := g.endedUntil[s]; ok && now <= until {
		return DropSessionEnded
	}
	if exp, ok := g.sessions[s].lookup(k); ok && now <= exp {
		return DropReplay
	}
	return 0
}

func (ss *sessionSeen) lookup(k replayKey) (int64, bool) {
	if ss == nil {
		return 0, false
	}
	exp, ok := ss.seen[k]
	return exp, ok
}

// add records the key, valid until expiry, if it is not a replay and there
// is room. It returns the reason to refuse the frame, or 0.
func (g *replayGuard) add(s SessionID, k replayKey, expiry, now int64) DropReason {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.maybeSweep(now)
	if r := g.checkLocked(s, k, now); r != 0 {
		return r
	}
	if g.full(s) {
		g.sweep(now)
	}
	if g.full(s) {
		return DropReplayCapacity
	}
	ss := g.sessions[s]
	if ss == nil {
		ss = &sessionSeen{seen: make(map[replayKey]int64)}
		g.sessions[s] = ss
	}
	if _, ok := ss.seen[k]; !ok {
		g.entries++
	}
	ss.seen[k] = expiry
	return 0
}

// end forgets a session's keys and refuses its frames until the given
// instant, after which the timestamp window refuses them.
func (g *replayGuard) end(s SessionID, until int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ss := g.sessions[s]; ss != nil {
		g.entries -= len(ss.seen)
		delete(g.sessions, s)
	}
	g.endedUntil[s] = until
}

// full reports whether recording one more key of session s would pass a cap.
func (g *replayGuard) full(s SessionID) bool {
	if g.entries >= g.maxEntries {
		return true
	}
	ss := g.sessions[s]
	if ss == nil {
		return len(g.sessions) >= g.maxSessions
	}
	return len(ss.seen) >= g.maxPerSession
}

func (g *replayGuard) maybeSweep(now int64) {
	if now-g.lastSweep >= g.sweepEvery || now < g.lastSweep {
		g.sweep(now)
	}
}

// sweep forgets every entry and ended session whose time has passed.
func (g *replayGuard) sweep(now int64) {
	g.lastSweep = now
	for s, ss := range g.sessions {
		for k, exp := range ss.seen {
			if exp < now {
				delete(ss.seen, k)
				g.entries--
			}
		}
		if len(ss.seen) == 0 {
			delete(g.sessions, s)
		}
	}
	for s, until := range g.endedUntil {
		if until < now {
			delete(g.endedUntil, s)
		}
	}
}

// size returns the number of sessions and entries held.
func (g *replayGuard) size() (sessions, entries int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sessions), g.entries
}
