// Package sqlstore persists Haven's records in SQLite (embedded, the default)
// or PostgreSQL through database/sql, with one set of versioned migrations
// for both.
//
// # Adding a migration
//
// Write one file, migrations/NNNN_what_it_adds.sql, numbered one past the
// newest, in SQL both engines read the same way. Where the types differ,
// write a placeholder: {{blob}} (BLOB on SQLite, BYTEA on PostgreSQL) and
// {{timestamp}} (TIMESTAMP, TIMESTAMPTZ). They are expanded when the
// migrations are loaded; the file name is what schema_migrations records.
// Never edit a migration that has shipped: databases have applied it, and
// TestShippedMigrationsAreUnchanged pins the SQL each dialect ran.
// TestMigratedSchemasAgree migrates both engines and compares their schemas
// column by column. Files under migrations/sqlite/ or migrations/postgres/
// (the old per-dialect layout) are refused, never skipped.
//
// It stores and returns sealed values (haven.Sealed) and blind indexes as
// opaque bytes. It never holds a key and must never import the keyring: a
// thief of the database, its WAL or a dump gets ciphertext only.
// TestPackageBoundaries (imports_test.go at the module root) enforces that
// boundary.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"

	"haven"
)

// Dialect names the SQL engine behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is Haven's database. Queries use $1-style placeholders, which both
// engines accept, so one statement serves both dialects where the SQL agrees.
type DB struct {
	db      *sql.DB
	dialect Dialect
	dsn     string // redacted, for messages
	now     func() time.Time
	trips   *atomic.Int64 // see roundtrips.go
	stmts   sync.Map      // query → *sql.Stmt, SQLite's hot statements (see planner.go)

	stopCheckpoints chan struct{} // SQLite: stops checkpointWAL (see walcheckpoint.go)
	checkpointsDone chan struct{}
	stopOnce        sync.Once
}

// sqliteDriver is the SQLite driver, wrapped by Open to count round trips.
var sqliteDriver = &sqlite.Driver{}

// IsPostgresURL reports whether dsn selects PostgreSQL rather than SQLite.
func IsPostgresURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Redact returns dsn with any password removed, for logs and error messages.
func Redact(dsn string) string {
	if !IsPostgresURL(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(unparseable URL)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Open connects to the database named by dsn: a postgres:// URL, or else a
// path to an SQLite file. It checks the connection but does not migrate; a
// schema newer than this binary knows is refused here, before anything is
// written.
func Open(ctx context.Context, dsn string) (*DB, error) {
	d := &DB{dsn: Redact(dsn), now: func() time.Time { return time.Now().UTC() }, trips: new(atomic.Int64)}
	var sqliteConn driver.Connector // SQLite's, for the checkpointer's own connection
	var turn writeTurn              // SQLite's writers' turn, which the checkpointer takes too
	if IsPostgresURL(dsn) {
		if _, perr := url.Parse(dsn); perr != nil {
			return nil, haven.Errorf(haven.EINVALID, "database URL %s is not a valid URL", d.dsn)
		}
		d.dialect = Postgres
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, haven.Wrap(haven.EINVALID, err, fmt.Sprintf("database URL %s is not valid", d.dsn))
		}
		for k, v := range postgresRuntimeParams { // see planner.go
			cfg.RuntimeParams[k] = v
		}
		d.db = sql.OpenDB(countingConnector{stdlib.GetConnector(*cfg), d.trips, nil})
		d.db.SetMaxOpenConns(20)
		d.db.SetMaxIdleConns(20)
		d.db.SetConnMaxIdleTime(5 * time.Minute)
	} else {
		d.dialect = SQLite
		path := strings.TrimPrefix(dsn, "sqlite://")
		if dir := filepath.Dir(path); dir != "" {
			if _, serr := os.Stat(dir); serr != nil {
				return nil, haven.Errorf(haven.EINVALID, "database directory %s does not exist", dir)
			}
		}
		// Create the file owner-only before SQLite does, so the database and
		// its WAL (which SQLite creates with the main file's mode) are 0600.
		if f, ferr := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); ferr == nil {
			f.Close()
		}
		// WAL lets readers run beside the one writer; synchronous=FULL makes
		// a commit durable before it is acknowledged, so a crash or power loss
		// loses nothing a client was told succeeded; secure_delete overwrites
		// freed pages, so a shredded key does not linger in the file;
		// _txlock=immediate takes the write lock at BEGIN, avoiding deadlocks
		// between transactions that would upgrade from reading to writing;
		// the WAL is checkpointed beside the commits, not in them
		// (walcheckpoint.go).
		q := url.Values{}
		for _, p := range []string{"journal_mode(WAL)", "foreign_keys(1)", "busy_timeout(10000)", "synchronous(FULL)", "secure_delete(1)", "wal_autocheckpoint(0)"} {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
		conn, err := connectorFor(sqliteDriver, "file:"+path+"?"+q.Encode())
		if err != nil {
			return nil, haven.Wrap(haven.EINVALID, err, "cannot open SQLite database "+path)
		}
		sqliteConn = conn
		turn = newWriteTurn()
		d.db = sql.OpenDB(countingConnector{conn, d.trips, turn})
		// Keep every connection idle rather than closing it: opening one
		// re-runs the pragmas, which under load cost more than the queries.
		d.db.SetMaxOpenConns(8)
		d.db.SetMaxIdleConns(8)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := d.db.PingContext(pctx); err != nil {
		d.db.Close()
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, fmt.Sprintf("cannot reach database %s: %s", d.dsn, shortCause(err)))
	}
	if _, _, err := d.SchemaVersion(ctx); err != nil {
		d.db.Close()
		return nil, err
	}
	if d.dialect == SQLite {
		d.stopCheckpoints, d.checkpointsDone = make(chan struct{}), make(chan struct{})
		go d.checkpointWAL(sql.OpenDB(sqliteConn), turn, d.stopCheckpoints, d.checkpointsDone)
	}
	return d, nil
}

// shortCause returns the last clause of a driver error, which names the
// reason (connection refused, no such host, permission denied) without the
// driver's noise. Driver errors carry no PHI: they describe connections.
func shortCause(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && i+2 < len(s) {
		return s[i+2:]
	}
	return s
}

// Close closes the database.
func (d *DB) Close() error {
	if d.stopCheckpoints != nil {
		d.stopOnce.Do(func() { close(d.stopCheckpoints) })
		<-d.checkpointsDone
	}
	d.stmts.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	return d.db.Close()
}

// Dialect reports which engine d speaks to.
func (d *DB) Dialect() Dialect { return d.dialect }

// SQL returns the underlying pool for packages in this module that own
// their own tables through this store (tests and benchmarks use it too).
func (d *DB) SQL() *sql.DB { return d.db }

// SetClock replaces the clock used for created_at stamps (tests only).
func (d *DB) SetClock(now func() time.Time) { d.now = now }

// isUniqueViolation reports whether err is a unique-constraint violation on
// either engine, so callers can answer ECONFLICT instead of EINTERNAL.
func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || strings.Contains(s, "SQLSTATE 23505")
}

// notFound converts sql.ErrNoRows into ENOTFOUND naming the kind and id.
func notFound(err error, kind, id string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return haven.Errorf(haven.ENOTFOUND, "%s %s not found", kind, id)
	}
	return err
}
