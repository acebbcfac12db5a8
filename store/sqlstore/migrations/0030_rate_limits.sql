-- Request counts for the rate limits in front of the web server, shared by
-- every node on this database: one row per key (a client address's group
-- or a signed-in user) and fixed window, counted up by an upsert. Keys hold
-- no PHI; rows of past windows are deleted as new windows begin.
CREATE TABLE rate_limits (
    key       {{blob}} NOT NULL,
    window_us BIGINT NOT NULL,
    hits      INTEGER NOT NULL,
    PRIMARY KEY (key, window_us)
);
CREATE INDEX rate_limits_window ON rate_limits (window_us);
