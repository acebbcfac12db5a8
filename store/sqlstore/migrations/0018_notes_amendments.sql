-- Visit notes, their addenda, and patients' amendment requests (HIPAA
-- 164.526). Note text, addenda, reasons, answers and statements of
-- disagreement are PHI, sealed by the service under the patient's key with
-- the record's id in their associated data; everything else here is what
-- locking, release, verification and the practice's deadline list need.
-- Times are microseconds since the epoch (UTC).

-- One note per visit. A signed note's row never changes again: hash is
-- SHA-256 of its canonical form, signature the practice's Ed25519
-- signature of that form by key_id; release_us is when the patient may
-- read it.
CREATE TABLE notes (
    id          TEXT PRIMARY KEY,
    practice_id TEXT NOT NULL REFERENCES practices(id),
    patient_id  TEXT NOT NULL REFERENCES patients(id),
    visit_id    TEXT NOT NULL UNIQUE REFERENCES visits(id),
    author_id   TEXT NOT NULL REFERENCES users(id),
    body_sealed {{blob}} NOT NULL,
    state       TEXT NOT NULL,
    signed_by   TEXT,
    signed_us   BIGINT,
    release_us  BIGINT,
    hash        {{blob}},
    signature   {{blob}},
    key_id      TEXT,
    updated_us  BIGINT NOT NULL,
    created_us  BIGINT NOT NULL
);
CREATE INDEX notes_patient ON notes (patient_id, created_us);

-- Text appended to a signed note, signed like it; amendment_id names the
-- accepted amendment it answers.
CREATE TABLE note_addenda (
    id           TEXT PRIMARY KEY,
    note_id      TEXT NOT NULL REFERENCES notes(id),
    practice_id  TEXT NOT NULL REFERENCES practices(id),
    patient_id   TEXT NOT NULL REFERENCES patients(id),
    author_id    TEXT NOT NULL REFERENCES users(id),
    body_sealed  {{blob}} NOT NULL,
    amendment_id TEXT,
    hash         {{blob}} NOT NULL,
    signature    {{blob}} NOT NULL,
    key_id       TEXT NOT NULL,
    created_us   BIGINT NOT NULL
);
CREATE INDEX note_addenda_note ON note_addenda (note_id, created_us);

-- part is 'note' or 'chart', record_id which; due_us is the deadline
-- (60 days, once extended by 30).
CREATE TABLE amendments (
    id                  TEXT PRIMARY KEY,
    practice_id         TEXT NOT NULL REFERENCES practices(id),
    patient_id          TEXT NOT NULL REFERENCES patients(id),
    part                TEXT NOT NULL,
    record_id           TEXT NOT NULL,
    reason_sealed       {{blob}} NOT NULL,
    state               TEXT NOT NULL,
    due_us              BIGINT NOT NULL,
    extension_sealed    {{blob}},
    decided_by          TEXT,
    decided_us          BIGINT,
    response_sealed     {{blob}},
    addendum_id         TEXT,
    disagreement_sealed {{blob}},
    disagreed_us        BIGINT,
    created_us          BIGINT NOT NULL,
    changed_us          BIGINT NOT NULL
);
CREATE INDEX amendments_patient ON amendments (patient_id, created_us);
CREATE INDEX amendments_record ON amendments (record_id);
CREATE INDEX amendments_practice ON amendments (practice_id, state, due_us);

-- Patients to tell by email that their record has an update (an answer
-- to an amendment request), as message_notices does for messages.
CREATE TABLE update_notices (
    user_id     TEXT PRIMARY KEY REFERENCES users(id),
    practice_id TEXT NOT NULL REFERENCES practices(id),
    pending_us  BIGINT,
    sent_us     BIGINT
);
CREATE INDEX update_notices_pending ON update_notices (pending_us);
