package service_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/hl7"
	"haven/service"
)

// oru is an ORU^R01 as a lab would send it for the patient and order
// the lab received (mrn, dob YYYYMMDD, placer order number), with one
// glucose value flagged flag and a note.
func oru(controlID, mrn, dob, placer, glucose, flag, note string) []byte {
	return []byte(strings.Join([]string{
		"MSH|^~\\&|LABSYS|HARBOR LAB|HAVEN|PRACTICE|20261206043000||ORU^R01^ORU_R01|" + controlID + "|P|2.5.1",
		"PID|1||" + mrn + "^^^PRACTICE^MR||Doe^Jane||" + dob + "|F",
		"ORC|RE|" + placer + "|FILL-1",
		"OBR|1|" + placer + "|FILL-1|2345-7^Glucose^LN|||20261205080000|||||||||||||||20261206042500|||F",
		"OBX|1|NM|2345-7^Glucose^LN||" + glucose + "|mg/dL|70-99|" + flag + "|||F",
		"NTE|1|L|" + note,
		"ZLB|1|lab-internal",
	}, "\r") + "\r")
}

func ackOf(t *testing.T, b []byte) hl7.Ack {
	t.Helper()
	m, err := hl7.Parse(b)
	if err != nil {
		t.Fatalf("the ACK does not parse: %v\n%q", err, b)
	}
	a, err := hl7.ReadAck(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// sentOrder orders glucose for patient A and delivers it; it returns the
// order and what the lab received about the patient.
func (sc *labScene) sentOrder(t *testing.T) (v *haven.LabOrderView, mrn, dob string) {
	t.Helper()
	v = sc.order(t, "2345-7")
	sc.deliver(t)
	got := sc.server.received(t)
	pid, _ := got[len(got)-1].First("PID")
	return v, pid.Get(3, 1), pid.Value(7)
}

// TestLabResultIsMatchedReviewedAndReleased: a result for the order
// arrives, is matched by MRN, birth date and order number, waits (critical
// first) for the ordering clinician, unseen by the patient; the clinician
// comments and releases it; the patient then sees it with its range, its
// flag in plain words and, when a second result comes, the trend. The
// same message sent again gets the same ACK and is stored once. Another
// patient cannot read it. Nothing of it is in the clear on disk.
func TestLabResultIsMatchedReviewedAndReleased(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		sc := newLabScene(t, e, "Resultville", "RSM1")
		order, mrn, dob := sc.sentOrder(t)
		raw := oru("MSG-1", mrn, dob, order.Number, "412", "HH", "RESULTNOTE specimen hemolysed")
		first := e.svc.ReceiveHL7(context.Background(), sc.lab.ID, raw)
		if a := ackOf(t, first); a.Code != hl7.Accept || a.ControlID != "MSG-1" {
			t.Fatalf("ack %+v", a)
		}
		again := e.svc.ReceiveHL7(context.Background(), sc.lab.ID, raw)
		if !bytes.Equal(first, again) {
			t.Fatalf("the same message got another ACK:\n%q\n%q", first, again)
		}

		queue, err := e.svc.ResultsToReview(e.as(sc.p.clinician))
		if err != nil || len(queue) != 1 {
			t.Fatalf("review queue: %d results, %v", len(queue), err)
		}
		r := queue[0]
		if !r.Critical || r.Observations[0].Value != "412" || r.Observations[0].Range != "70-99" || r.OrderID != order.ID || r.Status != haven.ResultToReview {
			t.Fatalf("result %+v", r)
		}
		if o := sc.status(t, order.ID); o.Status != haven.LabResulted {
			t.Fatalf("the order is %s", o.Status)
		}
		// Not the patient's to see yet, and never another patient's.
		if vs, err := e.svc.Results(e.as(sc.p.patientA), sc.p.patientA.UserID); err != nil || len(vs) != 0 {
			t.Fatalf("before release the patient sees %d results (%v)", len(vs), err)
		}
		if _, err := e.svc.LabResult(e.as(sc.p.patientA), r.ID); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("the patient reads an unreleased result: %v", err)
		}
		if _, err := e.svc.ReviewResult(e.as(sc.p.otherClinician), r.ID, "", true); err == nil {
			t.Fatal("a clinician who did not order it released it")
		}

		if _, err := e.svc.ReviewResult(e.as(sc.p.clinician), r.ID, "REVIEWNOTE please repeat fasting", true); err != nil {
			t.Fatal(err)
		}
		mine, err := e.svc.Results(e.as(sc.p.patientA), sc.p.patientA.UserID)
		if err != nil || len(mine) != 1 {
			t.Fatalf("after release the patient sees %d results (%v)", len(mine), err)
		}
		if got := mine[0]; got.Comment != "REVIEWNOTE please repeat fasting" || got.Observations[0].Flags[0] != "HH" ||
			!strings.Contains(haven.FlagWords(got.Observations[0].Flags[0]), "critical") || got.Observations[0].Notes[0] != "RESULTNOTE specimen hemolysed" {
			t.Fatalf("the patient sees %+v", got)
		}
		if _, err := e.svc.LabResult(e.as(sc.p.patientB), r.ID); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another patient reads the result: %v", err)
		}
		if _, err := e.svc.ReviewResult(e.as(sc.p.clinician), r.ID, "", true); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("releasing twice: %v", err)
		}

		// A second result: the patient sees the trend of her glucose.
		order2, _, _ := sc.sentOrder(t)
		e.clock.Advance(time.Hour)
		if a := ackOf(t, e.svc.ReceiveHL7(context.Background(), sc.lab.ID, oru("MSG-2", mrn, dob, order2.Number, "96", "N", "ok"))); a.Code != hl7.Accept {
			t.Fatalf("second result: %+v", a)
		}
		queue, _ = e.svc.ResultsToReview(e.as(sc.p.clinician))
		if len(queue) != 1 {
			t.Fatalf("review queue: %d", len(queue))
		}
		if _, err := e.svc.ReviewResult(e.as(sc.p.clinician), queue[0].ID, "", true); err != nil {
			t.Fatal(err)
		}
		mine, _ = e.svc.Results(e.as(sc.p.patientA), sc.p.patientA.UserID)
		if len(mine) != 2 {
			t.Fatalf("%d results", len(mine))
		}
		trend := mine[0].Trends["2345-7"]
		if mine[0].Observations[0].Value != "96" || len(trend) != 1 || trend[0].Value != "412" {
			t.Fatalf("newest %+v, trend %+v", mine[0].Observations, trend)
		}
		// Her access history names what Haven itself did: sending the order
		// to the lab and taking its results.
		h, err := e.svc.AccessHistory(e.as(sc.p.patientA), sc.p.patientA.UserID)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, ev := range h.Events {
			names[ev.ActorName] = true
		}
		if !names[service.LabActorName] || !names[service.LabInboundActorName] {
			t.Fatalf("her access history names %v", names)
		}
		e.assertNotInTheClear(t, "lab_results", "RESULTNOTE", "REVIEWNOTE")

		// A result waiting for review whose patient is then erased leaves
		// the clinician's queue readable, without it.
		order3, _, _ := sc.sentOrder(t)
		if a := ackOf(t, e.svc.ReceiveHL7(context.Background(), sc.lab.ID, oru("MSG-3", mrn, dob, order3.Number, "101", "H", "x"))); a.Code != hl7.Accept {
			t.Fatalf("third result: %+v", a)
		}
		if err := e.svc.ErasePatient(context.Background(), sc.p.patientA.UserID); err != nil {
			t.Fatal(err)
		}
		if q, err := e.svc.ResultsToReview(e.as(sc.p.clinician)); err != nil || len(q) != 0 {
			t.Fatalf("after erasure the queue holds %d (%v)", len(q), err)
		}
	})
}

// TestLabResultsThatMatchNoOneWaitForStaff: an unknown MRN, a birth date
// that is not the patient's, an order number that is not hers, or no
// order number at all: each is acknowledged (the lab must not resend it)
// and sealed in the front desk's queue, where staff match it by hand to
// the order; nothing reaches a chart before that.
func TestLabResultsThatMatchNoOneWaitForStaff(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		sc := newLabScene(t, e, "Queueville", "RSQ1")
		order, mrn, dob := sc.sentOrder(t)
		other, err := e.svc.OrderLabs(e.as(sc.p.clinician), service.NewLabOrder{PatientID: sc.p.patientA.UserID, LabID: sc.lab.ID, Tests: []string{"718-7"}})
		if err != nil {
			t.Fatal(err)
		}
		// Patient B's MRN with patient A's order number: two matches.
		cases := map[string][]byte{
			"no_patient":        oru("Q-1", "NOSUCHMRN", dob, order.Number, "100", "H", "QUEUEMARK"),
			"identity_mismatch": oru("Q-2", mrn, "19991231", order.Number, "100", "H", "QUEUEMARK"),
			"no_order":          oru("Q-3", mrn, dob, "HVNNOSUCHORDER", "100", "H", "QUEUEMARK"),
			"conflict":          oru("Q-4", sc.p.chartB.MRN, "19800203", order.Number, "100", "H", "QUEUEMARK"),
		}
		for reason, raw := range cases {
			if a := ackOf(t, e.svc.ReceiveHL7(context.Background(), sc.lab.ID, raw)); a.Code != hl7.Accept {
				t.Fatalf("%s: %+v", reason, a)
			}
		}
		if q, _ := e.svc.ResultsToReview(e.as(sc.p.clinician)); len(q) != 0 {
			t.Fatalf("%d unmatched results reached the review queue", len(q))
		}
		if _, err := e.svc.UnmatchedResults(e.as(sc.p.patientA)); err == nil {
			t.Fatal("a patient reads the unmatched queue")
		}
		queue, err := e.svc.UnmatchedResults(e.as(sc.p.staff))
		if err != nil || len(queue) != len(cases) {
			t.Fatalf("the staff queue holds %d (%v)", len(queue), err)
		}
		reasons := map[string]string{}
		for _, u := range queue {
			reasons[u.Reason] = u.ID
			if u.Name != "Jane Doe" || len(u.Tests) != 1 || u.Tests[0] != "Glucose" || u.Lab != "Harbor Lab" {
				t.Fatalf("queued %+v", u)
			}
		}
		for reason := range cases {
			if reasons[reason] == "" {
				t.Fatalf("no queued message for %s among %v", reason, reasons)
			}
		}
		// Staff match one by hand to the other order: it becomes a result
		// for its clinician to review; it cannot be matched twice.
		results, err := e.svc.MatchResult(e.as(sc.p.staff), reasons["no_order"], other.ID)
		if err != nil || len(results) != 1 || results[0].OrderID != other.ID || results[0].PatientID != sc.p.patientA.UserID {
			t.Fatalf("matching by hand: %v %v", results, err)
		}
		if _, err := e.svc.MatchResult(e.as(sc.p.staff), reasons["no_order"], other.ID); err == nil {
			t.Fatal("matched twice")
		}
		if q, _ := e.svc.ResultsToReview(e.as(sc.p.clinician)); len(q) != 1 {
			t.Fatalf("%d results to review after matching", len(q))
		}
		if q, _ := e.svc.UnmatchedResults(e.as(sc.p.staff)); len(q) != len(cases)-1 {
			t.Fatalf("%d left in the queue", len(q))
		}
		e.assertNotInTheClear(t, "lab_unmatched", "QUEUEMARK", "NOSUCHMRN")
	})
}

// TestMalformedAndRefusedMessagesChangeNothing: an unknown sender and a
// lab whose agreement has ended get AR; every malformed message gets AE;
// none of them stores anything or answers with what it carried.
func TestMalformedAndRefusedMessagesChangeNothing(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		sc := newLabScene(t, e, "Badville", "RSB1")
		order, mrn, dob := sc.sentOrder(t)
		good := string(oru("B-1", mrn, dob, order.Number, "100", "H", "BADMARK"))
		malformed := map[string]string{
			"not HL7":             "GET / HTTP/1.1\r\n\r\n",
			"empty":               "",
			"no control id":       strings.Replace(good, "|B-1|", "||", 1),
			"unsupported version": strings.Replace(good, "|2.5.1", "|2.1", 1),
			"not a result":        strings.Replace(good, "ORU^R01^ORU_R01", "ADT^A01^ADT_A01", 1),
			"OBX before OBR":      strings.Replace(good, "OBR|", "XXX|", 1),
			"numeric not number":  strings.Replace(good, "||100|", "||BADMARK|", 1),
			"open escape":         strings.Replace(good, "BADMARK", "BAD\\XMARK", 1),
			"unknown value type":  strings.Replace(good, "OBX|1|NM|", "OBX|1|RP|", 1),
			"no patient segment":  strings.Replace(good, "PID|", "PV1|", 1),
			"binary":              "MSH|^~\\&|\x00\xff\xfe",
		}
		for name, raw := range malformed {
			a := ackOf(t, e.svc.ReceiveHL7(context.Background(), sc.lab.ID, []byte(raw)))
			if a.Code != hl7.ErrorAck {
				t.Errorf("%s: %s, want AE", name, a.Code)
			}
		}
		if a := ackOf(t, e.svc.ReceiveHL7(context.Background(), "", []byte(good))); a.Code != hl7.Reject {
			t.Errorf("unknown sender: %s, want AR", a.Code)
		}
		other := newLabScene(t, e, "Otherplace", "RSB2")
		if a := ackOf(t, e.svc.ReceiveHL7(context.Background(), other.p.id, []byte(good))); a.Code != hl7.Reject {
			t.Errorf("a practice id as a lab: %s, want AR", a.Code)
		}
		sc.lab.BAAExpires = e.clock.Now().Truncate(24*time.Hour).AddDate(0, 0, -1)
		sc.lab.BAASigned = sc.lab.BAAExpires.AddDate(0, -2, 0)
		if err := e.svc.UpdateVendor(e.as(sc.p.admin), sc.lab); err != nil {
			t.Fatal(err)
		}
		ack := e.svc.ReceiveHL7(context.Background(), sc.lab.ID, []byte(good))
		if a := ackOf(t, ack); a.Code != hl7.Reject {
			t.Errorf("expired agreement: %s, want AR", a.Code)
		}
		if bytes.Contains(ack, []byte("BADMARK")) || bytes.Contains(ack, []byte(mrn)) {
			t.Fatal("the ACK carries the message's content")
		}
		if q, _ := e.svc.ResultsToReview(e.as(sc.p.clinician)); len(q) != 0 {
			t.Fatalf("%d results stored", len(q))
		}
		if q, _ := e.svc.UnmatchedResults(e.as(sc.p.staff)); len(q) != 0 {
			t.Fatalf("%d messages queued", len(q))
		}
		if o := sc.status(t, order.ID); o.Status != haven.LabSent {
			t.Fatalf("the order is %s", o.Status)
		}
		// The agreement renewed, the good message is taken: nothing above
		// was remembered as answered.
		sc.lab.BAAExpires = e.clock.Now().Truncate(24*time.Hour).AddDate(0, 1, 0)
		if err := e.svc.UpdateVendor(e.as(sc.p.admin), sc.lab); err != nil {
			t.Fatal(err)
		}
		if a := ackOf(t, e.svc.ReceiveHL7(context.Background(), sc.lab.ID, []byte(good))); a.Code != hl7.Accept {
			t.Fatalf("after renewal: %s", a.Code)
		}
	})
}

// TestLabInterfaceTokens: a token is shown once and names its lab; a made
// up one names none.
func TestLabInterfaceTokens(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		sc := newLabScene(t, e, "Tokenville", "RST1")
		token, err := e.svc.SetLabInterface(e.as(sc.p.admin), sc.lab.ID, "", true)
		if err != nil || !strings.HasPrefix(token, "hl7_") {
			t.Fatalf("token %q, %v", token, err)
		}
		if got := e.svc.LabByToken(context.Background(), token); got != sc.lab.ID {
			t.Fatalf("the token names %q", got)
		}
		for _, bad := range []string{"", "hl7_", token + "x", strings.ToUpper(token), fmt.Sprint("hl7_", strings.Repeat("a", 43))} {
			if got := e.svc.LabByToken(context.Background(), bad); got != "" {
				t.Fatalf("%q names %q", bad, got)
			}
		}
		if _, err := e.svc.SetLabInterface(e.as(sc.p.clinician), sc.lab.ID, "", true); err == nil {
			t.Fatal("a clinician set a lab's token")
		}
	})
}
