-- The key-state row every node reads before it uses a cached data key:
-- version grows with every change to wrapped_keys (in the same
-- transaction), root_id names the root new keys are wrapped by. A shred or
-- a root rotation made by any node or by the command line is therefore
-- seen by every other node on its next use of a key, not after a cache TTL.
CREATE TABLE key_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL,
    root_id TEXT NOT NULL
);
INSERT INTO key_state (id, version, root_id) VALUES (1, 0, '');

-- When a patient was erased (crypto-shredded), so lists can say so
-- instead of failing to open the chart.
ALTER TABLE patients ADD COLUMN erased_at {{timestamp}};

-- The blob sweep asks whether a blob has a row.
CREATE INDEX files_blob_key ON files (blob_key);
