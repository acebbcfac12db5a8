-- The vendor-registry version every node reads before it trusts a cached
-- egress decision: every change to vendors raises it in the same
-- transaction, so a vendor retired, or whose agreement was changed, by
-- any node or by the command line is refused by every node on its next
-- operation, not after a cache TTL.
CREATE TABLE vendor_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO vendor_state (id, version) VALUES (1, 0);
