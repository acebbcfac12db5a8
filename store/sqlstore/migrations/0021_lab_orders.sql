-- Lab orders: the practice's lab catalogue, clinicians' orders of tests
-- from a registered lab, and the outbox that carries each order to its lab
-- as an HL7 v2 ORM^O01 over MLLP with TLS.
--
-- The catalogue is the practice's list of tests (LOINC code and name): no
-- PHI. What an order asks for is PHI, sealed by the service under the
-- patient's key. number is the placer order number the lab echoes in its
-- results: random, unique within the practice. ack_code and ack_error are
-- the lab's acknowledgment as codes (MSA-1, the ERR's table 0357 code).
-- Times are microseconds since the epoch (UTC).
CREATE TABLE lab_catalogue (
    practice_id TEXT NOT NULL REFERENCES practices(id),
    loinc       TEXT NOT NULL,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL,
    PRIMARY KEY (practice_id, loinc)
);
CREATE INDEX lab_catalogue_name ON lab_catalogue (practice_id, name_key);

CREATE TABLE lab_orders (
    id             TEXT PRIMARY KEY,
    practice_id    TEXT NOT NULL REFERENCES practices(id),
    patient_id     TEXT NOT NULL REFERENCES patients(id),
    orderer_id     TEXT NOT NULL REFERENCES users(id),
    lab_id         TEXT NOT NULL REFERENCES vendors(id),
    number         TEXT NOT NULL,
    content_sealed {{blob}} NOT NULL,
    status         TEXT NOT NULL,
    status_reason  TEXT NOT NULL DEFAULT '',
    ack_code       TEXT NOT NULL DEFAULT '',
    ack_error      INTEGER NOT NULL DEFAULT 0,
    created_us     BIGINT NOT NULL,
    updated_us     BIGINT NOT NULL
);
CREATE UNIQUE INDEX lab_orders_number ON lab_orders (practice_id, number);
CREATE INDEX lab_orders_patient ON lab_orders (patient_id, created_us);

-- One row per ORM^O01 to a lab. A sender claims a due row until
-- claimed_us (so nodes do not send it twice at once), and on failure sets
-- when to try again. control_id is the message's MSH-10: the same on every
-- attempt, so a lab that received an attempt whose ACK was lost sees a
-- repeat, not a second order.
CREATE TABLE lab_outbox (
    id          TEXT PRIMARY KEY,
    order_id    TEXT NOT NULL REFERENCES lab_orders(id),
    practice_id TEXT NOT NULL REFERENCES practices(id),
    control_id  TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_us     BIGINT NOT NULL,
    claimed_us  BIGINT,
    last_error  TEXT NOT NULL DEFAULT '',
    done_us     BIGINT,
    created_us  BIGINT NOT NULL
);
CREATE INDEX lab_outbox_due ON lab_outbox (next_us) WHERE done_us IS NULL;
