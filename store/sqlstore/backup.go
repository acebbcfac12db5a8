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

// DropLoaded takes back a PostgreSQL load that a restore could not finish
// (the data would not open: a missing or wrong key, most often): it drops
// every table and sequence outside the system schemas, in one
// transaction, so the same restore can run again into an empty target.
// Only a restore calls it, and only on a database that Empty found empty
// before the load: everything there is what the load put there. SQLite's
// restore removes the file instead.
func (d *DB) DropLoaded(ctx context.Context) error {
	if d.dialect != Postgres {
		return haven.Errorf(haven.EINVALID, "only a PostgreSQL load is taken back by dropping it")
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot take back the restore")
	}
	defer tx.Rollback()
	// Tables first: a table's own sequences go with it (IF EXISTS below).
	rows, err := tx.QueryContext(ctx, `SELECT 'TABLE', format('%I.%I', table_schema, table_name) FROM information_schema.tables
		WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'
		UNION ALL SELECT 'VIEW', format('%I.%I', table_schema, table_name) FROM information_schema.tables
		WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'VIEW'
		UNION ALL SELECT 'SEQUENCE', format('%I.%I', sequence_schema, sequence_name) FROM information_schema.sequences
		WHERE sequence_schema NOT IN ('pg_catalog', 'information_schema')
		ORDER BY 1 DESC`)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot list what the restore loaded")
	}
	var drops []string
	for rows.Next() {
		var kind, n string
		if err := rows.Scan(&kind, &n); err != nil {
			rows.Close()
			return haven.Wrap(haven.EUNAVAILABLE, err, "cannot list what the restore loaded")
		}
		drops = append(drops, `DROP `+kind+` IF EXISTS `+n+` CASCADE`)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot list what the restore loaded")
	}
	for _, q := range drops {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return haven.Wrap(haven.EUNAVAILABLE, err, "cannot take back the restore")
		}
	}
	if err := tx.Commit(); err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot take back the restore")
	}
	return nil
}
