//go:build !release

package devnet

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// Fault injection for end-to-end tests: a cosigner's enclave can crash
// and come back while the rest of the devnet keeps running.

// KillEnclave kills a cosigner's enclave process at once (SIGKILL), as a
// crash or a host reboot would, and wipes its tmpfs state directory. Its
// parent keeps running. The devnet does not count the exit as a failure.
func (d *Devnet) KillEnclave(id string) error {
	c, err := d.cosigner(id)
	if err != nil {
		return err
	}
	p := c.enclave
	if p == nil || !p.running() {
		return fmt.Errorf("devnet: %s's enclave is not running", id)
	}
	p.stopping.Store(true)
	if err := p.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("devnet: killing %s's enclave: %w", id, err)
	}
	<-p.exited
	// A killed process leaves its unix socket behind (vsock has no such
	// file); remove it as a host reboot would.
	if err := os.Remove(socketPath(d.cfg.Dir, c.id, "api")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return wipe(c.stateDir(d))
}

// RestartEnclave starts a cosigner's enclave again, without --init: it
// restores its state from S3 through KMS. It returns once the cosigner
// serves an attested API with the identity in the roster.
func (d *Devnet) RestartEnclave(ctx context.Context, id string) error {
	c, err := d.cosigner(id)
	if err != nil {
		return err
	}
	if c.enclave != nil && c.enclave.running() {
		return fmt.Errorf("devnet: %s's enclave is still running", id)
	}
	if err := d.startEnclave(c, modeCosigner, false); err != nil {
		return err
	}
	return d.waitServing(ctx, c)
}

func (d *Devnet) cosigner(id string) (*cosigner, error) {
	for _, c := range d.cosigners {
		if c.id == id {
			return c, nil
		}
	}
	return nil, errors.New("devnet: no cosigner " + id)
}
