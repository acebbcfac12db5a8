package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"haven"
)

// Threads, their messages and how far each person has read them. Subjects
// and bodies arrive sealed and leave sealed; the counts, times, triage and
// read marks beside them are what lists, unread counts and watches need,
// kept on the thread's row so that none of them scans the messages.

const threadColumns = `id, practice_id, patient_id, visit_id, audience, subject_sealed, started_by, assignee_id,
	done_us, done_by, messages, last_us, last_sender, changed_us, created_us`

func scanThread(s scanner) (*haven.Thread, error) {
	var t haven.Thread
	var subject []byte
	var visit, assignee, doneBy, lastSender sql.NullString
	var done sql.NullInt64
	if err := s.Scan(&t.ID, &t.PracticeID, &t.PatientID, &visit, &t.Audience, &subject, &t.StartedBy, &assignee,
		&done, &doneBy, &t.Messages, &t.LastUS, &lastSender, &t.ChangedUS, &t.CreatedUS); err != nil {
		return nil, err
	}
	t.Subject = subject
	t.VisitID, t.AssigneeID, t.DoneBy, t.LastSender, t.DoneUS = visit.String, assignee.String, doneBy.String, lastSender.String, done.Int64
	return &t, nil
}

// changedNow is the SQL that sets a thread's change stamp to $n (the
// time of the change in microseconds), or to one past the newest stamp of
// the thread's practice when the clock has not moved beyond it (two
// changes in one microsecond, a clock set back): the newest stamp of a
// practice's threads, and of a patient's, then moves with every change,
// which is what a watching page compares. (Two PostgreSQL transactions
// changing threads of one practice in the same microsecond may share a
// stamp; the next change moves it again.)
func changedNow(n int) string {
	newest := `(SELECT MAX(o.changed_us) FROM threads o WHERE o.practice_id = threads.practice_id)`
	return fmt.Sprintf(`changed_us = CASE WHEN %s < $%d THEN $%d ELSE %s + 1 END`, newest, n, n, newest)
}

// NewMessage is a message to store and what storing it changes beside it.
type NewMessage struct {
	// Thread, when set, is created first unless a thread with its id
	// exists (a visit's thread is made by its first message); its counts
	// and times are set from the message.
	Thread *haven.Thread
	// Message is stored as its thread's next message; its Seq and
	// CreatedUS are set here.
	Message *haven.Message
	// Max is how many messages the thread may hold: a full thread is
	// ETOOMANY and nothing is stored.
	Max int
	// Reopen clears a done thread's mark: a patient's new message is new
	// work.
	Reopen bool
	// Notify are the people to tell by email that they have a message;
	// each one's notice is marked pending (message_notices).
	Notify []string
}

// AddMessage stores a message as the next of its thread, in one
// transaction with everything it changes: the thread's count, last
// message and change stamp (and, for a new visit thread, the thread
// itself), the sender's read mark (they have seen their own message), its
// attachments, and the pending notices of the people to tell. An unknown
// thread is ENOTFOUND.
func (d *DB) AddMessage(ctx context.Context, nm NewMessage) error {
	m := nm.Message
	now := micros(d.now())
	m.CreatedUS = now
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if t := nm.Thread; t != nil {
		t.CreatedUS, t.LastUS, t.ChangedUS = now, now, now
		if _, err := tx.ExecContext(ctx, `INSERT INTO threads (`+threadColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, 0, $9, NULL, $10, $11) ON CONFLICT (id) DO NOTHING`,
			t.ID, t.PracticeID, t.PatientID, nullString(t.VisitID), t.Audience, []byte(t.Subject), t.StartedBy, nullString(t.AssigneeID),
			now, now, now); err != nil {
			return err
		}
	}
	reopen := ""
	if nm.Reopen {
		reopen = ", done_us = NULL, done_by = NULL"
	}
	err = tx.QueryRowContext(ctx, `UPDATE threads SET messages = messages + 1, last_us = $1, last_sender = $2, `+changedNow(1)+reopen+`
		WHERE id = $3 AND messages < $4 RETURNING messages`, now, m.SenderID, m.ThreadID, nm.Max).Scan(&m.Seq)
	if err == sql.ErrNoRows {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT messages FROM threads WHERE id = $1`, m.ThreadID).Scan(&n); err != nil {
			return notFound(err, "thread", m.ThreadID)
		}
		return haven.Errorf(haven.ETOOMANY, "this conversation holds the most messages it may (%d); start a new one", nm.Max)
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO messages (id, thread_id, practice_id, patient_id, sender_id, seq, body_sealed, sealed_as, created_us)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		m.ID, m.ThreadID, m.PracticeID, m.PatientID, m.SenderID, m.Seq, []byte(m.Body), m.SealedAs, now); err != nil {
		return err
	}
	for _, f := range m.FileIDs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO message_files (message_id, file_id) VALUES ($1, $2)`, m.ID, f); err != nil {
			return err
		}
	}
	if err := markRead(ctx, tx, m.ThreadID, m.SenderID, m.Seq); err != nil {
		return err
	}
	for _, u := range nm.Notify {
		if _, err := tx.ExecContext(ctx, `INSERT INTO message_notices (user_id, practice_id, pending_us) VALUES ($1, $2, $3)
			ON CONFLICT (user_id) DO UPDATE SET pending_us = COALESCE(message_notices.pending_us, excluded.pending_us)`,
			u, m.PracticeID, now); err != nil {
			return err
		}
	}
	if nm.Thread != nil {
		nm.Thread.Messages, nm.Thread.LastSender = m.Seq, m.SenderID
	}
	return tx.Commit()
}

const findThreadSQL = `SELECT ` + threadColumns + ` FROM threads WHERE id = $1`

// FindThread returns one thread, or ENOTFOUND.
func (d *DB) FindThread(ctx context.Context, id string) (*haven.Thread, error) {
	t, err := scanThread(d.db.QueryRowContext(ctx, findThreadSQL, id))
	if err != nil {
		return nil, notFound(err, "thread", id)
	}
	return t, nil
}

const threadMessagesSQL = `SELECT id, thread_id, practice_id, patient_id, sender_id, seq, body_sealed, sealed_as, created_us
	FROM messages WHERE thread_id = $1 ORDER BY seq`

// ThreadMessages returns a thread's messages in order, each with the ids
// of the files attached to it.
func (d *DB) ThreadMessages(ctx context.Context, threadID string) ([]*haven.Message, error) {
	rows, err := d.db.QueryContext(ctx, threadMessagesSQL, threadID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.Message
	byID := map[string]*haven.Message{}
	for rows.Next() {
		var m haven.Message
		var body []byte
		if err := rows.Scan(&m.ID, &m.ThreadID, &m.PracticeID, &m.PatientID, &m.SenderID, &m.Seq, &body, &m.SealedAs, &m.CreatedUS); err != nil {
			return nil, err
		}
		m.Body = body
		out = append(out, &m)
		byID[m.ID] = &m
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	files, err := d.db.QueryContext(ctx, `SELECT mf.message_id, mf.file_id FROM message_files mf
		JOIN messages m ON m.id = mf.message_id WHERE m.thread_id = $1 ORDER BY mf.message_id, mf.file_id`, threadID)
	if err != nil {
		return nil, err
	}
	defer files.Close()
	for files.Next() {
		var mid, fid string
		if err := files.Scan(&mid, &fid); err != nil {
			return nil, err
		}
		if m := byID[mid]; m != nil {
			m.FileIDs = append(m.FileIDs, fid)
		}
	}
	return out, files.Err()
}

// PatientThreads returns a patient's threads, the most recently active
// first.
func (d *DB) PatientThreads(ctx context.Context, patientID string) ([]*haven.Thread, error) {
	return d.threads(ctx, `SELECT `+threadColumns+` FROM threads WHERE patient_id = $1 ORDER BY last_us DESC, id DESC`, patientID)
}

// ThreadFilter selects a page of a practice's threads, the most recently
// active first.
type ThreadFilter struct {
	Done bool // done threads instead of open ones
	// Assignee keeps only the threads given to this workforce member.
	Assignee string
	// BeforeUS and BeforeID continue after the last thread of the
	// previous page (its LastUS and ID); zero for the first page.
	BeforeUS int64
	BeforeID string
	Limit    int
}

// PracticeThreads returns a page of a practice's threads as f selects.
func (d *DB) PracticeThreads(ctx context.Context, practiceID string, f ThreadFilter) ([]*haven.Thread, error) {
	var q strings.Builder
	args := []any{practiceID}
	q.WriteString(`SELECT ` + threadColumns + ` FROM threads WHERE practice_id = $1`)
	if f.Done {
		q.WriteString(` AND done_us IS NOT NULL`)
	} else {
		q.WriteString(` AND done_us IS NULL`)
	}
	if f.Assignee != "" {
		args = append(args, f.Assignee)
		fmt.Fprintf(&q, ` AND assignee_id = $%d`, len(args))
	}
	if f.BeforeUS != 0 {
		args = append(args, f.BeforeUS, f.BeforeID)
		fmt.Fprintf(&q, ` AND (last_us < $%d OR (last_us = $%d AND id < $%d))`, len(args)-1, len(args)-1, len(args))
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	args = append(args, f.Limit)
	fmt.Fprintf(&q, ` ORDER BY last_us DESC, id DESC LIMIT $%d`, len(args))
	return d.threads(ctx, q.String(), args...)
}

func (d *DB) threads(ctx context.Context, q string, args ...any) ([]*haven.Thread, error) {
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.Thread
	for rows.Next() {
		t, err := scanThread(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// ThreadReads returns how far userID has read each of threadIDs (threads
// they never opened are absent): one query for a whole list.
func (d *DB) ThreadReads(ctx context.Context, userID string, threadIDs []string) (map[string]int, error) {
	out := make(map[string]int, len(threadIDs))
	if len(threadIDs) == 0 {
		return out, nil
	}
	var q strings.Builder
	args := []any{userID}
	q.WriteString(`SELECT thread_id, read_seq FROM thread_reads WHERE user_id = $1 AND thread_id IN (`)
	for i, id := range threadIDs {
		if i > 0 {
			q.WriteString(", ")
		}
		args = append(args, id)
		fmt.Fprintf(&q, "$%d", len(args))
	}
	q.WriteString(`)`)
	rows, err := d.db.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}

// MarkRead records that userID has read threadID up to message seq; a
// mark never moves back.
func (d *DB) MarkRead(ctx context.Context, threadID, userID string, seq int) error {
	return markRead(ctx, d.db, threadID, userID, seq)
}

func markRead(ctx context.Context, db execer, threadID, userID string, seq int) error {
	_, err := db.ExecContext(ctx, `INSERT INTO thread_reads (thread_id, user_id, read_seq) VALUES ($1, $2, $3)
		ON CONFLICT (thread_id, user_id) DO UPDATE SET read_seq = CASE WHEN thread_reads.read_seq < excluded.read_seq THEN excluded.read_seq ELSE thread_reads.read_seq END`,
		threadID, userID, seq)
	return err
}

// AssignThread gives a thread to a workforce member ("" for nobody).
func (d *DB) AssignThread(ctx context.Context, id, assigneeID string) error {
	return d.changeThread(ctx, id, `assignee_id = $3`, nullString(assigneeID))
}

// SetThreadDone marks a thread done by userID, or open again.
func (d *DB) SetThreadDone(ctx context.Context, id, userID string, done bool) error {
	if !done {
		return d.changeThread(ctx, id, `done_us = NULL, done_by = NULL`)
	}
	return d.changeThread(ctx, id, `done_us = $1, done_by = $3`, userID)
}

// changeThread applies set (whose parameters start at $3; $1 is the time
// in microseconds, $2 the id) to a thread and raises its change stamp.
func (d *DB) changeThread(ctx context.Context, id, set string, args ...any) error {
	res, err := d.db.ExecContext(ctx, `UPDATE threads SET `+set+`, `+changedNow(1)+` WHERE id = $2`,
		append([]any{micros(d.now()), id}, args...)...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ENOTFOUND, "thread %s not found", id)
	}
	return nil
}

// ThreadsChanged returns the newest change stamp among a patient's
// threads (patientID set) or a practice's (patientID ""), 0 when there are
// none: what a list page watches, one indexed read.
func (d *DB) ThreadsChanged(ctx context.Context, practiceID, patientID string) (int64, error) {
	var v sql.NullInt64
	var err error
	if patientID != "" {
		err = d.db.QueryRowContext(ctx, `SELECT MAX(changed_us) FROM threads WHERE patient_id = $1`, patientID).Scan(&v)
	} else {
		err = d.db.QueryRowContext(ctx, `SELECT MAX(changed_us) FROM threads WHERE practice_id = $1`, practiceID).Scan(&v)
	}
	return v.Int64, err
}

// ThreadChanged returns one thread's change stamp, or ENOTFOUND.
func (d *DB) ThreadChanged(ctx context.Context, id string) (int64, error) {
	var v int64
	err := d.db.QueryRowContext(ctx, `SELECT changed_us FROM threads WHERE id = $1`, id).Scan(&v)
	return v, notFound(err, "thread", id)
}

// VisitWatch returns a visit's state and how many messages its thread
// holds, in one query: what a waiting page watches for a change, cheaply
// enough to ask twice a second.
func (d *DB) VisitWatch(ctx context.Context, visitID string) (state string, messages int, err error) {
	err = d.db.QueryRowContext(ctx, `SELECT v.state, COALESCE((SELECT t.messages FROM threads t WHERE t.id = v.id), 0)
		FROM visits v WHERE v.id = $1`, visitID).Scan(&state, &messages)
	return state, messages, notFound(err, "visit", visitID)
}

// VisitMessageCounts returns how many messages each of visitIDs' threads
// holds (visits without a thread are absent), for the clinician's queue:
// one query for the whole queue, none for an empty one.
func (d *DB) VisitMessageCounts(ctx context.Context, visitIDs []string) (map[string]int, error) {
	out := make(map[string]int, len(visitIDs))
	if len(visitIDs) == 0 {
		return out, nil
	}
	var q strings.Builder
	q.WriteString(`SELECT id, messages FROM threads WHERE id IN (`)
	args := make([]any, len(visitIDs))
	for i, id := range visitIDs {
		if i > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "$%d", i+1)
		args[i] = id
	}
	q.WriteString(`)`)
	rows, err := d.db.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}

const messageOwnerSQL = `SELECT practice_id, patient_id FROM messages WHERE id = $1`

// MessageOwner returns the practice and patient of a message, by its
// primary key, or ENOTFOUND (a FHIR read of a Communication).
func (d *DB) MessageOwner(ctx context.Context, id string) (practiceID, patientID string, err error) {
	err = d.db.QueryRowContext(ctx, messageOwnerSQL, id).Scan(&practiceID, &patientID)
	return practiceID, patientID, notFound(err, "message", id)
}
