package service_test

import (
	"testing"
	"time"

	"haven"
	"haven/audit"
	"haven/service"
)

func hasAlert(t *testing.T, e *env, p *practice, rule, actorID string) bool {
	t.Helper()
	as, err := e.svc.Alerts(e.as(p.compliance), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.Rule == rule && a.ActorID == actorID {
			return true
		}
	}
	return false
}

func TestRepeatedDenialsRaiseOneAlert(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "d1")
		st := service.DefaultSettings()
		st.DenialsThreshold = 3
		if err := e.svc.UpdateSettings(e.as(p.admin), st); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			e.svc.Chart(e.as(p.patientA), p.chartB.PatientID)
		}
		if hasAlert(t, e, p, service.RuleDenials, p.patientA.UserID) {
			t.Fatal("alert below the threshold")
		}
		for range 5 {
			e.svc.Chart(e.as(p.patientA), p.chartB.PatientID)
		}
		if !hasAlert(t, e, p, service.RuleDenials, p.patientA.UserID) {
			t.Fatal("no alert for repeated denials")
		}
		as, _ := e.svc.Alerts(e.as(p.compliance), true)
		n := 0
		for _, a := range as {
			if a.Rule == service.RuleDenials {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d alerts for one burst", n)
		}
	})
}

func TestAfterHoursAccessRaisesAlert(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "d2")
		if _, err := e.svc.Chart(e.as(p.clinician), p.chartA.PatientID); err != nil { // 14:00 UTC: working hours
			t.Fatal(err)
		}
		if hasAlert(t, e, p, service.RuleAfterHours, p.clinician.UserID) {
			t.Fatal("alert during working hours")
		}
		e.clock.Advance(9 * time.Hour) // 23:00 UTC
		if _, err := e.svc.Chart(e.as(p.clinician), p.chartA.PatientID); err != nil {
			t.Fatal(err)
		}
		if !hasAlert(t, e, p, service.RuleAfterHours, p.clinician.UserID) {
			t.Fatal("no alert for after-hours access")
		}
	})
}

func TestAuditProofsForTheComplianceOfficer(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "d3")
		first, err := e.svc.AuditProofs(e.as(p.compliance), -1, 0)
		if err != nil {
			t.Fatal(err)
		}
		e.svc.Chart(e.as(p.clinician), p.chartA.PatientID)
		later, err := e.svc.AuditProofs(e.as(p.compliance), 2, first.TreeSize)
		if err != nil {
			t.Fatal(err)
		}
		h1, err1 := audit.OpenCheckpoint([]byte(first.Checkpoint), p.id, e.verifier)
		h2, err2 := audit.OpenCheckpoint([]byte(later.Checkpoint), p.id, e.verifier)
		if err1 != nil || err2 != nil || h2.Size <= h1.Size {
			t.Fatalf("checkpoints %v %v", err1, err2)
		}
		if err := audit.VerifyConsistency(h1.Size, h2.Size, later.Consistency, h1.Root, h2.Root); err != nil {
			t.Fatalf("consistency: %v", err)
		}
		if err := audit.VerifyInclusion(later.LeafHash, 2, h2.Size, later.Inclusion, h2.Root); err != nil {
			t.Fatalf("inclusion: %v", err)
		}
		if _, err := e.svc.AuditProofs(e.as(p.clinician), -1, 0); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("a clinician read the proofs: %v", err)
		}
	})
}
