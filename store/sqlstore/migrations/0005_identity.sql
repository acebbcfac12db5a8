-- Identity: sessions, second factors, single-use tokens, known devices and
-- sign-in throttling. No table here holds a secret a thief could use: a
-- session or email-link token is kept as its SHA-256, recovery codes as
-- user-bound SHA-256, TOTP secrets and invited emails sealed by the
-- service layer. Times are microseconds since the epoch (UTC), so both
-- engines compare them exactly in SQL.

-- Server-side sessions. The browser holds a 256-bit token; this table holds
-- its hash. challenged_us is set when the client's address or device
-- changed: the session then serves nothing until its owner re-authenticates.
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    token_hash    {{blob}} NOT NULL UNIQUE,
    user_id       TEXT NOT NULL REFERENCES users(id),
    practice_id   TEXT NOT NULL DEFAULT '',
    role          TEXT NOT NULL,
    created_us    BIGINT NOT NULL,
    last_seen_us  BIGINT NOT NULL,
    auth_us       BIGINT NOT NULL,
    mfa           BOOLEAN NOT NULL,
    factor        TEXT NOT NULL DEFAULT '',
    client_addr   TEXT NOT NULL DEFAULT '',
    device_hash   TEXT NOT NULL DEFAULT '',
    device_label  TEXT NOT NULL DEFAULT '',
    challenged_us BIGINT,
    revoked_us    BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id, revoked_us);

-- One TOTP authenticator per user. last_step only ever grows (a
-- compare-and-set UPDATE), so each code is accepted once. A pending secret
-- waits for its first code before it replaces the active one.
CREATE TABLE mfa_totp (
    user_id        TEXT PRIMARY KEY REFERENCES users(id),
    secret_sealed  {{blob}},
    last_step      BIGINT NOT NULL DEFAULT 0,
    confirmed_us   BIGINT,
    pending_sealed {{blob}},
    pending_us     BIGINT
);

-- Unused recovery codes, hashed with the user's id; a use deletes the row.
CREATE TABLE mfa_recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users(id),
    code_hash  {{blob}} NOT NULL,
    created_us BIGINT NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

-- Single-use, expiring tokens: a sign-in waiting for its second factor
-- (login), a password reset (reset), an invitation (invite), an email
-- verification (verify). used_us is set by one atomic UPDATE.
CREATE TABLE auth_tokens (
    token_hash   {{blob}} PRIMARY KEY,
    kind         TEXT NOT NULL,
    user_id      TEXT NOT NULL DEFAULT '',
    practice_id  TEXT NOT NULL DEFAULT '',
    role         TEXT NOT NULL DEFAULT '',
    email_sealed {{blob}},
    client_addr  TEXT NOT NULL DEFAULT '',
    device_hash  TEXT NOT NULL DEFAULT '',
    created_by   TEXT NOT NULL DEFAULT '',
    created_us   BIGINT NOT NULL,
    expires_us   BIGINT NOT NULL,
    used_us      BIGINT,
    attempts     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX auth_tokens_user ON auth_tokens (user_id, kind);
CREATE INDEX auth_tokens_expiry ON auth_tokens (expires_us);

-- Devices that completed password and second factor for a user, by the
-- hash of their device cookie. Throttling lets them through an account's
-- backoff, so strangers failing against an email cannot lock its owner out.
CREATE TABLE known_devices (
    device_hash {{blob}} NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id),
    created_us  BIGINT NOT NULL,
    PRIMARY KEY (device_hash, user_id)
);
CREATE INDEX known_devices_user ON known_devices (user_id);

-- Sign-in failure counts, shared by every node so that adding nodes does
-- not multiply an attacker's guesses. Keys are the throttle's own, kept as
-- bytes.
CREATE TABLE auth_throttle (
    key      {{blob}} PRIMARY KEY, -- may hold any byte, NUL included
    failures INTEGER NOT NULL,
    last_us  BIGINT NOT NULL
);
