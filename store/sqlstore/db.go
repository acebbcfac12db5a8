// Package sqlstore persists Haven's records in SQLite (embedded, the default)
// or PostgreSQL through database/sql, with versioned migrations per dialect.
//
// It stores and returns sealed values (haven.Sealed) and blind indexes as
// opaque bytes. It never holds a key and must never import the keyring: a
// thief of the database, its WAL or a dump gets ciphertext only. A test in
// this package enforces that boundary.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver

	"haven"
)

// Dialect names the SQL engine behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

//go:embed migrations
var migrationFS embed.FS

// DB is Haven's database. Queries use $1-style placeholders, which both
// engines accept, so one statement serves both dialects where the SQL agrees.
type DB struct {
	db      *sql.DB
	dialect Dialect
	dsn     string // redacted, for messages
	now     func() time.Time
}

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
	d := &DB{dsn: Redact(dsn), now: func() time.Time { return time.Now().UTC() }}
	var err error
	if IsPostgresURL(dsn) {
		if _, perr := url.Parse(dsn); perr != nil {
			return nil, haven.Errorf(haven.EINVALID, "database URL %s is not a valid URL", d.dsn)
		}
		d.dialect = Postgres
		d.db, err = sql.Open("pgx", dsn)
		if err != nil {
			return nil, haven.Wrap(haven.EINVALID, err, fmt.Sprintf("database URL %s is not valid", d.dsn))
		}
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
		// between transactions that would upgrade from reading to writing.
		q := url.Values{}
		for _, p := range []string{"journal_mode(WAL)", "foreign_keys(1)", "busy_timeout(10000)", "synchronous(FULL)", "secure_delete(1)"} {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
		d.db, err = sql.Open("sqlite", "file:"+path+"?"+q.Encode())
		if err != nil {
			return nil, haven.Wrap(haven.EINVALID, err, "cannot open SQLite database "+path)
		}
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
func (d *DB) Close() error { return d.db.Close() }

// Dialect reports which engine d speaks to.
func (d *DB) Dialect() Dialect { return d.dialect }

// SQL returns the underlying pool for packages in this module that own
// their own tables through this store (tests and benchmarks use it too).
func (d *DB) SQL() *sql.DB { return d.db }

// SetClock replaces the clock used for created_at stamps (tests only).
func (d *DB) SetClock(now func() time.Time) { d.now = now }

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations of d's dialect in order.
func (d *DB) migrations() ([]migration, error) {
	dir := "migrations/" + string(d.dialect)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", e.Name())
		}
		b, err := fs.ReadFile(migrationFS, dir+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	// Numbers are handed to parallel lines of work ahead of time, so one
	// may land before a lower one: a gap is allowed, a duplicate is not.
	// Each version is applied once, whatever order they arrive in.
	for i, m := range ms {
		if m.version < 1 || i > 0 && m.version == ms[i-1].version {
			return nil, fmt.Errorf("migration %s: version %d is not a new positive number", m.name, m.version)
		}
	}
	return ms, nil
}

// LatestVersion is the newest schema version this binary knows.
func (d *DB) LatestVersion() int {
	ms, err := d.migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// SchemaVersion returns the database's schema version and the newest this
// binary knows. A database newer than the binary is an EINVALID error: an
// old binary must never write to a schema it does not understand.
func (d *DB) SchemaVersion(ctx context.Context) (current, latest int, err error) {
	latest = d.LatestVersion()
	exists, err := d.hasMigrationsTable(ctx)
	if err != nil {
		return 0, latest, err
	}
	if !exists {
		return 0, latest, nil
	}
	var v sql.NullInt64
	if err := d.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, latest, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read the schema version")
	}
	current = int(v.Int64)
	if current > latest {
		return current, latest, haven.Errorf(haven.EINVALID,
			"database schema version %d is newer than this haven binary knows (%d): upgrade haven before using this database", current, latest)
	}
	return current, latest, nil
}

// hasMigrationsTable reports whether the schema_migrations table exists.
func (d *DB) hasMigrationsTable(ctx context.Context) (bool, error) {
	var exists bool
	var err error
	switch d.dialect {
	case SQLite:
		err = d.db.QueryRowContext(ctx, `SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&exists)
	default:
		err = d.db.QueryRowContext(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists)
	}
	if err != nil {
		return false, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read the schema version")
	}
	return exists, nil
}

// Migrate applies every pending migration, each in its own transaction. On
// PostgreSQL an advisory lock keeps several nodes starting at once from
// applying the same migration twice. It returns the versions applied.
func (d *DB) Migrate(ctx context.Context) ([]int, error) {
	ms, err := d.migrations()
	if err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "embedded migrations are malformed")
	}
	// Look before creating: a role that may use the schema but not create
	// in it (a common least-privilege setup on PostgreSQL) must be able to
	// start on a current schema, and CREATE TABLE IF NOT EXISTS needs the
	// CREATE privilege even when the table is there.
	exists, err := d.hasMigrationsTable(ctx)
	if err != nil {
		return nil, err
	}
	if !exists {
		if _, err := d.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot create the schema_migrations table")
		}
	}
	var applied []int
	for _, m := range ms {
		done, err := d.applyOne(ctx, m)
		if err != nil {
			return applied, haven.Wrap(haven.EINTERNAL, err, fmt.Sprintf("migration %s failed", m.name))
		}
		if done {
			applied = append(applied, m.version)
		}
	}
	if _, _, err := d.SchemaVersion(ctx); err != nil {
		return applied, err
	}
	return applied, nil
}

func (d *DB) applyOne(ctx context.Context, m migration) (bool, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	if d.dialect == Postgres {
		// Held to the end of the transaction; the constant names Haven's migrations.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7262667)`); err != nil {
			return false, err
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, m.version).Scan(&n); err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
		m.version, m.name, d.now().Format(time.RFC3339)); err != nil {
		return false, err
	}
	return true, tx.Commit()
}

// Ready reports whether the database answers and its schema is current;
// /readyz uses it so a load balancer only sends traffic to a usable node.
func (d *DB) Ready(ctx context.Context) error {
	cur, latest, err := d.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if cur != latest {
		return haven.Errorf(haven.EUNAVAILABLE, "schema version %d, binary expects %d: run haven migrate", cur, latest)
	}
	return nil
}

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
