-- Workforce security training (164.308(a)(5)): one row per passed module,
-- kept as evidence (a completion counts as current for a year). Ids, the
-- module's name, the score and the time: no PHI.
CREATE TABLE training_completions (
    id           TEXT PRIMARY KEY,
    practice_id  TEXT NOT NULL REFERENCES practices(id),
    user_id      TEXT NOT NULL REFERENCES users(id),
    module       TEXT NOT NULL,
    score        INTEGER NOT NULL,
    total        INTEGER NOT NULL,
    completed_at {{timestamp}} NOT NULL
);
CREATE INDEX training_completions_user ON training_completions (practice_id, user_id, module, completed_at);

-- The verification code every email Haven sends carries, so that its
-- recipient can confirm in her account that a message came from her
-- practice. Only a keyed hash of the code is kept, with the blind index of
-- the address it went to (the code proves nothing to anyone else), the
-- email's kind and when it was sent: never the address or the message.
CREATE TABLE contact_codes (
    code_hash   {{blob}} PRIMARY KEY,
    practice_id TEXT NOT NULL,
    recipient   {{blob}} NOT NULL,
    kind        TEXT NOT NULL,
    sent_at     {{timestamp}} NOT NULL
);
CREATE INDEX contact_codes_sent ON contact_codes (sent_at);
