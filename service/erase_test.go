package service_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"haven"
	"haven/keyring"
	"haven/service"
)

// An erasure made on one node (or from the command line) is in force on
// another running node at its very next request, not after a key cache
// expires; and the erased patient is a line in the practice's list, never
// an error for the whole list, on every node and after a restart.
func TestErasureIsInForceOnEveryNodeAndNeverBreaksTheList(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "e1")
		node2 := e.secondNode()
		desk := e.as(p.staff)
		doc := e.as(p.clinician)
		// node2 has opened patient A's chart and both lists: A's key is in
		// its cache.
		if _, err := node2.Chart(desk, p.chartA.PatientID); err != nil {
			t.Fatal(err)
		}
		if ps, err := node2.Patients(desk); err != nil || len(ps) != 2 {
			t.Fatalf("list before erasure: %+v %v", ps, err)
		}
		if err := e.svc.ErasePatient(context.Background(), p.chartA.PatientID); err != nil {
			t.Fatal(err)
		}
		erasedOn := e.clock.Now()

		_, err := node2.Chart(desk, p.chartA.PatientID)
		if haven.ErrorCode(err) != haven.ENOTFOUND || !errors.Is(err, keyring.ErrKeyDestroyed) {
			t.Fatalf("the other node still opens the erased chart: %v", err)
		}
		restarted := e.secondNode()
		for name, svc := range map[string]*service.Service{"this node": e.svc, "another node": node2, "a restarted node": restarted} {
			ps, err := svc.Patients(desk)
			if err != nil || len(ps) != 2 {
				t.Fatalf("%s: front desk list %+v, %v", name, ps, err)
			}
			for _, s := range ps {
				switch s.PatientID {
				case p.chartA.PatientID:
					if !s.Erased || s.ErasedAt == nil || !s.ErasedAt.Equal(erasedOn) || s.Name != "" || s.MRN != "" || s.DateOfBirth != "" {
						t.Fatalf("%s: erased line %+v, want erased on %v and nothing else", name, s, erasedOn)
					}
				case p.chartB.PatientID:
					if s.Erased || s.Name != "Namee1B" {
						t.Fatalf("%s: other patient's line %+v", name, s)
					}
				}
			}
			// The clinician's care-team list (patient A only) leaves the
			// erased patient out instead of failing.
			if ps, err := svc.Patients(doc); err != nil || len(ps) != 0 {
				t.Fatalf("%s: care-team list %+v, %v", name, ps, err)
			}
		}

		// A shred whose date was never recorded (a crash between the two)
		// still gives a line, without a date.
		if _, err := e.db.SQL().Exec(`UPDATE patients SET erased_at = NULL WHERE id = $1`, p.chartA.PatientID); err != nil {
			t.Fatal(err)
		}
		ps, err := node2.Patients(desk)
		if err != nil || len(ps) != 2 {
			t.Fatalf("list with an unrecorded erasure: %+v %v", ps, err)
		}
		for _, s := range ps {
			if s.PatientID == p.chartA.PatientID && (!s.Erased || s.ErasedAt != nil) {
				t.Fatalf("unrecorded erasure shown as %+v", s)
			}
		}
		// Erasing again records the date, and keeps the first one after.
		if err := e.svc.ErasePatient(context.Background(), p.chartA.PatientID); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(48 * time.Hour)
		if err := e.svc.ErasePatient(context.Background(), p.chartA.PatientID); err != nil {
			t.Fatal(err)
		}
		ps, _ = node2.Patients(desk)
		for _, s := range ps {
			if s.PatientID == p.chartA.PatientID && (s.ErasedAt == nil || !s.ErasedAt.Equal(erasedOn)) {
				t.Fatalf("erasure date after re-running: %+v", s)
			}
		}
	})
}
