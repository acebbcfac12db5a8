package service

import (
	"context"
	"slices"
	"time"

	"haven"
	"haven/keyring"
	"haven/policy"
	"haven/video/token"
)

// Scheduling, the virtual waiting room and admission. A booked visit opens
// the patient's record to its clinician for policy's visit window; a
// patient reaches the call only with a join token, and tokens are minted
// only for an admitted visit, one per participant, single-use and short.

// AvailabilityBlock is one weekly block of bookable time, in the
// clinician's own time zone, so "Mondays 9 to 12" stays 9 to 12 across
// daylight-saving changes.
type AvailabilityBlock struct {
	Weekday     time.Weekday `json:"weekday"`
	Start       string       `json:"start"` // "09:00"
	End         string       `json:"end"`   // "12:00"
	SlotMinutes int          `json:"slot_minutes"`
	TimeZone    string       `json:"time_zone"` // IANA, e.g. "America/Chicago"
}

func parseClock(s string) (int, bool) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, false
	}
	return t.Hour()*60 + t.Minute(), true
}

// SetAvailability replaces the signed-in clinician's weekly availability.
func (s *Service) SetAvailability(ctx context.Context, blocks []AvailabilityBlock) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	if a.Role != haven.RoleClinician || !a.MFA {
		return haven.Errorf(haven.EFORBIDDEN, "only a signed-in clinician sets their own availability")
	}
	rows := make([]haven.Availability, 0, len(blocks))
	for _, b := range blocks {
		start, ok1 := parseClock(b.Start)
		end, ok2 := parseClock(b.End)
		if !ok1 || !ok2 || start >= end || b.Weekday < 0 || b.Weekday > 6 {
			return haven.Errorf(haven.EINVALID, "each block needs a weekday and a start before its end (HH:MM)")
		}
		if b.SlotMinutes < 5 || b.SlotMinutes > 240 || (end-start)%b.SlotMinutes != 0 {
			return haven.Errorf(haven.EINVALID, "slots must be 5 to 240 minutes and divide the block evenly")
		}
		if _, err := time.LoadLocation(b.TimeZone); err != nil || b.TimeZone == "" {
			return haven.Errorf(haven.EINVALID, "unknown time zone %q", b.TimeZone)
		}
		rows = append(rows, haven.Availability{ID: haven.NewID(), PracticeID: a.PracticeID, ClinicianID: a.UserID,
			Weekday: int(b.Weekday), StartMinute: start, EndMinute: end, SlotMinutes: b.SlotMinutes, TimeZone: b.TimeZone})
	}
	return s.db.ReplaceAvailability(ctx, a.UserID, rows)
}

// Slot is a bookable time.
type Slot struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Slots returns a clinician's free slots starting in [from, to), at most
// 31 days. Anyone of the clinician's practice may see them: free times
// are not PHI.
func (s *Service) Slots(ctx context.Context, clinicianID string, from, to time.Time) ([]Slot, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if !haven.PlausibleID(clinicianID) {
		return nil, errNotFound
	}
	doc, err := s.db.FindUserByID(ctx, clinicianID)
	if err != nil || doc.PracticeID != a.PracticeID || doc.Role != haven.RoleClinician {
		return nil, haven.Errorf(haven.ENOTFOUND, "not found")
	}
	if to.Sub(from) > 31*24*time.Hour || !to.After(from) {
		return nil, haven.Errorf(haven.EINVALID, "ask for at most 31 days of slots")
	}
	if now := s.now(); from.Before(now) {
		from = now
	}
	blocks, err := s.db.ClinicianAvailability(ctx, clinicianID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load availability")
	}
	booked, err := s.db.ClinicianVisits(ctx, clinicianID, from.Add(-24*time.Hour), to)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load visits")
	}
	var out []Slot
	for _, b := range blocks {
		loc, err := time.LoadLocation(b.TimeZone)
		if err != nil {
			continue
		}
		// Walk local calendar days, so each slot is built in local time and
		// a daylight-saving change moves nothing the clinician set.
		day := time.Date(from.In(loc).Year(), from.In(loc).Month(), from.In(loc).Day(), 0, 0, 0, 0, loc)
		for ; day.Before(to); day = day.AddDate(0, 0, 1) {
			if int(day.Weekday()) != b.Weekday {
				continue
			}
			for m := b.StartMinute; m+b.SlotMinutes <= b.EndMinute; m += b.SlotMinutes {
				start := time.Date(day.Year(), day.Month(), day.Day(), m/60, m%60, 0, 0, loc).UTC()
				end := start.Add(time.Duration(b.SlotMinutes) * time.Minute)
				if start.Before(from) || !start.Before(to) || overlaps(booked, start, end) {
					continue
				}
				out = append(out, Slot{start, end})
			}
		}
	}
	slices.SortFunc(out, func(x, y Slot) int { return x.Start.Compare(y.Start) })
	return out, nil
}

func overlaps(vs []*haven.Visit, start, end time.Time) bool {
	for _, v := range vs {
		if v.State != haven.VisitCancelled && v.Start.Before(end) && start.Before(v.End) {
			return true
		}
	}
	return false
}

func visitAD(v *haven.Visit) keyring.AD {
	return keyring.AD{PracticeID: v.PracticeID, PatientID: v.PatientID, Kind: "visit", RecordID: v.ID, Field: "reason"}
}

func visitResource(v *haven.Visit) policy.Resource {
	return policy.Resource{Kind: policy.KindVisit, ID: v.ID, PracticeID: v.PracticeID, PatientID: v.PatientID}
}

func (s *Service) openVisit(ctx context.Context, v *haven.Visit) (*haven.VisitView, error) {
	reason, err := s.keys.Open(ctx, visitAD(v), v.Reason)
	if err != nil {
		return nil, err
	}
	return &haven.VisitView{ID: v.ID, PatientID: v.PatientID, ClinicianID: v.ClinicianID, Start: v.Start, End: v.End, State: v.State,
		Reason: string(reason), CheckedInAt: v.CheckedInAt}, nil
}

// BookVisit books a slot for a patient with a clinician of their practice.
// The start must be one of the clinician's free slots.
func (s *Service) BookVisit(ctx context.Context, patientID, clinicianID string, start time.Time, reason string) (*haven.VisitView, error) {
	if err := text("reason for the visit", reason, 1, 500); err != nil {
		return nil, err
	}
	row, err := s.patientRow(ctx, policy.VisitBook, policy.KindVisit, patientID)
	if err != nil {
		return nil, err
	}
	v := &haven.Visit{ID: haven.NewID(), PracticeID: row.PracticeID, PatientID: row.ID, ClinicianID: clinicianID, State: haven.VisitBooked}
	a, _, err := s.authorizeRecord(ctx, policy.VisitBook, visitResource(v), patientID)
	if err != nil {
		return nil, err
	}
	slot, err := s.freeSlot(ctx, clinicianID, start)
	if err != nil {
		return nil, err
	}
	v.Start, v.End, v.BookedBy = slot.Start, slot.End, a.UserID
	if v.Reason, err = s.keys.Seal(ctx, visitAD(v), []byte(reason)); err != nil {
		return nil, err
	}
	if err := s.db.CreateVisit(ctx, v); err != nil {
		return nil, err
	}
	return s.openVisit(ctx, v)
}

// freeSlot returns the clinician's free slot that begins at start, or
// ECONFLICT when start is not one: booking and rescheduling accept only
// times Slots would offer.
func (s *Service) freeSlot(ctx context.Context, clinicianID string, start time.Time) (Slot, error) {
	slots, err := s.Slots(ctx, clinicianID, start.Add(-time.Minute), start.Add(time.Minute))
	if err != nil {
		return Slot{}, err
	}
	i := slices.IndexFunc(slots, func(sl Slot) bool { return sl.Start.Equal(start) })
	if i < 0 {
		return Slot{}, haven.Errorf(haven.ECONFLICT, "that time is not a free slot of this clinician")
	}
	return slots[i], nil
}

// visitFor loads a visit and passes the gate for act.
func (s *Service) visitFor(ctx context.Context, act policy.Action, visitID string) (haven.Actor, *haven.Visit, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return a, nil, err
	}
	if !haven.PlausibleID(visitID) {
		return a, nil, s.refuseUnknown(ctx, a, act, policy.KindVisit, visitID)
	}
	v, err := s.db.FindVisit(ctx, visitID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return a, nil, s.refuseUnknown(ctx, a, act, policy.KindVisit, visitID)
	}
	if err != nil {
		return a, nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the visit")
	}
	if _, _, err := s.authorizeRecord(ctx, act, visitResource(v), visitID); err != nil {
		return a, nil, err
	}
	return a, v, nil
}

// move changes a visit's state from one of from, or fails with ECONFLICT
// saying what state it is in.
func (s *Service) move(ctx context.Context, v *haven.Visit, to string, from ...string) error {
	if !slices.Contains(from, v.State) {
		return haven.Errorf(haven.ECONFLICT, "the visit is %s", v.State)
	}
	prev := v.State
	v.State = to
	return s.db.MoveVisit(ctx, v, prev)
}

// Visits returns a patient's visits.
func (s *Service) Visits(ctx context.Context, patientID string) ([]*haven.VisitView, error) {
	row, err := s.patientRow(ctx, policy.VisitRead, policy.KindVisit, patientID)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.VisitRead, policy.Resource{Kind: policy.KindVisit, PracticeID: row.PracticeID, PatientID: row.ID}, patientID); err != nil {
		return nil, err
	}
	vs, err := s.db.PatientVisits(ctx, row.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load visits")
	}
	out := make([]*haven.VisitView, 0, len(vs))
	for _, v := range vs {
		ov, err := s.openVisit(ctx, v)
		if err != nil {
			return nil, err
		}
		out = append(out, ov)
	}
	return out, nil
}

// CancelVisit cancels a booked or waiting visit; its links close with it.
func (s *Service) CancelVisit(ctx context.Context, visitID string) error {
	_, v, err := s.visitFor(ctx, policy.VisitCancel, visitID)
	if err != nil {
		return err
	}
	return s.move(ctx, v, haven.VisitCancelled, haven.VisitBooked, haven.VisitWaiting)
}

// CheckInWindow is how long before its start a visit's patient may enter
// the waiting room.
const CheckInWindow = 30 * time.Minute

// CheckIn puts the patient in the waiting room, from CheckInWindow before
// the visit's start until its end.
func (s *Service) CheckIn(ctx context.Context, visitID string) (*haven.VisitView, error) {
	_, v, err := s.visitFor(ctx, policy.VisitCheckIn, visitID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if now.Before(v.Start.Add(-CheckInWindow)) || !now.Before(v.End) {
		return nil, haven.Errorf(haven.ECONFLICT, "check-in opens %s before the visit and closes at its end", CheckInWindow)
	}
	if err := s.move(ctx, v, haven.VisitWaiting, haven.VisitBooked); err != nil {
		return nil, err
	}
	return s.openVisit(ctx, v)
}

// WaitingRoom returns today's waiting and admitted visits of the signed-in
// clinician, each decided and audited on its own (visit.read).
func (s *Service) WaitingRoom(ctx context.Context) ([]*haven.VisitView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorize(ctx, policy.VisitQueue, policy.Resource{Kind: policy.KindVisit, PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	now := s.now()
	vs, err := s.db.ClinicianVisits(ctx, a.UserID, now.Add(-12*time.Hour), now.Add(12*time.Hour))
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load visits")
	}
	names := s.patientNames()
	var out []*haven.VisitView
	for _, v := range vs {
		if v.State != haven.VisitWaiting && v.State != haven.VisitAdmitted {
			continue
		}
		if _, _, err := s.authorize(ctx, policy.VisitRead, visitResource(v)); err != nil {
			continue
		}
		ov, err := s.openVisit(ctx, v)
		if err != nil {
			return nil, err
		}
		ov.PatientName = names(ctx, v.PatientID)
		out = append(out, ov)
	}
	return out, nil
}

// MaxScheduleSpan is the longest stretch of time one schedule covers.
const MaxScheduleSpan = 48 * time.Hour

// Schedule returns the visits starting in [from, to), at most
// MaxScheduleSpan, cancelled ones left out: the signed-in clinician's own,
// or for the front desk every clinician's of the practice. The list is
// decided and audited (visit.queue), then each visit on its own
// (visit.read) before it is opened, as in the waiting room, so the
// patient's access history shows who looked at her visit.
func (s *Service) Schedule(ctx context.Context, from, to time.Time) ([]*haven.VisitView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if !to.After(from) || to.Sub(from) > MaxScheduleSpan {
		return nil, haven.Errorf(haven.EINVALID, "a schedule covers at most %s", MaxScheduleSpan)
	}
	if _, _, err := s.authorize(ctx, policy.VisitQueue, policy.Resource{Kind: policy.KindVisit, PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	var vs []*haven.Visit
	if a.Role == haven.RoleClinician {
		vs, err = s.db.ClinicianVisits(ctx, a.UserID, from, to)
	} else {
		vs, err = s.db.PracticeVisits(ctx, a.PracticeID, from, to)
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load visits")
	}
	patients := s.patientNames()
	clinicians := map[string]string{}
	out := []*haven.VisitView{}
	for _, v := range vs {
		if _, _, err := s.authorize(ctx, policy.VisitRead, visitResource(v)); err != nil {
			if haven.ErrorCode(err) == haven.EUNAVAILABLE {
				return nil, err
			}
			continue
		}
		ov, err := s.openVisit(ctx, v)
		if err != nil {
			return nil, err
		}
		ov.PatientName = patients(ctx, v.PatientID)
		name, ok := clinicians[v.ClinicianID]
		if !ok {
			name = s.workforceName(ctx, v.PracticeID, v.ClinicianID)
			clinicians[v.ClinicianID] = name
		}
		ov.ClinicianName = name
		out = append(out, ov)
	}
	return out, nil
}

// patientNames opens patients' names for a list already authorized.
func (s *Service) patientNames() func(context.Context, string) string {
	return func(ctx context.Context, id string) string {
		row, err := s.db.FindPatient(ctx, id)
		if err != nil {
			return ""
		}
		return patientName(ctx, s, row)
	}
}

// Admit lets a waiting patient into the call (clinician, with a recent
// step-up: admitting is what opens the conversation).
func (s *Service) Admit(ctx context.Context, visitID string) error {
	_, v, err := s.visitFor(ctx, policy.VisitAdmit, visitID)
	if err != nil {
		return err
	}
	return s.move(ctx, v, haven.VisitAdmitted, haven.VisitWaiting)
}

// EndVisit ends an admitted visit (clinician); its tokens stop working.
func (s *Service) EndVisit(ctx context.Context, visitID string) error {
	_, v, err := s.visitFor(ctx, policy.VisitEnd, visitID)
	if err != nil {
		return err
	}
	return s.move(ctx, v, haven.VisitEnded, haven.VisitAdmitted)
}

// JoinToken mints the signed-in participant's join token for an admitted
// visit: bound to this visit and this participant, single-use, short-lived.
// Before admission there is no token to be had.
func (s *Service) JoinToken(ctx context.Context, visitID string) (string, error) {
	if len(s.videoKey) != token.KeySize {
		return "", haven.Errorf(haven.EUNAVAILABLE, "video is not configured")
	}
	a, v, err := s.visitFor(ctx, policy.VisitJoin, visitID)
	if err != nil {
		return "", err
	}
	if v.State != haven.VisitAdmitted {
		return "", haven.Errorf(haven.ECONFLICT, "the visit is %s: the clinician admits you when ready", v.State)
	}
	role := token.Patient
	if a.UserID == v.ClinicianID {
		role = token.Clinician
	} else if a.UserID != v.PatientID {
		return "", haven.Errorf(haven.EFORBIDDEN, "only the visit's patient and clinician join this way")
	}
	return token.Mint(s.videoKey, token.Claims{VisitID: v.ID, ParticipantID: a.UserID, Role: role}, s.now())
}
