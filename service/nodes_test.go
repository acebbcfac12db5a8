package service_test

import (
	"testing"
	"time"

	"haven"
	"haven/service"
)

// TestDecisionsFollowChangesMadeOnAnotherNode: nothing a decision rests
// on is cached. A care team changed on another node decides this node's
// next chart read, either way, and detection thresholds changed there
// apply to this node's next event.
func TestDecisionsFollowChangesMadeOnAnotherNode(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.s.Seed("riverside", "n1")
		other := e.s.Node().Service
		doc := e.s.As(p.Clinician)
		a, b := p.ChartA.PatientID, p.ChartB.PatientID

		if _, err := e.svc.Chart(doc, a); err != nil {
			t.Fatalf("the care team's clinician: %v", err)
		}
		if err := other.RemoveFromCareTeam(e.s.As(p.Admin), a, p.Clinician.UserID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Chart(doc, a); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("read after another node took the clinician off the care team: %v", err)
		}
		if err := other.AddToCareTeam(e.s.As(p.Admin), a, p.Clinician.UserID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Chart(doc, a); err != nil {
			t.Fatalf("read after another node put the clinician back: %v", err)
		}

		// One denial: under the default threshold (10), no alert.
		if _, err := e.svc.Chart(doc, b); err == nil {
			t.Fatal("a clinician outside patient B's care read her chart")
		}
		ps := service.DefaultSettings()
		ps.DenialsThreshold, ps.DenialsWindow = 2, service.Duration(time.Hour)
		if err := other.UpdateSettings(e.s.As(p.Admin), ps); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Chart(doc, b); err == nil {
			t.Fatal("a clinician outside patient B's care read her chart")
		}
		alerts, err := e.svc.Alerts(e.s.As(p.Compliance), false)
		if err != nil {
			t.Fatal(err)
		}
		raised := false
		for _, al := range alerts {
			raised = raised || al.Rule == service.RuleDenials && al.ActorID == p.Clinician.UserID
		}
		if !raised {
			t.Error("a second denial after another node set the threshold to 2 raised no alert")
		}
	})
}
