-- Secure messaging: threads between a patient and her practice, their
-- messages, how far each person has read each thread, and the email
-- notices waiting to go out. The waiting room's messages become the
-- threads of their visits (thread id = visit id), so there is one message
-- model, and visit_messages goes.
--
-- Subjects and bodies are PHI, sealed by the service under the patient's
-- key with the record's id in their associated data; everything else here
-- is what delivery, the inbox and triage need. Times are microseconds
-- since the epoch (UTC), as in the identity tables.

-- audience: care_team, front_desk or visit. assignee_id and done_us are
-- triage. messages and last_us are kept with each message, so lists and
-- unread counts need no scan of the messages; changed_us is raised by
-- every change and is what a page watching for one compares.
CREATE TABLE threads (
    id             TEXT PRIMARY KEY,
    practice_id    TEXT NOT NULL REFERENCES practices(id),
    patient_id     TEXT NOT NULL REFERENCES patients(id),
    visit_id       TEXT REFERENCES visits(id),
    audience       TEXT NOT NULL,
    subject_sealed {{blob}},
    started_by     TEXT NOT NULL REFERENCES users(id),
    assignee_id    TEXT REFERENCES users(id),
    done_us        BIGINT,
    done_by        TEXT,
    messages       INTEGER NOT NULL DEFAULT 0,
    last_us        BIGINT NOT NULL,
    last_sender    TEXT,
    changed_us     BIGINT NOT NULL,
    created_us     BIGINT NOT NULL
);
CREATE INDEX threads_patient ON threads (patient_id, changed_us);
CREATE INDEX threads_practice ON threads (practice_id, last_us);
CREATE INDEX threads_practice_changed ON threads (practice_id, changed_us);

-- seq is the message's place in its thread, from 1. sealed_as is the
-- record kind its body's associated data names ('visit_message' for the
-- waiting room's messages moved here below, 'message' for the rest).
CREATE TABLE messages (
    id          TEXT PRIMARY KEY,
    thread_id   TEXT NOT NULL REFERENCES threads(id),
    practice_id TEXT NOT NULL REFERENCES practices(id),
    patient_id  TEXT NOT NULL REFERENCES patients(id),
    sender_id   TEXT NOT NULL REFERENCES users(id),
    seq         INTEGER NOT NULL,
    body_sealed {{blob}} NOT NULL,
    sealed_as   TEXT NOT NULL,
    created_us  BIGINT NOT NULL,
    UNIQUE (thread_id, seq)
);

-- Files of the patient's record attached to a message, by id.
CREATE TABLE message_files (
    message_id TEXT NOT NULL REFERENCES messages(id),
    file_id    TEXT NOT NULL REFERENCES files(id),
    PRIMARY KEY (message_id, file_id)
);

-- How far each person has read each thread: the seq of the newest
-- message they saw (or sent).
CREATE TABLE thread_reads (
    thread_id TEXT NOT NULL REFERENCES threads(id),
    user_id   TEXT NOT NULL REFERENCES users(id),
    read_seq  INTEGER NOT NULL,
    PRIMARY KEY (thread_id, user_id)
);

-- One row per person who has been written to: pending_us is the time of
-- the oldest message not yet announced to them by email (NULL when none
-- waits), sent_us when the last announcement went out. The sender claims
-- a row by a compare-and-set UPDATE, so one email goes out per person per
-- quarter hour however many nodes run it.
CREATE TABLE message_notices (
    user_id     TEXT PRIMARY KEY REFERENCES users(id),
    practice_id TEXT NOT NULL REFERENCES practices(id),
    pending_us  BIGINT,
    sent_us     BIGINT
);
CREATE INDEX message_notices_pending ON message_notices (pending_us);

-- The waiting room's messages, moved: one thread per visit that has any,
-- done once the visit is over, read by everyone who took part.
INSERT INTO threads (id, practice_id, patient_id, visit_id, audience, subject_sealed, started_by, assignee_id,
                     done_us, done_by, messages, last_us, last_sender, changed_us, created_us)
SELECT v.id, v.practice_id, v.patient_id, v.id, 'visit', NULL,
       (SELECT m.sender_id FROM visit_messages m WHERE m.visit_id = v.id ORDER BY m.created_us, m.id LIMIT 1),
       NULL,
       CASE WHEN v.state IN ('ended', 'cancelled') THEN (SELECT MAX(m.created_us) FROM visit_messages m WHERE m.visit_id = v.id) END,
       NULL,
       (SELECT COUNT(*) FROM visit_messages m WHERE m.visit_id = v.id),
       (SELECT MAX(m.created_us) FROM visit_messages m WHERE m.visit_id = v.id),
       (SELECT m.sender_id FROM visit_messages m WHERE m.visit_id = v.id ORDER BY m.created_us DESC, m.id DESC LIMIT 1),
       (SELECT MAX(m.created_us) FROM visit_messages m WHERE m.visit_id = v.id),
       (SELECT MIN(m.created_us) FROM visit_messages m WHERE m.visit_id = v.id)
FROM visits v
WHERE EXISTS (SELECT 1 FROM visit_messages m WHERE m.visit_id = v.id);

INSERT INTO messages (id, thread_id, practice_id, patient_id, sender_id, seq, body_sealed, sealed_as, created_us)
SELECT m.id, m.visit_id, m.practice_id, m.patient_id, m.sender_id,
       ROW_NUMBER() OVER (PARTITION BY m.visit_id ORDER BY m.created_us, m.id),
       m.body_sealed, 'visit_message', m.created_us
FROM visit_messages m;

INSERT INTO thread_reads (thread_id, user_id, read_seq)
SELECT t.id, t.patient_id, t.messages FROM threads t;

INSERT INTO thread_reads (thread_id, user_id, read_seq)
SELECT DISTINCT m.thread_id, m.sender_id, t.messages
FROM messages m JOIN threads t ON t.id = m.thread_id
WHERE m.sender_id <> t.patient_id;

DROP TABLE visit_messages;
