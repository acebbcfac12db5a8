package service_test

import (
	"context"
	"strings"
	"testing"

	"haven/hl7"
)

// TestLabResultMatchesByEveryRecordNumberItGives: PID-3 may repeat. A
// result naming the patient by the lab's own number first and the
// practice's second is hers; the number under the practice's own
// assigning authority (as orders send it) is the one read when there is
// one; two of the practice's numbers naming two patients wait for staff
// as a conflict, as does a number naming no one.
func TestLabResultMatchesByEveryRecordNumberItGives(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		sc := newLabScene(t, e, "Matchville", "MTC1")
		send := func(controlID, pid3, placer, dob string) {
			t.Helper()
			raw := strings.Replace(string(oru(controlID, "{PID3}", dob, placer, "100", "H", "MATCHNOTE")), "{PID3}^^^PRACTICE^MR", pid3, 1)
			if a := ackOf(t, e.svc.ReceiveHL7(context.Background(), sc.lab.ID, []byte(raw))); a.Code != hl7.Accept {
				t.Fatalf("%s: %+v", controlID, a)
			}
		}
		reviewed := func() int {
			t.Helper()
			q, err := e.svc.ResultsToReview(e.as(sc.p.clinician))
			if err != nil {
				t.Fatal(err)
			}
			return len(q)
		}
		order, mrn, dob := sc.sentOrder(t)
		// The lab's own number first, of type MR too; hers second.
		send("M-1", "LAB-77^^^HARBOR^MR~"+mrn+"^^^"+sc.p.id+"^MR", order.Number, dob)
		if n := reviewed(); n != 1 {
			t.Fatalf("the lab's own number first: %d results matched", n)
		}
		// Patient B's number under another authority first, hers under
		// the practice's: the practice's is read.
		order2, _, _ := sc.sentOrder(t)
		send("M-2", sc.p.chartB.MRN+"^^^ELSEWHERE^MR~"+mrn+"^^^"+sc.p.id+"^MR", order2.Number, dob)
		if n := reviewed(); n != 2 {
			t.Fatalf("the practice's number among others: %d results matched", n)
		}
		// Two of the practice's numbers naming two patients: a conflict.
		order3, _, _ := sc.sentOrder(t)
		send("M-3", mrn+"^^^"+sc.p.id+"^MR~"+sc.p.chartB.MRN+"^^^"+sc.p.id+"^MR", order3.Number, dob)
		// No number anyone has: no one.
		send("M-4", "NOSUCH-1^^^"+sc.p.id+"^MR~NOSUCH-2^^^LAB^MR", order3.Number, dob)
		if n := reviewed(); n != 2 {
			t.Fatalf("two patients, or none, were matched: %d results", n)
		}
		queue, err := e.svc.UnmatchedResults(e.as(sc.p.staff))
		if err != nil || len(queue) != 2 {
			t.Fatalf("the staff queue: %d %v", len(queue), err)
		}
		reasons := map[string]bool{}
		for _, u := range queue {
			reasons[u.Reason] = true
		}
		if !reasons["conflict"] || !reasons["no_patient"] {
			t.Fatalf("queued for %v, want conflict and no_patient", reasons)
		}
	})
}
