-- The audit log: one append-only Merkle log per practice (log_id) and one
-- for the platform. Rows carry identifiers and codes, never PHI. Haven never
-- updates or deletes a row; `haven audit verify` detects anyone who does.
-- Times are microseconds since the epoch (UTC) so both engines round-trip
-- them exactly: the leaf hash covers them.
CREATE TABLE audit_events (
    log_id        TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    time_us       BIGINT NOT NULL,
    actor_id      TEXT NOT NULL,
    actor_role    TEXT NOT NULL,
    session_id    TEXT NOT NULL,
    action        TEXT NOT NULL,
    resource_kind TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    patient_id    TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    decision      TEXT NOT NULL,
    reason        TEXT NOT NULL,
    client_addr   TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    leaf_hash     {{blob}} NOT NULL,
    PRIMARY KEY (log_id, seq)
);
CREATE INDEX audit_events_patient ON audit_events (log_id, patient_id, seq);
CREATE INDEX audit_events_actor ON audit_events (log_id, actor_id, seq);

-- Signed checkpoints (tree heads) in the signed-note format.
CREATE TABLE audit_checkpoints (
    log_id TEXT NOT NULL,
    size   BIGINT NOT NULL,
    note   {{blob}} NOT NULL,
    PRIMARY KEY (log_id, size)
);
