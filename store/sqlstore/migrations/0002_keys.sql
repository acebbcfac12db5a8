-- Wrapped keys of the key hierarchy. Each row is a key encrypted under its
-- parent, never a key in the clear; destroyed keys keep their row with the
-- wrapped bytes gone, so a shredded patient's key is never re-created.
CREATE TABLE wrapped_keys (
    id          TEXT PRIMARY KEY,
    practice_id TEXT NOT NULL,
    kind        TEXT NOT NULL,
    patient_id  TEXT NOT NULL DEFAULT '',
    version     INTEGER NOT NULL,
    wrapped_by  TEXT NOT NULL,
    wrapped     {{blob}},
    state       TEXT NOT NULL,
    created_at  {{timestamp}} NOT NULL,
    UNIQUE (practice_id, kind, patient_id, version)
);
CREATE INDEX wrapped_keys_wrapped_by ON wrapped_keys (wrapped_by);
