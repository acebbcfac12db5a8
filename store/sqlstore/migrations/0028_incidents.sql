-- Incidents and breach notification (HIPAA 164.308(a)(6), 164.404-410).
-- An incident's words (title, scope, risk assessment, the decision's
-- reason, what containment did) are sealed under the practice's key in
-- detail_sealed; a letter's text under its patient's key in body_sealed.
-- Retention: incidents, their letters and the audit events that are their
-- evidence are kept at least six years (164.316(b)(2)); Haven has no
-- statement that deletes from these tables.
CREATE TABLE incidents (
    id            TEXT PRIMARY KEY,
    practice_id   TEXT NOT NULL REFERENCES practices(id),
    alert_id      TEXT NOT NULL DEFAULT '',
    state         TEXT NOT NULL,
    decision      TEXT NOT NULL DEFAULT '',
    discovered_at {{timestamp}} NOT NULL,
    opened_by     TEXT NOT NULL,
    contained_at  {{timestamp}},
    contained_by  TEXT NOT NULL DEFAULT '',
    decided_at    {{timestamp}},
    decided_by    TEXT NOT NULL DEFAULT '',
    affected      BIGINT NOT NULL DEFAULT 0,
    detail_sealed {{blob}} NOT NULL,
    created_at    {{timestamp}} NOT NULL,
    updated_at    {{timestamp}} NOT NULL
);
CREATE INDEX incidents_practice ON incidents (practice_id, created_at);

CREATE TABLE incident_letters (
    id          TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents(id),
    practice_id TEXT NOT NULL REFERENCES practices(id),
    patient_id  TEXT NOT NULL REFERENCES patients(id),
    state       TEXT NOT NULL,
    body_sealed {{blob}} NOT NULL,
    created_at  {{timestamp}} NOT NULL,
    updated_at  {{timestamp}} NOT NULL,
    sent_at     {{timestamp}},
    returned_at {{timestamp}},
    UNIQUE (incident_id, patient_id)
);
