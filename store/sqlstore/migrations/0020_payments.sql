-- Payments: the prices a practice charges per visit type (a visit's
-- length), the payments its patients make through the card processor,
-- and the processor's notices already applied.
--
-- Prices are the practice's and hold no PHI. A payment's amount, state and
-- references are what the processor knows too (it never learns who paid);
-- which visit it pays for is PHI-adjacent and sealed under the patient's
-- key (link_sealed). visit_index is a keyed blind index of that visit, so
-- the database itself refuses a second live payment for one visit without
-- holding the link in the clear.
CREATE TABLE prices (
    practice_id TEXT NOT NULL REFERENCES practices(id),
    minutes     INTEGER NOT NULL,
    amount      BIGINT NOT NULL,
    currency    TEXT NOT NULL,
    updated_at  {{timestamp}} NOT NULL,
    PRIMARY KEY (practice_id, minutes)
);

CREATE TABLE payments (
    id           TEXT PRIMARY KEY,
    practice_id  TEXT NOT NULL REFERENCES practices(id),
    patient_id   TEXT NOT NULL REFERENCES patients(id),
    ref          TEXT NOT NULL UNIQUE,
    processor_id TEXT UNIQUE,
    amount       BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    state        TEXT NOT NULL,
    link_sealed  {{blob}} NOT NULL,
    visit_index  {{blob}} NOT NULL,
    created_at   {{timestamp}} NOT NULL,
    paid_at      {{timestamp}},
    refunded_at  {{timestamp}},
    refunded_by  TEXT,
    version      INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX payments_live_visit ON payments (visit_index) WHERE state IN ('pending', 'paid');
CREATE INDEX payments_patient ON payments (patient_id, created_at);
CREATE INDEX payments_practice ON payments (practice_id, created_at);

-- A processor notice (webhook event) is applied once: its id is claimed
-- here first, so a notice delivered again changes nothing.
CREATE TABLE payment_events (
    id          TEXT PRIMARY KEY,
    received_at {{timestamp}} NOT NULL
);
