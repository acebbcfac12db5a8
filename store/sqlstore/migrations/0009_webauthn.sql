-- WebAuthn passkeys and security keys. Nothing here lets a thief of the
-- database sign in: a credential's public key and signature counter verify
-- signatures, they cannot make them. The nickname a user gives a key may
-- name a person or a device, so the service layer seals it before it
-- arrives. Times are microseconds since the epoch (UTC).

-- One row per registered authenticator. credential_id is unique across
-- every account, so an authenticator cannot be registered to a second
-- account under an id another account already holds (WebAuthn §7.1 step
-- 22). sign_count only moves forward, by a compare-and-set UPDATE, so of
-- two assertions racing with one counter value at most one is accepted
-- and a cloned key that lags behind is refused.
CREATE TABLE webauthn_credentials (
    id              TEXT PRIMARY KEY,
    credential_id   {{blob}} NOT NULL UNIQUE,
    user_id         TEXT NOT NULL REFERENCES users(id),
    practice_id     TEXT NOT NULL DEFAULT '',
    public_key      {{blob}} NOT NULL,
    sign_count      BIGINT NOT NULL DEFAULT 0,
    transports      TEXT NOT NULL DEFAULT '',
    aaguid          {{blob}},
    attestation_fmt TEXT NOT NULL DEFAULT '',
    user_verified   BOOLEAN NOT NULL DEFAULT FALSE,
    backup_eligible BOOLEAN NOT NULL DEFAULT FALSE,
    backup_state    BOOLEAN NOT NULL DEFAULT FALSE,
    discoverable    BOOLEAN NOT NULL DEFAULT FALSE,
    nickname_sealed {{blob}},
    created_us      BIGINT NOT NULL,
    last_used_us    BIGINT
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);

-- Ceremonies begun and not yet answered: the challenge sent to the
-- browser (kept as its SHA-256), what it is for (kind), whom it is bound
-- to (a pending sign-in, a session, or the browser's device for a
-- passwordless sign-in) and the library's session data. A row is deleted
-- by the one statement that uses it, so each challenge is answered once;
-- rows live for minutes and expired ones are deleted.
CREATE TABLE webauthn_challenges (
    challenge_hash {{blob}} PRIMARY KEY,
    kind           TEXT NOT NULL,
    user_id        TEXT NOT NULL DEFAULT '',
    binding        TEXT NOT NULL,
    session_data   {{blob}} NOT NULL,
    created_us     BIGINT NOT NULL,
    expires_us     BIGINT NOT NULL
);
CREATE INDEX webauthn_challenges_expiry ON webauthn_challenges (expires_us);
