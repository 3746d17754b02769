//go:build !release

package devnet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
)

// memberEntry is one cosigner's roster entry, as cosigner-enclave writes
// it with --member-out (pkg/workspace.Member).
type memberEntry = ws.Member

// rosterFile is DIR/roster.json: the devnet's record of its cosigners'
// entries (which IDs it runs, which identity each must attest, which
// approval key each signs callbacks with). The enclaves run with the
// workspace (DIR/workspace.json, then the versions they store), not with
// this file.
type rosterFile struct {
	Members []memberEntry `json:"members"`
}

// simPCRIndexes are the PCRs the devnet sets, and the roster and KMS key
// policies require.
var simPCRIndexes = []int{0, 1, 2}

// simPCRs are the devnet enclaves' simulated measurements: fixed,
// non-zero (so that documents are not debug-mode), the same on every run.
func simPCRs() map[int][]byte {
	pcrs := make(map[int][]byte, len(simPCRIndexes))
	for _, i := range simPCRIndexes {
		sum := sha512.Sum384([]byte("nitro-cosigner devnet PCR" + strconv.Itoa(i)))
		pcrs[i] = sum[:]
	}
	return pcrs
}

func hexPCRs(pcrs map[int][]byte) map[string]string {
	out := make(map[string]string, len(pcrs))
	for i, v := range pcrs {
		out[strconv.Itoa(i)] = hex.EncodeToString(v)
	}
	return out
}

func rosterPath(dir string) string     { return filepath.Join(dir, "roster.json") }
func memberPath(dir, id string) string { return filepath.Join(dir, "members", id+".json") }

func identityKey(m memberEntry) []byte {
	b, _ := hex.DecodeString(m.Identity)
	return b
}

// errMemberIncomplete reports a member file that does not parse (yet).
var errMemberIncomplete = errors.New("member entry incomplete")

// readMember reads the entry an enclave wrote, if it is complete.
func readMember(path, id string) (memberEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return memberEntry{}, err
	}
	var m memberEntry
	if err := json.Unmarshal(b, &m); err != nil {
		return memberEntry{}, errMemberIncomplete // not yet fully written
	}
	return m, checkMember(&m, id)
}

// check verifies that an enclave's entry is for id, has well-formed keys
// and shows the devnet's PCRs; only those PCRs go into the roster.
func checkMember(m *memberEntry, id string) error {
	if m.ID != id {
		return fmt.Errorf("member entry names %q, want %q", m.ID, id)
	}
	if len(identityKey(*m)) != ed25519.PublicKeySize {
		return errors.New("member entry: identity is not an Ed25519 key")
	}
	if enc, err := hex.DecodeString(m.Encryption); err != nil || len(enc) != 32 {
		return errors.New("member entry: encryption is not an X25519 key")
	}
	want := hexPCRs(simPCRs())
	for k, v := range want {
		if m.PCRs[k] != v {
			return fmt.Errorf("member entry: PCR%s is not the devnet's", k)
		}
	}
	m.PCRs = want
	return nil
}

// readRoster reads DIR/roster.json; ok is false if it does not exist.
func readRoster(dir string) (r *rosterFile, ok bool, err error) {
	b, err := os.ReadFile(rosterPath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	r = new(rosterFile)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(r); err != nil {
		return nil, false, fmt.Errorf("roster.json: %w", err)
	}
	for i := range r.Members {
		if err := checkMember(&r.Members[i], r.Members[i].ID); err != nil {
			return nil, false, fmt.Errorf("roster.json: %w", err)
		}
	}
	return r, true, nil
}

func (r *rosterFile) write(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(rosterPath(dir), append(b, '\n'), 0o644)
}

func memberIDs(ms []memberEntry) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids
}

func (r *rosterFile) ids() []string { return memberIDs(r.Members) }
