-- Lab results in: how each lab is recognised, the messages already
-- answered, results matched to a patient and an order, and the queue of
-- results that matched no one (or more than one) for staff to match by
-- hand.
--
-- A lab is recognised by the SHA-256 of the client certificate it
-- presents to the MLLP listener, or by the SHA-256 of the integration
-- token it posts with: neither is a secret in this form. hl7_inbox keeps,
-- per lab and message control id (MSH-10), the ACK Haven answered, so a
-- message sent twice gets the same answer and is stored once; an ACK
-- holds control ids and Haven's own error texts, no PHI. A result's
-- content (tests, values, reference ranges, flags, the lab's notes) and
-- the reviewer's comment are sealed under the patient's key; an unmatched
-- message is sealed under the practice's key, since it belongs to no
-- patient yet. Times are microseconds since the epoch (UTC).
CREATE TABLE lab_interfaces (
    lab_id      TEXT PRIMARY KEY REFERENCES vendors(id),
    practice_id TEXT NOT NULL REFERENCES practices(id),
    cert_sha256 TEXT,
    token_hash  TEXT,
    updated_us  BIGINT NOT NULL
);
CREATE UNIQUE INDEX lab_interfaces_cert ON lab_interfaces (cert_sha256);
CREATE UNIQUE INDEX lab_interfaces_token ON lab_interfaces (token_hash);

CREATE TABLE hl7_inbox (
    lab_id      TEXT NOT NULL REFERENCES vendors(id),
    control_id  TEXT NOT NULL,
    ack         {{blob}} NOT NULL,
    received_us BIGINT NOT NULL,
    PRIMARY KEY (lab_id, control_id)
);

CREATE TABLE lab_results (
    id             TEXT PRIMARY KEY,
    practice_id    TEXT NOT NULL REFERENCES practices(id),
    patient_id     TEXT NOT NULL REFERENCES patients(id),
    order_id       TEXT NOT NULL REFERENCES lab_orders(id),
    lab_id         TEXT NOT NULL REFERENCES vendors(id),
    reviewer_id    TEXT NOT NULL REFERENCES users(id),
    content_sealed {{blob}} NOT NULL,
    comment_sealed {{blob}},
    critical       BOOLEAN NOT NULL DEFAULT FALSE,
    status         TEXT NOT NULL,
    received_us    BIGINT NOT NULL,
    reviewed_us    BIGINT,
    released_us    BIGINT
);
CREATE INDEX lab_results_patient ON lab_results (patient_id, received_us);
CREATE INDEX lab_results_reviewer ON lab_results (reviewer_id, status);

CREATE TABLE lab_unmatched (
    id             TEXT PRIMARY KEY,
    practice_id    TEXT NOT NULL REFERENCES practices(id),
    lab_id         TEXT NOT NULL REFERENCES vendors(id),
    message_sealed {{blob}} NOT NULL,
    reason         TEXT NOT NULL,
    received_us    BIGINT NOT NULL,
    resolved_us    BIGINT,
    resolved_by    TEXT REFERENCES users(id)
);
CREATE INDEX lab_unmatched_open ON lab_unmatched (practice_id, received_us) WHERE resolved_us IS NULL;
