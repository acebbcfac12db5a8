package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"haven"
)

// CreateVisitMessage stores m, stamping its time, if the visit still holds
// fewer than max messages; a full visit is ETOOMANY and nothing is stored.
// The count and the insert are one statement. The cap bounds a flood, not
// an exact number: under PostgreSQL's read-committed isolation senders
// racing at the last place may each take it.
func (d *DB) CreateVisitMessage(ctx context.Context, m *haven.VisitMessage, max int) error {
	m.CreatedUS = micros(d.now())
	res, err := d.db.ExecContext(ctx, `INSERT INTO visit_messages (id, practice_id, visit_id, patient_id, sender_id, body_sealed, created_us)
		SELECT $1, $2, $3, $4, $5, $6, $7
		WHERE (SELECT COUNT(*) FROM visit_messages WHERE visit_id = $8) < $9`,
		m.ID, m.PracticeID, m.VisitID, m.PatientID, m.SenderID, []byte(m.Body), m.CreatedUS, m.VisitID, max)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ETOOMANY, "this visit holds the most messages it may (%d)", max)
	}
	return nil
}

// VisitMessages returns a visit's messages, oldest first.
func (d *DB) VisitMessages(ctx context.Context, visitID string) ([]*haven.VisitMessage, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, practice_id, visit_id, patient_id, sender_id, body_sealed, created_us
		FROM visit_messages WHERE visit_id = $1 ORDER BY created_us, id`, visitID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.VisitMessage
	for rows.Next() {
		var m haven.VisitMessage
		var body []byte
		if err := rows.Scan(&m.ID, &m.PracticeID, &m.VisitID, &m.PatientID, &m.SenderID, &body, &m.CreatedUS); err != nil {
			return nil, err
		}
		m.Body = body
		out = append(out, &m)
	}
	return out, rows.Err()
}

// VisitWatch returns a visit's state and how many messages it holds, in
// one query: what a waiting page watches for a change, cheaply enough to
// ask twice a second.
func (d *DB) VisitWatch(ctx context.Context, visitID string) (state string, messages int, err error) {
	err = d.db.QueryRowContext(ctx, `SELECT v.state, (SELECT COUNT(*) FROM visit_messages m WHERE m.visit_id = v.id)
		FROM visits v WHERE v.id = $1`, visitID).Scan(&state, &messages)
	return state, messages, notFound(err, "visit", visitID)
}

// VisitMessageCounts returns how many messages each of visitIDs holds
// (visits without any are absent), for the clinician's queue: one query
// for the whole queue, none for an empty one.
func (d *DB) VisitMessageCounts(ctx context.Context, visitIDs []string) (map[string]int, error) {
	out := make(map[string]int, len(visitIDs))
	if len(visitIDs) == 0 {
		return out, nil
	}
	var q strings.Builder
	q.WriteString(`SELECT visit_id, COUNT(*) FROM visit_messages WHERE visit_id IN (`)
	args := make([]any, len(visitIDs))
	for i, id := range visitIDs {
		if i > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "$%d", i+1)
		args[i] = id
	}
	q.WriteString(`) GROUP BY visit_id`)
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
