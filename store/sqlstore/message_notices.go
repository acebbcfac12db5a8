package sqlstore

import (
	"context"
	"database/sql"
)

// MessageNotice is one person waiting to be told by email that they have
// a new secure message.
type MessageNotice struct {
	UserID, PracticeID string
	PendingUS          int64 // the oldest message not yet announced
	SentUS             int64 // the last announcement; 0 for none
	// Update marks a notice of an update to the patient's record (an
	// answer to her amendment request) rather than of a message: the same
	// life, kept in update_notices.
	Update bool
}

func (n MessageNotice) table() string {
	if n.Update {
		return "update_notices"
	}
	return "message_notices"
}

// MarkUpdate marks a patient to be told by email that her record has an
// update, unless she is marked already.
func (d *DB) MarkUpdate(ctx context.Context, userID, practiceID string, nowUS int64) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO update_notices (user_id, practice_id, pending_us) VALUES ($1, $2, $3)
		ON CONFLICT (user_id) DO UPDATE SET pending_us = COALESCE(update_notices.pending_us, excluded.pending_us)`,
		userID, practiceID, nowUS)
	return err
}

// DueNotices returns up to limit people with a message not yet announced
// whose last announcement is no later than cutoffUS (or who never had
// one), the longest-waiting first.
func (d *DB) DueNotices(ctx context.Context, cutoffUS int64, limit int) ([]MessageNotice, error) {
	return d.dueNotices(ctx, MessageNotice{}, cutoffUS, limit)
}

// DueUpdates is DueNotices for notices of record updates.
func (d *DB) DueUpdates(ctx context.Context, cutoffUS int64, limit int) ([]MessageNotice, error) {
	return d.dueNotices(ctx, MessageNotice{Update: true}, cutoffUS, limit)
}

func (d *DB) dueNotices(ctx context.Context, kind MessageNotice, cutoffUS int64, limit int) ([]MessageNotice, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT user_id, practice_id, pending_us, sent_us FROM `+kind.table()+`
		WHERE pending_us IS NOT NULL AND (sent_us IS NULL OR sent_us <= $1) ORDER BY pending_us, user_id LIMIT $2`, cutoffUS, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []MessageNotice
	for rows.Next() {
		n := MessageNotice{Update: kind.Update}
		var sent sql.NullInt64
		if err := rows.Scan(&n.UserID, &n.PracticeID, &n.PendingUS, &sent); err != nil {
			return nil, err
		}
		n.SentUS = sent.Int64
		out = append(out, n)
	}
	return out, rows.Err()
}

// ClaimNotice takes n's announcement for this caller: one compare-and-set
// that clears its pending mark and stamps nowUS as its last announcement,
// if it is still as DueNotices read it (pending, last sent at n.SentUS).
// Of several nodes claiming one notice, one wins; the others are told no.
func (d *DB) ClaimNotice(ctx context.Context, n MessageNotice, nowUS int64) (bool, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE `+n.table()+` SET pending_us = NULL, sent_us = $1
		WHERE user_id = $2 AND pending_us = $3 AND COALESCE(sent_us, 0) = $4`, nowUS, n.UserID, n.PendingUS, n.SentUS)
	if err != nil {
		return false, err
	}
	k, err := res.RowsAffected()
	return k == 1, err
}

// ReleaseNotice undoes a claim whose email could not be handed on, so the
// next run tries again: the pending mark returns (unless a newer message
// set one meanwhile) and the last announcement is what it was.
func (d *DB) ReleaseNotice(ctx context.Context, n MessageNotice) error {
	_, err := d.db.ExecContext(ctx, `UPDATE `+n.table()+` SET pending_us = COALESCE(pending_us, $1), sent_us = $2 WHERE user_id = $3`,
		n.PendingUS, sql.NullInt64{Int64: n.SentUS, Valid: n.SentUS != 0}, n.UserID)
	return err
}
