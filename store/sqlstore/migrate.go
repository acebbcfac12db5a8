package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"haven"
)

// migrationFS holds the schema, one file per version for both dialects.
//
//go:embed migrations
var migrationFS embed.FS

// dialectTypes are the words the two dialects' schemas differ in, named by
// the placeholders a migration writes instead of them. Anything else in a
// migration is SQL both engines read the same way; a difference that a
// type cannot carry does not belong in a migration.
var dialectTypes = map[Dialect]map[string]string{
	SQLite:   {"blob": "BLOB", "timestamp": "TIMESTAMP"},
	Postgres: {"blob": "BYTEA", "timestamp": "TIMESTAMPTZ"},
}

type migration struct {
	version int
	name    string // the file name, recorded in schema_migrations
	sql     string // expanded for one dialect
}

// migrations returns the embedded migrations, expanded for d's dialect, in
// order.
func (d *DB) migrations() ([]migration, error) {
	return loadMigrations(migrationFS, d.dialect)
}

// loadMigrations reads migrations/NNNN_name.sql from fsys and expands each
// for dialect. It refuses anything else in that folder, a subfolder above
// all: migrations were once written per dialect under migrations/sqlite/
// and migrations/postgres/, and a file added there now would be silently
// skipped, leaving the schema without it.
func loadMigrations(fsys fs.FS, dialect Dialect) ([]migration, error) {
	types, ok := dialectTypes[dialect]
	if !ok {
		return nil, fmt.Errorf("no migrations for dialect %q", dialect)
	}
	const dir = "migrations"
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		if e.IsDir() {
			var names []string
			fs.WalkDir(fsys, path.Join(dir, e.Name()), func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					names = append(names, path.Base(p))
				}
				return nil
			})
			return nil, fmt.Errorf("%s/%s/ (%s): migrations are no longer written per dialect and this folder is not read; write each once as %s/NNNN_name.sql with {{blob}} and {{timestamp}} for the types that differ",
				dir, e.Name(), strings.Join(names, ", "), dir)
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", e.Name())
		}
		b, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		text, err := expandTypes(string(b), types)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: text})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if i > 0 && m.version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", ms[i-1].name, m.name, m.version)
		}
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// expandTypes replaces every {{name}} in text with types[name]. An unknown
// name or a stray brace pair is an error, so a typo cannot reach an engine
// as SQL that one of them happens to accept.
func expandTypes(text string, types map[string]string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(text, "{{")
		if i < 0 {
			break
		}
		j := strings.Index(text[i:], "}}")
		if j < 0 {
			return "", fmt.Errorf("unclosed {{ in %q", firstLine(text[i:]))
		}
		name := text[i+2 : i+j]
		v, ok := types[name]
		if !ok {
			known := make([]string, 0, len(types))
			for k := range types {
				known = append(known, "{{"+k+"}}")
			}
			sort.Strings(known)
			return "", fmt.Errorf("unknown placeholder {{%s}} (known: %s)", name, strings.Join(known, ", "))
		}
		b.WriteString(text[:i])
		b.WriteString(v)
		text = text[i+j+2:]
	}
	b.WriteString(text)
	out := b.String()
	if i := strings.Index(out, "}}"); i >= 0 {
		return "", fmt.Errorf("stray }} in %q", firstLine(out[max(0, i-40):]))
	}
	return out, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// LatestVersion is the newest schema version this binary knows (0 if its
// embedded migrations are malformed, which SchemaVersion reports).
func (d *DB) LatestVersion() int {
	ms, err := d.migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// SchemaVersion returns the database's schema version and the newest this
// binary knows. A database newer than the binary is an EINVALID error: an
// old binary must never write to a schema it does not understand.
func (d *DB) SchemaVersion(ctx context.Context) (current, latest int, err error) {
	ms, err := d.migrations()
	if err != nil {
		return 0, 0, haven.Wrap(haven.EINTERNAL, err, "embedded migrations are malformed")
	}
	latest = len(ms)
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
	if len(applied) > 0 {
		// New tables and indexes, and rows a migration moved, have no
		// statistics yet (see planner.go).
		if err := d.Analyze(ctx); err != nil {
			return applied, err
		}
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
