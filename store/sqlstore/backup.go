package sqlstore

import (
	"context"

	"haven"
)

// SnapshotSQLite writes a consistent copy of an SQLite database to path
// (which must not exist) with VACUUM INTO: one read transaction, so
// writers carry on and the copy is the database as of one moment, WAL
// included. PostgreSQL is snapshotted by pg_dump instead.
func (d *DB) SnapshotSQLite(ctx context.Context, path string) error {
	if d.dialect != SQLite {
		return haven.Errorf(haven.EINVALID, "VACUUM INTO snapshots SQLite only")
	}
	if _, err := d.db.ExecContext(ctx, `VACUUM INTO $1`, path); err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot snapshot the SQLite database")
	}
	return nil
}

// Empty reports whether the database holds no table at all, so a restore
// may load into it without mixing with, or overwriting, existing data.
func (d *DB) Empty(ctx context.Context) (bool, error) {
	q := `SELECT count(*) FROM sqlite_master WHERE type = 'table'`
	if d.dialect == Postgres {
		q = `SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')`
	}
	var n int
	if err := d.db.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return false, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list the database's tables")
	}
	return n == 0, nil
}
