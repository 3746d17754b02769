//go:build !release

package e2e_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/cmd/cosignerctl/devnet"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	auditfmt "github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// noTaproot is a policy under which taproot-psbt is not an allowed kind.
const noTaproot = `{"version":2,"default":{"kinds":["eip191"],"chain_ids":[1]}}`

// A refusal by a signer's own policy and a rejection by the approval
// callback reach the client as clear outcomes, and each is in the audit
// log of the cosigner that refused, whose export verifies.
func TestRefusalsReachClientAndAudit(t *testing.T) {
	d, _ := startDevnet(t, t.TempDir(), 3)
	info := d.Info()
	key := createTaprootKey(t, info)

	setPolicy(t, info, "cosigner-2", []byte(noTaproot))
	op := signSpend(t, info, "cosigner-1", key, "policy says no")
	if op.GetState() != cosignerv1.SignOperationState_SIGN_OPERATION_STATE_REJECTED ||
		op.GetFailureReason() != cosignerv1.SignFailureReason_SIGN_FAILURE_REASON_POLICY_DENIED || op.GetRefusedBy() != "cosigner-2" {
		t.Fatalf("sign under cosigner-2's policy: %v %v refused by %q", op.GetState(), op.GetFailureReason(), op.GetRefusedBy())
	}
	requireDenied(t, info, "cosigner-2", "policy: kind_not_allowed")

	checkRejected(t, signSpend(t, info, "cosigner-3", key, "please reject"))
	requireDenied(t, info, "cosigner-3", "approval: reject")
}

// setPolicy sets doc on cosigner id with two devnet admins' approvals.
func setPolicy(t *testing.T, info *devnet.Info, id string, doc []byte) {
	t.Helper()
	req := &cosignerv1.SetPolicyRequest{IdempotencyKey: apiclient.NewIdempotencyKey(), Document: doc}
	for _, path := range info.PolicyAdmins.PrivateKeys[:info.PolicyAdmins.Quorum] {
		a, err := apiclient.Approve(doc, adminKey(t, path))
		if err != nil {
			t.Fatal(err)
		}
		req.Approvals = append(req.Approvals, a)
	}
	if _, err := cosignerv1.NewPolicyServiceClient(dial(t, info, id, devnet.RoleAdmin)).SetPolicy(t.Context(), req); err != nil {
		t.Fatalf("SetPolicy on %s: %v", id, err)
	}
}

func adminKey(t *testing.T, path string) crypto.Signer {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer)
}

// requireDenied exports cosigner id's audit log through the API, verifies
// it pinned to the attested identity, and finds a deny decision whose
// reason starts with reason.
func requireDenied(t *testing.T, info *devnet.Info, id, reason string) {
	t.Helper()
	conn := dial(t, info, id, devnet.RoleAuditor)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	stream, err := cosignerv1.NewAuditServiceClient(conn).ExportAudit(ctx, &cosignerv1.ExportAuditRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var export bytes.Buffer
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("ExportAudit: %v", err)
		}
		export.Write(resp.GetChunk())
	}
	if _, err := auditfmt.Verify(bytes.NewReader(export.Bytes()), auditfmt.VerifyOptions{IdentityKey: conn.Attested().IdentityKey}); err != nil {
		t.Fatalf("%s's audit export does not verify: %v", id, err)
	}
	if !strings.Contains(export.String(), `"deny"`) || !strings.Contains(export.String(), reason) {
		t.Fatalf("%s's audit log has no deny decision with reason %q:\n%s", id, reason, export.String())
	}
}
