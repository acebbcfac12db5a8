-- Restore drills: the evidence of each `haven backup drill` (the latest
-- backup restored into a scratch place, its audit log verified, a sample
-- of records opened), kept for the compliance officer's page. Platform
-- wide: one backup holds every practice. Counts and times only, no PHI.
CREATE TABLE restore_drills (
    id             TEXT PRIMARY KEY,
    started_at     {{timestamp}} NOT NULL,
    duration_ms    BIGINT NOT NULL,
    backup_created {{timestamp}} NOT NULL,
    backup_bytes   BIGINT NOT NULL,
    audit_logs     INTEGER NOT NULL,
    records_opened INTEGER NOT NULL,
    ok             BOOLEAN NOT NULL,
    failure        TEXT NOT NULL
);
CREATE INDEX restore_drills_started ON restore_drills (started_at);
