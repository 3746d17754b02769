//go:build !release

package devnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cosigner is one cosigner of the devnet: its parent and enclave
// processes.
type cosigner struct {
	id                  string
	keyID               string
	apiPort, healthPort int
	metricsPort         int
	parent, enclave     *proc
	// pairToken, for a cosigner added by Pair, is its pairing token;
	// joined is set once it serves (WaitJoined). Until then its enclave
	// may exit on its own (a refused token) without failing the devnet.
	pairToken string
	joined    bool
}

func (c *cosigner) prefix() string { return c.id + "/" }
func (c *cosigner) api() string    { return "127.0.0.1:" + strconv.Itoa(c.apiPort) }
func (c *cosigner) health() string { return "127.0.0.1:" + strconv.Itoa(c.healthPort) }
func (c *cosigner) metrics() string {
	return "127.0.0.1:" + strconv.Itoa(c.metricsPort)
}

func (c *cosigner) sock(d *Devnet, what string) string {
	return "unix://" + socketPath(d.cfg.Dir, c.id, what)
}
func (c *cosigner) stateDir(d *Devnet) string { return filepath.Join(d.cfg.Dir, "tmp", c.id) }
func (c *cosigner) log(d *Devnet, what string) string {
	return filepath.Join(d.cfg.Dir, "logs", c.id+"-"+what+".log")
}

func (c *cosigner) info(d *Devnet) CosignerInfo {
	return CosignerInfo{ID: c.id, API: c.api(), Health: c.health(), Metrics: c.metrics(), KMSKeyID: c.keyID, S3Prefix: c.prefix(),
		ParentLog: c.log(d, "parent"), EnclaveLog: c.log(d, "enclave")}
}

// parentArgs are cosigner-parent's flags: the relay to the broker, the
// egress proxy allowing exactly KMS, S3 and the approval server, the
// credentials server, the ingress to the enclave's API and health.
func (c *cosigner) parentArgs(d *Devnet) []string {
	args := []string{
		"--cosigner-id", c.id, "--enclave-link", c.sock(d, "link"), "--broker-provision",
		"--egress-listen", c.sock(d, "egress"), "--creds-listen", c.sock(d, "creds"),
		"--ingress-listen", "tcp://" + c.api(), "--ingress-enclave", c.sock(d, "api"),
		"--health-listen", "tcp://" + c.health(), "--shutdown-timeout", "10s", "--log-format", "text",
		"--metrics-listen", "tcp://" + c.metrics(), "--enclave-metrics", c.sock(d, "metrics"),
	}
	for _, hp := range d.egressAllow {
		args = append(args, "--egress-allow", hp)
	}
	return append(args, d.broker.flags...)
}

// enclaveMode says how an enclave is started.
type enclaveMode int

const (
	// modeMember boots without a roster, only to report the enclave's
	// roster entry (creating its state first when init is set).
	modeMember enclaveMode = iota
	// modeCosigner runs the cosigner with the workspace (DIR/workspace.json
	// on first boot; afterwards the versions it stores).
	modeCosigner
	// modePair runs a new cosigner that joins with its pairing token.
	modePair
)

// enclaveArgs are cosigner-enclave's flags.
func (c *cosigner) enclaveArgs(d *Devnet, mode enclaveMode, init bool) []string {
	args := []string{
		"--nsm", "simulator", "--sim-ca", d.paths.simCA(), "--sim-module-id", "i-devnet-" + c.id + "-enc",
		"--cosigner-id", c.id, "--state-dir", c.stateDir(d), "--aws-region", DefaultRegion,
		"--kms-endpoint", d.info.KMS.Endpoint, "--kms-key-id", c.keyID,
		"--s3-endpoint", d.info.S3.Endpoint, "--s3-bucket", d.info.S3.Bucket, "--s3-prefix", c.prefix(),
		"--egress-proxy", c.sock(d, "egress"), "--credentials-from", c.sock(d, "creds"),
		"--log-format", "text",
	}
	for _, i := range simPCRIndexes {
		args = append(args, "--sim-pcr", fmt.Sprintf("%d=%x", i, d.pcrs[i]))
	}
	if init {
		args = append(args, "--init")
	}
	if mode == modeMember {
		return append(args, "--member-out", memberPath(d.cfg.Dir, c.id))
	}
	if mode == modePair {
		args = append(args, "--pair", c.pairToken, "--member-out", memberPath(d.cfg.Dir, c.id))
	} else {
		args = append(args, "--workspace", workspacePath(d.cfg.Dir))
	}
	return append(args,
		"--parent-link", c.sock(d, "link"), "--api-listen", c.sock(d, "api"),
		"--client-ca", d.paths.clientCA().Cert, "--approval-url", d.info.Approval.URL,
		"--approval-handler-key", d.paths.handlerPub(), "--approval-audience", approvalAudience,
		"--approval-ca", d.paths.approvalCA(), "--metrics-listen", c.sock(d, "metrics"),
	)
}

// startParent starts the parent and waits until its health endpoint
// answers, which it does once every listener is bound.
func (d *Devnet) startParent(ctx context.Context, c *cosigner) error {
	for _, what := range []string{"link", "egress", "creds", "api"} {
		_ = os.Remove(socketPath(d.cfg.Dir, c.id, what)) // left by a killed run
	}
	p, err := startProc(c.id+" parent", d.bins.parent, c.parentArgs(d), d.parentEnv, c.log(d, "parent"))
	if err != nil {
		return err
	}
	c.parent = p
	d.watch(p)
	return p.waitFor(ctx, "its health endpoint", func() (bool, error) {
		return httpOK("http://" + c.health() + "/healthz"), nil
	})
}

// startEnclave starts the enclave on a wiped state directory.
func (d *Devnet) startEnclave(c *cosigner, mode enclaveMode, init bool) error {
	if err := wipe(c.stateDir(d)); err != nil {
		return err
	}
	_ = os.Remove(socketPath(d.cfg.Dir, c.id, "metrics")) // left by a killed enclave
	p, err := startProc(c.id+" enclave", d.bins.enclave, append(c.enclaveArgs(d, mode, init), d.cfg.EnclaveFlags...), d.enclaveEnv, c.log(d, "enclave"))
	if err != nil {
		return err
	}
	c.enclave = p
	if mode == modeCosigner {
		d.watch(p) // a pairing enclave is watched once it joined (WaitJoined)
	}
	return nil
}

// stopEnclave stops the enclave and wipes its state directory: its state
// must come back from S3.
func (d *Devnet) stopEnclave(c *cosigner) error {
	if c.enclave == nil {
		return nil
	}
	err := c.enclave.stop(d.cfg.StopTimeout)
	return errors.Join(err, wipe(c.stateDir(d)))
}

// collectMember boots the enclave without a roster (with --init unless
// its state is in S3) until it writes its roster entry, then stops it.
func (d *Devnet) collectMember(ctx context.Context, c *cosigner) (memberEntry, error) {
	exists, err := stateExists(ctx, d.s3, d.info.S3.Bucket, c.prefix())
	if err != nil {
		return memberEntry{}, err
	}
	path := memberPath(d.cfg.Dir, c.id)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return memberEntry{}, err
	}
	d.log.Info("booting an enclave for its roster entry", "cosigner", c.id, "init", !exists)
	if err := d.startEnclave(c, modeMember, !exists); err != nil {
		return memberEntry{}, err
	}
	var m memberEntry
	err = c.enclave.waitFor(ctx, "its roster entry", func() (bool, error) {
		if _, err := os.Stat(path); err != nil {
			return false, nil
		}
		var rerr error
		m, rerr = readMember(path, c.id)
		if errors.Is(rerr, errMemberIncomplete) {
			return false, nil
		}
		return rerr == nil, rerr
	})
	return m, errors.Join(err, d.stopEnclave(c))
}

// wipe empties dir, creating it if needed.
func wipe(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o700)
}

// filterEnv returns os.Environ without the variables of the given
// prefixes.
func filterEnv(prefixes ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		drop := false
		for _, p := range prefixes {
			drop = drop || strings.HasPrefix(kv, p)
		}
		if !drop {
			env = append(env, kv)
		}
	}
	return env
}
