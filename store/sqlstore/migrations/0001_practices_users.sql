-- Practices (tenants) and their users. Email and name are sealed by the
-- service layer before they reach this table; email_index is a blind index.
CREATE TABLE practices (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    practice_id   TEXT REFERENCES practices(id),
    role          TEXT NOT NULL,
    email_index   {{blob}} NOT NULL,
    email_sealed  {{blob}} NOT NULL,
    name_sealed   {{blob}},
    password_hash TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    {{timestamp}} NOT NULL,
    CHECK ((role = 'platform_operator') = (practice_id IS NULL))
);
CREATE UNIQUE INDEX users_practice_email ON users (COALESCE(practice_id, ''), email_index);
CREATE INDEX users_practice ON users (practice_id);
