package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/api"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/audit"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/policy"
	auditfmt "github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
)

// Policy returns the current policy version.
func (n *Node) Policy(ctx context.Context) (api.PolicyDoc, error) {
	p, err := n.cfg.Keystore.LatestPolicy(ctx)
	if errors.Is(err, keystore.ErrNotFound) {
		return api.PolicyDoc{}, fmt.Errorf("%w: no policy is set", api.ErrNotFound)
	}
	if err != nil {
		return api.PolicyDoc{}, err
	}
	return api.PolicyDoc{Version: p.Version, Document: p.Document, Updated: p.CreatedAt}, nil
}

// SetPolicy checks the admin quorum, audits the change, then stores it.
func (n *Node) SetPolicy(ctx context.Context, caller api.Caller, raw []byte, approvals []policy.Approval) (api.PolicyDoc, error) {
	doc, err := n.cfg.Policy.CheckApprovals(raw, approvals)
	if err != nil {
		return api.PolicyDoc{}, policyErr(err)
	}
	sum := sha256.Sum256(doc.Canonical())
	ev := auditfmt.Event{Type: auditfmt.PolicyChanged, Actor: caller.ID, Details: map[string]string{
		"version": fmt.Sprint(doc.Version()), "sha256": hex.EncodeToString(sum[:]), "approvals": fmt.Sprint(len(approvals)),
	}}
	if _, err := n.cfg.Audit.Append(ctx, ev); err != nil {
		return api.PolicyDoc{}, fmt.Errorf("node: auditing the policy change: %w", err)
	}
	if _, err := n.cfg.Policy.SetPolicy(ctx, raw, approvals); err != nil {
		n.auditFailedChange(caller, doc.Version(), err)
		return api.PolicyDoc{}, policyErr(err)
	}
	return n.Policy(ctx)
}

// auditFailedChange records that an audited policy change did not happen
// after all (another version won the race, or the store failed).
func (n *Node) auditFailedChange(caller api.Caller, version uint64, cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), auditTimeout)
	defer cancel()
	ev := auditfmt.Event{Type: auditfmt.AdminAction, Actor: caller.ID, Reason: "policy change not stored",
		Details: map[string]string{"version": fmt.Sprint(version), "error_class": policyClass(cause)}}
	if _, err := n.cfg.Audit.Append(ctx, ev); err != nil {
		n.log.Error("audit entry for a failed policy change not written", "err", err)
	}
}

func policyErr(err error) error {
	switch {
	case errors.Is(err, policy.ErrMalformed):
		return fmt.Errorf("%w: policy document: %s", api.ErrInvalidArgument, err.Error())
	case errors.Is(err, policy.ErrQuorum):
		return fmt.Errorf("%w: the approvals do not meet the admin quorum", api.ErrPermissionDenied)
	case errors.Is(err, policy.ErrStaleVersion):
		return fmt.Errorf("%w: the version is not above the current one", api.ErrFailedPrecondition)
	}
	return err
}

func policyClass(err error) string {
	if errors.Is(err, policy.ErrStaleVersion) {
		return "stale_version"
	}
	return "store"
}

// ExportAudit writes the log from seq from on in pkg/audit's export format.
func (n *Node) ExportAudit(ctx context.Context, from uint64, w io.Writer) (uint64, error) {
	last, err := n.cfg.Audit.Export(ctx, w, from)
	return last, auditErr(err)
}

func auditErr(err error) error {
	switch {
	case errors.Is(err, audit.ErrRange):
		return fmt.Errorf("%w: start_seq is past the end of the log", api.ErrInvalidArgument)
	case errors.Is(err, audit.ErrCorrupt):
		return fmt.Errorf("%w: a stored audit entry does not verify", api.ErrDataLoss)
	}
	return err
}

// AuditHeader describes the log for entries from seq from on.
func (n *Node) AuditHeader(ctx context.Context, from uint64) (auditfmt.Header, error) {
	from = max(from, 1)
	h := auditfmt.Header{CosignerID: string(n.Self()), IdentityKey: n.cfg.Identity.Key.Public(), FirstSeq: from}
	if from == 1 {
		return h, nil
	}
	prev, err := n.cfg.Audit.Read(ctx, from-1, 1)
	if err != nil {
		return auditfmt.Header{}, auditErr(err)
	}
	if len(prev) == 0 {
		return auditfmt.Header{}, fmt.Errorf("%w: start_seq is past the end of the log", api.ErrInvalidArgument)
	}
	h.PrevHash = prev[0].Hash
	return h, nil
}

// StreamAudit follows the log from seq from on.
func (n *Node) StreamAudit(ctx context.Context, from uint64, fn func(auditfmt.Record) error) error {
	return auditErr(n.cfg.Audit.Stream(ctx, max(from, 1), fn))
}
