package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"haven"
)

// RecordRestoreDrill stores the evidence of one restore drill.
func (d *DB) RecordRestoreDrill(ctx context.Context, r haven.RestoreDrill) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO restore_drills (id, started_at, duration_ms, backup_created, backup_bytes, audit_logs, records_opened, ok, failure)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		r.ID, r.StartedAt.UTC(), r.Duration.Milliseconds(), r.BackupCreated.UTC(), r.BackupBytes, r.AuditLogs, r.RecordsOpened, r.OK, r.Failure)
	return err
}

// LatestRestoreDrill returns the most recent restore drill, or ENOTFOUND
// if none was ever run.
func (d *DB) LatestRestoreDrill(ctx context.Context) (haven.RestoreDrill, error) {
	var r haven.RestoreDrill
	var ms int64
	err := d.db.QueryRowContext(ctx, `SELECT id, started_at, duration_ms, backup_created, backup_bytes, audit_logs, records_opened, ok, failure
		FROM restore_drills ORDER BY started_at DESC, id DESC LIMIT 1`).
		Scan(&r.ID, &r.StartedAt, &ms, &r.BackupCreated, &r.BackupBytes, &r.AuditLogs, &r.RecordsOpened, &r.OK, &r.Failure)
	if errors.Is(err, sql.ErrNoRows) {
		return r, haven.Errorf(haven.ENOTFOUND, "no restore drill has been run")
	}
	if err != nil {
		return r, err
	}
	r.Duration = time.Duration(ms) * time.Millisecond
	r.StartedAt, r.BackupCreated = r.StartedAt.UTC(), r.BackupCreated.UTC()
	return r, nil
}
