-- Observations a patient records herself, from a device or an app through
-- the FHIR API (a blood pressure, a weight, a heart rate): part of her
-- record, shown with her results to her clinicians. What was measured,
-- the value and when are PHI, sealed by the service under the patient's
-- key; the row keeps only who the record is of, who recorded it (the
-- patient) and through which app, and when it was stored. Times are
-- microseconds since the epoch (UTC).
CREATE TABLE patient_observations (
    id             TEXT PRIMARY KEY,
    practice_id    TEXT NOT NULL REFERENCES practices(id),
    patient_id     TEXT NOT NULL REFERENCES patients(id),
    content_sealed {{blob}} NOT NULL,
    recorded_by    TEXT NOT NULL REFERENCES users(id),
    source         TEXT NOT NULL DEFAULT '',
    recorded_us    BIGINT NOT NULL
);
CREATE INDEX patient_observations_patient ON patient_observations (patient_id, recorded_us);
