//go:build !release

package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/sealed"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
)

// A hold is a child process (this program, `bench hold`) that boots one
// cosigner's sealed state as an enclave does (sealed.Open: KMS unwrap,
// restore from S3 into a database directory standing in for the
// enclave's tmpfs), reads every key with its share once, and reports its
// resident memory and the size of the database. The difference between
// two holds of different key counts is the memory a key costs an enclave.

// holdRequest is what `bench hold` reads on stdin.
type holdRequest struct {
	World    worldSpec `json:"world"`
	Cosigner string    `json:"cosigner"`
}

// holdReport is what it writes on stdout.
type holdReport struct {
	Keys      int   `json:"keys"`
	RSSBefore int64 `json:"rss_before"` // before Open
	RSS       int64 `json:"rss"`        // holding the keys, after a GC
	DBBytes   int64 `json:"db_bytes"`   // the database directory (tmpfs in an enclave)
}

// Hold runs the child's side.
func Hold(ctx context.Context, in io.Reader, out io.Writer) error {
	var req holdRequest
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		return fmt.Errorf("hold: %w", err)
	}
	ca, err := attestsim.LoadCA(req.World.CAPEM)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-hold-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rep, err := holdState(ctx, req, ca, dir)
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(rep)
}

func holdState(ctx context.Context, req holdRequest, ca *attestsim.CA, dir string) (holdReport, error) {
	debug.FreeOSMemory()
	rep := holdReport{RSSBefore: residentBytes()}
	cfg, err := req.World.place(ca, req.Cosigner, dir, http.DefaultTransport)
	if err != nil {
		return rep, err
	}
	st, err := sealed.Open(ctx, cfg)
	if err != nil {
		return rep, err
	}
	defer st.Close()
	if rep.Keys, err = readAllKeys(ctx, st.Store); err != nil {
		return rep, err
	}
	debug.FreeOSMemory()
	rep.RSS = residentBytes()
	rep.DBBytes, err = dirBytes(dir)
	return rep, err
}

// readAllKeys reads every key with its share, as serving them would.
func readAllKeys(ctx context.Context, s *keystore.Store) (int, error) {
	n, cur := 0, keystore.Cursor{}
	for {
		page, err := s.ListKeys(ctx, cur, 1000)
		if err != nil {
			return n, err
		}
		for _, k := range page.Keys {
			rec, err := s.GetKey(ctx, k.ID)
			if err != nil {
				return n, err
			}
			rec.Share.Wipe()
			n++
		}
		if !page.More {
			return n, nil
		}
		cur = page.Next
	}
}

// residentBytes is this process's VmRSS.
func residentBytes() int64 {
	for line := range strings.Lines(readFile("/proc/self/status")) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	return n, err
}

// runHold runs `bench hold` for cosigner id of w and returns its report.
func runHold(ctx context.Context, w *sealedWorld, id string) (holdReport, error) {
	exe, err := os.Executable()
	if err != nil {
		return holdReport{}, err
	}
	in, err := json.Marshal(holdRequest{World: w.spec, Cosigner: id})
	if err != nil {
		return holdReport{}, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, exe, "hold")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return holdReport{}, fmt.Errorf("bench hold: %w: %s", err, stderr.String())
	}
	var rep holdReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return rep, fmt.Errorf("bench hold: %w", err)
	}
	if rep.Keys == 0 {
		return rep, errors.New("bench hold: held no key")
	}
	return rep, nil
}
