package procpath_test

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
)

// abc are the cosigners; their names are those of the CMP test vectors.
var abc = []string{"alice", "bob", "carol"}

// openTimeout bounds opening a session on a helper.
const openTimeout = 10 * time.Second

// cluster is three cosigners, each a parent process and an enclave
// helper process, sharing one broker.
type cluster struct {
	t        *testing.T
	parents  map[string]*parentProc
	enclaves map[string]*enclaveProc
}

// newCluster starts a parent per cosigner with brokerArgs (and env added
// to its environment), then its enclave helper; hands every helper the
// roster; and waits until every parent reports the broker and its
// enclave link ready. When the test ends it stops the helpers, then the
// parents, and fails the test unless each exits 0 in time.
func newCluster(t *testing.T, brokerArgs, env []string) *cluster {
	t.Helper()
	start := time.Now()
	dir := shortDir(t)
	caFile := writeCA(t, dir)
	fixture := ""
	if !raceEnabled {
		fixture = absPath(t, cmpFixture)
	}
	c := &cluster{t: t, parents: map[string]*parentProc{}, enclaves: map[string]*enclaveProc{}}
	var parents, enclaves []*proc
	t.Cleanup(func() {
		stopAll(t, enclaves)
		stopAll(t, parents)
	})
	for _, id := range abc {
		c.parents[id] = startParentProc(t, dir, id, brokerArgs, env, func(p *proc) { parents = append(parents, p) })
	}
	var members []memberInfo
	for _, id := range abc {
		c.enclaves[id] = startEnclaveProc(t, id, c.parents[id], caFile, fixture, func(p *proc) { enclaves = append(enclaves, p) })
		members = append(members, c.enclaves[id].member)
	}
	c.each(abc, openTimeout, request{Op: opRoster, Members: members})
	for _, id := range abc {
		c.parents[id].waitReady(t)
	}
	t.Logf("3 parents and 3 enclaves up and ready in %v", time.Since(start).Round(time.Millisecond))
	return c
}

// shortDir is a temporary directory with a path short enough for unix
// sockets.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "procpath")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// writeCA makes the shared attestsim CA and saves it for the helpers.
func writeCA(t *testing.T, dir string) string {
	t.Helper()
	ca, err := attestsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	pem, err := ca.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func absPath(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// each sends req to the helpers of ids at once and returns their replies,
// failing the test if any fails or is late.
func (c *cluster) each(ids []string, d time.Duration, req request) map[string]response {
	c.t.Helper()
	out := make(map[string]response, len(ids))
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, id := range ids {
		wg.Go(func() {
			r, err := c.enclaves[id].call(req, d)
			mu.Lock()
			defer mu.Unlock()
			out[id], errs = r, append(errs, err)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.t.Fatalf("%s: %v", req.Op, err)
	}
	return out
}

// session opens a fresh session on every party, then runs req on each
// with the given deadline, and returns the replies.
func (c *cluster) session(parties []string, deadline time.Duration, req request) map[string]response {
	c.t.Helper()
	id := make([]byte, 32)
	rand.Read(id)
	c.each(parties, openTimeout, request{Op: opOpen, Session: id, Parties: parties})
	req.Session, req.Parties, req.Deadline = id, parties, time.Now().Add(deadline)
	start := time.Now()
	out := c.each(parties, deadline+callMargin, req)
	c.t.Logf("%s by %v: %v", req.Op, parties, time.Since(start).Round(time.Millisecond))
	return out
}

// same fails the test unless every reply has the same field, and returns
// it.
func same(t *testing.T, what string, rs map[string]response, field func(response) []byte) []byte {
	t.Helper()
	var v []byte
	for id, r := range rs {
		f := field(r)
		if len(f) == 0 {
			t.Fatalf("%s: %s returned none", what, id)
		}
		if v != nil && string(v) != string(f) {
			t.Fatalf("%s: the parties disagree", what)
		}
		v = f
	}
	return v
}
