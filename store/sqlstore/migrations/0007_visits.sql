-- Scheduling and visits. A visit's reason is PHI and sealed; its times,
-- state and participants are what scheduling needs to work on.
CREATE TABLE availability (
    id           TEXT PRIMARY KEY,
    practice_id  TEXT NOT NULL REFERENCES practices(id),
    clinician_id TEXT NOT NULL REFERENCES users(id),
    weekday      INTEGER NOT NULL,  -- 0 Sunday .. 6 Saturday, in time_zone
    start_minute INTEGER NOT NULL,  -- minutes after local midnight
    end_minute   INTEGER NOT NULL,
    slot_minutes INTEGER NOT NULL,
    time_zone    TEXT NOT NULL
);
CREATE INDEX availability_clinician ON availability (clinician_id);

CREATE TABLE visits (
    id            TEXT PRIMARY KEY,
    practice_id   TEXT NOT NULL REFERENCES practices(id),
    patient_id    TEXT NOT NULL REFERENCES patients(id),
    clinician_id  TEXT NOT NULL REFERENCES users(id),
    starts_at     {{timestamp}} NOT NULL,
    ends_at       {{timestamp}} NOT NULL,
    state         TEXT NOT NULL,
    reason_sealed {{blob}} NOT NULL,
    booked_by     TEXT NOT NULL,
    checked_in_at {{timestamp}},
    admitted_at   {{timestamp}},
    ended_at      {{timestamp}},
    version       INTEGER NOT NULL DEFAULT 1,
    created_at    {{timestamp}} NOT NULL
);
-- One live visit per clinician and start time: double booking is refused
-- by the database, not by a race-prone check.
CREATE UNIQUE INDEX visits_clinician_slot ON visits (clinician_id, starts_at) WHERE state <> 'cancelled';
CREATE INDEX visits_patient ON visits (patient_id, starts_at);
CREATE INDEX visits_practice_day ON visits (practice_id, starts_at);
