package sqlstore

import (
	"context"
	"time"

	"haven"
)

// RescheduleVisit moves a booked visit to start..end in one UPDATE, so a
// reschedule is all or nothing:
//   - it applies only while the visit is still booked at version v.Version
//     (a compare-and-swap: a check-in, a cancel or another reschedule that
//     got there first makes this one ECONFLICT);
//   - the partial unique index on (clinician_id, starts_at) refuses a time
//     another live visit of the clinician holds, even one booked a moment
//     ago by another node, and that is ECONFLICT too;
//   - reminded_us is cleared, so the reminder for the new time goes out
//     (the one sent named no time, but the patient should hear again).
//
// On success v carries the new times and version.
func (d *DB) RescheduleVisit(ctx context.Context, v *haven.Visit, start, end time.Time) error {
	res, err := d.db.ExecContext(ctx, `UPDATE visits SET starts_at = $1, ends_at = $2, reminded_us = NULL, version = version + 1
		WHERE id = $3 AND state = 'booked' AND version = $4`, start.UTC(), end.UTC(), v.ID, v.Version)
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "that time is already booked")
	}
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ECONFLICT, "visit %s changed meanwhile; reload and try again", v.ID)
	}
	v.Start, v.End = start.UTC(), end.UTC()
	v.Version++
	return nil
}
