-- Visit reminders and waiting-room messages.
--
-- reminded_us records that a visit's reminder went out, set by one
-- compare-and-set UPDATE so that two nodes (or a restart) never send it
-- twice. Microseconds since the epoch (UTC), as in the identity tables.
ALTER TABLE visits ADD COLUMN reminded_us BIGINT;

-- Short messages between the care team and a patient about one visit
-- (typically "running ten minutes late" to someone in the waiting room).
-- The body is PHI, sealed by the service under the patient's key with the
-- message id in its associated data; everything else is what delivery needs.
CREATE TABLE visit_messages (
    id          TEXT PRIMARY KEY,
    practice_id TEXT NOT NULL REFERENCES practices(id),
    visit_id    TEXT NOT NULL REFERENCES visits(id),
    patient_id  TEXT NOT NULL REFERENCES patients(id),
    sender_id   TEXT NOT NULL REFERENCES users(id),
    body_sealed {{blob}} NOT NULL,
    created_us  BIGINT NOT NULL
);
CREATE INDEX visit_messages_visit ON visit_messages (visit_id, created_us);
