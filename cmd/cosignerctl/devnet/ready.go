//go:build !release

package devnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
)

// Names of the daemons' binaries.
const (
	parentBinary  = "cosigner-parent"
	enclaveBinary = "cosigner-enclave"
)

// binaries are the daemons the devnet runs.
type binaries struct{ parent, enclave string }

// findBinaries looks for the daemons in dir if set; else beside the
// running executable, then on PATH.
func findBinaries(dir string) (binaries, error) {
	var b binaries
	var err error
	if b.parent, err = findBinary(dir, parentBinary); err != nil {
		return b, err
	}
	b.enclave, err = findBinary(dir, enclaveBinary)
	return b, err
}

func findBinary(dir, name string) (string, error) {
	if dir != "" {
		path := filepath.Join(dir, name)
		if isExecutable(path) {
			return path, nil
		}
		return "", fmt.Errorf("%w: %s is not in --bin %s (`make build` puts it in bin/)", ErrConfig, name, dir)
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			if path := filepath.Join(filepath.Dir(exe), name); isExecutable(path) {
				return path, nil
			}
		}
	}
	if path, err := exec.LookPath(name); err == nil {
		return path, nil
	}
	return "", fmt.Errorf("%w: %s is neither beside cosignerctl nor on PATH; `make build` puts all three binaries in bin/, "+
		"or name their directory with --bin", ErrConfig, name)
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// dialTimeout bounds one attempt to dial and attest a cosigner.
const dialTimeout = 20 * time.Second

// waitServing waits until the cosigner's parent is ready (broker, enclave
// link and enclave API: its /readyz) and its API answers an attested
// GetAttestation (through the parent's ingress) showing the identity the
// roster holds for it; then it gives the cosigner the default policy if
// it has none.
func (d *Devnet) waitServing(ctx context.Context, c *cosigner) error {
	if err := c.enclave.waitFor(ctx, "its parent's /readyz", func() (bool, error) {
		return httpOK("http://" + c.health() + "/readyz"), nil
	}); err != nil {
		return err
	}
	conn, err := d.dialUntil(ctx, c)
	if err != nil {
		return err
	}
	defer conn.Close()
	want := d.roster.Members[d.index(c)]
	if got := conn.Attested().IdentityKey; !bytes.Equal(got, identityKey(want)) {
		return fmt.Errorf("%s attests identity %x, but roster.json holds %s: its state was not restored", c.id, []byte(got), want.Identity)
	}
	d.log.Info("cosigner serving", "cosigner", c.id, "api", c.api())
	return d.ensurePolicy(ctx, conn, c.id)
}

// dialUntil dials the cosigner as admin until the attestation succeeds,
// its enclave exits, or ctx ends.
func (d *Devnet) dialUntil(ctx context.Context, c *cosigner) (*apiclient.Conn, error) {
	cfg, err := d.info.ClientConfig(c.id, RoleAdmin)
	if err != nil {
		return nil, err
	}
	var conn *apiclient.Conn
	var last error
	err = c.enclave.waitFor(ctx, "an attested API", func() (bool, error) {
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		defer cancel()
		conn, last = apiclient.Dial(dctx, cfg)
		if ae, ok := errors.AsType[*apiclient.AttestationError](last); ok && ae.Check != apiclient.CheckRequest {
			return false, last // it answered, and the answer is wrong
		}
		return last == nil, nil
	})
	if err != nil && last != nil {
		err = fmt.Errorf("%w (last attempt: %v)", err, last)
	}
	return conn, err
}

func (d *Devnet) index(c *cosigner) int {
	for i, x := range d.cosigners {
		if x == c {
			return i
		}
	}
	return -1
}

// httpOK reports whether a GET of url answers 200.
func httpOK(url string) bool {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
