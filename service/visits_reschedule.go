package service

import (
	"context"
	"time"

	"haven"
	"haven/policy"
)

// RescheduleVisit moves a booked visit to newStart, which must be one of
// its clinician's free slots and in the future. Whoever may book or cancel
// the visit may move it (visit.reschedule); the gate decides and audits
// before anything is read or changed, so a refused attempt on another
// patient's or practice's visit is on record and learns nothing.
//
// Only a visit still booked moves: once the patient has checked in, been
// admitted, or the visit ended or was cancelled, its time is history or
// the call is under way, and the answer is ECONFLICT. The move itself is
// one UPDATE guarded by the visit's version and by the database's unique
// index on the clinician's start times, so of two requests racing for one
// slot exactly one wins and the other changes nothing.
//
// Nothing issued for the old time outlives the move: join tokens and call
// passes exist only for an admitted visit, the call door re-checks the
// visit's state on every join, and the web layer closes the visit's call
// room after a move as it does after a cancel. The clinician's access to
// the chart through the visit follows the visit's new time, since policy
// reads the visit window from the row itself. The reminder is re-armed
// for the new time.
func (s *Service) RescheduleVisit(ctx context.Context, visitID string, newStart time.Time) (*haven.VisitView, error) {
	_, v, err := s.visitFor(ctx, policy.VisitReschedule, visitID)
	if err != nil {
		return nil, err
	}
	if v.State != haven.VisitBooked {
		return nil, haven.Errorf(haven.ECONFLICT, "the visit is %s; only a booked visit can be moved", v.State)
	}
	if !newStart.After(s.now()) {
		return nil, haven.Errorf(haven.EINVALID, "the new time must be in the future")
	}
	slot, err := s.freeSlot(ctx, v.ClinicianID, newStart)
	if err != nil {
		return nil, err
	}
	if err := s.db.RescheduleVisit(ctx, v, slot.Start, slot.End); err != nil {
		if haven.ErrorCode(err) == haven.ECONFLICT {
			return nil, err
		}
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot move the visit")
	}
	return s.openVisit(ctx, v)
}
