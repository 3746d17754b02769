//go:build !release

package devnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
)

// More fault injection for the reliability suites (test/reliability): a
// cosigner's parent can crash and come back, and an enclave can be
// started with extra environment variables (NITRO_FAILPOINT_CRASH, which
// makes a development build of cosigner-enclave kill itself at a named
// failpoint) and left to die on its own. These calls are not safe to use
// concurrently with each other, KillEnclave or RestartEnclave.

// KillParent kills a cosigner's parent process at once (SIGKILL), as a
// crash of the host daemon would. Its enclave keeps running: its link to
// the parent and its API (reached through the parent's ingress) are down
// until RestartParent. The devnet does not count the exit as a failure.
func (d *Devnet) KillParent(id string) error {
	c, err := d.cosigner(id)
	if err != nil {
		return err
	}
	p := c.parent
	if p == nil || !p.running() {
		return fmt.Errorf("devnet: %s's parent is not running", id)
	}
	p.stopping.Store(true)
	if err := p.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("devnet: killing %s's parent: %w", id, err)
	}
	<-p.exited
	return nil
}

// RestartParent starts a cosigner's parent again beside its running
// enclave and returns once the cosigner serves again (the parent's
// /readyz: broker, enclave link and enclave API; then an attested API
// call).
func (d *Devnet) RestartParent(ctx context.Context, id string) error {
	c, err := d.cosigner(id)
	if err != nil {
		return err
	}
	if c.parent != nil && c.parent.running() {
		return fmt.Errorf("devnet: %s's parent is still running", id)
	}
	// The parent's own listeners leave their sockets behind; the enclave's
	// API socket is the running enclave's and stays.
	for _, what := range []string{"link", "egress", "creds"} {
		if err := os.Remove(socketPath(d.cfg.Dir, c.id, what)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	p, err := startProc(c.id+" parent", d.bins.parent, c.parentArgs(d), d.parentEnv, c.log(d, "parent"))
	if err != nil {
		return err
	}
	c.parent = p
	d.watch(p)
	if err := p.waitFor(ctx, "its health endpoint", func() (bool, error) {
		return httpOK("http://" + c.health() + "/healthz"), nil
	}); err != nil {
		return err
	}
	if c.enclave == nil || !c.enclave.running() {
		return nil
	}
	return d.waitServing(ctx, c)
}

// RestartEnclaveEnv is RestartEnclave with env appended to the enclave's
// environment. The new process may exit on its own (a failpoint that
// kills it, say): that exit is not counted as a failure of the devnet.
// EnclaveExited tells when it happens and ReapEnclave cleans up after it.
func (d *Devnet) RestartEnclaveEnv(ctx context.Context, id string, env ...string) error {
	c, err := d.cosigner(id)
	if err != nil {
		return err
	}
	if c.enclave != nil && c.enclave.running() {
		return fmt.Errorf("devnet: %s's enclave is still running", id)
	}
	saved := d.enclaveEnv
	d.enclaveEnv = append(slices.Clone(saved), env...)
	err = d.startEnclave(c, modeCosigner, false)
	d.enclaveEnv = saved
	if err != nil {
		return err
	}
	c.enclave.stopping.Store(true) // before it can reach a failpoint: boot comes first
	return d.waitServing(ctx, c)
}

// EnclaveExited returns a channel that is closed when the current enclave
// process of cosigner id exits.
func (d *Devnet) EnclaveExited(id string) (<-chan struct{}, error) {
	c, err := d.cosigner(id)
	if err != nil {
		return nil, err
	}
	if c.enclave == nil {
		return nil, fmt.Errorf("devnet: %s has no enclave process", id)
	}
	return c.enclave.exited, nil
}

// ReapEnclave cleans up after an enclave that exited on its own, as
// KillEnclave does after killing one: it removes the API socket the
// process left behind and wipes its tmpfs state directory. RestartEnclave
// can then start it again.
func (d *Devnet) ReapEnclave(id string) error {
	c, err := d.cosigner(id)
	if err != nil {
		return err
	}
	if c.enclave == nil || c.enclave.running() {
		return fmt.Errorf("devnet: %s's enclave is running", id)
	}
	if err := os.Remove(socketPath(d.cfg.Dir, c.id, "api")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return wipe(c.stateDir(d))
}

// Kill ends the devnet as a power cut would end its hosts: every enclave
// and parent is killed at once (SIGKILL) and its state directory wiped,
// then the servers stop and the directory is unlocked as in Stop. It is
// for tests that are done with the devnet and whose enclaves may still
// run sessions a crash left stuck until their deadline, which a graceful
// Stop waits for (up to the API's shutdown deadline). Stop after Kill
// returns Kill's result.
func (d *Devnet) Kill() error {
	var errs []error
	for _, c := range d.cosigners {
		for _, p := range []**proc{&c.enclave, &c.parent} {
			if *p != nil && (*p).running() {
				(*p).stopping.Store(true)
				if err := (*p).cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
					errs = append(errs, fmt.Errorf("devnet: killing %s: %w", (*p).name, err))
					continue
				}
				<-(*p).exited
			}
			*p = nil // Stop then leaves it alone
		}
		errs = append(errs, wipe(c.stateDir(d)))
	}
	return errors.Join(append(errs, d.Stop())...)
}
