package keystore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

// KeySize is the length of the database key in bytes (AES-256).
const KeySize = 32

// FileName is the database's file name inside its directory. SQLite adds
// FileName+"-wal" and FileName+"-shm" beside it.
const FileName = "keystore.db"

// defaultConns is the default connection pool size: one writer at a time
// plus readers that proceed while the writer waits on its Replicator.
const defaultConns = 4

// Options configure a Store. The zero value is a local-only store.
type Options struct {
	// Replicator makes each change durable before it commits. Nil means
	// local only (tests, tools).
	Replicator Replicator
	// Now is the clock for created/updated timestamps and idempotency
	// expiry; nil means time.Now.
	Now func() time.Time
	// Logger receives operational messages (never a secret); nil discards.
	Logger *slog.Logger
	// Conns is the connection pool size; 0 means 4.
	Conns int
}

// Store is an open keystore. Its methods are safe for concurrent use;
// mutations are serialized.
type Store struct {
	db   *sql.DB
	conn *connector
	dir  string
	repl Replicator
	now  func() time.Time
	log  *slog.Logger

	// wlock is the writer lock: a one-slot semaphore, so that a writer
	// waiting for it can give up when its context ends.
	wlock chan struct{}

	mu   sync.Mutex
	halt error // non-nil once the store refuses mutations (fenced, closed)

	rstats replStats // for ReplicationStats
}

// Create makes a new, empty keystore database in dir (created with mode
// 0700 if missing) keyed with key, which must be KeySize bytes. It fails
// with ErrExists if dir already holds a database. The Store keeps its own
// copy of key and wipes it on Close.
func Create(ctx context.Context, dir string, key secret.Bytes, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keystore: creating directory: %w", err)
	}
	if err := checkAbsent(dir); err != nil {
		return nil, err
	}
	return open(ctx, dir, key, opts)
}

// Open opens the existing keystore database in dir. A wrong key (or a file
// that is not a keystore) gives ErrWrongKey; a missing database gives an
// error wrapping fs.ErrNotExist; a database from a newer build gives
// ErrNewerSchema. Pending migrations are applied.
func Open(ctx context.Context, dir string, key secret.Bytes, opts Options) (*Store, error) {
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		return nil, fmt.Errorf("keystore: opening: %w", err)
	}
	return open(ctx, dir, key, opts)
}

// checkAbsent refuses a directory holding a database or its WAL leftovers
// (SQLite would replay a stray -wal into a new database).
func checkAbsent(dir string) error {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_, err := os.Lstat(filepath.Join(dir, FileName+suffix))
		if err == nil {
			return fmt.Errorf("%w: %s already holds a keystore database", ErrExists, dir)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("keystore: checking directory: %w", err)
		}
	}
	return nil
}

func open(ctx context.Context, dir string, key secret.Bytes, opts Options) (*Store, error) {
	if key.Len() != KeySize {
		return nil, fmt.Errorf("%w: key must be %d bytes", ErrInvalid, KeySize)
	}
	if strings.ContainsAny(dir, "?#") {
		return nil, fmt.Errorf("%w: directory name must not contain '?' or '#'", ErrInvalid)
	}
	s := newStore(dir, key, opts)
	if err := s.init(ctx); err != nil {
		s.db.Close()
		s.conn.key.Wipe()
		return nil, fmt.Errorf("keystore: opening %s: %w", dir, err)
	}
	return s, nil
}

func newStore(dir string, key secret.Bytes, opts Options) *Store {
	conn := &connector{path: filepath.Join(dir, FileName), key: secret.New(key.Reveal())}
	s := &Store{
		conn: conn, dir: dir, repl: opts.Replicator, now: opts.Now, log: opts.Logger,
		db: sql.OpenDB(conn), wlock: make(chan struct{}, 1),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	n := opts.Conns
	if n <= 0 {
		n = defaultConns
	}
	s.db.SetMaxOpenConns(n)
	s.db.SetMaxIdleConns(n)
	s.db.SetConnMaxLifetime(0)
	s.db.SetConnMaxIdleTime(0)
	return s
}

// init checks the key (the first connection fails with ErrWrongKey) and
// migrates.
func (s *Store) init(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return translate(err)
	}
	return migrate(ctx, s.db, s.now().UnixNano())
}

// Close waits for a running mutation, closes the database and wipes the
// Store's copy of the key. Further calls fail with ErrClosed.
func (s *Store) Close() error {
	s.wlock <- struct{}{}
	defer s.release()
	s.mu.Lock()
	already := errors.Is(s.halt, ErrClosed)
	s.halt = ErrClosed
	s.mu.Unlock()
	if already {
		return nil
	}
	err := s.db.Close()
	s.conn.key.Wipe()
	if err != nil {
		return fmt.Errorf("keystore: closing: %w", err)
	}
	return nil
}

// Dir returns the directory holding the database.
func (s *Store) Dir() string { return s.dir }

// Seq returns the sequence number of the last committed change (0 for a
// new database).
func (s *Store) Seq(ctx context.Context) (uint64, error) {
	if err := s.readable(); err != nil {
		return 0, err
	}
	var seq int64
	if err := s.db.QueryRowContext(ctx, `SELECT seq FROM meta WHERE id = 1`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("keystore: reading sequence: %w", err)
	}
	return uint64(seq), nil
}

// acquire takes the writer lock or gives up when ctx ends.
func (s *Store) acquire(ctx context.Context) error {
	select {
	case s.wlock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("keystore: waiting for the writer lock: %w", ctx.Err())
	}
}

func (s *Store) release() { <-s.wlock }

// halted returns the reason the store refuses mutations, or nil.
func (s *Store) halted() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.halt
}

// stop makes the store refuse every further mutation with err.
func (s *Store) stop(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.halt == nil {
		s.halt = err
	}
}

// readable refuses reads only on a closed store; a fenced one still reads.
func (s *Store) readable() error {
	if err := s.halted(); errors.Is(err, ErrClosed) {
		return err
	}
	return nil
}
