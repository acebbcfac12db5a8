package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"haven"
)

// ReplaceAvailability sets a clinician's weekly availability in one
// transaction.
func (d *DB) ReplaceAvailability(ctx context.Context, clinicianID string, blocks []haven.Availability) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM availability WHERE clinician_id = $1`, clinicianID); err != nil {
		return err
	}
	for _, b := range blocks {
		if _, err := tx.ExecContext(ctx, `INSERT INTO availability (id, practice_id, clinician_id, weekday, start_minute, end_minute, slot_minutes, time_zone)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, b.ID, b.PracticeID, clinicianID, b.Weekday, b.StartMinute, b.EndMinute, b.SlotMinutes, b.TimeZone); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// ClinicianAvailability returns a clinician's weekly blocks.
func (d *DB) ClinicianAvailability(ctx context.Context, clinicianID string) ([]haven.Availability, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, practice_id, clinician_id, weekday, start_minute, end_minute, slot_minutes, time_zone
		FROM availability WHERE clinician_id = $1 ORDER BY weekday, start_minute`, clinicianID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []haven.Availability
	for rows.Next() {
		var a haven.Availability
		if err := rows.Scan(&a.ID, &a.PracticeID, &a.ClinicianID, &a.Weekday, &a.StartMinute, &a.EndMinute, &a.SlotMinutes, &a.TimeZone); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

const visitColumns = `id, practice_id, patient_id, clinician_id, starts_at, ends_at, state, reason_sealed, booked_by, checked_in_at, admitted_at, ended_at, version, created_at`

func scanVisit(s scanner) (*haven.Visit, error) {
	var v haven.Visit
	var reason []byte
	var in, ad, en sql.NullTime
	if err := s.Scan(&v.ID, &v.PracticeID, &v.PatientID, &v.ClinicianID, &v.Start, &v.End, &v.State, &reason, &v.BookedBy, &in, &ad, &en, &v.Version, &v.CreatedAt); err != nil {
		return nil, err
	}
	v.Reason = reason
	v.Start, v.End, v.CreatedAt = v.Start.UTC(), v.End.UTC(), v.CreatedAt.UTC()
	for _, p := range []struct {
		src sql.NullTime
		dst **time.Time
	}{{in, &v.CheckedInAt}, {ad, &v.AdmittedAt}, {en, &v.EndedAt}} {
		if p.src.Valid {
			t := p.src.Time.UTC()
			*p.dst = &t
		}
	}
	return &v, nil
}

// CreateVisit books a visit; a live visit at the same clinician and start
// is ECONFLICT.
func (d *DB) CreateVisit(ctx context.Context, v *haven.Visit) error {
	v.CreatedAt, v.Version = d.now(), 1
	_, err := d.db.ExecContext(ctx, `INSERT INTO visits (id, practice_id, patient_id, clinician_id, starts_at, ends_at, state, reason_sealed, booked_by, version, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		v.ID, v.PracticeID, v.PatientID, v.ClinicianID, v.Start.UTC(), v.End.UTC(), v.State, []byte(v.Reason), v.BookedBy, v.Version, v.CreatedAt)
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "that time is already booked")
	}
	return err
}

// FindVisit returns one visit, or ENOTFOUND.
func (d *DB) FindVisit(ctx context.Context, id string) (*haven.Visit, error) {
	v, err := scanVisit(d.db.QueryRowContext(ctx, `SELECT `+visitColumns+` FROM visits WHERE id = $1`, id))
	if err != nil {
		return nil, notFound(err, "visit", id)
	}
	return v, nil
}

// MoveVisit changes a visit's state if it is still in state from at
// version v.Version: a compare-and-swap, so a cancelled visit cannot be
// admitted by a request that raced the cancel. It never moves a visit in
// time; RescheduleVisit alone does that (and re-arms the reminder).
func (d *DB) MoveVisit(ctx context.Context, v *haven.Visit, from string) error {
	now := d.now()
	res, err := d.db.ExecContext(ctx, `UPDATE visits SET state = $1,
		checked_in_at = CASE WHEN $1 = 'waiting' THEN $2 ELSE checked_in_at END,
		admitted_at = CASE WHEN $1 = 'admitted' THEN $2 ELSE admitted_at END,
		ended_at = CASE WHEN $1 IN ('ended', 'cancelled') THEN $2 ELSE ended_at END,
		version = version + 1
		WHERE id = $3 AND state = $4 AND version = $5`, v.State, now, v.ID, from, v.Version)
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "that time is already booked")
	}
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ECONFLICT, "visit %s changed meanwhile; reload and try again", v.ID)
	}
	v.Version++
	return nil
}

// PatientVisits returns a patient's visits by start time.
const patientVisitsSQL = `SELECT ` + visitColumns + ` FROM visits /*index:visits_patient*/ WHERE patient_id = $1 ORDER BY starts_at`

func (d *DB) PatientVisits(ctx context.Context, patientID string) ([]*haven.Visit, error) {
	return d.queryVisits(ctx, d.sql(patientVisitsSQL), patientID)
}

// ClinicianVisits returns a clinician's live visits starting in [from, to).
func (d *DB) ClinicianVisits(ctx context.Context, clinicianID string, from, to time.Time) ([]*haven.Visit, error) {
	return d.queryVisits(ctx, `SELECT `+visitColumns+` FROM visits WHERE clinician_id = $1 AND starts_at >= $2 AND starts_at < $3
		AND state <> 'cancelled' ORDER BY starts_at`, clinicianID, from.UTC(), to.UTC())
}

// PracticeVisits returns a practice's live visits starting in [from, to),
// every clinician's, for the front desk's schedule.
func (d *DB) PracticeVisits(ctx context.Context, practiceID string, from, to time.Time) ([]*haven.Visit, error) {
	return d.queryVisits(ctx, `SELECT `+visitColumns+` FROM visits WHERE practice_id = $1 AND starts_at >= $2 AND starts_at < $3
		AND state <> 'cancelled' ORDER BY starts_at, clinician_id`, practiceID, from.UTC(), to.UTC())
}

func (d *DB) queryVisits(ctx context.Context, q string, args ...any) ([]*haven.Visit, error) {
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.Visit
	for rows.Next() {
		v, err := scanVisit(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
