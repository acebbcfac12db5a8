package service_test

import (
	"testing"
	"time"

	"haven"
)

// A user who tries another practice's visit id is refused and audited in
// their own practice's log, and that log learns nothing it did not already
// have: the visit id they sent, not the other practice's patient behind it.
func TestCrossPracticeDenialNamesNoOtherPracticesPatient(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "g1")
		q := e.seed("lakeshore", "h1")
		if err := e.svc.SetAvailability(e.as(p.clinician), wednesdayAfternoon); err != nil {
			t.Fatal(err)
		}
		start := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)
		v, err := e.svc.BookVisit(e.as(p.patientA), p.chartA.PatientID, p.clinician.UserID, start, "follow-up")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []haven.Actor{q.clinician, q.staff, q.patientA} {
			if _, err := e.svc.Visit(e.as(a), v.ID); haven.ErrorCode(err) != haven.ENOTFOUND {
				t.Fatalf("%s of another practice read the visit: %v", a.Role, err)
			}
			ev := e.lastEvent(q.id)
			if ev.ActorID != a.UserID || ev.ResourceID != v.ID || ev.Decision != "deny" {
				t.Fatalf("the refusal is not in the actor's log as sent: %+v", ev)
			}
			if ev.PatientID != "" {
				t.Fatalf("the actor's practice log names another practice's patient %q", ev.PatientID)
			}
		}
	})
}
