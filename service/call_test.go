package service_test

import (
	"testing"
	"time"

	"haven"
	"haven/service"
	"haven/video/token"
)

// admittedVisit books patient A with the clinician at 15:00, checks in at
// 14:40 and admits: the state a call needs.
func (e *env) admittedVisit(p *practice) *haven.VisitView {
	e.t.Helper()
	if err := e.svc.SetAvailability(e.as(p.clinician), wednesdayAfternoon); err != nil {
		e.t.Fatal(err)
	}
	start := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)
	v, err := e.svc.BookVisit(e.as(p.patientA), p.chartA.PatientID, p.clinician.UserID, start, "cough")
	if err != nil {
		e.t.Fatal(err)
	}
	e.clock.Advance(40 * time.Minute)
	if _, err := e.svc.CheckIn(e.as(p.patientA), v.ID); err != nil {
		e.t.Fatal(err)
	}
	if err := e.svc.Admit(e.as(p.clinician), v.ID); err != nil {
		e.t.Fatal(err)
	}
	return v
}

func claims(visitID string, a haven.Actor, role token.Role) token.Claims {
	return token.Claims{VisitID: visitID, ParticipantID: a.UserID, Role: role}
}

func TestCallTokensGoToThePatientAndClinicianOnly(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "c1")
		v := e.admittedVisit(p)
		for _, who := range []struct {
			a    haven.Actor
			role token.Role
		}{{p.patientA, token.Patient}, {p.clinician, token.Clinician}} {
			pass, err := e.svc.CallToken(e.as(who.a), v.ID)
			if err != nil || pass.Role != who.role {
				t.Fatalf("%s: %+v %v", who.role, pass, err)
			}
			if err := e.svc.CallAllowed(e.as(who.a), claims(v.ID, who.a, who.role)); err != nil {
				t.Fatalf("%s refused at the door: %v", who.role, err)
			}
		}
		for _, outsider := range []haven.Actor{p.patientB, p.otherClinician, p.staff} {
			if _, err := e.svc.CallToken(e.as(outsider), v.ID); err == nil {
				t.Fatalf("%s got a token", outsider.Role)
			}
			if ev := e.lastEvent(p.id); ev.Decision != haven.DecisionDeny || ev.ActorID != outsider.UserID {
				t.Fatalf("refused token not audited: %+v", ev)
			}
		}
	})
}

// TestCallIsClosedOnceTheVisitEnds: a token minted while the visit was
// admitted, redeemed after the clinician ended it (on another node, say),
// does not seat anyone.
func TestCallIsClosedOnceTheVisitEnds(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "c2")
		v := e.admittedVisit(p)
		if err := e.svc.EndVisit(e.as(p.clinician), v.ID); err != nil {
			t.Fatal(err)
		}
		err := e.svc.CallAllowed(e.as(p.patientA), claims(v.ID, p.patientA, token.Patient))
		if haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("joined an ended visit: %v", err)
		}
	})
}

// TestTokenRoleMustMatchThePersonAtTheDoor: a patient who somehow holds a
// clinician-role token for their own visit (or claims someone else's id)
// is refused.
func TestTokenRoleMustMatchThePersonAtTheDoor(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "c3")
		v := e.admittedVisit(p)
		if err := e.svc.CallAllowed(e.as(p.patientA), claims(v.ID, p.patientA, token.Clinician)); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("patient seated as clinician: %v", err)
		}
		if err := e.svc.CallAllowed(e.as(p.patientB), claims(v.ID, p.patientA, token.Patient)); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("someone else's claims: %v", err)
		}
	})
}

// TestGuestJoinsOnlyByTheClinicsInvitation: the front desk (standing in
// for an interpreter) gets no token until the visit's clinician invites
// them; another practice's user cannot be invited and learns nothing;
// the patient cannot invite.
func TestGuestJoinsOnlyByTheClinicsInvitation(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "c4")
		q := e.seed("lakeshore", "d4")
		v := e.admittedVisit(p)
		guest := p.staff
		if _, err := e.svc.CallToken(e.as(guest), v.ID); err == nil {
			t.Fatal("uninvited guest got a token")
		}
		if err := e.svc.CallAllowed(e.as(guest), claims(v.ID, guest, token.Guest)); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("uninvited guest at the door: %v", err)
		}
		if ev := e.lastEvent(p.id); ev.Reason != "not_invited" || ev.Decision != haven.DecisionDeny {
			t.Fatalf("refusal not audited: %+v", ev)
		}
		if err := e.svc.InviteGuest(e.as(p.patientA), v.ID, guest.UserID); err == nil {
			t.Fatal("the patient invited a guest")
		}
		if err := e.svc.InviteGuest(e.as(p.clinician), v.ID, q.staff.UserID); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("invited another practice's user: %v", err)
		}
		if err := e.svc.InviteGuest(e.as(p.clinician), v.ID, guest.UserID); err != nil {
			t.Fatal(err)
		}
		pass, err := e.svc.CallToken(e.as(guest), v.ID)
		if err != nil || pass.Role != token.Guest {
			t.Fatalf("invited guest: %+v %v", pass, err)
		}
		if _, err := token.Verify(e.videoKey, pass.Token, v.ID, guest.UserID, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.CallAllowed(e.as(guest), claims(v.ID, guest, token.Guest)); err != nil {
			t.Fatal(err)
		}
		if ev := e.lastEvent(p.id); ev.Reason != "invited_guest" || ev.PatientID != p.chartA.PatientID {
			t.Fatalf("guest admission not audited: %+v", ev)
		}
		// A user of another practice holding a guest claim is told the
		// visit does not exist, in their own practice's log.
		if err := e.svc.CallAllowed(e.as(q.staff), claims(v.ID, q.staff, token.Guest)); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("other practice: %v", err)
		}
		if ev := e.lastEvent(q.id); ev.Reason != "not_found" || ev.PatientID != "" {
			t.Fatalf("other practice's refusal: %+v", ev)
		}
		if err := e.svc.EndVisit(e.as(p.clinician), v.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.CallToken(e.as(guest), v.ID); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("guest token after the end: %v", err)
		}
	})
}

// TestCallEventsNameThePatientOnlyInTheirOwnPractice: a prober from
// another practice is recorded in their own log without the patient.
func TestCallEventsNameThePatientOnlyInTheirOwnPractice(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "c5")
		q := e.seed("lakeshore", "d5")
		v := e.admittedVisit(p)
		if err := e.svc.RecordCall(e.as(p.patientA), service.CallEvent{Action: "visit.leave", VisitID: v.ID, Reason: "left"}); err != nil {
			t.Fatal(err)
		}
		if ev := e.lastEvent(p.id); ev.Action != "visit.leave" || ev.PatientID != p.chartA.PatientID || ev.Reason != "left" || ev.Decision != haven.DecisionAllow {
			t.Fatalf("leave: %+v", ev)
		}
		if err := e.svc.RecordCall(e.as(q.clinician), service.CallEvent{Action: "visit.join_refused", VisitID: v.ID, Refused: true, Reason: "forged"}); err != nil {
			t.Fatal(err)
		}
		if ev := e.lastEvent(q.id); ev.Action != "visit.join_refused" || ev.PatientID != "" || ev.Reason != "forged" || ev.Decision != haven.DecisionDeny {
			t.Fatalf("probe: %+v", ev)
		}
		if err := e.svc.RecordCall(e.as(p.clinician), service.CallEvent{Action: "visit.invite", VisitID: v.ID, Subject: p.staff.UserID}); err != nil {
			t.Fatal(err)
		}
		if ev := e.lastEvent(p.id); ev.Reason != "guest:"+p.staff.UserID {
			t.Fatalf("invite: %+v", ev)
		}
	})
}

// TestWaitingPatientSeesAdmissionWithoutPolling: the state call returns
// as soon as the clinician admits, and reads the visit once through the gate.
func TestWaitingPatientSeesAdmissionWithoutPolling(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "c6")
		if err := e.svc.SetAvailability(e.as(p.clinician), wednesdayAfternoon); err != nil {
			t.Fatal(err)
		}
		v, err := e.svc.BookVisit(e.as(p.patientA), p.chartA.PatientID, p.clinician.UserID, time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC), "cough")
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(40 * time.Minute)
		if _, err := e.svc.CheckIn(e.as(p.patientA), v.ID); err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		go func() {
			w, err := e.svc.WatchVisit(e.as(p.patientA), v.ID, service.VisitWatch{State: "waiting", Messages: -1}, time.Minute)
			if err != nil {
				t.Error(err)
			}
			got <- w.State
		}()
		if err := e.svc.Admit(e.as(p.clinician), v.ID); err != nil {
			t.Fatal(err)
		}
		if s := <-got; s != "admitted" {
			t.Fatalf("state %q", s)
		}
		if _, err := e.svc.WatchVisit(e.as(p.patientB), v.ID, service.VisitWatch{State: "waiting", Messages: -1}, time.Second); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another patient watched the visit: %v", err)
		}
	})
}

func TestCliniciansListsThePracticesOwn(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "c7")
		e.seed("lakeshore", "d7")
		docs, err := e.svc.Clinicians(e.as(p.patientA))
		if err != nil || len(docs) != 2 {
			t.Fatalf("%+v %v", docs, err)
		}
		for _, d := range docs {
			if d.UserID != p.clinician.UserID && d.UserID != p.otherClinician.UserID {
				t.Fatalf("listed %+v", d)
			}
		}
	})
}
