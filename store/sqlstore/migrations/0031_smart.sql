-- SMART on FHIR and OAuth 2: the apps and integrations a practice admin
-- registered, and what the authorization server hands out to them. Shared
-- by every node on this database, so a code issued by one node is redeemed
-- at another and a token revoked on one is refused by all at once.
--
-- smart_clients: one app or backend system of one practice. A confidential
-- client's secret is kept only as its hash; a backend system's public keys
-- (JWKS) are public by nature. Nothing here is PHI.
CREATE TABLE smart_clients (
    id            TEXT PRIMARY KEY,
    practice_id   TEXT NOT NULL REFERENCES practices(id),
    name          TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    launch_url    TEXT NOT NULL,
    public        INTEGER NOT NULL,
    secret_hash   TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    jwks          TEXT NOT NULL,
    networks      TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_us    BIGINT NOT NULL,
    revoked_us    BIGINT NOT NULL
);
CREATE INDEX smart_clients_practice ON smart_clients (practice_id);

-- smart_grants: authorization codes, PKCE challenges, access and refresh
-- tokens, each keyed by the SHA-256 of the token's signature, so whoever
-- reads the table holds no token it could present. request_id ties the
-- tokens of one authorization together, so a replayed code or a reused
-- refresh token revokes the whole family. user_id is the user a grant acts
-- for ('' for a backend system's), so a password change, a factor change,
-- a disable or an incident's containment ends every app's tokens of that
-- user at once. data is the grant (scopes, the user and patient it acts
-- for) as JSON, holding ids only, never a token.
CREATE TABLE smart_grants (
    sig_hash   {{blob}} NOT NULL,
    kind       TEXT NOT NULL,
    request_id TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    active     INTEGER NOT NULL,
    expires_us BIGINT NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (sig_hash, kind)
);
CREATE INDEX smart_grants_request ON smart_grants (request_id, kind);
CREATE INDEX smart_grants_expires ON smart_grants (expires_us);
CREATE INDEX smart_grants_user ON smart_grants (user_id);

-- smart_assertions: the ids (jti) of backend systems' signed assertions
-- already used, kept until they expire, so one cannot be replayed.
CREATE TABLE smart_assertions (
    jti_hash   {{blob}} PRIMARY KEY,
    expires_us BIGINT NOT NULL
);

-- smart_secret: the one HMAC secret the token strategy signs with, made
-- once and shared by every node, sealed under the platform's key (the
-- database never holds it in the clear). Nor is it alone what makes a
-- token good: a token is honoured only while its signature's hash is in
-- smart_grants.
CREATE TABLE smart_secret (
    id     INTEGER PRIMARY KEY,
    secret {{blob}} NOT NULL
);
