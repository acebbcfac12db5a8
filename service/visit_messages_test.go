package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/audit"
	"haven/service"
)

// waitingVisit books patient A with the clinician at 15:00 and checks in
// at 14:40: a patient in the waiting room.
func (e *env) waitingVisit(p *practice) *haven.VisitView {
	e.t.Helper()
	if err := e.svc.SetAvailability(e.as(p.clinician), wednesdayAfternoon); err != nil {
		e.t.Fatal(err)
	}
	v, err := e.svc.BookVisit(e.as(p.patientA), p.chartA.PatientID, p.clinician.UserID, time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC), "cough")
	if err != nil {
		e.t.Fatal(err)
	}
	e.clock.Advance(40 * time.Minute)
	if _, err := e.svc.CheckIn(e.as(p.patientA), v.ID); err != nil {
		e.t.Fatal(err)
	}
	return v
}

// lastEventOf returns the newest event of action in practiceID's log.
func (e *env) lastEventOf(practiceID, action string) audit.Event {
	e.t.Helper()
	e.svc.Wait() // probes are reported to their practice in the background
	rows, err := e.db.SearchAudit(context.Background(), haven.AuditQuery{LogID: practiceID, Action: action, Limit: 1})
	if err != nil || len(rows) == 0 {
		e.t.Fatalf("no %s event: %v", action, err)
	}
	return rows[0].Event
}

// storedMessages counts a visit's stored messages, beneath the service.
func (e *env) storedMessages(visitID string) int {
	e.t.Helper()
	rows, err := e.db.ThreadMessages(context.Background(), visitID)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(rows)
}

func TestWaitingPatientReadsTheClinicsMessageAndReplies(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "m1")
		v := e.waitingVisit(p)
		if err := e.svc.SendVisitMessage(e.as(p.clinician), v.ID, "  Running ten minutes late, sorry.  "); err != nil {
			t.Fatal(err)
		}
		if ev := e.lastEvent(p.id); ev.Action != "message.send" || ev.Decision != haven.DecisionAllow || ev.ActorID != p.clinician.UserID ||
			ev.ResourceKind != "message" || ev.ResourceID != v.ID || ev.PatientID != p.chartA.PatientID {
			t.Fatalf("send not audited: %+v", ev)
		}
		if err := e.svc.SendVisitMessage(e.as(p.staff), v.ID, "The front desk can help with the camera."); err != nil {
			t.Fatalf("front desk: %v", err)
		}
		msgs, err := e.svc.VisitMessages(e.as(p.patientA), v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 2 || msgs[0].Body != "Running ten minutes late, sorry." || msgs[0].FromPatient || msgs[0].SenderID != p.clinician.UserID ||
			msgs[0].SenderName != "Worker doc@riverside.example" || msgs[1].SenderID != p.staff.UserID {
			t.Fatalf("the patient read %+v", msgs)
		}
		if ev := e.lastEvent(p.id); ev.Action != "message.read" || ev.ActorID != p.chartA.PatientID || ev.Decision != haven.DecisionAllow || ev.ResourceID != v.ID {
			t.Fatalf("read not audited: %+v", ev)
		}
		// The patient replies, and the clinician reads the thread.
		if err := e.svc.SendVisitMessage(e.as(p.patientA), v.ID, "No problem, I'll wait."); err != nil {
			t.Fatal(err)
		}
		msgs, err = e.svc.VisitMessages(e.as(p.clinician), v.ID)
		if err != nil || len(msgs) != 3 || !msgs[2].FromPatient || msgs[2].Body != "No problem, I'll wait." || msgs[2].SenderName != "" {
			t.Fatalf("the clinician read %+v %v", msgs, err)
		}
		// Messages go on in the call.
		if err := e.svc.Admit(e.as(p.clinician), v.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.SendVisitMessage(e.as(p.clinician), v.ID, "Can you hear me?"); err != nil {
			t.Fatalf("in the call: %v", err)
		}
	})
}

// TestVisitMessagesStayWithTheirPatient attacks the thread by changing
// the visit id: another patient of the practice, and a patient and a
// clinician of another practice, can neither read nor write it. Each
// refusal is audited, and another practice's log never names the patient.
func TestVisitMessagesStayWithTheirPatient(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "m2")
		q := e.seed("lakeshore", "n2")
		v := e.waitingVisit(p)
		if err := e.svc.SendVisitMessage(e.as(p.clinician), v.ID, "Running late."); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name     string
			who      haven.Actor
			practice string
		}{
			{"another patient", p.patientB, p.id},
			{"another practice's patient", q.patientA, q.id},
			{"another practice's clinician", q.clinician, q.id},
			{"another practice's front desk", q.staff, q.id},
		} {
			if _, err := e.svc.VisitMessages(e.as(c.who), v.ID); haven.ErrorCode(err) != haven.ENOTFOUND {
				t.Fatalf("%s read the thread: %v", c.name, err)
			}
			ev := e.lastEvent(c.practice)
			if ev.Action != "message.read" || ev.Decision != haven.DecisionDeny || ev.ActorID != c.who.UserID {
				t.Fatalf("%s: refused read not audited: %+v", c.name, ev)
			}
			if c.practice != p.id && ev.PatientID != "" {
				t.Fatalf("%s: another practice's log names the patient", c.name)
			}
			if err := e.svc.SendVisitMessage(e.as(c.who), v.ID, "hello from "+c.name); haven.ErrorCode(err) != haven.ENOTFOUND {
				t.Fatalf("%s wrote into the thread: %v", c.name, err)
			}
			if ev := e.lastEvent(c.practice); ev.Action != "message.send" || ev.Decision != haven.DecisionDeny {
				t.Fatalf("%s: refused send not audited: %+v", c.name, ev)
			}
		}
		// A clinician of the practice with no relationship to the patient
		// (not on the care team, no visit booked) is refused too.
		if err := e.svc.SendVisitMessage(e.as(p.otherClinician), v.ID, "hello"); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("an unrelated clinician wrote: %v", err)
		}
		if _, err := e.svc.VisitMessages(e.as(p.otherClinician), v.ID); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("an unrelated clinician read: %v", err)
		}
		// The practice admin and the compliance officer see no PHI.
		for _, who := range []haven.Actor{p.admin, p.compliance} {
			if _, err := e.svc.VisitMessages(e.as(who), v.ID); haven.ErrorCode(err) != haven.EFORBIDDEN {
				t.Fatalf("%s read the thread: %v", who.Role, err)
			}
		}
		if _, err := e.svc.VisitMessages(e.as(p.patientA), haven.NewID()); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("an unknown visit: %v", err)
		}
		if n := e.storedMessages(v.ID); n != 1 {
			t.Fatalf("%d messages stored, want the clinician's one", n)
		}
	})
}

func TestVisitMessageBodiesAreChecked(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "m3")
		v := e.waitingVisit(p)
		doc := e.as(p.clinician)
		for name, body := range map[string]string{
			"empty":           "",
			"blank":           " \t ",
			"too long":        strings.Repeat("é", service.MaxVisitMessage+1),
			"line break":      "line one\nline two",
			"control":         "bell\x07",
			"escape":          "\x1b[31mred",
			"bidi override":   "call \u202e1234",
			"line separator":  "one\u2028two",
			"invalid utf8":    "caf\xe9",
			"nul":             "nul\x00byte",
			"isolate":         "a\u2066b",
			"delete":          "x\x7f",
			"next line (C1)":  "x\u0085y",
			"too long, ascii": strings.Repeat("a", 501),
		} {
			if err := e.svc.SendVisitMessage(doc, v.ID, body); haven.ErrorCode(err) != haven.EINVALID {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if n := e.storedMessages(v.ID); n != 0 {
			t.Fatalf("refused messages stored: %d", n)
		}
		// Exactly the limit, after trimming, is fine.
		if err := e.svc.SendVisitMessage(doc, v.ID, "  "+strings.Repeat("é", service.MaxVisitMessage)+"  "); err != nil {
			t.Fatalf("500 characters: %v", err)
		}
		if msgs, err := e.svc.VisitMessages(doc, v.ID); err != nil || len(msgs) != 1 || msgs[0].Body != strings.Repeat("é", service.MaxVisitMessage) {
			t.Fatalf("%v %v", len(msgs), err)
		}
	})
}

// TestVisitMessagesOnlyWhileWaitingOrInCall: before check-in, after the
// end and after a cancellation the thread takes nothing.
func TestVisitMessagesOnlyWhileWaitingOrInCall(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "m4")
		if err := e.svc.SetAvailability(e.as(p.clinician), wednesdayAfternoon); err != nil {
			t.Fatal(err)
		}
		booked, err := e.svc.BookVisit(e.as(p.patientA), p.chartA.PatientID, p.clinician.UserID, time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC), "cough")
		if err != nil {
			t.Fatal(err)
		}
		cancelled, err := e.svc.BookVisit(e.as(p.patientA), p.chartA.PatientID, p.clinician.UserID, time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC), "rash")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.SendVisitMessage(e.as(p.clinician), booked.ID, "see you soon"); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("before check-in: %v", err)
		}
		if err := e.svc.CancelVisit(e.as(p.patientA), cancelled.ID); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(40 * time.Minute)
		if _, err := e.svc.CheckIn(e.as(p.patientA), booked.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Admit(e.as(p.clinician), booked.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.EndVisit(e.as(p.clinician), booked.ID); err != nil {
			t.Fatal(err)
		}
		for name, id := range map[string]string{"ended": booked.ID, "cancelled": cancelled.ID} {
			for _, who := range []haven.Actor{p.clinician, p.patientA, p.staff} {
				if err := e.svc.SendVisitMessage(e.as(who), id, "are you there?"); haven.ErrorCode(err) != haven.ECONFLICT {
					t.Fatalf("%s visit, %s: %v", name, who.Role, err)
				}
			}
			if n := e.storedMessages(id); n != 0 {
				t.Fatalf("%s visit holds %d messages", name, n)
			}
		}
	})
}

// TestWaitingPageSeesAMessageWithoutPolling: the watch returns as soon as
// a message arrives, with the new count, and the state alone when asked
// only for that.
func TestWaitingPageSeesAMessageWithoutPolling(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "m5")
		v := e.waitingVisit(p)
		got := make(chan service.VisitWatch, 1)
		go func() {
			w, err := e.svc.WatchVisit(e.as(p.patientA), v.ID, service.VisitWatch{State: "waiting", Messages: 0}, time.Minute)
			if err != nil {
				t.Error(err)
			}
			got <- w
		}()
		if err := e.svc.SendVisitMessage(e.as(p.clinician), v.ID, "Running late."); err != nil {
			t.Fatal(err)
		}
		if w := <-got; w.State != "waiting" || w.Messages != 1 {
			t.Fatalf("watch %+v", w)
		}
		if w, err := e.svc.WatchVisit(e.as(p.patientA), v.ID, service.VisitWatch{State: "booked", Messages: -1}, time.Minute); err != nil || w.State != "waiting" {
			t.Fatalf("state change: %+v %v", w, err)
		}
		if _, err := e.svc.WatchVisit(e.as(p.patientB), v.ID, service.VisitWatch{State: "waiting"}, time.Second); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another patient watched: %v", err)
		}
		q, err := e.svc.WaitingQueue(e.as(p.clinician))
		if err != nil || len(q) != 1 || q[0].ID != v.ID || q[0].Messages != 1 {
			t.Fatalf("queue %+v %v", q, err)
		}
	})
}

// restrictStaffFromMessages has patient keep front-desk staff out of
// their messages, as she does from her account.
func (e *env) restrictStaffFromMessages(patient haven.Actor) {
	e.t.Helper()
	r, err := e.svc.Restrictions(e.as(patient), patient.UserID)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.svc.SetRestrictions(e.as(patient), patient.UserID, service.RestrictionsChange{Version: r.Version, StaffFromMessages: true}); err != nil {
		e.t.Fatal(err)
	}
}

// TestStaffKeptOutOfMessagesGetNoMessageCount: a patient who keeps staff
// out of their messages keeps even the thread's length from them. The
// front desk may still watch the visit's state, but its watch carries no
// count and does not wake for a message; the clinician's does. Withholding
// the count writes no audit event of its own.
func TestStaffKeptOutOfMessagesGetNoMessageCount(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "m9")
		v := e.waitingVisit(p)
		if err := e.svc.SendVisitMessage(e.as(p.patientA), v.ID, "My camera will not start."); err != nil {
			t.Fatal(err)
		}
		// Before the restriction the front desk reads the thread, and so
		// sees its length.
		if w, err := e.svc.WatchVisit(e.as(p.staff), v.ID, service.VisitWatch{State: "waiting", Messages: 0}, time.Minute); err != nil || w.Messages != 1 {
			t.Fatalf("unrestricted front desk: %+v %v", w, err)
		}
		e.restrictStaffFromMessages(p.patientA)
		if _, err := e.svc.VisitMessages(e.as(p.staff), v.ID); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("restricted front desk read the thread: %v", err)
		}
		before := e.lastEvent(p.id)
		// A count that differs from what the front desk claims to have
		// seen would answer at once; withheld, the watch is of the state
		// alone and answers only when wait has passed.
		w, err := e.svc.WatchVisit(e.as(p.staff), v.ID, service.VisitWatch{State: "waiting", Messages: 0}, 0)
		if err != nil || w.State != "waiting" || w.Messages != -1 {
			t.Fatalf("restricted front desk watched %+v %v", w, err)
		}
		if ev := e.lastEvent(p.id); ev.Seq != before.Seq+1 || ev.Action != "visit.read" || ev.ActorID != p.staff.UserID || ev.Decision != haven.DecisionAllow {
			t.Fatalf("the watch should write its visit.read alone, after %+v: %+v", before, ev)
		}
		got := make(chan service.VisitWatch, 1)
		go func() {
			w, err := e.svc.WatchVisit(e.as(p.staff), v.ID, service.VisitWatch{State: "waiting", Messages: -1}, time.Minute)
			if err != nil {
				t.Error(err)
			}
			got <- w
		}()
		if w, err := e.svc.WatchVisit(e.as(p.clinician), v.ID, service.VisitWatch{State: "waiting", Messages: 0}, time.Minute); err != nil || w.State != "waiting" || w.Messages != 1 {
			t.Fatalf("the clinician watched %+v %v", w, err)
		}
		if err := e.svc.Admit(e.as(p.clinician), v.ID); err != nil {
			t.Fatal(err)
		}
		if w := <-got; w.State != "admitted" || w.Messages != -1 {
			t.Fatalf("restricted front desk saw the admission as %+v", w)
		}
	})
}

// TestRemovingAWaitingPatientCancelsTheVisit: the clinician's "remove"
// from the waiting room is a cancellation, not a return to booked, so the
// patient cannot simply check in again; it is audited, the patient's
// waiting page learns of it, and the thread closes.
func TestRemovingAWaitingPatientCancelsTheVisit(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "m6")
		v := e.waitingVisit(p)
		got := make(chan service.VisitWatch, 1)
		go func() {
			w, err := e.svc.WatchVisit(e.as(p.patientA), v.ID, service.VisitWatch{State: "waiting", Messages: 0}, time.Minute)
			if err != nil {
				t.Error(err)
			}
			got <- w
		}()
		if err := e.svc.CancelVisit(e.as(p.otherClinician), v.ID); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("an unrelated clinician removed the patient: %v", err)
		}
		if err := e.svc.CancelVisit(e.as(p.clinician), v.ID); err != nil {
			t.Fatal(err)
		}
		// The watcher's own read is audited concurrently: look for the cancel.
		if ev := e.lastEventOf(p.id, "visit.cancel"); ev.ActorID != p.clinician.UserID || ev.Decision != haven.DecisionAllow || ev.PatientID != p.chartA.PatientID {
			t.Fatalf("removal not audited: %+v", ev)
		}
		if w := <-got; w.State != "cancelled" {
			t.Fatalf("the waiting page saw %+v", w)
		}
		if _, err := e.svc.CheckIn(e.as(p.patientA), v.ID); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("checked in again after removal: %v", err)
		}
		if q, err := e.svc.WaitingQueue(e.as(p.clinician)); err != nil || len(q) != 0 {
			t.Fatalf("still queued: %+v %v", q, err)
		}
		if err := e.svc.SendVisitMessage(e.as(p.clinician), v.ID, "sorry"); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("message after removal: %v", err)
		}
	})
}

// TestVisitMessageMovedToAnotherRowDoesNotOpen: a body copied over
// another message's row (same patient, same visit) fails to open, and the
// thread is refused rather than shown wrong.
func TestVisitMessageMovedToAnotherRowDoesNotOpen(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "m7")
		v := e.waitingVisit(p)
		for _, body := range []string{"first", "second"} {
			if err := e.svc.SendVisitMessage(e.as(p.clinician), v.ID, body); err != nil {
				t.Fatal(err)
			}
		}
		rows, err := e.db.ThreadMessages(context.Background(), v.ID)
		if err != nil || len(rows) != 2 {
			t.Fatal(rows, err)
		}
		if _, err := e.db.SQL().ExecContext(context.Background(), `UPDATE messages SET body_sealed = (SELECT body_sealed FROM messages WHERE id = $1) WHERE id = $2`,
			rows[0].ID, rows[1].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.VisitMessages(e.as(p.patientA), v.ID); err == nil {
			t.Fatal("a moved ciphertext opened")
		}
	})
}

// TestRawFilesHoldNoVisitMessage searches the database's raw files (and,
// on PostgreSQL, a dump) for a message's text.
func TestRawFilesHoldNoVisitMessage(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "m8")
		v := e.waitingVisit(p)
		marker := "Qx9WaitingRoomMarker"
		if err := e.svc.SendVisitMessage(e.as(p.clinician), v.ID, "Running late "+marker); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.SendVisitMessage(e.as(p.patientA), v.ID, "Reply "+marker); err != nil {
			t.Fatal(err)
		}
		if msgs, err := e.svc.VisitMessages(e.as(p.patientA), v.ID); err != nil || len(msgs) != 2 {
			t.Fatalf("%v %v", msgs, err)
		}
		e.assertNotInTheClear(t, v.ID, marker)
	})
}
