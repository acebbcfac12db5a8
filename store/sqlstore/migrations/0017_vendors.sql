-- The vendor registry: every outside system Haven may send something to,
-- with the business associate agreement (BAA) that lets it receive PHI.
-- practice_id is '' for the platform's own (the mail relay, the object
-- store, the KMS the server is configured with). Nothing here is PHI.
-- Dates of the agreement are YYYY-MM-DD text (a calendar day, in no time
-- zone); other times are microseconds since the epoch (UTC).
CREATE TABLE vendors (
    id           TEXT PRIMARY KEY,
    practice_id  TEXT NOT NULL,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    endpoint     TEXT NOT NULL,
    phi          TEXT NOT NULL,
    baa_signed   TEXT NOT NULL DEFAULT '',
    baa_expires  TEXT NOT NULL DEFAULT '',
    baa_document TEXT NOT NULL DEFAULT '',
    contact      TEXT NOT NULL DEFAULT '',
    retired_us   BIGINT,
    reminded_us  BIGINT,
    created_us   BIGINT NOT NULL,
    updated_us   BIGINT NOT NULL,
    UNIQUE (practice_id, name)
);
-- The reminder loop looks for agreements ending soon whose admins have
-- not been told.
CREATE INDEX vendors_baa_due ON vendors (baa_expires) WHERE reminded_us IS NULL AND retired_us IS NULL AND baa_expires <> '';
