package service_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"haven"
	"haven/audit"
	"haven/video/token"
)

// The env clock stands at Wednesday 2026-11-25 14:00 UTC; with
// wednesdayAfternoon the clinician's slots are 15:00, 15:30, 16:00, 16:30.
func wed(hour, min int) time.Time { return time.Date(2026, 11, 25, hour, min, 0, 0, time.UTC) }

// bookAt books patient a with clinician doc at start.
func (e *env) bookAt(a haven.Actor, patientID string, doc haven.Actor, start time.Time) *haven.VisitView {
	e.t.Helper()
	v, err := e.svc.BookVisit(e.as(a), patientID, doc.UserID, start, "reason "+patientID)
	if err != nil {
		e.t.Fatalf("booking %s: %v", start, err)
	}
	return v
}

// storedVisit reads a visit straight from the database.
func (e *env) storedVisit(id string) *haven.Visit {
	e.t.Helper()
	v, err := e.db.FindVisit(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// unchanged fails unless the visit still has the times, state and version
// it had in before.
func (e *env) unchanged(what string, before *haven.Visit) {
	e.t.Helper()
	now := e.storedVisit(before.ID)
	if !now.Start.Equal(before.Start) || !now.End.Equal(before.End) || now.State != before.State || now.Version != before.Version {
		e.t.Fatalf("%s changed the visit: %+v, was %+v", what, now, before)
	}
}

// rescheduleEvents returns the visit.reschedule events of a log, newest first.
func (e *env) rescheduleEvents(logID string) []audit.Event {
	e.t.Helper()
	rows, err := e.db.SearchAudit(context.Background(), haven.AuditQuery{LogID: logID, Action: "visit.reschedule", Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]audit.Event, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.Event)
	}
	return out
}

// TestRescheduleMovesABookedVisitToAFreeSlot: the patient, the front desk
// and the visit's clinician each move a booked visit to a free slot of the
// same clinician. The old slot frees up, the move is audited, the
// clinician's access through the visit follows the new time, and nothing
// minted for the visit opens the call.
func TestRescheduleMovesABookedVisitToAFreeSlot(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "r1")
		for _, doc := range []haven.Actor{p.clinician, p.otherClinician} {
			if err := e.svc.SetAvailability(e.as(doc), wednesdayAfternoon); err != nil {
				t.Fatal(err)
			}
		}
		v := e.bookAt(p.patientA, p.chartA.PatientID, p.clinician, wed(15, 0))
		moved, err := e.svc.RescheduleVisit(e.as(p.patientA), v.ID, wed(16, 0))
		if err != nil {
			t.Fatal(err)
		}
		if !moved.Start.Equal(wed(16, 0)) || !moved.End.Equal(wed(16, 30)) || moved.State != "booked" || moved.Reason != "reason "+p.chartA.PatientID {
			t.Fatalf("moved visit %+v", moved)
		}
		if got := e.storedVisit(v.ID); !got.Start.Equal(wed(16, 0)) || got.Version != 2 {
			t.Fatalf("stored visit %+v", got)
		}
		slots, err := e.svc.Slots(e.as(p.patientB), p.clinician.UserID, wed(14, 0), wed(18, 0))
		if err != nil {
			t.Fatal(err)
		}
		free := map[time.Time]bool{}
		for _, s := range slots {
			free[s.Start] = true
		}
		if !free[wed(15, 0)] || free[wed(16, 0)] {
			t.Fatalf("after the move the free slots are %v", slots)
		}
		if evs := e.rescheduleEvents(p.id); len(evs) != 1 || evs[0].ActorID != p.patientA.UserID ||
			evs[0].ResourceID != v.ID || evs[0].PatientID != p.chartA.PatientID || evs[0].Decision != haven.DecisionAllow {
			t.Fatalf("the move is not audited as the patient's: %+v", evs)
		}
		if _, err := e.svc.RescheduleVisit(e.as(p.staff), v.ID, wed(16, 30)); err != nil {
			t.Fatalf("front desk: %v", err)
		}
		if _, err := e.svc.RescheduleVisit(e.as(p.clinician), v.ID, wed(15, 30)); err != nil {
			t.Fatalf("the visit's clinician: %v", err)
		}

		// Nothing for this visit opens the call: there is no token to be
		// had, and one made anyway meets the door's check of the visit.
		forged, err := token.Mint(e.videoKey, claims(v.ID, p.patientA, token.Patient), e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.CallToken(e.as(p.patientA), v.ID); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("a call pass for a moved visit: %v", err)
		}
		c, err := token.Verify(e.videoKey, forged, v.ID, p.patientA.UserID, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.CallAllowed(e.as(p.patientA), c); err == nil {
			t.Fatal("the call door let a moved visit's patient in")
		}

		// The clinician off the care team reaches patient B's chart through
		// a visit, and the reach follows the visit: moved a week out, past
		// the window that opens a day before, the chart closes to them.
		other := e.bookAt(p.staff, p.chartB.PatientID, p.otherClinician, wed(15, 0))
		if _, err := e.svc.Chart(e.as(p.otherClinician), p.chartB.PatientID); err != nil {
			t.Fatalf("the booked clinician before the move: %v", err)
		}
		if _, err := e.svc.RescheduleVisit(e.as(p.staff), other.ID, wed(16, 30)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Chart(e.as(p.otherClinician), p.chartB.PatientID); err != nil {
			t.Fatalf("the booked clinician after a move within the day: %v", err)
		}
		nextWeek := wed(15, 0).AddDate(0, 0, 7)
		if _, err := e.svc.RescheduleVisit(e.as(p.patientB), other.ID, nextWeek); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Chart(e.as(p.otherClinician), p.chartB.PatientID); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("the clinician kept access to a visit moved a week out: %v", err)
		}
	})
}

// TestRescheduleRefusesWhatIsNotAFreeFutureSlotOfABookedVisit: a slot
// another visit holds, a time that is no slot, a past time, a visit
// checked in, a cancelled one. Each is refused and changes nothing.
func TestRescheduleRefusesWhatIsNotAFreeFutureSlotOfABookedVisit(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "r2")
		if err := e.svc.SetAvailability(e.as(p.clinician), wednesdayAfternoon); err != nil {
			t.Fatal(err)
		}
		a := e.bookAt(p.patientA, p.chartA.PatientID, p.clinician, wed(15, 0))
		b := e.bookAt(p.patientB, p.chartB.PatientID, p.clinician, wed(15, 30))
		patient := e.as(p.patientA)
		for _, c := range []struct {
			name string
			to   time.Time
			code string
		}{
			{"the slot another visit holds", wed(15, 30), haven.ECONFLICT},
			{"a time that is no slot", wed(16, 10), haven.ECONFLICT},
			{"outside the clinician's hours", wed(18, 0), haven.ECONFLICT},
			{"a slot last week", wed(16, 0).AddDate(0, 0, -7), haven.EINVALID},
			{"earlier today", wed(13, 0), haven.EINVALID},
		} {
			before := e.storedVisit(a.ID)
			if _, err := e.svc.RescheduleVisit(patient, a.ID, c.to); haven.ErrorCode(err) != c.code {
				t.Fatalf("%s: %v, want %s", c.name, err, c.code)
			}
			e.unchanged(c.name, before)
		}

		// Checked in: the visit is under way and keeps its time.
		e.clock.Advance(40 * time.Minute)
		if _, err := e.svc.CheckIn(patient, a.ID); err != nil {
			t.Fatal(err)
		}
		before := e.storedVisit(a.ID)
		if _, err := e.svc.RescheduleVisit(patient, a.ID, wed(16, 0)); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("a checked-in visit: %v", err)
		}
		e.unchanged("moving a checked-in visit", before)

		if err := e.svc.CancelVisit(e.as(p.patientB), b.ID); err != nil {
			t.Fatal(err)
		}
		before = e.storedVisit(b.ID)
		if _, err := e.svc.RescheduleVisit(e.as(p.patientB), b.ID, wed(16, 0)); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("a cancelled visit: %v", err)
		}
		e.unchanged("moving a cancelled visit", before)
	})
}

// TestRescheduleOfSomeoneElsesVisitIsRefusedAndAudited: another patient of
// the practice, a clinician with no relationship to the patient, the
// practice admin, and every role of another practice try to move a visit
// whose id they know. Each is refused as the rest of the visit API
// refuses (not found across patients and practices, forbidden within the
// practice), the visit stays where it was, and every refusal is a denial
// in the audit log of the one who tried.
func TestRescheduleOfSomeoneElsesVisitIsRefusedAndAudited(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "r3")
		q := e.seed("lakeshore", "s3")
		if err := e.svc.SetAvailability(e.as(p.clinician), wednesdayAfternoon); err != nil {
			t.Fatal(err)
		}
		v := e.bookAt(p.patientA, p.chartA.PatientID, p.clinician, wed(15, 0))
		before := e.storedVisit(v.ID)
		for _, c := range []struct {
			name string
			who  haven.Actor
			log  string
			code string
		}{
			{"another patient of the practice", p.patientB, p.id, haven.ENOTFOUND},
			{"a clinician unrelated to the patient", p.otherClinician, p.id, haven.EFORBIDDEN},
			{"the practice admin", p.admin, p.id, haven.EFORBIDDEN},
			{"the compliance officer", p.compliance, p.id, haven.EFORBIDDEN},
			{"another practice's patient", q.patientA, q.id, haven.ENOTFOUND},
			{"another practice's clinician", q.clinician, q.id, haven.ENOTFOUND},
			{"another practice's front desk", q.staff, q.id, haven.ENOTFOUND},
		} {
			denied := len(e.denials(c.log, c.who.UserID))
			if _, err := e.svc.RescheduleVisit(e.as(c.who), v.ID, wed(16, 0)); haven.ErrorCode(err) != c.code {
				t.Fatalf("%s: %v, want %s", c.name, err, c.code)
			}
			e.unchanged(c.name, before)
			evs := e.denials(c.log, c.who.UserID)
			if len(evs) != denied+1 || evs[0].ResourceID != v.ID {
				t.Fatalf("%s: the refusal is not audited: %+v", c.name, evs)
			}
		}
		// An id that does not exist gets the same answer, also audited.
		if _, err := e.svc.RescheduleVisit(e.as(p.patientB), haven.NewID(), wed(16, 0)); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("an unknown visit: %v", err)
		}
		if evs := e.denials(p.id, p.patientB.UserID); len(evs) != 2 || evs[0].Reason != "not_found" {
			t.Fatalf("the unknown id is not audited: %+v", evs)
		}
	})
}

// denials returns the visit.reschedule denials by actorID in a log.
func (e *env) denials(logID, actorID string) []audit.Event {
	e.t.Helper()
	var out []audit.Event
	for _, ev := range e.rescheduleEvents(logID) {
		if ev.ActorID == actorID && ev.Decision == haven.DecisionDeny {
			out = append(out, ev)
		}
	}
	return out
}

// TestTwoReschedulesToOneSlotOneWins: two patients' visits race to the
// same free slot, again and again; each time exactly one moves, the other
// is ECONFLICT and keeps its time, and the clinician never holds two
// visits at once. Whether the loser is stopped by the free-slot check or
// by the database's unique index depends on timing; the outcome does not.
func TestTwoReschedulesToOneSlotOneWins(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "r4")
		if err := e.svc.SetAvailability(e.as(p.clinician), wednesdayAfternoon); err != nil {
			t.Fatal(err)
		}
		// Over the weeks ahead, a pair of visits at 15:00 and 15:30 races
		// for 16:30 each Wednesday.
		for week := 0; week < 4; week++ {
			day := func(h, m int) time.Time { return wed(h, m).AddDate(0, 0, 7*week) }
			a := e.bookAt(p.patientA, p.chartA.PatientID, p.clinician, day(15, 0))
			b := e.bookAt(p.patientB, p.chartB.PatientID, p.clinician, day(15, 30))
			beforeA, beforeB := e.storedVisit(a.ID), e.storedVisit(b.ID)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			gate := make(chan struct{})
			for i, c := range []struct {
				who haven.Actor
				id  string
			}{{p.patientA, a.ID}, {p.patientB, b.ID}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-gate
					_, errs[i] = e.svc.RescheduleVisit(e.as(c.who), c.id, day(16, 30))
				}()
			}
			close(gate)
			wg.Wait()
			wins := 0
			for i, err := range errs {
				switch {
				case err == nil:
					wins++
				case haven.ErrorCode(err) != haven.ECONFLICT:
					t.Fatalf("week %d, racer %d: %v", week, i, err)
				}
			}
			if wins != 1 {
				t.Fatalf("week %d: %d reschedules won (%v)", week, wins, errs)
			}
			loser := beforeB
			if errs[0] != nil {
				loser = beforeA
			}
			e.unchanged("the losing reschedule", loser)
			booked, err := e.db.ClinicianVisits(context.Background(), p.clinician.UserID, day(16, 30), day(16, 31))
			if err != nil || len(booked) != 1 {
				t.Fatalf("week %d: the clinician holds %d visits at 16:30 (%v)", week, len(booked), err)
			}
		}
	})
}

// TestOneVisitRescheduledTwiceAtOnceMovesOnce: the patient and the front
// desk move the same visit to the same slot at the same moment (two tabs,
// a phone call). Exactly one move happens: if the two read the visit
// together, the version guard stops the second; if one ran first, the
// slot is no longer free for the second. The visit ends up at the slot,
// moved once.
func TestOneVisitRescheduledTwiceAtOnceMovesOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "r5")
		if err := e.svc.SetAvailability(e.as(p.clinician), wednesdayAfternoon); err != nil {
			t.Fatal(err)
		}
		for round, target := range []time.Time{wed(16, 0), wed(16, 30), wed(15, 30)} {
			v := e.bookAt(p.patientA, p.chartA.PatientID, p.clinician, target.AddDate(0, 0, 7))
			before := e.storedVisit(v.ID)
			who := []haven.Actor{p.patientA, p.staff}
			errs := make([]error, 2)
			var wg sync.WaitGroup
			gate := make(chan struct{})
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-gate
					_, errs[i] = e.svc.RescheduleVisit(e.as(who[i]), v.ID, target)
				}()
			}
			close(gate)
			wg.Wait()
			wins := 0
			for i, err := range errs {
				if err == nil {
					wins++
				} else if haven.ErrorCode(err) != haven.ECONFLICT {
					t.Fatalf("round %d, move %d: %v", round, i, err)
				}
			}
			if wins != 1 {
				t.Fatalf("round %d: %d moves succeeded (%v)", round, wins, errs)
			}
			if got := e.storedVisit(v.ID); !got.Start.Equal(target) || got.Version != before.Version+1 {
				t.Fatalf("round %d: the visit is at %s (version %d), want %s moved once", round, got.Start, got.Version, target)
			}
		}
	})
}
