package keystore

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order, all pending ones in one transaction. The
// version of migrations[i] is i+1. Append only: never edit an applied one.
// Migrations are local: every store (writer or restorer) runs them at open,
// and change records are written against no particular schema version.
var migrations = []string{
	// 1: initial schema.
	`CREATE TABLE ks.meta (
		id  INTEGER PRIMARY KEY CHECK (id = 1),
		seq INTEGER NOT NULL CHECK (seq >= 0)
	);
	INSERT INTO ks.meta (id, seq) VALUES (1, 0);

	CREATE TABLE ks.keys (
		key_id     BLOB PRIMARY KEY CHECK (length(key_id) = 32),
		scheme     INTEGER NOT NULL,
		epoch      INTEGER NOT NULL CHECK (epoch >= 0),
		threshold  INTEGER NOT NULL,
		parties    TEXT NOT NULL,
		self       TEXT NOT NULL,
		public_key BLOB NOT NULL,
		chain_code BLOB NOT NULL,
		share      BLOB NOT NULL,
		metadata   TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL
	) WITHOUT ROWID;

	CREATE TABLE ks.identity (
		id          INTEGER PRIMARY KEY CHECK (id = 1),
		private_key BLOB NOT NULL,
		public_key  BLOB NOT NULL,
		created_at  INTEGER NOT NULL
	);

	CREATE TABLE ks.policy (
		version    INTEGER PRIMARY KEY CHECK (version > 0),
		document   BLOB NOT NULL,
		created_at INTEGER NOT NULL
	);

	CREATE TABLE ks.audit (
		seq       INTEGER PRIMARY KEY CHECK (seq > 0),
		prev_hash BLOB NOT NULL,
		entry     BLOB NOT NULL,
		hash      BLOB NOT NULL
	);
	CREATE TRIGGER ks.audit_no_update BEFORE UPDATE ON audit
		BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
	CREATE TRIGGER ks.audit_no_delete BEFORE DELETE ON audit
		BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;

	CREATE TABLE ks.idempotency (
		key          TEXT PRIMARY KEY,
		request_hash BLOB NOT NULL,
		response     BLOB NOT NULL,
		created_at   INTEGER NOT NULL,
		expires_at   INTEGER NOT NULL
	);
	CREATE INDEX ks.idempotency_expiry ON idempotency (expires_at);`,

	// 2: policy window state (spends counted against rolling-window limits).
	`CREATE TABLE ks.policy_window (
		reservation BLOB NOT NULL CHECK (length(reservation) = 16),
		idx         INTEGER NOT NULL CHECK (idx >= 0),
		key_id      BLOB NOT NULL CHECK (length(key_id) = 32),
		asset       TEXT NOT NULL CHECK (length(asset) > 0),
		at          INTEGER NOT NULL CHECK (at >= 0),
		amount      BLOB NOT NULL CHECK (length(amount) BETWEEN 1 AND 32),
		PRIMARY KEY (reservation, idx)
	) WITHOUT ROWID;
	CREATE INDEX ks.policy_window_key ON policy_window (key_id, at);
	CREATE INDEX ks.policy_window_at ON policy_window (at);`,

	// 3: workspace document versions (enclave/workspace), each a signed
	// version chaining from the one before.
	`CREATE TABLE ks.workspace (
		version    INTEGER PRIMARY KEY CHECK (version > 0),
		document   BLOB NOT NULL,
		created_at INTEGER NOT NULL
	);`,
}

// SchemaVersion is the schema version this build writes.
func SchemaVersion() int { return len(migrations) }

// migrate brings the database to SchemaVersion in one transaction, or
// refuses it with ErrNewerSchema.
func migrate(ctx context.Context, db *sql.DB, now int64) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("keystore: migrating: %w", err)
	}
	defer tx.Rollback()
	current, err := schemaVersion(ctx, tx)
	if err != nil {
		return err
	}
	if current > len(migrations) {
		return fmt.Errorf("%w: database has version %d, this build knows %d", ErrNewerSchema, current, len(migrations))
	}
	for v := current + 1; v <= len(migrations); v++ {
		if err := applyMigration(ctx, tx, v, now); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("keystore: committing migrations: %w", err)
	}
	return nil
}

// schemaVersion creates the migrations table if needed and returns the
// highest applied version (0 for a new database).
func schemaVersion(ctx context.Context, tx *sql.Tx) (int, error) {
	_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS ks.schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL)`)
	if err != nil {
		return 0, fmt.Errorf("keystore: creating migrations table: %w", translate(err))
	}
	var v int
	err = tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("keystore: reading schema version: %w", err)
	}
	return v, nil
}

func applyMigration(ctx context.Context, tx *sql.Tx, v int, now int64) error {
	if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
		return fmt.Errorf("keystore: applying migration %d: %w", v, err)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, now)
	if err != nil {
		return fmt.Errorf("keystore: recording migration %d: %w", v, err)
	}
	return nil
}
