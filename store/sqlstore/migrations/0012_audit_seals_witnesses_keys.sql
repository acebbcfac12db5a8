-- Authenticated audit entries, witness acknowledgements and audit key
-- hand-overs.
--
-- seal: on the last row of every committed batch, the signature block of
-- the checkpoint of the tree that batch completed, signed with the audit
-- key (which is never in the database). Other rows, and rows written
-- before this migration, hold NULL; those are vouched for by the
-- checkpoints signed since.
ALTER TABLE audit_events ADD COLUMN seal {{blob}};

-- What each witness acknowledged: the checkpoint with its cosignatures.
-- A witness that later holds less than it acknowledged went missing or
-- backwards, and serve and verify say so.
CREATE TABLE audit_witnessed (
    log_id  TEXT NOT NULL,
    witness TEXT NOT NULL,
    size    BIGINT NOT NULL,
    note    {{blob}} NOT NULL,
    PRIMARY KEY (log_id, witness, size)
);

-- Audit key rotations: a note signed by the retiring and the new key
-- naming the size each log had reached. One hand-over per retiring key.
CREATE TABLE audit_key_handovers (
    from_key TEXT PRIMARY KEY,
    note     {{blob}} NOT NULL
);
