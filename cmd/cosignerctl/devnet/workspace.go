//go:build !release

package devnet

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
)

// WorkspaceID is the devnet's workspace.
const WorkspaceID = "devnet"

func workspacePath(dir string) string { return filepath.Join(dir, "workspace.json") }

// ensureWorkspace writes DIR/workspace.json, version 1 of the devnet's
// workspace, the way `cosignerctl workspace bootstrap` does (pkg/workspace
// NewDoc, Approve, Genesis): the collected members, the devnet's admins
// with their quorum (every admin approves), and an API user per client
// certificate (admin, signer, auditor; keys the admin creates, the signer
// may sign with). An existing file is kept: the
// enclaves check it against the version 1 they hold.
func (d *Devnet) ensureWorkspace() error {
	path := workspacePath(d.cfg.Dir)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	var admins []crypto.PublicKey
	for _, k := range d.pki.admins {
		admins = append(admins, k.Public())
	}
	var users []ws.User
	for _, role := range []string{RoleAdmin, RoleAuditor, RoleSigner} {
		files := d.paths.client(role)
		cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
		if err != nil {
			return err
		}
		var signers []string
		if role == RoleAdmin {
			signers = []string{RoleSigner} // the admin creates keys, the signer signs with them
		}
		u, err := ws.NewUser(role, []string{role}, cert.PrivateKey.(crypto.Signer).Public(), signers)
		if err != nil {
			return err
		}
		users = append(users, u)
	}
	_, raw, err := ws.NewDoc(WorkspaceID, slices.Clone(d.roster.Members), admins, adminQuorum, users)
	if err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	s := ws.Signed{Doc: raw}
	for _, k := range d.pki.admins {
		a, err := ws.Approve(raw, k)
		if err != nil {
			return err
		}
		s.Approvals = append(s.Approvals, a)
	}
	v, err := ws.Genesis(s)
	if err != nil {
		return err
	}
	b, err := v.Signed.Encode()
	if err != nil {
		return err
	}
	d.log.Info("workspace bootstrapped", "file", path, "workspace", WorkspaceID, "sha256", v.HashHex(), "members", v.Doc.MemberIDs())
	return writeFileAtomic(path, append(b, '\n'), 0o644)
}

// Pair starts a new cosigner (the next ID) with a pairing token: its
// parent, then its enclave with --init and --pair. The enclave sends its
// pairing request and waits for the admins' approval
// (`cosignerctl workspace approve`); WaitJoined then waits until it
// serves. It returns the new cosigner's ID.
func (d *Devnet) Pair(ctx context.Context, token string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, err := d.newCosigner(ctx, len(d.cosigners)+1, nil)
	if err != nil {
		return "", err
	}
	if err := d.startParent(ctx, c); err != nil {
		return "", err
	}
	path := memberPath(d.cfg.Dir, c.id)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	c.pairToken = token
	if err := d.startEnclave(c, modePair, true); err != nil {
		return "", err
	}
	d.cosigners = append(d.cosigners, c)
	d.info.Cosigners = append(d.info.Cosigners, c.info(d))
	return c.id, d.info.write()
}

// WaitJoined waits until the paired cosigner id serves, then records it
// in DIR/roster.json (so that the devnet restarts with it) and pins its
// approval key.
func (d *Devnet) WaitJoined(ctx context.Context, id string) error {
	c, err := d.cosigner(id)
	if err != nil {
		return err
	}
	var m memberEntry
	err = c.enclave.waitFor(ctx, "its roster entry", func() (bool, error) {
		var rerr error
		m, rerr = readMember(memberPath(d.cfg.Dir, c.id), c.id)
		if errors.Is(rerr, errMemberIncomplete) || errors.Is(rerr, os.ErrNotExist) {
			return false, nil
		}
		return rerr == nil, rerr
	})
	if err != nil {
		return err
	}
	d.mu.Lock()
	if !slices.ContainsFunc(d.roster.Members, func(x memberEntry) bool { return x.ID == m.ID }) {
		d.roster.Members = append(d.roster.Members, m)
	}
	members := slices.Clone(d.roster.Members)
	d.mu.Unlock()
	if err := d.approval.setKeys(members); err != nil {
		return err
	}
	if err := d.waitServing(ctx, c); err != nil {
		return err
	}
	d.watch(c.enclave)
	d.mu.Lock()
	c.joined = true
	defer d.mu.Unlock()
	return d.roster.write(d.cfg.Dir)
}
