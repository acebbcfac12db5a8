package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/auth/outbox"
	"haven/service"
)

// stale is a as if her last authentication were an hour ago: signed in,
// but not recently enough for a step-up.
func (e *env) stale(a haven.Actor) context.Context {
	a.MFA = true
	a.AuthTime = e.clock.Now().Add(-time.Hour)
	a.SessionID = "session-" + a.UserID
	return haven.NewContextWithActor(context.Background(), a)
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if haven.ErrorCode(err) != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
}

var soap = haven.SOAP{Subjective: "Itchy rash NOTEMARKS since Monday", Objective: "Erythema NOTEMARKO on the forearm",
	Assessment: "Contact dermatitis NOTEMARKA", Plan: "Stop the cream NOTEMARKP; review in two weeks"}

// signedNote has the clinician write and sign a note of a visit of
// patient A, and returns the visit.
func (e *env) signedNote(p *practice) *haven.VisitView {
	e.t.Helper()
	v := e.admittedVisit(p)
	if _, err := e.svc.SaveNoteDraft(e.as(p.clinician), v.ID, soap); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.svc.SignNote(e.as(p.clinician), v.ID); err != nil {
		e.t.Fatal(err)
	}
	return v
}

func TestClinicianWritesAndSignsANoteThePatientReadsIt(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "n1")
		v := e.admittedVisit(p)

		// Before anything is written, the visit's clinician gets an empty
		// draft and the patient nothing.
		nv, err := e.svc.VisitNote(e.as(p.clinician), v.ID)
		if err != nil || !nv.Editable || nv.State != haven.NoteDraft || nv.ID != "" {
			t.Fatalf("empty draft %+v %v", nv, err)
		}
		_, err = e.svc.VisitNote(e.as(p.patientA), v.ID)
		wantCode(t, err, haven.ENOTFOUND)

		draft := soap
		draft.Plan = ""
		if _, err := e.svc.SaveNoteDraft(e.as(p.clinician), v.ID, draft); err != nil {
			t.Fatal(err)
		}
		saved, err := e.svc.SaveNoteDraft(e.as(p.clinician), v.ID, soap)
		if err != nil || saved.Plan != soap.Plan {
			t.Fatalf("second save %+v %v", saved, err)
		}
		if ev := e.lastEvent(p.id); ev.Action != "note.write" || ev.Decision != haven.DecisionAllow || ev.PatientID != p.chartA.PatientID {
			t.Fatalf("draft save not audited: %+v", ev)
		}
		// A draft is not the patient's to read.
		_, err = e.svc.VisitNote(e.as(p.patientA), v.ID)
		wantCode(t, err, haven.ENOTFOUND)

		// Signing needs a recent step-up.
		_, err = e.svc.SignNote(e.stale(p.clinician), v.ID)
		wantCode(t, err, haven.ESTEPUP)
		signed, err := e.svc.SignNote(e.as(p.clinician), v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if signed.State != haven.NoteSigned || signed.Signature == nil || !signed.Signature.Valid || signed.Hash == "" || signed.KeyID == "" || signed.Editable {
			t.Fatalf("signed %+v", signed)
		}
		if ev := e.lastEvent(p.id); ev.Action != "note.sign" || ev.Decision != haven.DecisionAllow {
			t.Fatalf("signing not audited: %+v", ev)
		}

		// Locked: edits are refused in words, signing again too.
		_, err = e.svc.SaveNoteDraft(e.as(p.clinician), v.ID, haven.SOAP{Plan: "changed"})
		wantCode(t, err, haven.ECONFLICT)
		if !strings.Contains(haven.ErrorMessage(err), "addendum") {
			t.Fatalf("refusal %q does not say to add an addendum", haven.ErrorMessage(err))
		}
		_, err = e.svc.SignNote(e.as(p.clinician), v.ID)
		wantCode(t, err, haven.ECONFLICT)

		// Addenda are appended and signed.
		_, err = e.svc.AddAddendum(e.stale(p.clinician), v.ID, "Patch test booked")
		wantCode(t, err, haven.ESTEPUP)
		withAdd, err := e.svc.AddAddendum(e.as(p.clinician), v.ID, "Patch test booked NOTEMARKADD")
		if err != nil || len(withAdd.Addenda) != 1 || !withAdd.Addenda[0].Signature.Valid || withAdd.Plan != soap.Plan {
			t.Fatalf("addendum %+v %v", withAdd, err)
		}

		// The patient reads it, released at once by default, and lists it.
		mine, err := e.svc.VisitNote(e.as(p.patientA), v.ID)
		if err != nil || mine.Assessment != soap.Assessment || !mine.Signature.Valid || !mine.CanAmend || len(mine.Addenda) != 1 {
			t.Fatalf("patient read %+v %v", mine, err)
		}
		list, err := e.svc.PatientNotes(e.as(p.patientA), p.chartA.PatientID)
		if err != nil || len(list) != 1 || list[0].VisitID != v.ID || list[0].AuthorName == "" {
			t.Fatalf("patient list %+v %v", list, err)
		}
		e.assertNotInTheClear(t, signed.ID, "NOTEMARKS", "NOTEMARKO", "NOTEMARKA", "NOTEMARKP", "NOTEMARKADD")
	})
}

func TestNotesRefuseOtherPatientsPracticesAndClinicians(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "n2")
		q := e.seed("lakeshore", "m2")
		v := e.signedNote(p)

		// Another patient of the practice, and everyone of another
		// practice, are told the visit's note does not exist.
		for _, a := range []haven.Actor{p.patientB, q.patientA, q.clinician} {
			_, err := e.svc.VisitNote(e.as(a), v.ID)
			wantCode(t, err, haven.ENOTFOUND)
			_, err = e.svc.SaveNoteDraft(e.as(a), v.ID, soap)
			if c := haven.ErrorCode(err); c != haven.ENOTFOUND && c != haven.EFORBIDDEN {
				t.Fatalf("%s wrote another's note: %v", a.Role, err)
			}
		}
		_, err := e.svc.PatientNotes(e.as(p.patientB), p.chartA.PatientID)
		wantCode(t, err, haven.ENOTFOUND)
		_, err = e.svc.PatientNotes(e.as(q.clinician), p.chartA.PatientID)
		wantCode(t, err, haven.ENOTFOUND)
		e.svc.Wait() // the probe lands in p's log before the events read below

		// A clinician on the patient's care team who is not the visit's
		// clinician may read the note but not write or sign it.
		w := e.admittedVisitOf(p, p.patientA)
		if err := e.svc.AddToCareTeam(e.as(p.admin), p.chartA.PatientID, p.otherClinician.UserID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.VisitNote(e.as(p.otherClinician), v.ID); err != nil {
			t.Fatalf("a care-team clinician cannot read the note: %v", err)
		}
		_, err = e.svc.SaveNoteDraft(e.as(p.otherClinician), w.ID, soap)
		wantCode(t, err, haven.EFORBIDDEN)
		if ev := e.lastEvent(p.id); ev.Action != "note.write" || ev.Decision != haven.DecisionDeny || ev.ActorID != p.otherClinician.UserID {
			t.Fatalf("the refused write is not on record: %+v", ev)
		}
		_, err = e.svc.SignNote(e.as(p.otherClinician), w.ID)
		wantCode(t, err, haven.EFORBIDDEN)
		// Staff and patients write no notes.
		for _, a := range []haven.Actor{p.staff, p.patientA} {
			_, err := e.svc.SaveNoteDraft(e.as(a), w.ID, soap)
			if c := haven.ErrorCode(err); c != haven.EFORBIDDEN && c != haven.ENOTFOUND {
				t.Fatalf("%s wrote a note: %v", a.Role, err)
			}
		}
	})
}

// admittedVisitOf books another visit for patient with the clinician, a
// week after admittedVisit's, and admits it.
func (e *env) admittedVisitOf(p *practice, patient haven.Actor) *haven.VisitView {
	e.t.Helper()
	start := time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)
	e.clock.Advance(start.Add(-30 * time.Minute).Sub(e.clock.Now()))
	v, err := e.svc.BookVisit(e.as(patient), patient.UserID, p.clinician.UserID, start, "follow-up")
	if err != nil {
		e.t.Fatal(err)
	}
	e.clock.Advance(10 * time.Minute)
	if _, err := e.svc.CheckIn(e.as(patient), v.ID); err != nil {
		e.t.Fatal(err)
	}
	if err := e.svc.Admit(e.as(p.clinician), v.ID); err != nil {
		e.t.Fatal(err)
	}
	return v
}

func TestASignedNoteEditedInTheDatabaseFailsItsCheck(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "n3")
		v := e.signedNote(p)
		if _, err := e.svc.AddAddendum(e.as(p.clinician), v.ID, "Addendum text"); err != nil {
			t.Fatal(err)
		}
		nv, err := e.svc.VisitNote(e.as(p.clinician), v.ID)
		if err != nil || !nv.Signature.Valid || !nv.Addenda[0].Signature.Valid {
			t.Fatalf("before the edit %+v %v", nv, err)
		}
		// Someone with the database moves the signing time and the
		// release date: the body still opens, the signature does not hold.
		if _, err := e.db.SQL().Exec(`UPDATE notes SET signed_us = signed_us - 86400000000, release_us = release_us - 86400000000 WHERE visit_id = $1`, v.ID); err != nil {
			t.Fatal(err)
		}
		nv, err = e.svc.VisitNote(e.as(p.clinician), v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if nv.Signature.Valid || !strings.Contains(nv.Signature.Message, "changed after signing") {
			t.Fatalf("an edited note passes its check: %+v", nv.Signature)
		}
		// The addendum is bound to the note's hash, which did not change.
		if !nv.Addenda[0].Signature.Valid {
			t.Fatalf("addendum %+v", nv.Addenda[0].Signature)
		}
		// Changing the author of the addendum breaks its own check.
		if _, err := e.db.SQL().Exec(`UPDATE note_addenda SET author_id = $1`, p.otherClinician.UserID); err != nil {
			t.Fatal(err)
		}
		nv, err = e.svc.VisitNote(e.as(p.clinician), v.ID)
		if err != nil || nv.Addenda[0].Signature.Valid {
			t.Fatalf("an edited addendum passes its check: %+v %v", nv, err)
		}
	})
}

func TestNotesWaitTheReleaseDaysBeforeThePatientSeesThem(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "n4")
		ps, err := e.svc.Settings(e.as(p.admin))
		if err != nil {
			t.Fatal(err)
		}
		ps.NoteReleaseDays = 3
		if err := e.svc.UpdateSettings(e.as(p.admin), ps); err != nil {
			t.Fatal(err)
		}
		ps.NoteReleaseDays = -1
		wantCode(t, e.svc.UpdateSettings(e.as(p.admin), ps), haven.EINVALID)
		v := e.signedNote(p)
		_, err = e.svc.VisitNote(e.as(p.patientA), v.ID)
		wantCode(t, err, haven.ENOTFOUND)
		if list, err := e.svc.PatientNotes(e.as(p.patientA), p.chartA.PatientID); err != nil || len(list) != 0 {
			t.Fatalf("unreleased note listed: %+v %v", list, err)
		}
		e.clock.Advance(72 * time.Hour)
		if _, err := e.svc.VisitNote(e.as(p.patientA), v.ID); err != nil {
			t.Fatalf("after three days: %v", err)
		}
	})
}

func TestAmendmentRequestDenialAndDisagreement(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "n5")
		q := e.seed("lakeshore", "m5")
		v := e.signedNote(p)
		nv, err := e.svc.VisitNote(e.as(p.patientA), v.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.RequestAmendment(e.as(p.patientB), haven.AmendNote, nv.ID, "not mine")
		wantCode(t, err, haven.ENOTFOUND)
		_, err = e.svc.RequestAmendment(e.as(q.patientA), haven.AmendNote, nv.ID, "not mine")
		wantCode(t, err, haven.ENOTFOUND)
		// The other practice's probe is reported to this practice's log in
		// the background: let it land before the request whose event is
		// read as the newest below.
		e.svc.Wait()
		am, err := e.svc.RequestAmendment(e.as(p.patientA), haven.AmendNote, nv.ID, "The rash began on Sunday AMENDMARKR")
		if err != nil {
			t.Fatal(err)
		}
		if am.State != haven.AmendmentRequested || am.DaysLeft != service.AmendmentDays || am.CanDisagree {
			t.Fatalf("request %+v", am)
		}
		if ev := e.lastEvent(p.id); ev.Action != "amendment.request" || ev.Decision != haven.DecisionAllow || ev.PatientID != p.chartA.PatientID {
			t.Fatalf("request not audited: %+v", ev)
		}

		// The practice's list shows it with its deadline to clinicians and
		// to the compliance officer, without its text; not to staff.
		for _, a := range []haven.Actor{p.clinician, p.compliance} {
			list, err := e.svc.PracticeAmendments(e.as(a))
			if err != nil || len(list) != 1 || list[0].ID != am.ID || list[0].DaysLeft != 60 || list[0].Reason != "" || list[0].PatientName != "Namen5A" {
				t.Fatalf("%s's list %+v %v", a.Role, list, err)
			}
		}
		_, err = e.svc.PracticeAmendments(e.as(p.staff))
		wantCode(t, err, haven.EFORBIDDEN)
		if list, err := e.svc.PracticeAmendments(e.as(q.clinician)); err != nil || len(list) != 0 {
			t.Fatalf("another practice lists %+v %v", list, err)
		}

		// The clinician reads it; another practice's and another patient
		// can't, nor decide it.
		got, err := e.svc.Amendment(e.as(p.clinician), am.ID)
		if err != nil || got.Reason != "The rash began on Sunday AMENDMARKR" || !got.CanDecide || !got.CanExtend {
			t.Fatalf("clinician reads %+v %v", got, err)
		}
		for _, a := range []haven.Actor{p.patientB, q.clinician, q.patientA} {
			_, err := e.svc.Amendment(e.as(a), am.ID)
			wantCode(t, err, haven.ENOTFOUND)
			_, err = e.svc.DecideAmendment(e.as(a), am.ID, false, "no")
			if c := haven.ErrorCode(err); c != haven.ENOTFOUND && c != haven.EFORBIDDEN {
				t.Fatalf("%s decided another's request: %v", a.Role, err)
			}
		}
		_, err = e.svc.DecideAmendment(e.as(p.patientA), am.ID, true, "accept my own")
		wantCode(t, err, haven.EFORBIDDEN)

		// One extension, with a reason.
		ext, err := e.svc.ExtendAmendment(e.as(p.clinician), am.ID, "Waiting for the lab")
		if err != nil || !ext.Extended || ext.DaysLeft != 90 {
			t.Fatalf("extension %+v %v", ext, err)
		}
		_, err = e.svc.ExtendAmendment(e.as(p.clinician), am.ID, "again")
		wantCode(t, err, haven.ECONFLICT)

		// Denied with a reason; the patient disagrees, once.
		denied, err := e.svc.DecideAmendment(e.as(p.clinician), am.ID, false, "The record reflects what you said AMENDMARKD")
		if err != nil || denied.State != haven.AmendmentDenied || denied.DeciderName == "" {
			t.Fatalf("denial %+v %v", denied, err)
		}
		_, err = e.svc.DecideAmendment(e.as(p.clinician), am.ID, true, "changed my mind")
		wantCode(t, err, haven.ECONFLICT)
		_, err = e.svc.DisagreeAmendment(e.as(p.patientB), am.ID, "I disagree")
		wantCode(t, err, haven.ENOTFOUND)
		mine, err := e.svc.Amendment(e.as(p.patientA), am.ID)
		if err != nil || !mine.CanDisagree || mine.Response == "" {
			t.Fatalf("patient reads the denial %+v %v", mine, err)
		}
		dis, err := e.svc.DisagreeAmendment(e.as(p.patientA), am.ID, "It began on Sunday AMENDMARKS")
		if err != nil || dis.Disagreement == "" || dis.CanDisagree {
			t.Fatalf("disagreement %+v %v", dis, err)
		}
		_, err = e.svc.DisagreeAmendment(e.as(p.patientA), am.ID, "again")
		wantCode(t, err, haven.ECONFLICT)

		// The statement travels with the note, to the clinician too.
		for _, a := range []haven.Actor{p.patientA, p.clinician} {
			nv, err := e.svc.VisitNote(e.as(a), v.ID)
			if err != nil || len(nv.Amendments) != 1 || nv.Amendments[0].Disagreement != "It began on Sunday AMENDMARKS" {
				t.Fatalf("%s's note view %+v %v", a.Role, nv, err)
			}
		}
		// The patient was marked for an email that says only that there
		// is an update.
		due, err := e.db.DueUpdates(context.Background(), e.clock.Now().UnixMicro(), 10)
		if err != nil || len(due) != 1 || due[0].UserID != p.chartA.PatientID {
			t.Fatalf("update notices %+v %v", due, err)
		}
		e.assertNotInTheClear(t, am.ID, "AMENDMARKR", "AMENDMARKD", "AMENDMARKS", "Waiting for the lab")
	})
}

func TestAnAcceptedAmendmentIsASignedAddendum(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "n6")
		v := e.signedNote(p)
		nv, _ := e.svc.VisitNote(e.as(p.patientA), v.ID)
		am, err := e.svc.RequestAmendment(e.as(p.patientA), haven.AmendNote, nv.ID, "It is the left forearm")
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.DecideAmendment(e.stale(p.clinician), am.ID, true, "Correction: left forearm")
		wantCode(t, err, haven.ESTEPUP)
		acc, err := e.svc.DecideAmendment(e.as(p.clinician), am.ID, true, "Correction: left forearm")
		if err != nil || acc.State != haven.AmendmentAccepted || acc.AddendumID == "" {
			t.Fatalf("accepted %+v %v", acc, err)
		}
		nv, err = e.svc.VisitNote(e.as(p.patientA), v.ID)
		if err != nil || len(nv.Addenda) != 1 || nv.Addenda[0].Text != "Correction: left forearm" || nv.Addenda[0].AmendmentID != am.ID ||
			!nv.Addenda[0].Signature.Valid || nv.Objective != soap.Objective {
			t.Fatalf("note after acceptance %+v %v", nv, err)
		}
		// Her details can be the subject of a request too.
		ch, err := e.svc.RequestAmendment(e.as(p.patientA), haven.AmendChart, p.chartA.PatientID, "My date of birth is wrong")
		if err != nil || ch.Part != haven.AmendChart {
			t.Fatalf("details request %+v %v", ch, err)
		}
		_, err = e.svc.RequestAmendment(e.as(p.patientA), haven.AmendChart, p.chartB.PatientID, "theirs")
		wantCode(t, err, haven.ENOTFOUND)
		list, err := e.svc.PatientAmendments(e.as(p.patientA), p.chartA.PatientID)
		if err != nil || len(list) != 2 {
			t.Fatalf("her requests %+v %v", list, err)
		}
	})
}

// TestAnAmendmentAnswerEmailsOnlyThatThereIsAnUpdate: the denial of a
// request sends the patient one email naming the practice and a link to
// her record, and nothing of the request, the answer, the note or her.
func TestAnAmendmentAnswerEmailsOnlyThatThereIsAnUpdate(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "n7")
		box := &outbox.Memory{}
		n := service.NewNotices(e.svc, service.NoticeConfig{Outbox: box, BaseURL: "https://clinic.example/"})
		v := e.signedNote(p)
		nv, _ := e.svc.VisitNote(e.as(p.patientA), v.ID)
		am, err := e.svc.RequestAmendment(e.as(p.patientA), haven.AmendNote, nv.ID, "ReasonQx7 wrong day")
		if err != nil {
			t.Fatal(err)
		}
		if sent, err := n.SendDue(context.Background(), e.clock.Now()); err != nil || sent != 0 {
			t.Fatalf("a request alone sent %d emails (%v)", sent, err)
		}
		if _, err := e.svc.DecideAmendment(e.as(p.clinician), am.ID, false, "AnswerQx7 as said"); err != nil {
			t.Fatal(err)
		}
		if sent, err := n.SendDue(context.Background(), e.clock.Now()); err != nil || sent != 1 {
			t.Fatalf("sent %d after the answer (%v)", sent, err)
		}
		m := box.Sent()[0]
		if m.To != "pta@riverside.example" || m.Subject != "You have an update from riverside" || !strings.Contains(m.Text, "https://clinic.example/app/record\n") {
			t.Fatalf("the update email: %+v", m)
		}
		for _, leak := range []string{"Qx7", "Namen7", "Worker", "NOTEMARK", am.ID, nv.ID, v.ID, p.chartA.PatientID, "amend", "note"} {
			if strings.Contains(strings.ToLower(m.Subject+m.Text), strings.ToLower(leak)) {
				t.Fatalf("the update email holds %q: %+v", leak, m)
			}
		}
		if ev := e.lastEventOf(p.id, service.ActUpdateNotify); ev.ActorID != service.NoticeActor || ev.Decision != haven.DecisionAllow || ev.PatientID != p.chartA.PatientID {
			t.Fatalf("the email is not audited: %+v", ev)
		}
	})
}
