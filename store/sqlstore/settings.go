package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"haven"
)

const practiceSettingsSQL = `SELECT settings FROM practice_settings WHERE practice_id = $1`

// PracticeSettings returns a practice's settings document (JSON, no PHI),
// or "" when the practice has set none.
func (d *DB) PracticeSettings(ctx context.Context, practiceID string) (string, error) {
	var s string
	err := d.queryRow(ctx, practiceSettingsSQL, practiceID).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return s, err
}

// PutPracticeSettings replaces a practice's settings document.
func (d *DB) PutPracticeSettings(ctx context.Context, practiceID, settings string) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO practice_settings (practice_id, settings, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (practice_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at`, practiceID, settings, d.now())
	return err
}

// CreateAlert stores an alert.
func (d *DB) CreateAlert(ctx context.Context, a *haven.Alert) error {
	a.CreatedAt = d.now()
	_, err := d.db.ExecContext(ctx, `INSERT INTO alerts (id, practice_id, rule, actor_id, patient_id, detail, audit_seq, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		a.ID, a.PracticeID, a.Rule, a.ActorID, a.PatientID, a.Detail, int64(a.AuditSeq), a.CreatedAt)
	return err
}

// Alerts returns a practice's alerts, open ones only unless all is set,
// newest first.
func (d *DB) Alerts(ctx context.Context, practiceID string, all bool) ([]*haven.Alert, error) {
	q := `SELECT id, practice_id, rule, actor_id, patient_id, detail, audit_seq, created_at, closed_at, closed_by FROM alerts WHERE practice_id = $1`
	if !all {
		q += ` AND closed_at IS NULL`
	}
	rows, err := d.db.QueryContext(ctx, q+` ORDER BY created_at DESC, id LIMIT 500`, practiceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var as []*haven.Alert
	for rows.Next() {
		var a haven.Alert
		var seq int64
		var closedAt sql.NullTime
		var closedBy sql.NullString
		if err := rows.Scan(&a.ID, &a.PracticeID, &a.Rule, &a.ActorID, &a.PatientID, &a.Detail, &seq, &a.CreatedAt, &closedAt, &closedBy); err != nil {
			return nil, err
		}
		a.AuditSeq, a.ClosedBy, a.CreatedAt = uint64(seq), closedBy.String, a.CreatedAt.UTC()
		if closedAt.Valid {
			t := closedAt.Time.UTC()
			a.ClosedAt = &t
		}
		as = append(as, &a)
	}
	return as, rows.Err()
}

// CloseAlert marks an alert handled, once.
func (d *DB) CloseAlert(ctx context.Context, practiceID, id, by string) error {
	res, err := d.db.ExecContext(ctx, `UPDATE alerts SET closed_at = $1, closed_by = $2 WHERE id = $3 AND practice_id = $4 AND closed_at IS NULL`, d.now(), by, id, practiceID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ENOTFOUND, "open alert %s not found", id)
	}
	return nil
}

// FindAlert returns one alert, or ENOTFOUND.
func (d *DB) FindAlert(ctx context.Context, id string) (*haven.Alert, error) {
	var a haven.Alert
	var seq int64
	var closedAt sql.NullTime
	var closedBy sql.NullString
	err := d.db.QueryRowContext(ctx, `SELECT id, practice_id, rule, actor_id, patient_id, detail, audit_seq, created_at, closed_at, closed_by FROM alerts WHERE id = $1`, id).
		Scan(&a.ID, &a.PracticeID, &a.Rule, &a.ActorID, &a.PatientID, &a.Detail, &seq, &a.CreatedAt, &closedAt, &closedBy)
	if err != nil {
		return nil, notFound(err, "alert", id)
	}
	a.AuditSeq, a.ClosedBy, a.CreatedAt = uint64(seq), closedBy.String, a.CreatedAt.UTC()
	if closedAt.Valid {
		t := closedAt.Time.UTC()
		a.ClosedAt = &t
	}
	return &a, nil
}
