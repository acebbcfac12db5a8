package sqlstore

import (
	"context"
	"database/sql"

	"haven"
)

const accessRequestColumns = `id, practice_id, patient_id, detail_sealed, received_at, due_at, recorded_by, fulfilled_at, fulfilled_by, created_at`

func scanAccessRequest(s scanner) (*haven.AccessRequest, error) {
	var r haven.AccessRequest
	var detail []byte
	var fulfilled sql.NullTime
	var by sql.NullString
	if err := s.Scan(&r.ID, &r.PracticeID, &r.PatientID, &detail, &r.Received, &r.Due, &r.RecordedBy, &fulfilled, &by, &r.CreatedAt); err != nil {
		return nil, err
	}
	r.Detail, r.FulfilledBy = detail, by.String
	r.Received, r.Due, r.CreatedAt = r.Received.UTC(), r.Due.UTC(), r.CreatedAt.UTC()
	if fulfilled.Valid {
		t := fulfilled.Time.UTC()
		r.Fulfilled = &t
	}
	return &r, nil
}

// CreateAccessRequest stores a new written request for access.
func (d *DB) CreateAccessRequest(ctx context.Context, r *haven.AccessRequest) error {
	r.CreatedAt = d.now()
	_, err := d.db.ExecContext(ctx, `INSERT INTO access_requests (id, practice_id, patient_id, detail_sealed, received_at, due_at, recorded_by, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, r.ID, r.PracticeID, r.PatientID, []byte(r.Detail), r.Received, r.Due, r.RecordedBy, r.CreatedAt)
	return err
}

// FindAccessRequest returns one request, or ENOTFOUND.
func (d *DB) FindAccessRequest(ctx context.Context, id string) (*haven.AccessRequest, error) {
	r, err := scanAccessRequest(d.db.QueryRowContext(ctx, `SELECT `+accessRequestColumns+` FROM access_requests WHERE id = $1`, id))
	return r, notFound(err, "access request", id)
}

// PracticeAccessRequests returns a practice's requests: the open ones by
// due date first, then the fulfilled ones, newest first, at most limit.
func (d *DB) PracticeAccessRequests(ctx context.Context, practiceID string, limit int) ([]*haven.AccessRequest, error) {
	return d.queryAccessRequests(ctx, `SELECT `+accessRequestColumns+` FROM access_requests WHERE practice_id = $1
		ORDER BY CASE WHEN fulfilled_at IS NULL THEN 0 ELSE 1 END, CASE WHEN fulfilled_at IS NULL THEN due_at END, received_at DESC LIMIT $2`, practiceID, limit)
}

// PatientAccessRequests returns a patient's requests, newest first.
func (d *DB) PatientAccessRequests(ctx context.Context, patientID string) ([]*haven.AccessRequest, error) {
	return d.queryAccessRequests(ctx, `SELECT `+accessRequestColumns+` FROM access_requests WHERE patient_id = $1 ORDER BY received_at DESC`, patientID)
}

func (d *DB) queryAccessRequests(ctx context.Context, q string, args ...any) ([]*haven.AccessRequest, error) {
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.AccessRequest
	for rows.Next() {
		r, err := scanAccessRequest(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// FulfilAccessRequest marks an open request fulfilled; a request already
// fulfilled is ECONFLICT.
func (d *DB) FulfilAccessRequest(ctx context.Context, id, by string) error {
	res, err := d.db.ExecContext(ctx, `UPDATE access_requests SET fulfilled_at = $1, fulfilled_by = $2 WHERE id = $3 AND fulfilled_at IS NULL`, d.now(), by, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ECONFLICT, "this request is already answered")
	}
	return nil
}
