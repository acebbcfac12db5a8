package service_test

import (
	"context"
	"testing"
	"time"

	"haven"
)

// TestRestoreDrillStatusIsTheComplianceOfficers: the last drill, read back
// from the database, against the practice's target (72 hours unless the
// practice set its own); every other role of the practice is refused.
func TestRestoreDrillStatusIsTheComplianceOfficers(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("drill", "d1")
		st, err := e.svc.RestoreDrillStatus(e.as(p.compliance))
		if err != nil || st.Last != nil || st.Target != 72*time.Hour || st.Met() {
			t.Fatalf("before any drill: %+v %v", st, err)
		}
		at := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
		older := haven.RestoreDrill{StartedAt: at, Duration: time.Minute, BackupCreated: at, OK: false, Failure: "refused"}
		drill := haven.RestoreDrill{StartedAt: at.Add(time.Hour), Duration: 3*time.Hour + 1500*time.Millisecond, BackupCreated: at.Add(-time.Hour),
			BackupBytes: 12345, AuditLogs: 3, RecordsOpened: 7, OK: true}
		for _, d := range []haven.RestoreDrill{older, drill} {
			if err := e.svc.RecordRestoreDrill(context.Background(), d); err != nil {
				t.Fatal(err)
			}
		}
		st, err = e.svc.RestoreDrillStatus(e.as(p.compliance))
		if err != nil || st.Last == nil {
			t.Fatalf("after drills: %+v %v", st, err)
		}
		got := *st.Last
		got.ID = ""
		if got != drill || !st.Met() {
			t.Fatalf("last drill: %+v, want %+v (met %v)", got, drill, st.Met())
		}
		if err := e.db.PutPracticeSettings(context.Background(), p.id, `{"recovery_target":"1h"}`); err != nil {
			t.Fatal(err)
		}
		if st, err = e.svc.RestoreDrillStatus(e.as(p.compliance)); err != nil || st.Target != time.Hour || st.Met() {
			t.Fatalf("with a 1 hour target: %+v %v", st, err)
		}
		for name, a := range map[string]haven.Actor{"admin": p.admin, "staff": p.staff, "clinician": p.clinician, "patient": p.patientA} {
			if _, err := e.svc.RestoreDrillStatus(e.as(a)); haven.ErrorCode(err) != haven.EFORBIDDEN {
				t.Errorf("%s read the drill status: %v", name, err)
			}
		}
	})
}

// TestReapplyErasureShredsOnlyTheNamedPatient: re-applying a ledger entry
// shreds that patient (once: a second pass finds nothing to do), leaves
// the other patient readable, ignores a patient the data does not hold,
// and refuses an entry whose practice does not match.
func TestReapplyErasureShredsOnlyTheNamedPatient(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("ledger", "l1")
		q := e.seed("other", "o1")
		at := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
		if did, err := e.svc.ReapplyErasure(context.Background(), q.id, p.chartA.PatientID, at); err == nil || did {
			t.Fatalf("an entry naming another practice: %v %v", did, err)
		}
		if _, err := e.svc.Chart(e.as(p.staff), p.chartA.PatientID); err != nil {
			t.Fatalf("the mismatched entry shredded her: %v", err)
		}
		if did, err := e.svc.ReapplyErasure(context.Background(), p.id, p.chartA.PatientID, at); err != nil || !did {
			t.Fatalf("re-apply: %v %v", did, err)
		}
		if _, err := e.svc.Chart(e.as(p.staff), p.chartA.PatientID); err == nil {
			t.Fatal("the re-erased chart still opens")
		}
		if _, err := e.svc.Chart(e.as(p.staff), p.chartB.PatientID); err != nil {
			t.Fatalf("the other patient: %v", err)
		}
		if did, err := e.svc.ReapplyErasure(context.Background(), p.id, p.chartA.PatientID, at); err != nil || did {
			t.Fatalf("a second pass: %v %v", did, err)
		}
		if did, err := e.svc.ReapplyErasure(context.Background(), p.id, haven.NewID(), at); err != nil || did {
			t.Fatalf("a patient the data does not hold: %v %v", did, err)
		}
	})
}
