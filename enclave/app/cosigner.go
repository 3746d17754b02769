package app

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/api"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/approval"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/audit"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/coord"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/judge"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/link"
	enclavemetrics "github.com/nitro-cosigner/nitro-cosigner/enclave/metrics"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/node"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/nsm"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/peer"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/policy"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/workspace"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/metrics"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
)

// CosignerConfig configures the cosigner proper: MPC with its peers
// through the parent, the workspace, and the API. It needs the sealed
// state.
type CosignerConfig struct {
	// Workspace is the bootstrap file of a new workspace: version 1,
	// approved by its admins (`cosignerctl workspace bootstrap`). Pair is
	// a pairing token (`cosignerctl workspace invite`) to join a running
	// workspace. A cosigner that already holds its workspace ignores Pair
	// and checks that Workspace, if given, is its first version. With
	// neither, the cosigner does not run (the enclave only opens its
	// state, and with MemberOut reports its roster entry for bootstrap).
	Workspace, Pair string
	// MemberOut, if set, is where this cosigner's roster entry is written.
	MemberOut string
	// ParentLink is the parent relay's link address (vsock://3:PORT).
	ParentLink string
	// APIListen is where the API listens (vsock://4294967295:PORT).
	APIListen string
	// ClientCA, if set, is the PEM file of a CA that must also issue the
	// API users' client certificates (users are named by the workspace,
	// by public key, either way).
	ClientCA string
	// ApprovalURL, if set, is the approval callback; ApprovalHandlerKey
	// (PEM) its pinned key and ApprovalAudience its name. ApprovalCA, if
	// set, is the PEM file of the roots its TLS certificate must chain to
	// (default: the system roots).
	ApprovalURL, ApprovalHandlerKey, ApprovalAudience, ApprovalCA string
	// MetricsListen, if set, is where GET /metrics serves the enclave's
	// Prometheus metrics (vsock://4294967295:PORT; the parent relays them).
	MetricsListen string
	// Pools sizes the CMP presignature pools (zero fields: mpc's defaults).
	Pools mpc.PoolConfig
}

func (c CosignerConfig) enabled() bool { return c.Workspace != "" || c.Pair != "" }

// check refuses an incomplete or malformed configuration before anything
// starts.
func (c CosignerConfig) check() error {
	if !c.enabled() {
		return nil
	}
	addrs := map[string]string{"parent link": c.ParentLink, "API address": c.APIListen}
	if c.MetricsListen != "" {
		addrs["metrics address"] = c.MetricsListen
	}
	for name, v := range addrs {
		if _, err := transport.ParseAddr(v); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrConfig, name, err)
		}
	}
	if c.ApprovalURL != "" && c.ApprovalHandlerKey == "" {
		return fmt.Errorf("%w: the approval callback needs the handler's key (--approval-handler-key)", ErrConfig)
	}
	if c.Pair != "" {
		if _, err := ws.ParseToken(c.Pair); err != nil {
			return fmt.Errorf("%w: --pair: %v", ErrConfig, err)
		}
	}
	return nil
}

// core is the running cosigner's parts.
type core struct {
	wsState
	ident  *node.Identity
	peer   *peer.Peer
	client *link.Client
	mux    *coord.Mux
	engine *mpc.Engine
	coord  *coord.Coordinator
	node   *node.Node
	cert   *api.ServerCert
	audit  *audit.Log
	policy *policy.Engine

	metrics *enclavemetrics.Metrics
	// attest asks the NSM for the frame identity's document (counted in
	// metrics).
	attest peer.AttestFunc
}

// runCosigner opens the workspace (stored, bootstrapped or joined), builds
// the cosigner over the open keystore and runs it until ctx ends.
func runCosigner(ctx context.Context, cfg Config, ks *keystore.Store, att nsm.Attester, roots *x509.CertPool, log *slog.Logger) error {
	g, ctx := errgroup.WithContext(ctx)
	c, err := newCore(ctx, cfg, ks, att, roots, log)
	if err != nil {
		return err
	}
	g.Go(func() error { return c.client.Run(ctx) })
	g.Go(func() error {
		if err := c.build(ctx, cfg, ks, att, roots, log); err != nil {
			if ctx.Err() != nil {
				return nil // stopped while pairing: not an error
			}
			return err
		}
		return c.run(ctx, cfg, ks, log)
	})
	return g.Wait()
}

// newCore loads the identity and audit log and makes the parent link,
// whose frames go nowhere until the workspace and the peer are ready.
func newCore(ctx context.Context, cfg Config, ks *keystore.Store, att nsm.Attester, roots *x509.CertPool, log *slog.Logger) (*core, error) {
	ident, err := node.LoadIdentity(ctx, ks, mpc.PartyID(cfg.State.CosignerID))
	if err != nil {
		return nil, err
	}
	c := &core{ident: ident, metrics: newMetrics(cfg)}
	c.dispatch = &dispatch{}
	c.attest = c.metrics.Attest(func(context.Context) ([]byte, error) {
		return att.Attest(nsm.Request{UserData: c.ident.FrameBinding()})
	})
	if c.audit, err = audit.New(ctx, audit.Config{CosignerID: string(ident.ID), Store: ks, Signer: audit.IdentitySigner(ident.Key)}); err != nil {
		return nil, err
	}
	addr, err := transport.ParseAddr(cfg.Cosigner.ParentLink)
	if err != nil {
		return nil, fmt.Errorf("%w: parent link: %v", ErrConfig, err)
	}
	if c.client, err = link.New(link.Config{Parent: addr, Receive: c.dispatch.deliver, Logger: log}); err != nil {
		return nil, err
	}
	c.ws, err = workspace.New(workspace.Config{Self: string(ident.ID), Store: ks, Audit: c.audit, Link: c.client, Roots: roots,
		Logger: log, OnChange: func(v *ws.Version) { c.applyWorkspace(v, log) }, Check: checkWorkspacePolicy,
		OnHello: func(member string) {
			if s := c.signer.Load(); s != nil {
				s.AttachNext(member)
			}
		}})
	return c, err
}

// build opens the workspace, then wires the wire layer, peer, engine,
// coordinator, judge and node.
func (c *core) build(ctx context.Context, cfg Config, ks *keystore.Store, att nsm.Attester, roots *x509.CertPool, log *slog.Logger) error {
	approver, approvalPub, err := approvalClient(cfg, c.ident)
	if err != nil {
		return err
	}
	if err := c.reportMember(cfg.Cosigner, att, roots, approvalPub, log); err != nil {
		return err
	}
	v, err := c.openWorkspace(ctx, cfg, ks, att, approvalPub, log)
	if err != nil {
		return err
	}
	members, err := v.Doc.Roster()
	if err != nil {
		return err
	}
	roster, err := wire.NewRoster(members...)
	if err != nil {
		return err
	}
	if err := c.buildWire(roster, roots, log); err != nil {
		return err
	}
	if err := c.buildEngine(ctx, cfg, ks, att, approver, log); err != nil {
		return err
	}
	c.applyWorkspace(c.ws.Current(), log) // the version held now, with every part built
	c.dispatch.setPeer(c.peer.Deliver)
	c.dispatch.setWorkspace(c.ws.Deliver)
	return nil
}

// run runs the built cosigner until ctx ends.
func (c *core) run(ctx context.Context, cfg Config, ks *keystore.Store, log *slog.Logger) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.mux.Run(ctx) })
	g.Go(func() error { return c.engine.Run(ctx) })
	g.Go(func() error { return c.coord.Run(ctx) })
	g.Go(func() error { return c.ws.Run(ctx) })
	g.Go(func() error { return c.peer.KeepAttested(ctx, c.attest, 0) })
	g.Go(func() error { return serveAPI(ctx, cfg, c, ks, log) })
	if cfg.Cosigner.MetricsListen != "" {
		g.Go(func() error { return serveMetrics(ctx, cfg, c, ks, log) })
	}
	if err := c.node.EnableAllPools(ctx); err != nil {
		log.Warn("presignature pools of stored keys not enabled", "err", err)
	}
	log.Info("cosigner running", "cosigner_id", string(c.ident.ID), "roster", c.rosterIDs())
	return g.Wait()
}

func (c *core) buildWire(roster *wire.Roster, roots *x509.CertPool, log *slog.Logger) error {
	doc, err := c.attest(context.Background())
	if err != nil {
		return fmt.Errorf("attesting the frame identity: %w", err)
	}
	c.roster, c.sessions = roster, wire.NewSessionTable()
	signer, err := wire.NewSigner(wire.SignerConfig{ID: string(c.ident.ID), Identity: c.ident.Key, Roster: roster, Attestation: doc,
		AttachEvery: attachEvery})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	c.signer.Store(signer)
	recv, err := wire.NewReceiver(wire.ReceiverConfig{Self: string(c.ident.ID), Encryption: c.ident.Encryption, Roster: roster,
		Sessions: c.sessions, Roots: roots, MaxFramesPerSession: controlFrames})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	c.peer, err = peer.New(peer.Config{Self: c.ident.ID, Signer: signer, Receiver: recv, Sessions: c.sessions, Link: c.client, Logger: log,
		OnAccept: c.metrics.FrameAccepted, LeanAttach: true, HoldFor: holdFor})
	return err
}

// proposePresign runs a pool refill through the coordinator, which opens
// the session on every signer's wire layer before any frame flows.
func (c *core) proposePresign(ctx context.Context, spec mpc.SessionSpec, key mpc.KeyID, epoch uint64) error {
	_, err := c.coord.Initiate(ctx, coord.Proposal{Session: spec.ID, Op: coord.OpPresign, Parties: spec.Parties,
		Key: key, Epoch: epoch, Deadline: spec.Deadline})
	return err
}

// The attestation document goes to each peer at most every attachEvery
// (receivers cache it), not on every frame: an online sign's frames then
// carry about a tenth of the bytes. A peer that restarted (its cache
// empty) says hello (enclave/workspace), and our next frame to it carries
// the document; a frame that reached it before holds until then (holdFor
// exceeds attachEvery).
const (
	attachEvery = 10 * time.Second
	holdFor     = 15 * time.Second
)

// controlFrames raises the replay guard's per-session cap: every control
// message of every proposal travels in coord.ControlSession.
const controlFrames = 1 << 16

func (c *core) buildEngine(ctx context.Context, cfg Config, ks *keystore.Store, att nsm.Attester, approver judge.Approver, log *slog.Logger) error {
	store := node.NewStore(ks)
	c.mux = coord.NewMux(c.peer)
	var err error
	if c.engine, err = mpc.New(mpc.Config{Self: c.ident.ID, Transport: c.metrics.Transport(c.mux.Engine()), Store: store, Logger: log,
		ProposePresign: c.proposePresign, OnSessionEnd: c.metrics.SessionEnded, Pools: cfg.Cosigner.Pools}); err != nil {
		return err
	}
	admins, err := c.ws.Current().Doc.AdminSet()
	if err != nil {
		return err
	}
	if c.policy, err = policy.NewEngine(ks, admins, policy.Options{}); err != nil {
		return err
	}
	jcfg := judge.Config{Self: c.ident.ID, Keys: c.engine, Policy: c.policy, Audit: c.audit, Logger: log,
		OnKeyCreated: func(k mpc.KeyInfo) { c.node.EnablePools(context.Background(), k) }}
	if approver != nil {
		jcfg.Approver = c.metrics.Approver(approver)
	}
	jdg, err := judge.New(jcfg)
	if err != nil {
		return err
	}
	if c.coord, err = coord.New(coord.Config{Self: c.ident.ID, Mux: c.mux, Sessions: c.peer, Engine: c.engine,
		Judge: node.OwnerJudge(jdg, store), Logger: log}); err != nil {
		return err
	}
	if c.cert, err = api.NewServerCert(string(c.ident.ID), time.Now()); err != nil {
		return err
	}
	c.node, err = node.New(node.Config{Identity: c.ident, Engine: c.engine, Coord: c.coord, Keystore: ks, Store: store,
		Policy: c.policy, Audit: c.audit, Attester: att, TLSCert: c.cert.Fingerprint, Roster: c.rosterIDs, Logger: log,
		MaySign: func(user, owner string) bool { return c.ws.Current().Doc.MaySignWith(user, owner) }})
	return err
}

// approvalLabel is the HKDF purpose of the approval-callback signing key,
// derived from the identity seed so that the handler can pin it across
// restarts.
const approvalLabel = "nitro-cosigner approval es256 v1"

// approvalClient builds the callback client, if configured, and returns the
// public key the handler must pin (PKIX DER) either way.
func approvalClient(cfg Config, ident *node.Identity) (judge.Approver, []byte, error) {
	key, err := approvalKey(ident)
	if err != nil {
		return nil, nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	cc := cfg.Cosigner
	if cc.ApprovalURL == "" {
		return nil, pub, nil
	}
	handler, err := readPublicKeyPEM(cc.ApprovalHandlerKey)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: approval handler key: %v", ErrConfig, err)
	}
	dial, err := dialer(cfg.State.EgressProxy)
	if err != nil {
		return nil, nil, err
	}
	var roots *x509.CertPool
	if cc.ApprovalCA != "" {
		if roots, err = certPool(cc.ApprovalCA); err != nil {
			return nil, nil, fmt.Errorf("%w: approval CA: %v", ErrConfig, err)
		}
	}
	client, err := approval.New(approval.Config{URL: cc.ApprovalURL, Signer: key, HandlerKey: handler,
		HTTPClient: approval.NewHTTPClient(approval.DialFunc(dial), roots), CosignerID: string(ident.ID), Audience: cc.ApprovalAudience})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: approval callback: %v", ErrConfig, err)
	}
	return client, pub, nil
}

func approvalKey(ident *node.Identity) (*ecdsa.PrivateKey, error) {
	seed := ident.Key.Seed()
	defer seed.Wipe()
	for i := byte(0); i < 8; i++ {
		d, err := hkdf.Key(sha256.New, seed.Reveal(), []byte{i}, approvalLabel, 32)
		if err != nil {
			return nil, err
		}
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
		clear(d)
		if err == nil {
			return k, nil
		}
	}
	return nil, errors.New("deriving the approval key failed") // probability about 2^-256
}

// reportMember logs this cosigner's roster entry, and writes it when asked.
func (c *core) reportMember(cc CosignerConfig, att nsm.Attester, roots *x509.CertPool, approvalPub []byte, log *slog.Logger) error {
	m := c.ident.Member()
	raw, err := att.Attest(nsm.Request{})
	if err != nil {
		return err
	}
	doc, err := attestation.Verify(raw, attestation.VerifyOptions{Time: time.Now(), Roots: roots})
	if err != nil {
		return fmt.Errorf("own attestation: %w", err)
	}
	m.PCRs = doc.PCRs
	entry := memberOf(m, approvalPub)
	if len(entry.PCRs) == 0 {
		log.Warn("this enclave's image PCRs are all zero (debug mode): peers cannot pin it, so it cannot be a workspace member")
	}
	log.Info("roster entry", "id", entry.ID, "identity", entry.Identity, "encryption", entry.Encryption, "approval_key", entry.ApprovalKey)
	if cc.MemberOut == "" {
		return nil
	}
	return writeMember(cc.MemberOut, entry)
}

func readPublicKeyPEM(path string) (crypto.PublicKey, error) {
	b, err := readLimited(path, 64<<10)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParsePKIXPublicKey(blk.Bytes)
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errors.New("file too large")
	}
	return b, nil
}

// reportOnly loads (or creates) the identity and reports the roster entry,
// for a cosigner started without a roster.
func reportOnly(ctx context.Context, cfg Config, ks *keystore.Store, att nsm.Attester, roots *x509.CertPool, log *slog.Logger) error {
	ident, err := node.LoadIdentity(ctx, ks, mpc.PartyID(cfg.State.CosignerID))
	if err != nil {
		return err
	}
	key, err := approvalKey(ident)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	return (&core{ident: ident}).reportMember(cfg.Cosigner, att, roots, pub, log)
}

// serveAPI listens on the API address and serves until ctx ends.
func serveAPI(ctx context.Context, cfg Config, c *core, ks *keystore.Store, log *slog.Logger) error {
	var clients *x509.CertPool
	if cfg.Cosigner.ClientCA != "" {
		var err error
		if clients, err = certPool(cfg.Cosigner.ClientCA); err != nil {
			return fmt.Errorf("%w: client CA: %v", ErrConfig, err)
		}
	}
	srv, err := api.New(api.Config{Node: c.node, ServerCert: c.cert, ClientCAs: clients, Users: users{c.ws}, Workspace: c.ws,
		Idempotency: ks, Logger: log})
	if err != nil {
		return err
	}
	l, err := transport.Listen(ctx, cfg.Cosigner.APIListen)
	if err != nil {
		return fmt.Errorf("API listener: %w", err)
	}
	log.Info("API listening", "addr", cfg.Cosigner.APIListen, "tls_certificate_sha256", fmt.Sprintf("%x", c.cert.Fingerprint))
	return srv.Serve(ctx, l)
}

func certPool(path string) (*x509.CertPool, error) {
	b, err := readLimited(path, 1<<20)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("no certificate in the file")
	}
	return pool, nil
}

// Metrics (enclave/metrics): the registry is built with the core so that
// the engine, peer and approval hooks feed it; it is served only with
// MetricsListen.

// newMetrics returns the enclave's metrics; build_info says which attester
// runs.
func newMetrics(cfg Config) *enclavemetrics.Metrics {
	attester := cfg.NSM
	if attester == "" {
		attester = NSMDevice
	}
	return enclavemetrics.New(map[string]string{"nsm": attester})
}

// serveMetrics serves GET /metrics on MetricsListen until ctx ends.
func serveMetrics(ctx context.Context, cfg Config, c *core, ks *keystore.Store, log *slog.Logger) error {
	err := c.metrics.Watch(enclavemetrics.Sources{
		Pools: c.engine.Pools, Peer: c.peer.Stats, Link: c.client.Stats, Replication: ks.ReplicationStats,
		Workspace: c.ws.Stats, WorkspaceVersion: func() uint64 {
			if v := c.ws.Current(); v != nil {
				return v.Doc.Version
			}
			return 0
		},
	})
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	l, err := transport.Listen(ctx, cfg.Cosigner.MetricsListen)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	log.Info("metrics listening", "addr", cfg.Cosigner.MetricsListen)
	return metrics.Serve(ctx, l, c.metrics.Gatherer(), log)
}
