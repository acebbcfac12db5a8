package service_test

import (
	"testing"

	"haven"
	"haven/video/token"
)

// TestCallStillOpenFollowsTheVisit is what the call endpoint asks while a
// participant is seated: yes for the visit's patient, clinician and
// invited guest while it is admitted; no once it has ended, for claims
// that are not the asker's or not their part, for an uninvited guest and
// for another practice. It writes nothing to the audit log (the join was
// audited, and a cut is audited by the endpoint).
func TestCallStillOpenFollowsTheVisit(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "r1")
		q := e.seed("lakeshore", "s1")
		v := e.admittedVisit(p)
		if err := e.svc.InviteGuest(e.as(p.clinician), v.ID, p.staff.UserID); err != nil {
			t.Fatal(err)
		}
		before := e.lastEvent(p.id).Seq
		for _, c := range []struct {
			name string
			who  haven.Actor
			c    token.Claims
			code string
		}{
			{"patient", p.patientA, claims(v.ID, p.patientA, token.Patient), ""},
			{"clinician", p.clinician, claims(v.ID, p.clinician, token.Clinician), ""},
			{"invited guest", p.staff, claims(v.ID, p.staff, token.Guest), ""},
			{"someone else's claims", p.patientB, claims(v.ID, p.patientA, token.Patient), haven.EFORBIDDEN},
			{"another patient as the patient", p.patientB, claims(v.ID, p.patientB, token.Patient), haven.EFORBIDDEN},
			{"the patient as clinician", p.patientA, claims(v.ID, p.patientA, token.Clinician), haven.EFORBIDDEN},
			{"uninvited guest", p.otherClinician, claims(v.ID, p.otherClinician, token.Guest), haven.EFORBIDDEN},
			{"another practice", q.clinician, claims(v.ID, q.clinician, token.Guest), haven.ENOTFOUND},
			{"unknown visit", p.patientA, claims(haven.NewID(), p.patientA, token.Patient), haven.ENOTFOUND},
		} {
			if err := e.svc.CallStillOpen(e.as(c.who), c.c); haven.ErrorCode(err) != c.code {
				t.Fatalf("%s: %v, want %q", c.name, err, c.code)
			}
		}
		if after := e.lastEvent(p.id).Seq; after != before {
			t.Fatalf("rechecks were audited (%d events)", after-before)
		}
		if err := e.svc.EndVisit(e.as(p.clinician), v.ID); err != nil {
			t.Fatal(err)
		}
		for _, who := range []haven.Actor{p.patientA, p.clinician} {
			role := token.Patient
			if who.Role == haven.RoleClinician {
				role = token.Clinician
			}
			if err := e.svc.CallStillOpen(e.as(who), claims(v.ID, who, role)); haven.ErrorCode(err) != haven.ECONFLICT {
				t.Fatalf("%s after the end: %v", who.Role, err)
			}
		}
	})
}
