//go:build !release

package app

import (
	"fmt"
	"strconv"

	"github.com/nitro-cosigner/nitro-cosigner/cmd/cosignerctl/devnet"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
)

// devnetClientConfig is what the client of role needs to call the
// cosigner sel (its position from 1, or its ID) of the devnet in dir, as
// its devnet.json says: the cosigner's address and ID, the role's
// certificate, the simulator root and PCRs to attest against.
func devnetClientConfig(dir, sel, role string) (apiclient.Config, error) {
	info, err := devnet.Load(dir)
	if err != nil {
		return apiclient.Config{}, fmt.Errorf("--devnet: %w", err)
	}
	id, err := devnetCosigner(info, sel)
	if err != nil {
		return apiclient.Config{}, err
	}
	cfg, err := info.ClientConfig(id, role)
	if err != nil {
		return apiclient.Config{}, fmt.Errorf("--devnet: %w", err)
	}
	return cfg, nil
}

// devnetCosigner returns the ID of the cosigner sel names.
func devnetCosigner(info *devnet.Info, sel string) (string, error) {
	if n, err := strconv.Atoi(sel); err == nil {
		if n < 1 || n > len(info.Cosigners) {
			return "", fmt.Errorf("--cosigner %d: the devnet has cosigners 1 to %d", n, len(info.Cosigners))
		}
		return info.Cosigners[n-1].ID, nil
	}
	if _, ok := info.Cosigner(sel); !ok {
		return "", fmt.Errorf("--cosigner: the devnet has no cosigner %q", sel)
	}
	return sel, nil
}

// devnetParties returns the IDs of the first n cosigners of the devnet in
// dir, or of all of them when n is 0.
func devnetParties(dir string, n int) ([]string, error) {
	info, err := devnet.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("--devnet: %w", err)
	}
	if n == 0 {
		n = len(info.Cosigners)
	}
	if n < 0 || n > len(info.Cosigners) {
		return nil, fmt.Errorf("--parties %d: the devnet has %d cosigners", n, len(info.Cosigners))
	}
	ids := make([]string, n)
	for i, c := range info.Cosigners[:n] {
		ids[i] = c.ID
	}
	return ids, nil
}
