-- The patient chart. A patient is a user with role 'patient' (patients.id
-- is that user's id), so "self" is one comparison in policy. Every clinical
-- and contact field is sealed under the patient's data key; the MRN is also
-- blind-indexed so the front desk can look it up.
CREATE TABLE patients (
    id                  TEXT PRIMARY KEY REFERENCES users(id),
    practice_id         TEXT NOT NULL REFERENCES practices(id),
    mrn_index           {{blob}} NOT NULL,
    mrn_sealed          {{blob}} NOT NULL,
    demographics_sealed {{blob}} NOT NULL,
    contact_sealed      {{blob}} NOT NULL,
    restrictions_sealed {{blob}},
    version             INTEGER NOT NULL DEFAULT 1,
    created_at          {{timestamp}} NOT NULL,
    updated_at          {{timestamp}} NOT NULL,
    UNIQUE (practice_id, mrn_index)
);
CREATE INDEX patients_practice ON patients (practice_id);

-- Who may treat whom. Membership is not PHI content, but it is PHI-adjacent
-- and only ever read through the service layer's gate.
CREATE TABLE care_team (
    practice_id TEXT NOT NULL REFERENCES practices(id),
    patient_id  TEXT NOT NULL REFERENCES patients(id),
    user_id     TEXT NOT NULL REFERENCES users(id),
    added_by    TEXT NOT NULL,
    added_at    {{timestamp}} NOT NULL,
    PRIMARY KEY (patient_id, user_id)
);
CREATE INDEX care_team_user ON care_team (user_id);

-- Emergency access. The stated reason may mention the emergency, so it is
-- sealed under the patient's key.
CREATE TABLE break_glass_grants (
    id            TEXT PRIMARY KEY,
    practice_id   TEXT NOT NULL REFERENCES practices(id),
    patient_id    TEXT NOT NULL REFERENCES patients(id),
    user_id       TEXT NOT NULL REFERENCES users(id),
    reason_sealed {{blob}} NOT NULL,
    starts_at     {{timestamp}} NOT NULL,
    expires_at    {{timestamp}} NOT NULL,
    reviewed_at   {{timestamp}},
    reviewed_by   TEXT,
    review_sealed {{blob}}
);
CREATE INDEX break_glass_patient ON break_glass_grants (patient_id);
CREATE INDEX break_glass_open ON break_glass_grants (practice_id, reviewed_at);

-- Practice settings: policy and detection thresholds. Not PHI.
CREATE TABLE practice_settings (
    practice_id TEXT PRIMARY KEY REFERENCES practices(id),
    settings    TEXT NOT NULL,
    updated_at  {{timestamp}} NOT NULL
);

-- Alerts raised by detection rules over the audit stream. They carry ids
-- and rule names, never PHI.
CREATE TABLE alerts (
    id          TEXT PRIMARY KEY,
    practice_id TEXT NOT NULL,
    rule        TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    patient_id  TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL,
    audit_seq   BIGINT NOT NULL,
    created_at  {{timestamp}} NOT NULL,
    closed_at   {{timestamp}},
    closed_by   TEXT
);
CREATE INDEX alerts_open ON alerts (practice_id, closed_at);
