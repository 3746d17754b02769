package keystore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

// Snapshot writes a consistent copy of the database to w — encrypted with
// the same key, like the database file — and returns the sequence number of
// the last change it holds. Mutations wait while it runs; reads do not.
func (s *Store) Snapshot(ctx context.Context, w io.Writer) (uint64, error) {
	if err := s.acquire(ctx); err != nil {
		return 0, err
	}
	defer s.release()
	if err := s.readable(); err != nil {
		return 0, err
	}
	return s.snapshotLocked(ctx, w)
}

// snapshotLocked is Snapshot for a caller holding the writer lock. It
// exports into a keyed temporary database in the same directory with
// sqlcipher_export — not VACUUM INTO, which writes plaintext for an
// attached SQLCipher database — then streams that file to w and removes it.
// The export runs on a connection of its own so that the pool never holds
// a connection with the temporary database attached.
func (s *Store) snapshotLocked(ctx context.Context, w io.Writer) (uint64, error) {
	tmp, err := tempName(s.dir)
	if err != nil {
		return 0, err
	}
	defer removeDB(tmp)
	seq, err := s.exportTo(ctx, tmp)
	if err != nil {
		return 0, fmt.Errorf("keystore: snapshot: %w", err)
	}
	if err := copyFile(w, tmp); err != nil {
		return 0, fmt.Errorf("keystore: snapshot: %w", err)
	}
	return seq, nil
}

func (s *Store) exportTo(ctx context.Context, path string) (uint64, error) {
	db := sql.OpenDB(s.conn)
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, translate(err)
	}
	defer conn.Close()
	var seq uint64
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(sqliteConn)
		if !ok {
			return errors.New("unexpected driver connection type")
		}
		seq, err = export(c, path, s.conn.key)
		return err
	})
	return seq, err
}

// copyFile streams the file at path to w.
func copyFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// tempName returns an unused file name in dir for a temporary database.
func tempName(dir string) (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("keystore: naming temporary file: %w", err)
	}
	return filepath.Join(dir, "tmp-"+hex.EncodeToString(b[:])+".db"), nil
}

// removeDB removes a database file and its journal files.
func removeDB(path string) {
	for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
}

// OpenSnapshot restores a snapshot written by Snapshot into dir (which must
// not hold a database), checks every page against the key, and opens it.
// A snapshot that is not a keystore under key gives ErrWrongKey; the
// directory is left without a database on any error.
func OpenSnapshot(ctx context.Context, dir string, key secret.Bytes, r io.Reader, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keystore: creating directory: %w", err)
	}
	if err := checkAbsent(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, FileName)
	if err := writeFile(path, r); err != nil {
		return nil, fmt.Errorf("keystore: writing snapshot: %w", err)
	}
	s, err := openChecked(ctx, dir, key, opts)
	if err != nil {
		removeDB(path)
		return nil, err
	}
	return s, nil
}

func openChecked(ctx context.Context, dir string, key secret.Bytes, opts Options) (*Store, error) {
	s, err := open(ctx, dir, key, opts)
	if err != nil {
		return nil, err
	}
	if err := s.integrityCheck(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// writeFile writes r to a new file at path (mode 0600), removing it on
// error.
func writeFile(path string, r io.Reader) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	_, err = io.Copy(f, r)
	return err
}

// integrityCheck verifies every page's HMAC (cipher_integrity_check) and
// the b-tree structure (quick_check). Any finding is reported as
// ErrWrongKey: the file is not a keystore we can trust.
func (s *Store) integrityCheck(ctx context.Context) error {
	for _, q := range []string{"PRAGMA " + schemaName + ".cipher_integrity_check", "PRAGMA " + schemaName + ".quick_check"} {
		if err := expectClean(ctx, s.db, q); err != nil {
			return err
		}
	}
	return nil
}

// expectClean runs an integrity pragma and fails unless it reports nothing
// or a single "ok".
func expectClean(ctx context.Context, db *sql.DB, q string) error {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("keystore: %s: %w", q, translate(err))
	}
	defer rows.Close()
	for rows.Next() {
		var msg string
		if err := rows.Scan(&msg); err != nil {
			return fmt.Errorf("keystore: %s: %w", q, err)
		}
		if msg != "ok" {
			return fmt.Errorf("%w: integrity check failed", ErrWrongKey)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("keystore: %s: %w", q, translate(err))
	}
	return nil
}
