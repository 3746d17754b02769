package workspace

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	auditfmt "github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
)

// Store is what the Manager needs of the keystore; *keystore.Store is one.
type Store interface {
	LatestWorkspace(ctx context.Context) (keystore.WorkspaceVersion, error)
	PutWorkspace(ctx context.Context, version uint64, doc []byte) error
	WorkspaceVersionsFrom(ctx context.Context, from uint64, limit int) ([]keystore.WorkspaceVersion, error)
}

// Auditor appends audit entries; *enclave/audit.Log is one.
type Auditor interface {
	Append(ctx context.Context, ev auditfmt.Event) (auditfmt.Record, error)
}

// Link sends one frame to a cosigner's inbox; *enclave/link.Client is one.
type Link interface {
	Send(ctx context.Context, to string, frame []byte) error
}

// Config configures a Manager. Self, Store, Audit and Link are required.
type Config struct {
	Self  string
	Store Store
	Audit Auditor
	Link  Link
	// Roots verify pairing requests' attestation documents (nil: the AWS
	// Nitro root); AllowDebug accepts debug-mode enclaves (development).
	Roots      *x509.CertPool
	AllowDebug bool
	// OnChange is called with every version this cosigner holds from now
	// on: at Load or Bootstrap, then after each stored change. It must
	// not block for long.
	OnChange func(*ws.Version)
	// Check, if set, is asked about every version before it is stored
	// (proposed or received): an error refuses it (the app checks that
	// the document's policy parses).
	Check func(*ws.Doc) error
	// OnHello, if set, is called with the member that said hello: it just
	// started (the app makes its next frame to it carry the attestation
	// document, which its empty cache lacks).
	OnHello func(member string)
	Now     func() time.Time
	Logger  *slog.Logger
}

// Limits.
const (
	maxPending   = 64  // pairing requests waiting for the admins
	maxProposals = 16  // proposed versions collecting approvals
	maxSend      = 64  // versions sent in one message
	queueLen     = 256 // workspace messages waiting to be handled
	sendTimeout  = 10 * time.Second
)

// Errors of Propose, tested with errors.Is (besides pkg/workspace's).
var (
	ErrNoWorkspace = errors.New("workspace: this cosigner holds no workspace yet")
	ErrUnpaired    = errors.New("workspace: a member added by this version has no verified pairing request here")
)

// Pending is a verified pairing request awaiting the admins.
type Pending struct {
	Member   ws.Member
	TokenID  string
	Version  uint64 // the workspace version the token was issued at
	Received time.Time
	// ModuleID is the enclave's, from the request's verified attestation
	// document (whose PCRs matched Member.PCRs, the token's).
	ModuleID string
}

// Result is what Propose did.
type Result struct {
	Applied   bool
	Version   uint64
	Hash      [32]byte // SHA-256 of the proposed document
	Approvals int      // distinct valid admin approvals collected
	Quorum    int
}

// Stats are the Manager's counters.
type Stats struct {
	PairingRequests, PairingRefused, VersionsApplied, VersionsRefused, Dropped uint64
}

// Manager holds the workspace. It is safe for concurrent use.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	cur   atomic.Pointer[ws.Version]
	queue chan []byte
	warn  *rate.Limiter // audit entries and WARN lines about refusals

	mu        sync.Mutex // serializes changes; guards pending, proposals
	pending   map[string]*Pending
	proposals map[[32]byte]*proposal

	pairReq, pairRefused, applied, refused, dropped atomic.Uint64
}

type proposal struct {
	signed ws.Signed
	at     time.Time
}

// New checks cfg and returns a Manager holding no version until Load or
// Bootstrap.
func New(cfg Config) (*Manager, error) {
	if cfg.Self == "" || cfg.Store == nil || cfg.Audit == nil || cfg.Link == nil {
		return nil, errors.New("workspace: Self, Store, Audit and Link are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, log: log, queue: make(chan []byte, queueLen), warn: rate.NewLimiter(rate.Every(time.Second), 20),
		pending: map[string]*Pending{}, proposals: map[[32]byte]*proposal{}}, nil
}

// Current returns the held version, or nil.
func (m *Manager) Current() *ws.Version { return m.cur.Load() }

// Stats returns the counters.
func (m *Manager) Stats() Stats {
	return Stats{m.pairReq.Load(), m.pairRefused.Load(), m.applied.Load(), m.refused.Load(), m.dropped.Load()}
}

// Load reads the newest stored version, if any. It reports whether one was
// found.
func (m *Manager) Load(ctx context.Context) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	stored, err := m.cfg.Store.LatestWorkspace(ctx)
	if errors.Is(err, keystore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	v, err := ws.FromStore(stored.Document)
	if err != nil {
		return false, fmt.Errorf("workspace: stored version %d: %w", stored.Version, err)
	}
	if v.Doc.Version != stored.Version {
		return false, fmt.Errorf("workspace: stored version %d holds version %d", stored.Version, v.Doc.Version)
	}
	m.set(v)
	return true, nil
}

// Bootstrap takes version 1 from the bootstrap file when no version is
// stored: it must be approved by its own admins' quorum and name this
// cosigner as a member. When a version is stored, the file must be part
// of its chain (it is then ignored) — a different version 1 is a fork and
// an error.
func (m *Manager) Bootstrap(ctx context.Context, s ws.Signed) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := ws.Genesis(s)
	if err != nil {
		return fmt.Errorf("workspace: bootstrap file: %w", err)
	}
	if held := m.Current(); held != nil {
		first, err := m.cfg.Store.WorkspaceVersionsFrom(ctx, 1, 1)
		if err == nil && len(first) == 1 && first[0].Version == 1 {
			if fv, err := ws.FromStore(first[0].Document); err == nil && fv.Hash == v.Hash {
				return nil
			}
		}
		if held.Doc.Workspace == v.Doc.Workspace && held.Doc.Version > 1 && (len(first) == 0 || first[0].Version > 1) {
			return nil // paired in at a later version: version 1 is not stored here
		}
		return fmt.Errorf("workspace: bootstrap file: %w: it is not the first version of the workspace held (%s, version %d)",
			ws.ErrFork, held.Doc.Workspace, held.Doc.Version)
	}
	if v.Doc.Member(m.cfg.Self) == nil {
		return fmt.Errorf("workspace: bootstrap file: this cosigner (%s) is not a member", m.cfg.Self)
	}
	return m.store(ctx, v, "bootstrap")
}

// store audits, stores and takes v (m.mu held).
func (m *Manager) store(ctx context.Context, v *ws.Version, how string) error {
	details := map[string]string{"workspace": v.Doc.Workspace, "version": strconv.FormatUint(v.Doc.Version, 10),
		"sha256": v.HashHex(), "via": how, "members": fmt.Sprint(len(v.Doc.Members)), "users": fmt.Sprint(len(v.Doc.Users))}
	if held := m.Current(); held != nil {
		for k, s := range changes(held.Doc, v.Doc) {
			details[k] = s
		}
	}
	for k, val := range details {
		details[k] = clip(val)
	}
	if _, err := m.cfg.Audit.Append(ctx, auditfmt.Event{Type: auditfmt.WorkspaceChanged, Details: details}); err != nil {
		return fmt.Errorf("workspace: audit before storing version %d: %w", v.Doc.Version, err)
	}
	raw, err := v.Signed.Encode()
	if err != nil {
		return err
	}
	if err := m.cfg.Store.PutWorkspace(ctx, v.Doc.Version, raw); err != nil {
		return err
	}
	m.applied.Add(1)
	m.log.Info("workspace version stored", "workspace", v.Doc.Workspace, "version", v.Doc.Version, "sha256", v.HashHex(), "via", how)
	m.set(v)
	return nil
}

func (m *Manager) set(v *ws.Version) {
	m.cur.Store(v)
	for id, p := range m.pending {
		if v.Doc.Member(p.Member.ID) != nil || slices.Contains(v.Doc.Tokens, id) {
			delete(m.pending, id)
		}
	}
	clear(m.proposals)
	if m.cfg.OnChange != nil {
		m.cfg.OnChange(v)
	}
}

// clip shortens an audit detail to what an entry holds (the document
// itself is stored beside the entry, whole).
func clip(s string) string {
	if len(s) <= auditfmt.MaxDetailValSize {
		return s
	}
	cut := auditfmt.MaxDetailValSize - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// changes summarises what v changes from held, for the audit entry.
func changes(held, v *ws.Doc) map[string]string {
	out := map[string]string{}
	diff := func(name string, a, b []string) {
		var add, del []string
		for _, x := range b {
			if !slices.Contains(a, x) {
				add = append(add, x)
			}
		}
		for _, x := range a {
			if !slices.Contains(b, x) {
				del = append(del, x)
			}
		}
		if len(add) > 0 {
			out[name+"_added"] = fmt.Sprint(add)
		}
		if len(del) > 0 {
			out[name+"_removed"] = fmt.Sprint(del)
		}
	}
	diff("members", held.MemberIDs(), v.MemberIDs())
	users := func(d *ws.Doc) []string {
		var s []string
		for _, u := range d.Users {
			s = append(s, u.Name+":"+fmt.Sprint(u.Roles)+":"+u.PublicKey[:min(len(u.PublicKey), 12)]+fmt.Sprint(u.Signers))
		}
		return s
	}
	diff("users", users(held), users(v))
	if !slices.Equal(held.Admins, v.Admins) || held.Quorum != v.Quorum {
		out["admins"] = fmt.Sprintf("%d of %d", v.Quorum, len(v.Admins))
	}
	return out
}

// Pending returns the verified pairing requests awaiting the admins.
func (m *Manager) Pending() []Pending {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Pending, 0, len(m.pending))
	for _, id := range slices.Sorted(maps.Keys(m.pending)) {
		out = append(out, *m.pending[id])
	}
	return out
}

// Propose adds approvals for the next version. The document must be the
// held version's successor; approvals for the same bytes accumulate over
// calls (from any admins, through any caller), and once the held version's
// admin quorum has approved, the version is audited, stored, and sent to
// every member. A member the version adds must have sent this cosigner a
// verified pairing request with the same keys and token.
func (m *Manager) Propose(ctx context.Context, actor string, s ws.Signed) (Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	held := m.Current()
	if held == nil {
		return Result{}, ErrNoWorkspace
	}
	d, err := ws.Parse(s.Doc)
	if err != nil {
		return Result{}, err
	}
	if d.Version <= held.Doc.Version {
		return Result{}, fmt.Errorf("%w: offered %d, held %d", ws.ErrStale, d.Version, held.Doc.Version)
	}
	if d.Workspace != held.Doc.Workspace || d.Version != held.Doc.Version+1 || d.Prev != held.HashHex() {
		return Result{}, fmt.Errorf("%w: the proposed version does not follow the held version %d", ws.ErrFork, held.Doc.Version)
	}
	if err := m.checkAdded(held.Doc, d); err != nil {
		return Result{}, err
	}
	if err := m.check(d); err != nil {
		return Result{}, err
	}
	h := ws.Hash(s.Doc)
	p := m.proposals[h]
	if p == nil {
		if len(m.proposals) >= maxProposals {
			m.dropOldestProposal()
		}
		p = &proposal{signed: ws.Signed{Doc: s.Doc}, at: m.cfg.Now()}
		m.proposals[h] = p
	}
	set, _ := held.Doc.AdminSet()
	for _, a := range s.Approvals {
		if ws.CountApprovals(s.Doc, []ws.Approval{a}, set) == 1 &&
			ws.CountApprovals(s.Doc, append(slices.Clone(p.signed.Approvals), a), set) > ws.CountApprovals(s.Doc, p.signed.Approvals, set) {
			p.signed.Approvals = append(p.signed.Approvals, a) // a valid approval of an admin not yet counted
		}
	}
	res := Result{Version: d.Version, Hash: h, Quorum: set.Threshold,
		Approvals: ws.CountApprovals(s.Doc, p.signed.Approvals, set)}
	m.log.Info("workspace change approvals", "version", d.Version, "sha256", hex.EncodeToString(h[:]), "approvals", res.Approvals, "quorum", res.Quorum, "actor", actor)
	if res.Approvals < res.Quorum {
		return res, nil
	}
	v, err := ws.Next(held, p.signed)
	if err != nil {
		return res, err
	}
	from := m.joinedFrom(held.Doc, v.Doc) // before store forgets the pending requests
	if err := m.store(ctx, v, "approved by "+actor); err != nil {
		return res, err
	}
	res.Applied = true
	m.distribute(v, from)
	return res, nil
}

// check runs Config.Check; its refusals are malformed documents.
func (m *Manager) check(d *ws.Doc) error {
	if m.cfg.Check == nil {
		return nil
	}
	if err := m.cfg.Check(d); err != nil {
		return fmt.Errorf("%w: %v", ws.ErrMalformed, err)
	}
	return nil
}

// checkAdded requires a verified pairing request for every member d adds,
// with the same entry (keys, PCRs, token), and the token marked used.
func (m *Manager) checkAdded(held, d *ws.Doc) error {
	for _, nm := range d.Members {
		if held.Member(nm.ID) != nil {
			continue
		}
		p := m.pending[nm.Token]
		if nm.Token == "" || p == nil || !sameMember(p.Member, nm) || !slices.Contains(d.Tokens, nm.Token) {
			return fmt.Errorf("%w: %s", ErrUnpaired, nm.ID)
		}
	}
	return nil
}

func sameMember(a, b ws.Member) bool {
	return a.ID == b.ID && a.Identity == b.Identity && a.Encryption == b.Encryption && a.Inbox == b.Inbox &&
		a.Token == b.Token && a.ApprovalKey == b.ApprovalKey && maps.Equal(a.PCRs, b.PCRs)
}

func (m *Manager) dropOldestProposal() {
	var oldest [32]byte
	var at time.Time
	for h, p := range m.proposals {
		if at.IsZero() || p.at.Before(at) {
			oldest, at = h, p.at
		}
	}
	delete(m.proposals, oldest)
}

// joinedFrom returns, for each member v adds, the version its pairing
// token was issued at: the first version it is sent (m.mu held).
func (m *Manager) joinedFrom(held, v *ws.Doc) map[string]uint64 {
	from := map[string]uint64{}
	for _, nm := range v.Members {
		if held.Member(nm.ID) == nil {
			from[nm.ID] = 1
			if p := m.pending[nm.Token]; p != nil {
				from[nm.ID] = p.Version
			}
		}
	}
	return from
}

// distribute sends v to every other member of v, and to each member v adds
// the versions from its token's on (sends run in the background).
func (m *Manager) distribute(v *ws.Version, joined map[string]uint64) {
	for _, id := range v.Doc.MemberIDs() {
		if id == m.cfg.Self {
			continue
		}
		from := v.Doc.Version
		if f, ok := joined[id]; ok {
			from = f
		}
		go m.sendVersions(context.Background(), id, from)
	}
}

// sendVersions sends the stored versions from from on to a cosigner.
func (m *Manager) sendVersions(ctx context.Context, to string, from uint64) {
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	stored, err := m.cfg.Store.WorkspaceVersionsFrom(ctx, from, maxSend)
	if err != nil || len(stored) == 0 {
		return
	}
	u := ws.Update{From: m.cfg.Self}
	for _, sv := range stored {
		s, err := ws.ParseSigned(sv.Document)
		if err != nil {
			return
		}
		u.Versions = append(u.Versions, s)
	}
	m.send(ctx, to, ws.KindVersions, u)
}

func (m *Manager) send(ctx context.Context, to string, kind byte, v any) {
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	frame, err := ws.EncodeMessage(kind, v)
	if err == nil {
		err = m.cfg.Link.Send(ctx, to, frame)
	}
	if err != nil {
		m.log.Debug("workspace message not sent", "to", to, "err", err)
	}
}

// SayHello tells every other member which version this cosigner holds, so
// that one holding newer versions sends them (after a restart).
func (m *Manager) SayHello(ctx context.Context) {
	v := m.Current()
	if v == nil {
		return
	}
	for _, id := range v.Doc.MemberIDs() {
		if id != m.cfg.Self {
			m.send(ctx, id, ws.KindHello, ws.Hello{From: m.cfg.Self, Version: v.Doc.Version})
		}
	}
}

// Deliver queues a workspace message from the link; it never blocks (a
// full queue drops the message, counted in Stats).
func (m *Manager) Deliver(_ context.Context, frame []byte) {
	select {
	case m.queue <- frame:
	default:
		m.dropped.Add(1)
	}
}

// Run handles queued messages until ctx ends, after saying hello.
func (m *Manager) Run(ctx context.Context) error {
	m.SayHello(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case frame := <-m.queue:
			m.handle(ctx, frame)
		}
	}
}

func (m *Manager) handle(ctx context.Context, frame []byte) {
	kind, msg, err := ws.DecodeMessage(frame)
	if err != nil {
		m.dropped.Add(1)
		return
	}
	switch kind {
	case ws.KindPair:
		m.handlePair(ctx, *msg.(*ws.SignedRequest))
	case ws.KindVersions:
		m.handleVersions(ctx, msg.(*ws.Update))
	case ws.KindHello:
		h := msg.(*ws.Hello)
		v := m.Current()
		if v == nil || v.Doc.Member(h.From) == nil || h.From == m.cfg.Self {
			return
		}
		if m.cfg.OnHello != nil {
			m.cfg.OnHello(h.From)
		}
		if h.Version < v.Doc.Version {
			m.sendVersions(ctx, h.From, h.Version+1)
		}
	}
}

// handlePair verifies a pairing request and keeps it for the admins, or
// refuses it with an audit entry. A request from a cosigner already added
// with the same identity gets the versions from its token's on (it may
// have missed them).
func (m *Manager) handlePair(ctx context.Context, sr ws.SignedRequest) {
	held := m.Current()
	if held == nil {
		return
	}
	m.pairReq.Add(1)
	now := m.cfg.Now()
	if from, ok := ws.Joined(sr, held); ok {
		m.sendVersions(ctx, ws.RequestID(sr), from)
		return
	}
	ver, err := ws.VerifyRequest(sr, held, ws.RequestCheck{Roots: m.cfg.Roots, AllowDebug: m.cfg.AllowDebug}, now)
	fresh := false
	if err == nil {
		fresh, err = m.addPending(ver, now)
	}
	if err != nil {
		m.pairRefused.Add(1)
		m.refuse(ctx, auditfmt.PairingRefused, err, map[string]string{"cosigner": ws.RequestID(sr)})
		return
	}
	if !fresh {
		return // a copy of a request already pending (the cosigner sends it every few seconds)
	}
	if _, aerr := m.cfg.Audit.Append(ctx, auditfmt.Event{Type: auditfmt.PairingRequested, Details: map[string]string{
		"cosigner": ver.Member.ID, "token": ver.Token.Token.ID, "identity": ver.Member.Identity}}); aerr != nil {
		m.log.Warn("pairing request not audited", "err", aerr)
	}
}

// addPending keeps a verified request and reports whether it is new. A
// token is claimed by the first cosigner whose request verifies: a request
// with the same token and other keys is refused.
func (m *Manager) addPending(v *ws.Verified, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := v.Token.Token.ID
	if cur := m.Current(); cur.Doc.Member(v.Member.ID) != nil || slices.Contains(cur.Doc.Tokens, id) {
		return false, fmt.Errorf("%w: the workspace changed while the request was checked", ws.ErrTokenUsed) // verified against an older version
	}
	if p, ok := m.pending[id]; ok {
		if !sameMember(p.Member, v.Member) {
			return false, fmt.Errorf("%w: token already claimed by another pairing request", ws.ErrTokenUsed)
		}
		p.Received = now
		return false, nil
	}
	if len(m.pending) >= maxPending {
		return false, fmt.Errorf("%w: too many pairing requests pending", ws.ErrRequest)
	}
	m.pending[id] = &Pending{Member: v.Member, TokenID: id, Version: v.Token.Token.Version, Received: now,
		ModuleID: v.Attestation.ModuleID}
	m.log.Info("pairing request verified; awaiting the admins", "cosigner", v.Member.ID, "token", id)
	return true, nil
}

// handleVersions applies offered versions in order. Versions already held
// are skipped (a fork among them is refused); older ones, forks and
// versions without the quorum are refused with an audit entry; a gap asks
// the sender for what is missing.
func (m *Manager) handleVersions(ctx context.Context, u *ws.Update) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range u.Versions {
		held := m.Current()
		if held == nil {
			return
		}
		v, err := ws.Next(held, s)
		if err == nil {
			err = m.check(v.Doc)
		}
		switch {
		case err == nil:
			if err := m.store(ctx, v, "received"); err != nil {
				m.log.Warn("received workspace version not stored", "version", v.Doc.Version, "err", err)
				return
			}
			continue
		case errors.Is(err, ws.ErrStale) && bytes.Equal(s.Doc, held.Signed.Doc):
			continue // a copy of the version held (a broadcast and a catch-up crossed)
		case errors.Is(err, ws.ErrGap):
			if v := m.Current(); v.Doc.Member(u.From) != nil && u.From != m.cfg.Self {
				go m.send(context.Background(), u.From, ws.KindHello, ws.Hello{From: m.cfg.Self, Version: v.Doc.Version})
			}
			return
		}
		m.refused.Add(1)
		m.refuse(ctx, auditfmt.WorkspaceRefused, err, map[string]string{"held_version": strconv.FormatUint(held.Doc.Version, 10)})
		return
	}
}

// refuse audits and logs a refusal, rate-limited so that a flood of bad
// messages cannot fill the audit log (refusals past the limit are
// counted only).
func (m *Manager) refuse(ctx context.Context, t auditfmt.Type, reason error, details map[string]string) {
	if !m.warn.Allow() {
		return
	}
	m.log.Warn("workspace: refused", "type", string(t), "reason", reason.Error())
	if _, err := m.cfg.Audit.Append(ctx, auditfmt.Event{Type: t, Reason: reason.Error(), Details: details}); err != nil {
		m.log.Warn("refusal not audited", "err", err)
	}
}
