package procpath_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdh"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/link"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc/mpctest"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/peer"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

// stopTimeout bounds how long the helper's stack may take to stop.
const stopTimeout = 10 * time.Second

// enclaveMain is the helper process: it serves requests on stdin until
// stdin closes, which also ends a session in progress, then stops its
// stack and exits.
func enclaveMain() int {
	id := os.Getenv(helperIDEnv)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("who", "enclave "+id)
	h, err := newHelper(id, log)
	if err != nil {
		log.Error("helper setup failed", "err", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	err = h.serve(ctx, readLines(os.Stdin, cancel), os.Stdout)
	cancel()
	if !h.wait(stopTimeout) {
		log.Error("the enclave stack did not stop in time")
		return 1
	}
	if err != nil {
		log.Error("helper failed", "err", err)
		return 1
	}
	return 0
}

// readLines passes each line of in on the channel, and at the end of in
// closes it and calls eof.
func readLines(in io.Reader, eof func()) <-chan []byte {
	lines := make(chan []byte)
	go func() {
		defer eof()
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			lines <- bytes.Clone(sc.Bytes())
		}
		if err := sc.Err(); err != nil {
			fmt.Fprintln(os.Stderr, "helper: reading stdin:", err)
		}
	}()
	return lines
}

// helper is one enclave: its keys, its store, and once the roster came,
// its running stack.
type helper struct {
	id       string
	log      *slog.Logger
	identity *wire.IdentityKey
	enc      *wire.EncryptionKey
	ca       *attestsim.CA
	parent   transport.Addr
	store    *mpctest.MemStore
	fixture  *mpc.KeyID // the CMP test-vector key, if loaded

	sessions *wire.SessionTable
	peer     *peer.Peer
	engine   *mpc.Engine
	running  sync.WaitGroup
}

func newHelper(id string, log *slog.Logger) (*helper, error) {
	h := &helper{id: id, log: log, store: mpctest.NewMemStore(), sessions: wire.NewSessionTable()}
	var err error
	if h.parent, err = transport.ParseAddr(os.Getenv(helperLinkEnv)); err != nil {
		return nil, fmt.Errorf("parent link: %w", err)
	}
	pem, err := os.ReadFile(os.Getenv(helperCAEnv))
	if err != nil {
		return nil, err
	}
	if h.ca, err = attestsim.LoadCA(pem); err != nil {
		return nil, err
	}
	if h.identity, err = wire.GenerateIdentityKey(); err != nil {
		return nil, err
	}
	if h.enc, err = wire.GenerateEncryptionKey(); err != nil {
		return nil, err
	}
	return h, h.loadFixture(os.Getenv(helperFixtureEnv))
}

func (h *helper) member() memberInfo {
	return memberInfo{ID: h.id, Identity: h.identity.Public(), Encryption: h.enc.Public().Bytes()}
}

// serve prints the member entry, then answers requests until lines
// closes.
func (h *helper) serve(ctx context.Context, lines <-chan []byte, out io.Writer) error {
	enc := json.NewEncoder(out)
	m := h.member()
	if err := enc.Encode(response{Member: &m}); err != nil {
		return err
	}
	for line := range lines {
		var req request
		resp := response{Error: "undecodable request"}
		if json.Unmarshal(line, &req) == nil {
			resp = h.handle(ctx, req)
		}
		if err := enc.Encode(resp); err != nil {
			return err
		}
	}
	return nil
}

func (h *helper) handle(ctx context.Context, req request) response {
	if req.Op != opRoster && h.engine == nil {
		return fail(errors.New("no roster yet"))
	}
	switch req.Op {
	case opRoster:
		return fail(h.start(ctx, req.Members))
	case opOpen:
		return fail(h.open(req))
	case opFROSTKeygen:
		return h.frostKeygen(ctx, req)
	case opSign:
		return h.sign(ctx, req)
	case opFixtureKey:
		return h.fixtureKey(ctx)
	case opStats:
		return h.stats()
	}
	return fail(fmt.Errorf("unknown op %q", req.Op))
}

func fail(err error) response {
	if err == nil {
		return response{}
	}
	return response{Error: err.Error()}
}

// start builds the stack as test/mpcpath does: a document bound to the
// identity, the wire signer and receiver, the peer, the link client to
// the parent and the engine, and runs them until ctx ends.
func (h *helper) start(ctx context.Context, members []memberInfo) error {
	if h.engine != nil {
		return errors.New("roster already set")
	}
	roster, err := buildRoster(members)
	if err != nil {
		return err
	}
	self, ok := roster.Member(h.id)
	if !ok {
		return errors.New("the roster does not list this helper")
	}
	doc, err := h.ca.Attest(attestsim.Request{PCRs: pcrs(), UserData: self.Binding(), Time: time.Now()})
	if err != nil {
		return err
	}
	signer, err := wire.NewSigner(wire.SignerConfig{ID: h.id, Identity: h.identity, Roster: roster, Attestation: doc})
	if err != nil {
		return err
	}
	recv, err := wire.NewReceiver(wire.ReceiverConfig{Self: h.id, Encryption: h.enc, Roster: roster,
		Sessions: h.sessions, Roots: h.ca.Roots()})
	if err != nil {
		return err
	}
	return h.run(ctx, signer, recv)
}

// run wires the peer, the link client and the engine, and starts them.
func (h *helper) run(ctx context.Context, signer *wire.Signer, recv *wire.Receiver) error {
	lazy := &lazyLink{}
	p, err := peer.New(peer.Config{Self: mpc.PartyID(h.id), Signer: signer, Receiver: recv, Sessions: h.sessions,
		Link: lazy, Logger: h.log})
	if err != nil {
		return err
	}
	client, err := link.New(link.Config{Parent: h.parent, Receive: p.Deliver,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, Logger: h.log})
	if err != nil {
		return err
	}
	lazy.set(client)
	engine, err := mpc.New(mpc.Config{Self: mpc.PartyID(h.id), Transport: p, Store: h.store, Logger: h.log})
	if err != nil {
		return err
	}
	h.peer, h.engine = p, engine
	h.goRun(ctx, "link", client.Run)
	h.goRun(ctx, "engine", engine.Run)
	return nil
}

func (h *helper) goRun(ctx context.Context, what string, run func(context.Context) error) {
	h.running.Go(func() {
		if err := run(ctx); err != nil {
			h.log.Error("stopped with an error", "what", what, "err", err)
		}
	})
}

// wait waits up to d for the stack to stop; it reports whether it did.
func (h *helper) wait(d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		h.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func buildRoster(members []memberInfo) (*wire.Roster, error) {
	var ms []wire.Member
	for _, m := range members {
		encPub, err := ecdh.X25519().NewPublicKey(m.Encryption)
		if err != nil {
			return nil, fmt.Errorf("member %s: encryption key: %w", m.ID, err)
		}
		ms = append(ms, wire.Member{ID: m.ID, Identity: m.Identity, Encryption: encPub, PCRs: pcrs()})
	}
	return wire.NewRoster(ms...)
}

// lazyLink breaks the construction cycle: the peer needs the link to send
// and the link needs the peer's Deliver.
type lazyLink struct {
	mu sync.Mutex
	c  *link.Client
}

func (l *lazyLink) set(c *link.Client) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.c = c
}

func (l *lazyLink) Send(ctx context.Context, to string, frame []byte) error {
	l.mu.Lock()
	c := l.c
	l.mu.Unlock()
	return c.Send(ctx, to, frame)
}

// spec turns a request into a session spec.
func spec(req request) (mpc.SessionSpec, error) {
	var id mpc.SessionID
	if len(req.Session) != len(id) {
		return mpc.SessionSpec{}, errors.New("session ID must be 32 bytes")
	}
	copy(id[:], req.Session)
	parties := make([]mpc.PartyID, len(req.Parties))
	for i, p := range req.Parties {
		parties[i] = mpc.PartyID(p)
	}
	return mpc.SessionSpec{ID: id, Parties: parties, Deadline: req.Deadline}, nil
}

func (h *helper) open(req request) error {
	s, err := spec(req)
	if err != nil {
		return err
	}
	return h.peer.Open(s.ID, s.Parties)
}

// session runs op under the spec's deadline (plus a margin for the
// engine to report it) and closes the session in the peer afterwards.
func session[T any](ctx context.Context, h *helper, req request, op func(context.Context, mpc.SessionSpec) (T, error)) (T, error) {
	s, err := spec(req)
	if err != nil {
		var zero T
		return zero, err
	}
	defer h.peer.Close(s.ID)
	ctx, cancel := context.WithDeadline(ctx, s.Deadline.Add(5*time.Second))
	defer cancel()
	return op(ctx, s)
}

func (h *helper) frostKeygen(ctx context.Context, req request) response {
	info, err := session(ctx, h, req, func(ctx context.Context, s mpc.SessionSpec) (mpc.KeyInfo, error) {
		return h.engine.FROSTKeygen(ctx, s, req.Threshold)
	})
	if err != nil {
		return fail(err)
	}
	return response{Key: info.Key[:], PublicKey: info.PublicKey}
}

func (h *helper) sign(ctx context.Context, req request) response {
	var key mpc.KeyID
	if len(req.Key) != len(key) {
		return fail(errors.New("key ID must be 32 bytes"))
	}
	copy(key[:], req.Key)
	sig, err := session(ctx, h, req, func(ctx context.Context, s mpc.SessionSpec) (mpc.Signature, error) {
		return h.engine.Sign(ctx, s, mpc.SignRequest{Key: key, Digest: req.Digest})
	})
	if err != nil {
		return fail(err)
	}
	return response{PublicKey: sig.PublicKey, R: sig.R[:], S: sig.S[:]}
}

func (h *helper) fixtureKey(ctx context.Context) response {
	if h.fixture == nil {
		return fail(errors.New("no CMP test vector loaded"))
	}
	info, err := h.engine.Key(ctx, *h.fixture)
	if err != nil {
		return fail(err)
	}
	return response{Key: info.Key[:], PublicKey: info.PublicKey}
}

func (h *helper) stats() response {
	st := h.peer.Stats()
	dropped := map[string]uint64{}
	for r, n := range st.Wire.Dropped {
		if n > 0 {
			dropped[r.String()] = n
		}
	}
	return response{Accepted: st.Wire.Accepted, Dropped: dropped}
}
