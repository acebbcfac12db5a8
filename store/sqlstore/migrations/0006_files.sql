-- Files shared into a patient's chart (photos, documents, images). The
-- content lives in the blob store, encrypted in chunks under the patient's
-- data key; this row holds the sealed file name and what the server checked.
CREATE TABLE files (
    id           TEXT PRIMARY KEY,
    practice_id  TEXT NOT NULL REFERENCES practices(id),
    patient_id   TEXT NOT NULL REFERENCES patients(id),
    uploaded_by  TEXT NOT NULL,
    name_sealed  {{blob}} NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    blob_key     TEXT NOT NULL,
    created_at   {{timestamp}} NOT NULL
);
CREATE INDEX files_patient ON files (patient_id, created_at);

-- A legal hold forbids erasing a patient (crypto-shredding) while it lasts.
ALTER TABLE patients ADD COLUMN legal_hold BOOLEAN NOT NULL DEFAULT FALSE;
