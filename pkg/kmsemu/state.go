package kmsemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// stateVersion is the version of the state file format.
const stateVersion = 1

// stateFile is the persisted form of an emulator's keys. It holds key
// material in the clear: it is a development file, written with mode 0600.
type stateFile struct {
	Version int
	Keys    []storedKey
}

type storedKey struct {
	ID          string
	Created     time.Time
	Description string
	Policy      string
	Material    []byte
}

// loadState reads the keys saved at path; a missing file means no keys.
func loadState(path string) ([]*kmsKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer clear(b)
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, errors.New("state file is not valid JSON")
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("state file version %d, want %d", st.Version, stateVersion)
	}
	return restoreKeys(st.Keys)
}

func restoreKeys(stored []storedKey) ([]*kmsKey, error) {
	keys := make([]*kmsKey, 0, len(stored))
	for _, s := range stored {
		defer clear(s.Material)
		if s.ID == "" || strings.ContainsAny(s.ID, "/:") || len(s.ID) > 255 {
			return nil, errors.New("state file has an invalid key ID")
		}
		pol, aerr := parsePolicy(s.Policy)
		if aerr != nil {
			return nil, fmt.Errorf("key %s: %s", s.ID, aerr.msg)
		}
		k, err := restoreKMSKey(s.ID, s.Created, s.Description, s.Policy, pol, s.Material)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// saveState writes keys to path atomically: a temporary file in the same
// directory, synced, renamed over path, then the directory synced. After a
// crash the file holds either the old or the new state, never a mix.
func saveState(path string, keys map[string]*kmsKey) error {
	b, err := json.Marshal(snapshot(keys))
	if err != nil {
		return err
	}
	defer clear(b)
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if err := writeSynced(tmp, b); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func snapshot(keys map[string]*kmsKey) stateFile {
	st := stateFile{Version: stateVersion}
	for _, k := range keys {
		st.Keys = append(st.Keys, storedKey{ID: k.id, Created: k.created,
			Description: k.description, Policy: k.policyJSON, Material: k.material.Reveal()})
	}
	slices.SortFunc(st.Keys, func(a, b storedKey) int { return strings.Compare(a.ID, b.ID) })
	return st
}

// writeSynced writes b to f (created 0600 by os.CreateTemp), syncs and
// closes it.
func writeSynced(f *os.File, b []byte) error {
	_, werr := f.Write(b)
	serr := f.Sync()
	cerr := f.Close()
	return errors.Join(werr, serr, cerr)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	return errors.Join(serr, d.Close())
}
