-- Prescriptions (non-controlled), their practice's formulary, patients'
-- allergy lists, and the outbox that carries signed prescriptions and
-- cancellations to pharmacies.
--
-- The formulary is the practice's list of drugs (RxNorm code and name,
-- and the DEA schedule of a controlled one, which is never prescribed):
-- no PHI. An allergy's substance and reaction, and what a prescription
-- prescribes, are PHI, sealed by the service under the patient's key.
-- Times are microseconds since the epoch (UTC).
CREATE TABLE formulary (
    practice_id TEXT NOT NULL REFERENCES practices(id),
    rxnorm      TEXT NOT NULL,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL,
    schedule    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (practice_id, rxnorm)
);
CREATE INDEX formulary_name ON formulary (practice_id, name_key);

CREATE TABLE allergies (
    id            TEXT PRIMARY KEY,
    practice_id   TEXT NOT NULL REFERENCES practices(id),
    patient_id    TEXT NOT NULL REFERENCES patients(id),
    detail_sealed {{blob}} NOT NULL,
    added_by      TEXT NOT NULL REFERENCES users(id),
    added_us      BIGINT NOT NULL
);
CREATE INDEX allergies_patient ON allergies (patient_id, added_us);

-- signed_auth_us is the authentication (step-up) a signature consumed:
-- the prescriber's next signature needs a later one.
CREATE TABLE prescriptions (
    id              TEXT PRIMARY KEY,
    practice_id     TEXT NOT NULL REFERENCES practices(id),
    patient_id      TEXT NOT NULL REFERENCES patients(id),
    prescriber_id   TEXT NOT NULL REFERENCES users(id),
    visit_id        TEXT REFERENCES visits(id),
    pharmacy_id     TEXT NOT NULL REFERENCES vendors(id),
    replaces        TEXT REFERENCES prescriptions(id),
    content_sealed  {{blob}} NOT NULL,
    status          TEXT NOT NULL,
    status_reason   TEXT NOT NULL DEFAULT '',
    signature       {{blob}},
    signing_key_id  TEXT NOT NULL DEFAULT '',
    signed_us       BIGINT,
    signed_auth_us  BIGINT,
    cancelled_us    BIGINT,
    renewal_us      BIGINT,
    created_us      BIGINT NOT NULL,
    updated_us      BIGINT NOT NULL
);
CREATE INDEX prescriptions_patient ON prescriptions (patient_id, created_us);
CREATE INDEX prescriptions_prescriber_signed ON prescriptions (prescriber_id, signed_auth_us);

-- One row per message to a pharmacy: the new prescription or its
-- cancellation. A sender claims a due row until claimed_us (so nodes do
-- not send it twice at once), and on failure sets when to try again.
CREATE TABLE rx_outbox (
    id              TEXT PRIMARY KEY,
    prescription_id TEXT NOT NULL REFERENCES prescriptions(id),
    practice_id     TEXT NOT NULL REFERENCES practices(id),
    kind            TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_us         BIGINT NOT NULL,
    claimed_us      BIGINT,
    last_error      TEXT NOT NULL DEFAULT '',
    done_us         BIGINT,
    created_us      BIGINT NOT NULL
);
CREATE INDEX rx_outbox_due ON rx_outbox (next_us) WHERE done_us IS NULL;
