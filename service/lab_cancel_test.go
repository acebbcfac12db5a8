package service_test

import (
	"context"
	"testing"

	"haven"
	"haven/hl7"
	"haven/service"
)

// labEvent reports whether practiceID's log holds an allowed event of
// action by actorID about resource id (with reason, when given).
func (e *env) labEvent(practiceID, actorID, action, id, reason string) bool {
	e.t.Helper()
	for _, ev := range e.events(practiceID) {
		if ev.ActorID == actorID && ev.Action == action && ev.ResourceID == id && ev.Decision == haven.DecisionAllow && (reason == "" || ev.Reason == reason) {
			return true
		}
	}
	return false
}

// TestClinicianCancelsALabOrderBeforeItsResult: an order that never left
// is cancelled at once and the lab hears nothing of it; an order the lab
// acknowledged is cancelled there by an ORM^O01 whose ORC-1 is CA (the
// same order number, its own control id) through the outbox, and is
// cancelled when the lab's AA comes back, recorded; each cancellation is
// audited as the clinician's, and its transmission as a disclosure. A
// result the lab sends for the cancelled order anyway is stored, flagged,
// and the order stays cancelled. An order with a result, or cancelled
// already, cannot be cancelled; a lab that refuses a cancellation (AE)
// leaves the order at the lab. The patient and another practice's
// clinician cannot cancel.
func TestClinicianCancelsALabOrderBeforeItsResult(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		sc := newLabScene(t, e, "Cancelville", "CNC1")
		doc := e.as(sc.p.clinician)

		// Never sent: withdrawn, the lab receives nothing.
		never := sc.order(t, "2345-7")
		v, err := e.svc.CancelLabOrder(doc, never.ID)
		if err != nil || v.Status != haven.LabCancelled {
			t.Fatalf("cancelling a queued order: %+v %v", v, err)
		}
		sc.deliver(t)
		if got := sc.server.received(t); len(got) != 0 {
			t.Fatalf("the lab received %d messages for an order cancelled before it left", len(got))
		}
		if !e.labEvent(sc.p.id, sc.p.clinician.UserID, "lab.order", never.ID, "") {
			t.Fatal("the cancellation is not audited as the clinician's")
		}

		// Sent and acknowledged: the lab is told, and its AA cancels it.
		order, mrn, dob := sc.sentOrder(t)
		if v, err = e.svc.CancelLabOrder(doc, order.ID); err != nil || v.Status != haven.LabCancelling {
			t.Fatalf("cancelling a sent order: %+v %v", v, err)
		}
		if _, err := e.svc.CancelLabOrder(doc, order.ID); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("cancelling twice: %v", err)
		}
		sc.deliver(t)
		got := sc.server.received(t)
		if len(got) != 2 {
			t.Fatalf("the lab received %d messages, want the order and its cancellation", len(got))
		}
		ca := got[1]
		orc, _ := ca.First("ORC")
		obr, _ := ca.First("OBR")
		if h := ca.Header(); h.MessageType != "ORM" || h.TriggerEvent != "O01" || h.ControlID == got[0].Header().ControlID {
			t.Fatalf("the cancellation's header %+v", h)
		}
		if orc.Value(1) != "CA" || orc.Get(2, 1) != order.Number || obr.Get(2, 1) != order.Number {
			t.Fatalf("the cancellation %v: ORC-1 %q ORC-2 %q", ca, orc.Value(1), orc.Get(2, 1))
		}
		if after := sc.status(t, order.ID); after.Status != haven.LabCancelled || after.AckCode != "AA" {
			t.Fatalf("after the lab's AA: %+v", after)
		}
		if !e.labEvent(sc.p.id, service.LabActor, service.ActLabTransmit, order.ID, "cancel") {
			t.Fatal("the cancellation's transmission is not audited")
		}
		ds, err := e.svc.Disclosures(e.as(sc.p.patientA), sc.p.patientA.UserID)
		if err != nil {
			t.Fatal(err)
		}
		cancelled := 0
		for _, d := range ds {
			if len(d.What) > 16 && d.What[:16] == "The cancellation" {
				cancelled++
			}
		}
		if cancelled != 1 {
			t.Fatalf("%d disclosures of a cancellation, want 1: %+v", cancelled, ds)
		}

		// The lab ran it anyway: the result is kept, flagged; the order
		// stays cancelled.
		if a := ackOf(t, e.svc.ReceiveHL7(context.Background(), sc.lab.ID, oru("CNC-R1", mrn, dob, order.Number, "99", "N", "ran anyway"))); a.Code != hl7.Accept {
			t.Fatalf("a result for a cancelled order: %+v", a)
		}
		queue, err := e.svc.ResultsToReview(doc)
		if err != nil || len(queue) != 1 || !queue[0].OrderCancelled || queue[0].OrderID != order.ID {
			t.Fatalf("results to review %+v %v", queue, err)
		}
		if after := sc.status(t, order.ID); after.Status != haven.LabCancelled {
			t.Fatalf("the order after its result: %+v", after)
		}

		// Resulted: too late.
		done, mrn2, dob2 := sc.sentOrder(t)
		e.svc.ReceiveHL7(context.Background(), sc.lab.ID, oru("CNC-R2", mrn2, dob2, done.Number, "98", "N", "normal"))
		if _, err := e.svc.CancelLabOrder(doc, done.ID); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("cancelling a resulted order: %v", err)
		}
		if after := sc.status(t, done.ID); after.Status != haven.LabResulted {
			t.Fatalf("a resulted order after a refused cancellation: %+v", after)
		}

		// The lab refuses to cancel: the order is back at the lab.
		kept, _, _ := sc.sentOrder(t)
		if _, err := e.svc.CancelLabOrder(doc, kept.ID); err != nil {
			t.Fatal(err)
		}
		sc.server.answer(hl7.ErrorAck, hl7.CodeTableValue)
		sc.deliver(t)
		if after := sc.status(t, kept.ID); after.Status != haven.LabSent || after.AckCode != "AE" || after.StatusReason != "cancel_refused_103" {
			t.Fatalf("after the lab refused the cancellation: %+v", after)
		}

		// Not the patient's to cancel, nor another practice's clinician's.
		sc.server.answer(hl7.Accept, 0)
		open, _, _ := sc.sentOrder(t)
		if _, err := e.svc.CancelLabOrder(e.as(sc.p.patientA), open.ID); haven.ErrorCode(err) != haven.EFORBIDDEN && haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("the patient cancelled her order: %v", err)
		}
		other := e.seed("Elsewhere", "CNC2")
		if _, err := e.svc.CancelLabOrder(e.as(other.clinician), open.ID); haven.ErrorCode(err) != haven.EFORBIDDEN && haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another practice's clinician cancelled it: %v", err)
		}
		if after := sc.status(t, open.ID); after.Status != haven.LabSent {
			t.Fatalf("after refused cancellations: %+v", after)
		}
	})
}

// TestCriticalResultAlertsItsOrderingClinician: a critical result (HH)
// puts an alert on every page of the clinician who ordered it, naming
// only the result's id to open, until they review it; a normal result
// does not; no other clinician (the practice's, or another practice's)
// sees it.
func TestCriticalResultAlertsItsOrderingClinician(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		sc := newLabScene(t, e, "Alertville", "ALR1")
		other := e.seed("Elsewhere", "ALR2")
		doc := e.as(sc.p.clinician)
		order, mrn, dob := sc.sentOrder(t)
		e.svc.ReceiveHL7(context.Background(), sc.lab.ID, oru("ALR-0", mrn, dob, order.Number, "95", "N", "fine"))
		if id := e.svc.CriticalResultWaiting(doc); id != "" {
			t.Fatalf("a normal result raised an alert: %q", id)
		}
		order2, _, _ := sc.sentOrder(t)
		e.svc.ReceiveHL7(context.Background(), sc.lab.ID, oru("ALR-1", mrn, dob, order2.Number, "612", "HH", "panic value"))
		id := e.svc.CriticalResultWaiting(doc)
		if id == "" {
			t.Fatal("a critical result raised no alert for its clinician")
		}
		r, err := e.svc.LabResult(doc, id)
		if err != nil || !r.Critical || r.OrderID != order2.ID {
			t.Fatalf("the alert leads to %+v %v", r, err)
		}
		for _, a := range []haven.Actor{sc.p.otherClinician, other.clinician, sc.p.staff, sc.p.patientA, sc.p.admin} {
			if got := e.svc.CriticalResultWaiting(e.as(a)); got != "" {
				t.Fatalf("%s %s sees the alert", a.Role, a.UserID)
			}
		}
		if _, err := e.svc.ReviewResult(doc, id, "", false); err != nil {
			t.Fatal(err)
		}
		if got := e.svc.CriticalResultWaiting(doc); got != "" {
			t.Fatalf("the alert stays after the review: %q", got)
		}
	})
}
