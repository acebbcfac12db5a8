-- Written requests for access to a record (HIPAA 164.524): when each was
-- received and is due (30 days later), who recorded and who fulfilled it.
-- Whom the copy goes to is sealed under the patient's key (detail_sealed).
CREATE TABLE access_requests (
    id            TEXT PRIMARY KEY,
    practice_id   TEXT NOT NULL REFERENCES practices(id),
    patient_id    TEXT NOT NULL REFERENCES patients(id),
    detail_sealed {{blob}} NOT NULL,
    received_at   {{timestamp}} NOT NULL,
    due_at        {{timestamp}} NOT NULL,
    recorded_by   TEXT NOT NULL,
    fulfilled_at  {{timestamp}},
    fulfilled_by  TEXT,
    created_at    {{timestamp}} NOT NULL
);
CREATE INDEX access_requests_practice ON access_requests (practice_id, due_at);
CREATE INDEX access_requests_patient ON access_requests (patient_id, received_at);
