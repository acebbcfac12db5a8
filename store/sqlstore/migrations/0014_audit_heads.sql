-- The head of each audit log: its size (the next sequence number) and the
-- leaf hash of its last row. An append reads it (on PostgreSQL FOR UPDATE),
-- checks it against the row at the log's end, adds its rows and moves the
-- head, all in one transaction. So an append costs the same in a log of a
-- thousand events as in one of a billion (it never asks for MAX(seq), which
-- an engine with stale statistics may answer by reading the whole log), and
-- appends from several nodes queue on this one row instead of racing.
CREATE TABLE audit_heads (
    log_id    TEXT PRIMARY KEY,
    size      BIGINT NOT NULL,
    last_leaf {{blob}}
);

-- Every log that has rows gets its head from its last row.
INSERT INTO audit_heads (log_id, size, last_leaf)
SELECT e.log_id, e.seq + 1, e.leaf_hash
FROM audit_events e
JOIN (SELECT log_id, MAX(seq) AS seq FROM audit_events GROUP BY log_id) m ON m.log_id = e.log_id AND m.seq = e.seq;
