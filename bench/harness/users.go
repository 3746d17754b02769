//go:build !release

package harness

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/cmd/cosignerctl/devnet"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// registerUsers makes the bench's client certificates API users of the
// devnet's workspace (signer role, allowed to sign with the admin's keys),
// the way an operator would: one new
// workspace version adding them, approved by the devnet's admin quorum,
// proposed to the first cosigner, which sends it to every member. It
// returns once every member holds that version (the API names callers by
// the workspace's users).
func (s *stack) registerUsers(ctx context.Context, names []string, certs []tls.Certificate) error {
	wsc := pb.NewWorkspaceServiceClient(s.admin)
	held, err := wsc.GetWorkspace(ctx, &pb.GetWorkspaceRequest{})
	if err != nil {
		return fmt.Errorf("reading the workspace: %w", err)
	}
	v, err := ws.FromStore(held.GetSignedVersion())
	if err != nil {
		return err
	}
	users := make([]ws.User, len(names))
	for i, name := range names {
		if users[i], err = ws.NewUser(name, []string{ws.RoleSigner}, certs[i].PrivateKey.(crypto.Signer).Public(), nil); err != nil {
			return err
		}
	}
	// Keys belong to the admin who creates them: it lets the clients sign.
	admin := v.Doc.User(devnet.RoleAdmin)
	if admin == nil {
		return errors.New("the devnet's workspace has no admin user")
	}
	owner := *admin
	owner.Signers = append(append([]string(nil), owner.Signers...), names...)
	_, raw, err := ws.PutUser(v, append(users, owner)...)
	if err != nil {
		return err
	}
	req := &pb.ProposeWorkspaceVersionRequest{IdempotencyKey: apiclient.NewIdempotencyKey(), Document: raw}
	for _, path := range s.info.PolicyAdmins.PrivateKeys[:s.info.PolicyAdmins.Quorum] {
		key, err := readPKCS8(path)
		if err != nil {
			return err
		}
		a, err := ws.Approve(raw, key)
		if err != nil {
			return err
		}
		der, sig, err := ws.Signed{Approvals: []ws.Approval{a}}.DecodeApproval(0)
		if err != nil {
			return err
		}
		req.Approvals = append(req.Approvals, &pb.WorkspaceApproval{AdminPublicKey: der, Signature: sig})
	}
	resp, err := wsc.ProposeWorkspaceVersion(ctx, req)
	if err != nil {
		return fmt.Errorf("adding the bench's API users: %w", err)
	}
	if !resp.GetApplied() {
		return errors.New("adding the bench's API users: the admins' approvals did not reach the quorum")
	}
	for _, id := range s.ids {
		conn, err := s.dial(ctx, id, devnet.RoleAuditor)
		if err != nil {
			return err
		}
		for {
			got, err := pb.NewWorkspaceServiceClient(conn).GetWorkspace(ctx, &pb.GetWorkspaceRequest{})
			if err == nil && got.GetVersion() >= resp.GetVersion() {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s did not receive workspace version %d: %w", id, resp.GetVersion(), ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

func readPKCS8(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	return signer, nil
}
