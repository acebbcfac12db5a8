package service_test

import (
	"testing"

	"haven"
)

// TestAuditSearchKeepsToTheActorsLog: the query type names a log because
// storage needs one, so a caller can put another practice's id in it. The
// compliance officer must still see only their own practice's events, and
// a malformed filter is refused before anything is searched.
func TestAuditSearchKeepsToTheActorsLog(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		a := e.seed("riverside", "q1")
		b := e.seed("lakeside", "q2")
		if _, err := e.svc.Chart(e.as(b.clinician), b.chartA.PatientID); err != nil {
			t.Fatal(err)
		}
		rows, err := e.svc.SearchAudit(e.as(a.compliance), haven.AuditQuery{LogID: b.id, PatientID: b.chartA.PatientID})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 0 {
			t.Fatalf("practice A's officer read %d events of practice B's log", len(rows))
		}
		mine, err := e.svc.SearchAudit(e.as(a.compliance), haven.AuditQuery{LogID: b.id})
		if err != nil || len(mine) == 0 {
			t.Fatalf("own log: %d events, %v", len(mine), err)
		}
		for _, r := range mine {
			if r.LogID != a.id {
				t.Fatalf("event of log %s in practice A's search", r.LogID)
			}
		}
		before := e.lastEvent(a.id)
		_, err = e.svc.SearchAudit(e.as(a.compliance), haven.AuditQuery{Decision: "maybe"})
		if haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("a decision that is not allow, deny or fail: %v", err)
		}
		if after := e.lastEvent(a.id); after.Seq != before.Seq {
			t.Fatalf("a refused search was searched (audited as %s)", after.Action)
		}
	})
}
