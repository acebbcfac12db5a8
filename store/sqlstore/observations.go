package sqlstore

import (
	"context"

	"haven"
)

// AddPatientObservation stores an observation a patient recorded.
func (d *DB) AddPatientObservation(ctx context.Context, o *haven.PatientObservation) error {
	o.Recorded = d.now()
	_, err := d.db.ExecContext(ctx, `INSERT INTO patient_observations (id, practice_id, patient_id, content_sealed, recorded_by, source, recorded_us)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		o.ID, o.PracticeID, o.PatientID, []byte(o.Content), o.RecordedBy, o.Source, micros(o.Recorded))
	return err
}

// PatientObservations returns the observations a patient recorded,
// oldest first.
func (d *DB) PatientObservations(ctx context.Context, patientID string) ([]*haven.PatientObservation, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, practice_id, patient_id, content_sealed, recorded_by, source, recorded_us
		FROM patient_observations WHERE patient_id = $1 ORDER BY recorded_us, id LIMIT 5000`, patientID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.PatientObservation
	for rows.Next() {
		var o haven.PatientObservation
		var content []byte
		var recorded int64
		if err := rows.Scan(&o.ID, &o.PracticeID, &o.PatientID, &content, &o.RecordedBy, &o.Source, &recorded); err != nil {
			return nil, err
		}
		o.Content, o.Recorded = content, fromMicros(recorded)
		out = append(out, &o)
	}
	return out, rows.Err()
}

// PatientObservationOwner returns the patient of a recorded observation,
// by its id (the FHIR API's read of one Observation); ENOTFOUND when none
// has it.
func (d *DB) PatientObservationOwner(ctx context.Context, id string) (string, error) {
	var patientID string
	err := d.db.QueryRowContext(ctx, `SELECT patient_id FROM patient_observations WHERE id = $1`, id).Scan(&patientID)
	if err != nil {
		return "", notFound(err, "observation", id)
	}
	return patientID, nil
}
