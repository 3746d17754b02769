package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/api"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/coord"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/nsm"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/policy"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/workspace"
	auditfmt "github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
)

// dispatch routes what the parent link delivers: workspace messages to
// the workspace (or, while pairing, the joiner), MPC frames to the peer.
// Until a handler is set its messages are dropped (senders retry).
type dispatch struct {
	peer, workspace atomic.Pointer[func(context.Context, []byte)]
}

func (d *dispatch) deliver(ctx context.Context, frame []byte) {
	h := d.peer.Load()
	if ws.IsMessage(frame) {
		h = d.workspace.Load()
	}
	if h != nil {
		(*h)(ctx, frame)
	}
}

func (d *dispatch) setPeer(f func(context.Context, []byte))      { d.peer.Store(&f) }
func (d *dispatch) setWorkspace(f func(context.Context, []byte)) { d.workspace.Store(&f) }

// openWorkspace returns the workspace version this cosigner holds: the
// stored one; else version 1 from the bootstrap file (--workspace); else
// the one it joins with its pairing token (--pair), which blocks until the
// admins approve or the token expires.
func (c *core) openWorkspace(ctx context.Context, cfg Config, ks *keystore.Store, att nsm.Attester, approvalPub []byte, log *slog.Logger) (*ws.Version, error) {
	cc := cfg.Cosigner
	found, err := c.ws.Load(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case found && cc.Workspace != "":
		s, err := readBootstrap(cc.Workspace)
		if err != nil {
			return nil, err
		}
		if err := c.ws.Bootstrap(ctx, s); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
	case found:
		if cc.Pair != "" {
			log.Info("pairing token ignored: this cosigner already holds its workspace")
		}
	case cc.Workspace != "":
		s, err := readBootstrap(cc.Workspace)
		if err != nil {
			return nil, err
		}
		if err := c.ws.Bootstrap(ctx, s); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
	default:
		if err := c.join(ctx, cc.Pair, ks, att, approvalPub, log); err != nil {
			return nil, err
		}
		if _, err := c.ws.Load(ctx); err != nil {
			return nil, err
		}
	}
	v := c.ws.Current()
	if v.Doc.Member(string(c.ident.ID)) == nil {
		return nil, fmt.Errorf("this cosigner (%s) is not a member of workspace %s version %d", c.ident.ID, v.Doc.Workspace, v.Doc.Version)
	}
	log.Info("workspace", "workspace", v.Doc.Workspace, "version", v.Doc.Version, "sha256", v.HashHex(),
		"members", v.Doc.MemberIDs(), "admins", len(v.Doc.Admins), "quorum", v.Doc.Quorum, "users", len(v.Doc.Users))
	return v, nil
}

func readBootstrap(path string) (ws.Signed, error) {
	b, err := readLimited(path, 2*ws.MaxDocSize)
	if err != nil {
		return ws.Signed{}, fmt.Errorf("%w: workspace file: %v", ErrConfig, err)
	}
	s, err := ws.ParseSigned(b)
	if err != nil {
		return ws.Signed{}, fmt.Errorf("%w: workspace file: %v", ErrConfig, err)
	}
	return s, nil
}

// join runs pairing with the token until the workspace arrives.
func (c *core) join(ctx context.Context, token string, ks *keystore.Store, att nsm.Attester, approvalPub []byte, log *slog.Logger) error {
	j, err := workspace.NewJoiner(workspace.JoinConfig{Token: token, Identity: c.ident.Key, Member: c.ident.Member(),
		ApprovalKey: approvalPub, Link: c.client, Store: ks, Audit: c.audit, Logger: log,
		Attest: func(context.Context) ([]byte, error) {
			return att.Attest(nsm.Request{UserData: c.ident.FrameBinding()})
		}})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	c.dispatch.setWorkspace(j.Deliver)
	_, err = j.Run(ctx)
	return err
}

// applyWorkspace makes a workspace version the running one: the wire
// roster (a removed member's frames are refused from now on), the control
// session's parties, the parties keys may have, and the policy admins.
// API users are read from the held version on every call (users).
func (c *core) applyWorkspace(v *ws.Version, log *slog.Logger) {
	c.wsMu.Lock()
	defer c.wsMu.Unlock()
	members, err := v.Doc.Roster()
	if err != nil {
		log.Error("workspace version unusable", "version", v.Doc.Version, "err", err)
		return
	}
	if c.roster != nil {
		if err := c.roster.Replace(members...); err != nil {
			log.Error("workspace roster refused by the wire layer", "version", v.Doc.Version, "err", err)
			return
		}
	}
	ids := v.Doc.MemberIDs()
	if c.sessions != nil {
		c.sessions.Replace(wire.SessionID(coord.ControlSession), ids...)
	}
	parties := make([]mpc.PartyID, len(ids))
	for i, id := range ids {
		parties[i] = mpc.PartyID(id)
	}
	c.members.Store(&parties)
	if c.policy != nil {
		set, err := v.Doc.AdminSet()
		if err == nil {
			err = c.policy.SetAdmins(set)
		}
		if err != nil {
			log.Error("workspace admins refused by the policy engine", "err", err)
		}
	}
	if len(v.Doc.Policy) > 0 && c.policy != nil {
		c.installPolicy(v, log)
	}
	if !slices.Contains(ids, string(c.ident.ID)) {
		log.Error("this cosigner was removed from the workspace: it no longer takes part in sessions", "version", v.Doc.Version)
	}
}

// checkWorkspacePolicy refuses a workspace version whose policy does not
// parse (before any member stores it).
func checkWorkspacePolicy(d *ws.Doc) error {
	if len(d.Policy) == 0 {
		return nil
	}
	_, err := policy.Parse(d.Policy)
	return err
}

// installPolicy installs the workspace's policy, audited first, unless
// this cosigner runs it or a newer one already.
func (c *core) installPolicy(v *ws.Version, log *slog.Logger) {
	ctx := context.Background()
	doc, err := policy.Parse(v.Doc.Policy)
	if err != nil {
		log.Error("workspace policy does not parse", "version", v.Doc.Version, "err", err)
		return
	}
	if cur, err := c.policy.Policy(ctx); err == nil && cur.Version() >= doc.Version() {
		if cur.Version() > doc.Version() || !bytes.Equal(cur.Canonical(), doc.Canonical()) {
			log.Warn("workspace policy not installed: this cosigner runs a newer or different one of that version",
				"workspace_version", v.Doc.Version, "policy_version", doc.Version(), "running", cur.Version())
		}
		return
	}
	sum := sha256.Sum256(doc.Canonical())
	if _, err := c.audit.Append(ctx, auditfmt.Event{Type: auditfmt.PolicyChanged, Reason: "from the workspace", Details: map[string]string{
		"policy_version": strconv.FormatUint(doc.Version(), 10), "sha256": hex.EncodeToString(sum[:]),
		"workspace_version": strconv.FormatUint(v.Doc.Version, 10)}}); err != nil {
		log.Error("workspace policy not installed: audit failed", "err", err)
		return
	}
	if _, err := c.policy.Install(ctx, v.Doc.Policy); err != nil {
		log.Error("workspace policy not installed", "policy_version", doc.Version(), "err", err)
		return
	}
	log.Info("policy installed from the workspace", "policy_version", doc.Version(), "workspace_version", v.Doc.Version)
}

// rosterIDs are the current workspace members.
func (c *core) rosterIDs() []mpc.PartyID {
	if p := c.members.Load(); p != nil {
		return *p
	}
	return nil
}

// users names API callers by the workspace version held: a user added or
// revoked by a new version is known or refused from the next call on.
type users struct{ ws *workspace.Manager }

var errNotUser = errors.New("not an API user of the workspace")

func (u users) Caller(cert *x509.Certificate) (api.Caller, error) {
	v := u.ws.Current()
	if v == nil {
		return api.Caller{}, errNotUser
	}
	user := v.Doc.UserByKey(cert.PublicKey)
	if user == nil {
		return api.Caller{}, errNotUser
	}
	roles := make([]api.Role, len(user.Roles))
	for i, r := range user.Roles {
		roles[i] = api.Role(r)
	}
	return api.Caller{ID: user.Name, Roles: roles}, nil
}

// wsState is core's workspace part.
type wsState struct {
	ws       *workspace.Manager
	dispatch *dispatch
	wsMu     sync.Mutex
	roster   *wire.Roster
	sessions *wire.SessionTable
	members  atomic.Pointer[[]mpc.PartyID]
	signer   atomic.Pointer[wire.Signer] // once built: OnHello resets its attachment to a restarted peer
}
