//go:build !release

package devnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// defaultPolicy is the policy a devnet cosigner gets when it has none:
// the demo's kinds (Ethereum transactions, EIP-191 and EIP-712 messages,
// Taproot PSBTs; no blind signing, no contract calls), Ethereum mainnet,
// Holesky, Sepolia and a local chain (31337), any destination, and
// modest per-transaction and daily limits of each chain's native asset
// and of bitcoin.
const defaultPolicy = `{
  "version": 1,
  "default": {
    "kinds": ["eth-transaction", "eip191", "eip712", "taproot-psbt"],
    "chain_ids": [1, 17000, 11155111, 31337],
    "any_destination": true,
    "limits": [
      {"asset": "native", "chain_id": 1, "max_per_tx": "100000000000000000", "window_seconds": 86400, "max_per_window": "1000000000000000000"},
      {"asset": "native", "chain_id": 17000, "max_per_tx": "10000000000000000000", "window_seconds": 86400, "max_per_window": "100000000000000000000"},
      {"asset": "native", "chain_id": 11155111, "max_per_tx": "10000000000000000000", "window_seconds": 86400, "max_per_window": "100000000000000000000"},
      {"asset": "native", "chain_id": 31337, "max_per_tx": "10000000000000000000", "window_seconds": 86400, "max_per_window": "100000000000000000000"},
      {"asset": "btc", "max_per_tx": "10000000", "window_seconds": 86400, "max_per_window": "100000000"}
    ]
  }
}
`

func policyPath(dir string) string { return filepath.Join(dir, "policy.json") }

// loadDefaultPolicy returns DIR/policy.json, writing defaultPolicy there
// first if it does not exist (so an operator may edit it before the first
// run).
func loadDefaultPolicy(dir string) ([]byte, error) {
	b, err := os.ReadFile(policyPath(dir))
	if errors.Is(err, os.ErrNotExist) {
		b = []byte(defaultPolicy)
		err = writeFileAtomic(policyPath(dir), b, 0o644)
	}
	return b, err
}

// ensurePolicy gives the cosigner the default policy, approved by the
// first adminQuorum devnet admins, if it has no policy yet. A policy in
// force, the default or another, is left alone.
func (d *Devnet) ensurePolicy(ctx context.Context, conn *apiclient.Conn, id string) error {
	client := cosignerv1.NewPolicyServiceClient(conn)
	_, err := client.GetPolicy(ctx, &cosignerv1.GetPolicyRequest{})
	switch status.Code(err) {
	case codes.OK:
		return nil
	case codes.NotFound:
	default:
		return fmt.Errorf("%s: GetPolicy: %w", id, err)
	}
	req := &cosignerv1.SetPolicyRequest{IdempotencyKey: apiclient.NewIdempotencyKey(), Document: d.policy}
	for _, admin := range d.pki.admins[:adminQuorum] {
		a, err := apiclient.Approve(d.policy, admin)
		if err != nil {
			return err
		}
		req.Approvals = append(req.Approvals, a)
	}
	if _, err := client.SetPolicy(ctx, req); err != nil {
		return fmt.Errorf("%s: SetPolicy of the default policy: %w", id, err)
	}
	d.log.Info("default policy set", "cosigner", id, "file", policyPath(d.cfg.Dir))
	return nil
}
