-- Video calls. A join token is single-use across restarts and across
-- nodes: its random id is written here when it is redeemed, and a second
-- redemption hits the primary key. Rows outlive their token by nothing;
-- expired ones are pruned. The token itself is never stored.
CREATE TABLE video_spent_tokens (
    token_id   TEXT PRIMARY KEY,
    expires_us BIGINT NOT NULL
);
CREATE INDEX video_spent_tokens_expiry ON video_spent_tokens (expires_us);

-- A third participant (interpreter, family member) is admitted to a call
-- only by the clinician's invitation, recorded here so the guest's join
-- token can be minted on the guest's own signed-in request.
CREATE TABLE visit_guests (
    visit_id   TEXT NOT NULL REFERENCES visits(id),
    user_id    TEXT NOT NULL REFERENCES users(id),
    invited_by TEXT NOT NULL REFERENCES users(id),
    invited_us BIGINT NOT NULL,
    PRIMARY KEY (visit_id, user_id)
);
