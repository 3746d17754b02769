package keystore

import (
	"context"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"

	sqlcipher "github.com/mutecomm/go-sqlcipher/v4"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

// schemaName is the name under which the keystore database is attached on
// every connection (see connector).
const schemaName = "ks"

// connector opens keyed connections for database/sql's pool, so that every
// pooled connection — not only the first — reads the database with the key.
//
// How the key reaches SQLCipher. go-sqlcipher offers two ways, and neither
// is used as is:
//
//   - The `_pragma_key` DSN parameter works, but the key then travels as a
//     Go string: database/sql keeps the DSN for the pool's life, and the
//     driver formats it into a new string and a C copy it frees without
//     wiping. None of these can be wiped.
//   - A ConnectHook running `PRAGMA key` comes too late for an existing
//     database: the driver runs `PRAGMA synchronous` before the hook, which
//     loads the schema unkeyed, and the connection then reports "file is not
//     a database" (measured with v4.4.2).
//
// Instead each connection opens an empty in-memory main database and the
// hook attaches the keystore file with `ATTACH DATABASE ? AS ks KEY ?`,
// binding the key as a blob parameter in SQLCipher's raw-key form x'<hex>'.
// The only Go copy is a buffer this package wipes right after the call;
// SQLite copies the bound value into its own allocator, which SQLCipher
// zeroes on free (cipher_memory_security, on by default and set explicitly).
// SQLCipher keeps the derived key in the connection until it closes, which
// cannot be avoided. The raw-key form skips PBKDF2: the key is already a
// uniformly random 256-bit data key.
//
// Tables live in schema ks; DDL names it, DML resolves unqualified names to
// it because main is empty.
//
// Warning, measured: `VACUUM ks INTO` writes a PLAINTEXT copy of an attached
// SQLCipher database. Snapshots therefore use sqlcipher_export into a keyed
// attachment (see snapshot.go); never use VACUUM INTO here.
type connector struct {
	path string
	key  secret.Bytes
}

// Connect implements driver.Connector.
func (c *connector) Connect(context.Context) (driver.Conn, error) {
	d := &sqlcipher.SQLiteDriver{ConnectHook: c.prepare}
	conn, err := d.Open(":memory:")
	if err != nil {
		return nil, translate(err)
	}
	return conn, nil
}

// Driver implements driver.Connector.
func (c *connector) Driver() driver.Driver { return &sqlcipher.SQLiteDriver{} }

// prepare keys a fresh connection, checks the key and sets the pragmas.
func (c *connector) prepare(conn *sqlcipher.SQLiteConn) error {
	if _, err := conn.Exec("PRAGMA cipher_memory_security = ON", nil); err != nil {
		return fmt.Errorf("keystore: enabling memory security: %w", err)
	}
	if err := attachKeyed(conn, c.path, schemaName, c.key); err != nil {
		return err
	}
	if err := verifyKey(conn); err != nil {
		return err
	}
	return setPragmas(conn)
}

// attachKeyed attaches the database file at path as schema name, keyed with
// key. The x'<hex>' buffer is wiped before returning.
func attachKeyed(conn *sqlcipher.SQLiteConn, path, name string, key secret.Bytes) error {
	if key.Len() != KeySize {
		return fmt.Errorf("%w: key must be %d bytes", ErrInvalid, KeySize)
	}
	raw := make([]byte, 0, 3+2*KeySize)
	raw = append(raw, "x'"...)
	raw = hex.AppendEncode(raw, key.Reveal())
	raw = append(raw, '\'')
	defer clear(raw)
	_, err := conn.Exec("ATTACH DATABASE ? AS "+name+" KEY ?", []driver.Value{path, raw})
	if err != nil {
		return fmt.Errorf("keystore: attaching database: %w", translate(err))
	}
	return nil
}

// verifyKey reads the schema, which fails with SQLITE_NOTADB under a wrong
// key (SQLCipher checks every page's HMAC).
func verifyKey(conn *sqlcipher.SQLiteConn) error {
	rows, err := conn.Query("SELECT count(*) FROM "+schemaName+".sqlite_master", nil)
	if err != nil {
		return translate(err)
	}
	defer rows.Close()
	if err := rows.Next(make([]driver.Value, 1)); err != nil {
		return translate(err)
	}
	return nil
}

// setPragmas configures a keyed connection.
//
// Journal mode WAL: measured ≈3.7× faster than the rollback journal for
// single-row transactions on /dev/shm, and readers (GetKey during a
// signature) proceed while the single writer holds its transaction open
// across the S3 round trip. The -wal and -shm files hold only SQLCipher
// page ciphertext and WAL indexes.
//
// synchronous = OFF: the database lives in tmpfs, so fsync buys nothing —
// an OS crash or power loss erases the directory whatever was synced, and a
// process crash loses nothing the kernel already has. Durability comes from
// the Replicator (S3), before commit.
//
// temp_store = MEMORY keeps sort and temporary tables off the file system.
func setPragmas(conn *sqlcipher.SQLiteConn) error {
	for _, p := range []string{
		"PRAGMA " + schemaName + ".journal_mode = WAL",
		"PRAGMA " + schemaName + ".synchronous = OFF",
		"PRAGMA temp_store = MEMORY",
		"PRAGMA foreign_keys = ON",
	} {
		if _, err := conn.Exec(p, nil); err != nil {
			return fmt.Errorf("keystore: %s: %w", p, translate(err))
		}
	}
	return nil
}

// translate maps the driver's "not a database" error to ErrWrongKey. The
// driver's message carries no secret, so other errors pass through.
func translate(err error) error {
	var se sqlcipher.Error
	if errors.As(err, &se) && se.Code == sqlcipher.ErrNotADB {
		return ErrWrongKey
	}
	return err
}

// sqliteConn is the driver's connection type, reached through
// (*sql.Conn).Raw for snapshots.
type sqliteConn = *sqlcipher.SQLiteConn

// snapshotSchema is the schema name of a snapshot being written.
const snapshotSchema = "snap"

// export copies the keystore into a new database file at path, keyed with
// the same key, and returns the change sequence number it holds. The
// caller holds the writer lock, so nothing commits in between.
func export(conn sqliteConn, path string, key secret.Bytes) (uint64, error) {
	seq, err := querySeq(conn)
	if err != nil {
		return 0, err
	}
	if err := attachKeyed(conn, path, snapshotSchema, key); err != nil {
		return 0, err
	}
	_, err = conn.Exec("SELECT sqlcipher_export('"+snapshotSchema+"', '"+schemaName+"')", nil)
	_, derr := conn.Exec("DETACH DATABASE "+snapshotSchema, nil)
	if err = errors.Join(err, derr); err != nil {
		return 0, fmt.Errorf("exporting: %w", err)
	}
	return seq, nil
}

// querySeq reads the change sequence number on a driver connection.
func querySeq(conn sqliteConn) (uint64, error) {
	rows, err := conn.Query("SELECT seq FROM "+schemaName+".meta WHERE id = 1", nil)
	if err != nil {
		return 0, fmt.Errorf("reading sequence: %w", err)
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		return 0, fmt.Errorf("reading sequence: %w", err)
	}
	seq, ok := dest[0].(int64)
	if !ok || seq < 0 {
		return 0, errors.New("reading sequence: malformed value")
	}
	return uint64(seq), nil
}
