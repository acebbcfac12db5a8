package sqlstore

import (
	"context"
	"database/sql"
	"strconv"
	"time"

	"haven"
)

// Visit reminders. reminded_us (migration 0010) is NULL until a node has
// claimed the visit's reminder; the claim is a compare-and-set, so of any
// number of nodes (or a node and its restarted self) exactly one sends.

// UnremindedVisits returns booked visits whose reminder has not gone out
// and that start after from and no later than until, ordered by start and
// id, at most limit of them. A caller paging through them passes the last
// one's start and id as after and afterID ("" for the first page).
func (d *DB) UnremindedVisits(ctx context.Context, from, until, after time.Time, afterID string, limit int) ([]*haven.Visit, error) {
	q := `SELECT ` + visitColumns + ` FROM visits WHERE state = 'booked' AND reminded_us IS NULL
		AND starts_at > $1 AND starts_at <= $2`
	args := []any{from.UTC(), until.UTC()}
	if afterID != "" {
		q += ` AND (starts_at > $3 OR (starts_at = $3 AND id > $4))`
		args = append(args, after.UTC(), afterID)
	}
	args = append(args, limit)
	q += ` ORDER BY starts_at, id LIMIT $` + strconv.Itoa(len(args))
	return d.queryVisits(ctx, q, args...)
}

// ClaimReminder marks the visit's reminder as sent at at, if it is still
// booked at version, starts at start and has no reminder yet, and reports
// whether this call made the mark. Only the caller that gets true sends.
// The start is part of the condition so that a reschedule that slipped in
// after the visit was read is never reminded for the time it left.
func (d *DB) ClaimReminder(ctx context.Context, visitID string, version int, start, at time.Time) (bool, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE visits SET reminded_us = $1
		WHERE id = $2 AND version = $3 AND starts_at = $4 AND state = 'booked' AND reminded_us IS NULL`,
		micros(at), visitID, version, start.UTC())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ReleaseReminder undoes this node's claim made at at (the email could not
// be handed on), so a later run tries again. A claim someone else made
// since, or a reschedule's reset, is left alone.
func (d *DB) ReleaseReminder(ctx context.Context, visitID string, at time.Time) error {
	_, err := d.db.ExecContext(ctx, `UPDATE visits SET reminded_us = NULL WHERE id = $1 AND reminded_us = $2`, visitID, micros(at))
	return err
}

// VisitReminded reports when the visit's reminder was claimed, if it was.
func (d *DB) VisitReminded(ctx context.Context, visitID string) (time.Time, bool, error) {
	var us sql.NullInt64
	if err := d.db.QueryRowContext(ctx, `SELECT reminded_us FROM visits WHERE id = $1`, visitID).Scan(&us); err != nil {
		return time.Time{}, false, notFound(err, "visit", visitID)
	}
	if !us.Valid {
		return time.Time{}, false, nil
	}
	return fromMicros(us.Int64), true, nil
}
