package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"haven"
)

// Incidents and their letters. There is deliberately no delete here:
// incidents, their evidence and decisions are kept six years
// (haven.IncidentRetentionYears).

const incidentColumns = `id, practice_id, alert_id, state, decision, discovered_at, opened_by, contained_at, contained_by,
	decided_at, decided_by, affected, detail_sealed, created_at, updated_at`

func optTime(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

func scanIncident(s scanner) (*haven.Incident, error) {
	var i haven.Incident
	var contained, decided sql.NullTime
	var detail []byte
	var affected int64
	if err := s.Scan(&i.ID, &i.PracticeID, &i.AlertID, &i.State, &i.Decision, &i.Discovered, &i.OpenedBy, &contained, &i.ContainedBy,
		&decided, &i.DecidedBy, &affected, &detail, &i.CreatedAt, &i.UpdatedAt); err != nil {
		return nil, err
	}
	i.Detail, i.Affected = detail, int(affected)
	i.ContainedAt, i.DecidedAt = optTime(contained), optTime(decided)
	i.Discovered, i.CreatedAt, i.UpdatedAt = i.Discovered.UTC(), i.CreatedAt.UTC(), i.UpdatedAt.UTC()
	return &i, nil
}

// CreateIncident stores a new incident.
func (d *DB) CreateIncident(ctx context.Context, i *haven.Incident) error {
	i.CreatedAt = d.now()
	i.UpdatedAt = i.CreatedAt
	_, err := d.db.ExecContext(ctx, `INSERT INTO incidents (id, practice_id, alert_id, state, decision, discovered_at, opened_by,
		contained_at, contained_by, decided_at, decided_by, affected, detail_sealed, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		i.ID, i.PracticeID, i.AlertID, i.State, i.Decision, i.Discovered, i.OpenedBy, nullTime(i.ContainedAt), i.ContainedBy,
		nullTime(i.DecidedAt), i.DecidedBy, int64(i.Affected), []byte(i.Detail), i.CreatedAt, i.UpdatedAt)
	return err
}

// UpdateIncident writes an incident's state, decision and sealed detail,
// only if it is still as the caller read it (its updated_at): two officers
// editing at once cannot silently overwrite each other (ECONFLICT).
func (d *DB) UpdateIncident(ctx context.Context, i *haven.Incident) error {
	read := i.UpdatedAt
	now := d.now()
	if !now.After(read) {
		now = read.Add(time.Microsecond)
	}
	res, err := d.db.ExecContext(ctx, `UPDATE incidents SET state = $1, decision = $2, contained_at = $3, contained_by = $4,
		decided_at = $5, decided_by = $6, affected = $7, detail_sealed = $8, updated_at = $9
		WHERE id = $10 AND practice_id = $11 AND updated_at = $12`,
		i.State, i.Decision, nullTime(i.ContainedAt), i.ContainedBy, nullTime(i.DecidedAt), i.DecidedBy, int64(i.Affected),
		[]byte(i.Detail), now, i.ID, i.PracticeID, read)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ECONFLICT, "the incident changed since you opened it: reload and try again")
	}
	i.UpdatedAt = now
	return nil
}

// FindIncident returns one incident, or ENOTFOUND.
func (d *DB) FindIncident(ctx context.Context, id string) (*haven.Incident, error) {
	i, err := scanIncident(d.db.QueryRowContext(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = $1`, id))
	return i, notFound(err, "incident", id)
}

// PracticeIncidents returns a practice's incidents, newest first, at most limit.
func (d *DB) PracticeIncidents(ctx context.Context, practiceID string, limit int) ([]*haven.Incident, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE practice_id = $1
		ORDER BY created_at DESC LIMIT $2`, practiceID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.Incident
	for rows.Next() {
		i, err := scanIncident(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, rows.Err()
}

const letterColumns = `id, incident_id, practice_id, patient_id, state, body_sealed, created_at, updated_at, sent_at, returned_at`

func scanLetter(s scanner) (*haven.IncidentLetter, error) {
	var l haven.IncidentLetter
	var body []byte
	var sent, returned sql.NullTime
	if err := s.Scan(&l.ID, &l.IncidentID, &l.PracticeID, &l.PatientID, &l.State, &body, &l.CreatedAt, &l.UpdatedAt, &sent, &returned); err != nil {
		return nil, err
	}
	l.Body = body
	l.CreatedAt, l.UpdatedAt = l.CreatedAt.UTC(), l.UpdatedAt.UTC()
	l.SentAt, l.ReturnedAt = optTime(sent), optTime(returned)
	return &l, nil
}

// CreateIncidentLetter stores a drafted letter; one per patient per
// incident (a second is ECONFLICT).
func (d *DB) CreateIncidentLetter(ctx context.Context, l *haven.IncidentLetter) error {
	l.CreatedAt = d.now()
	l.UpdatedAt = l.CreatedAt
	_, err := d.db.ExecContext(ctx, `INSERT INTO incident_letters (id, incident_id, practice_id, patient_id, state, body_sealed, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, l.ID, l.IncidentID, l.PracticeID, l.PatientID, l.State, []byte(l.Body), l.CreatedAt, l.UpdatedAt)
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "this patient's letter is already drafted")
	}
	return err
}

// FindIncidentLetter returns one letter, or ENOTFOUND.
func (d *DB) FindIncidentLetter(ctx context.Context, id string) (*haven.IncidentLetter, error) {
	l, err := scanLetter(d.db.QueryRowContext(ctx, `SELECT `+letterColumns+` FROM incident_letters WHERE id = $1`, id))
	return l, notFound(err, "letter", id)
}

// IncidentLetters returns an incident's letters, oldest first.
func (d *DB) IncidentLetters(ctx context.Context, incidentID string) ([]*haven.IncidentLetter, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+letterColumns+` FROM incident_letters WHERE incident_id = $1 ORDER BY created_at, id`, incidentID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.IncidentLetter
	for rows.Next() {
		l, err := scanLetter(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// SetIncidentLetterState moves a letter from one of states to state,
// stamping when it was sent or returned; a letter in no state of from is
// ECONFLICT.
func (d *DB) SetIncidentLetterState(ctx context.Context, id, state string, from ...string) error {
	now := d.now()
	stamp := ""
	switch state {
	case haven.LetterSent:
		stamp = ", sent_at = $2"
	case haven.LetterReturned:
		stamp = ", returned_at = $2"
	}
	for _, f := range from {
		res, err := d.db.ExecContext(ctx, `UPDATE incident_letters SET state = $1, updated_at = $2`+stamp+` WHERE id = $3 AND state = $4`,
			state, now, id, f)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
	}
	return haven.Errorf(haven.ECONFLICT, "the letter cannot move to %s from where it is", state)
}
