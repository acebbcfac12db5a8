package service_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/audit"
	"haven/media/mediatest"
	"haven/service"
)

// lastEvent returns the newest audit event of a practice.
func (e *env) lastEvent(practiceID string) audit.Event {
	e.t.Helper()
	e.svc.Wait() // probes are reported to their practice in the background
	rows, err := e.db.SearchAudit(context.Background(), haven.AuditQuery{LogID: practiceID, Limit: 1})
	if err != nil || len(rows) == 0 {
		e.t.Fatalf("no audit event: %v", err)
	}
	return rows[0].Event
}

func TestCareTeamClinicianReadsChartAndItIsAudited(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "x1")
		c, err := e.svc.Chart(e.as(p.clinician), p.chartA.PatientID)
		if err != nil {
			t.Fatal(err)
		}
		if c.Demographics.Name != "Namex1A" || c.MRN != "MRN-x1A" || c.Contact.Phone != "555x1A" {
			t.Fatalf("chart %+v", c)
		}
		ev := e.lastEvent(p.id)
		if ev.Action != "chart.read" || ev.Decision != haven.DecisionAllow || ev.ActorID != p.clinician.UserID ||
			ev.PatientID != p.chartA.PatientID || ev.Reason != "care_team" || ev.Purpose != "treatment" {
			t.Fatalf("audit event %+v", ev)
		}
	})
}

func TestPatientCannotReadAnotherPatientsChart(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "x2")
		if _, err := e.svc.Chart(e.as(p.patientA), p.chartA.PatientID); err != nil {
			t.Fatalf("own chart: %v", err)
		}
		c, err := e.svc.Chart(e.as(p.patientA), p.chartB.PatientID)
		if haven.ErrorCode(err) != haven.ENOTFOUND || c != nil {
			t.Fatalf("another patient's chart: %v %v", c, err)
		}
		if ev := e.lastEvent(p.id); ev.Decision != haven.DecisionDeny || ev.Reason != "other_patient" || ev.PatientID != p.chartB.PatientID {
			t.Fatalf("denial not audited: %+v", ev)
		}
	})
}

func TestClinicianOffCareTeamIsDenied(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "x3")
		_, err := e.svc.Chart(e.as(p.otherClinician), p.chartA.PatientID)
		if haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("off care team: %v", err)
		}
		if ev := e.lastEvent(p.id); ev.Reason != "not_on_care_team" || ev.Decision != haven.DecisionDeny {
			t.Fatalf("audit %+v", ev)
		}
	})
}

func TestAdminAndComplianceSeeNoChart(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "x4")
		for _, a := range []haven.Actor{p.admin, p.compliance} {
			if _, err := e.svc.Chart(e.as(a), p.chartA.PatientID); haven.ErrorCode(err) != haven.EFORBIDDEN {
				t.Fatalf("%s read a chart: %v", a.Role, err)
			}
		}
	})
}

func TestAnotherPracticesIDsLeakNothingAndAreAudited(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "x5")
		q := e.seed("lakeshore", "y5")
		for _, a := range []haven.Actor{q.patientA, q.clinician, q.staff, q.admin, q.compliance} {
			ctx := e.as(a)
			if c, err := e.svc.Chart(ctx, p.chartA.PatientID); haven.ErrorCode(err) != haven.ENOTFOUND || c != nil {
				t.Fatalf("%s of another practice: %v", a.Role, err)
			}
			if ev := e.lastEvent(q.id); ev.Reason != "not_found" || ev.ActorID != a.UserID || ev.PatientID != "" {
				t.Fatalf("cross-practice denial not in the actor's log: %+v", ev)
			}
			if _, err := e.svc.CareTeam(ctx, p.chartA.PatientID); haven.ErrorCode(err) != haven.ENOTFOUND {
				t.Fatalf("care team across practices: %v", err)
			}
			if _, err := e.svc.UpdateChart(ctx, p.chartA.PatientID, service.ChartUpdate{Version: 1, Contact: &service.Contact{Email: "evil@x.example"}}); haven.ErrorCode(err) != haven.ENOTFOUND {
				t.Fatalf("write across practices: %v", err)
			}
		}
		// The victim's chart is unchanged.
		c, err := e.svc.Chart(e.as(p.clinician), p.chartA.PatientID)
		if err != nil || c.Contact.Email != p.chartA.Contact.Email {
			t.Fatalf("chart changed: %v %v", c, err)
		}
	})
}

func TestUnknownIDIsAuditedAsDenial(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "x6")
		_, err := e.svc.Chart(e.as(p.clinician), "no-such-patient")
		if haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatal(err)
		}
		if ev := e.lastEvent(p.id); ev.Reason != "not_found" || ev.ResourceID != "no-such-patient" {
			t.Fatalf("audit %+v", ev)
		}
		_, err = e.svc.Chart(e.as(p.clinician), "<script>' OR 1=1 --")
		if haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatal(err)
		}
		if ev := e.lastEvent(p.id); ev.ResourceID != "" || ev.Reason != "not_found" {
			t.Fatalf("a hostile id was recorded verbatim: %+v", ev)
		}
	})
}

func TestWorkforceWithoutMFACannotReadChart(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "x7")
		a := p.clinician
		a.AuthTime = e.clock.Now()
		ctx := haven.NewContextWithActor(context.Background(), a) // MFA false
		if _, err := e.svc.Chart(ctx, p.chartA.PatientID); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("no MFA: %v", err)
		}
		if ev := e.lastEvent(p.id); ev.Reason != "mfa_required" {
			t.Fatalf("audit %+v", ev)
		}
	})
}

func TestChartUpdateUsesOptimisticLocking(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "x8")
		ctx := e.as(p.staff)
		d := service.Demographics{Name: "Renamed", DateOfBirth: "1980-02-03"}
		c, err := e.svc.UpdateChart(ctx, p.chartA.PatientID, service.ChartUpdate{Version: 1, Demographics: &d})
		if err != nil || c.Version != 2 || c.Demographics.Name != "Renamed" {
			t.Fatalf("update: %+v %v", c, err)
		}
		if _, err := e.svc.UpdateChart(ctx, p.chartA.PatientID, service.ChartUpdate{Version: 1, Demographics: &d}); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("stale write: %v", err)
		}
		bad := service.Demographics{Name: "x", DateOfBirth: "yesterday"}
		if _, err := e.svc.UpdateChart(ctx, p.chartA.PatientID, service.ChartUpdate{Version: 2, Demographics: &bad}); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("bad input: %v", err)
		}
		if c, _ := e.svc.Chart(ctx, p.chartA.PatientID); c.Version != 2 || c.Demographics.Name != "Renamed" {
			t.Fatalf("bad input changed the chart: %+v", c)
		}
		// A patient may correct their own contact details but not their MRN.
		pctx := e.as(p.patientA)
		if _, err := e.svc.UpdateChart(pctx, p.chartA.PatientID, service.ChartUpdate{Version: 2, Contact: &service.Contact{Email: "new@mail.example"}}); err != nil {
			t.Fatalf("own contact: %v", err)
		}
		mrn := "HACKED"
		if _, err := e.svc.UpdateChart(pctx, p.chartA.PatientID, service.ChartUpdate{Version: 3, MRN: &mrn}); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("patient changed MRN: %v", err)
		}
	})
}

// TestCiphertextMovedToAnotherPatientFailsToOpen copies patient A's sealed
// demographics over patient B's in the database, as an attacker with write
// access to the database would: B's chart must fail to open, not show A's.
func TestCiphertextMovedToAnotherPatientFailsToOpen(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "x9")
		ctx := context.Background()
		if _, err := e.db.SQL().ExecContext(ctx, `UPDATE patients SET demographics_sealed = (SELECT demographics_sealed FROM patients WHERE id = $1) WHERE id = $2`,
			p.chartA.PatientID, p.chartB.PatientID); err != nil {
			t.Fatal(err)
		}
		c, err := e.svc.Chart(e.as(p.staff), p.chartB.PatientID)
		if err == nil {
			t.Fatalf("moved ciphertext opened: %+v", c)
		}
		if strings.Contains(err.Error(), "Namex9A") {
			t.Fatal("error carries PHI")
		}
	})
}

// TestAuditFailureFailsClosed makes the audit table unwritable: chart reads
// and writes must fail and return no PHI.
func TestAuditFailureFailsClosed(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "x10")
		ctx := context.Background()
		if _, err := e.db.SQL().ExecContext(ctx, `ALTER TABLE audit_events RENAME TO audit_events_unwritable`); err != nil {
			t.Fatal(err)
		}
		c, err := e.svc.Chart(e.as(p.clinician), p.chartA.PatientID)
		if err == nil || c != nil || haven.ErrorCode(err) != haven.EUNAVAILABLE {
			t.Fatalf("read without audit: %+v %v", c, err)
		}
		if strings.Contains(err.Error(), "Namex10") {
			t.Fatal("PHI in the error")
		}
		d := service.Demographics{Name: "Changed", DateOfBirth: "1980-02-03"}
		if _, err := e.svc.UpdateChart(e.as(p.staff), p.chartA.PatientID, service.ChartUpdate{Version: 1, Demographics: &d}); err == nil {
			t.Fatal("write without audit succeeded")
		}
		if _, err := e.db.SQL().ExecContext(ctx, `ALTER TABLE audit_events_unwritable RENAME TO audit_events`); err != nil {
			t.Fatal(err)
		}
		c, err = e.svc.Chart(e.as(p.clinician), p.chartA.PatientID)
		if err != nil || c.Demographics.Name != "Namex10A" {
			t.Fatalf("after restore: %+v %v", c, err)
		}
	})
}

// TestRawFilesHoldNoPHI seeds unique markers and searches every file under
// the data dir (database, WAL, keys) and a PostgreSQL dump for them.
func TestRawFilesHoldNoPHI(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		marker := "Zq7Marker"
		p := e.seed("riverside", marker)
		if _, err := e.svc.Chart(e.as(p.clinician), p.chartA.PatientID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.UploadFile(e.as(p.patientA), p.chartA.PatientID, "FileName"+marker+".txt",
			strings.NewReader("%PDF-1.4\n"+strings.Repeat("FileBody"+marker+" ", 20000))); err != nil {
			t.Fatal(err)
		}
		// A phone's photo (EXIF comment, XMP, IPTC, ICC, GPS) and a DICOM
		// image naming its patient: neither their names nor what they
		// carry is anywhere in the clear.
		photo := mediatest.JPEG(mediatest.Pattern(64, 64), mediatest.PhotoMarkers{Comment: "Exif" + marker, GPS: true})
		if _, err := e.svc.UploadFile(e.as(p.patientA), p.chartA.PatientID, "Photo"+marker+".jpg", bytes.NewReader(photo)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.UploadFile(e.as(p.clinician), p.chartA.PatientID, "Scan"+marker+".dcm", bytes.NewReader(mediatest.DICOM(mediatest.DICOMOptions{Marker: marker}))); err != nil {
			t.Fatal(err)
		}
		markers := []string{"FileName" + marker, "FileBody" + marker, "Photo" + marker, "Exif" + marker, "Scan" + marker, marker, "Name" + marker, "MRN-" + marker, "555" + marker, "Street" + marker, "pta@riverside.example", "doc@riverside.example", "Worker doc"}
		e.assertNotInTheClear(t, "audit_events", markers...)
	})
}

func TestBreakGlassFlow(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "x11")
		doc := e.as(p.otherClinician)
		if _, err := e.svc.Chart(doc, p.chartA.PatientID); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("before grant: %v", err)
		}
		if _, err := e.svc.RequestBreakGlass(doc, p.chartA.PatientID, "short", 0); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("reason required: %v", err)
		}
		stale := p.otherClinician
		stale.MFA, stale.AuthTime = true, e.clock.Now().Add(-time.Hour)
		if _, err := e.svc.RequestBreakGlass(haven.NewContextWithActor(context.Background(), stale), p.chartA.PatientID, "unconscious in ER, needs allergy list", 0); haven.ErrorCode(err) != haven.ESTEPUP {
			t.Fatalf("step-up required: %v", err)
		}
		g, err := e.svc.RequestBreakGlass(doc, p.chartA.PatientID, "unconscious in ER, needs allergy list", 30*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Chart(doc, p.chartA.PatientID); err != nil {
			t.Fatalf("under grant: %v", err)
		}
		if ev := e.lastEvent(p.id); ev.Reason != "breakglass_grant" || ev.Purpose != "break_glass" {
			t.Fatalf("use not marked: %+v", ev)
		}
		alerts, err := e.svc.Alerts(e.as(p.compliance), false)
		if err != nil || len(alerts) == 0 || alerts[0].Rule != service.RuleBreakGlass {
			t.Fatalf("compliance not alerted: %v %v", alerts, err)
		}
		queue, err := e.svc.BreakGlassQueue(e.as(p.compliance))
		if err != nil || len(queue) != 1 || queue[0].ID != g.ID || queue[0].Uses != 1 || !strings.Contains(queue[0].Reason, "allergy") {
			t.Fatalf("queue %+v %v", queue, err)
		}
		if _, err := e.svc.BreakGlassQueue(doc); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("clinician read the review queue: %v", err)
		}
		// The grant expires by itself.
		e.clock.Advance(31 * time.Minute)
		if _, err := e.svc.Chart(e.as(p.otherClinician), p.chartA.PatientID); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("after expiry: %v", err)
		}
		if err := e.svc.ReviewBreakGlass(e.as(p.compliance), g.ID, "confirmed with ER log"); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.ReviewBreakGlass(e.as(p.compliance), g.ID, "again"); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("second review: %v", err)
		}
		if q, _ := e.svc.BreakGlassQueue(e.as(p.compliance)); len(q) != 0 {
			t.Fatalf("queue not empty: %+v", q)
		}
		// The patient sees the emergency access in their history.
		h, err := e.svc.AccessHistory(e.as(p.patientA), p.chartA.PatientID)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, ev := range h.Events {
			found = found || ev.Purpose == "break_glass"
		}
		if !found {
			t.Fatal("break-glass use missing from the patient's history")
		}
	})
}

func TestBulkAccessRaisesAlert(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "x12")
		ctx := e.as(p.admin)
		st := service.DefaultSettings()
		st.BulkAccessPatients = 3
		if err := e.svc.UpdateSettings(ctx, st); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for i := 0; i < 3; i++ {
			c, err := e.svc.RegisterPatient(e.as(p.staff), service.NewPatient{MRN: "BULK" + string(rune('0'+i)),
				Demographics: service.Demographics{Name: "Bulk", DateOfBirth: "1990-01-01"}, Contact: service.Contact{Email: "b" + string(rune('0'+i)) + "@x.example"}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, c.PatientID)
		}
		for _, id := range ids {
			if _, err := e.svc.Chart(e.as(p.staff), id); err != nil {
				t.Fatal(err)
			}
		}
		alerts, err := e.svc.Alerts(e.as(p.compliance), false)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range alerts {
			if a.Rule == service.RuleBulkAccess && a.ActorID == p.staff.UserID {
				return
			}
		}
		t.Fatalf("no bulk-access alert: %+v", alerts)
	})
}

func TestAccessHistoryProofsVerify(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "x13")
		e.svc.Chart(e.as(p.clinician), p.chartA.PatientID)
		e.svc.Chart(e.as(p.otherClinician), p.chartA.PatientID)
		h, err := e.svc.AccessHistory(e.as(p.patientA), p.chartA.PatientID)
		if err != nil {
			t.Fatal(err)
		}
		head, err := audit.OpenCheckpoint([]byte(h.Checkpoint), p.id, e.verifier)
		if err != nil || head.Size != h.TreeSize {
			t.Fatalf("checkpoint: %+v %v", head, err)
		}
		sawDenial := false
		for _, ev := range h.Events {
			parsed, err := audit.ParseCanonical(ev.Canonical)
			if err != nil {
				t.Fatal(err)
			}
			if err := audit.VerifyInclusion(parsed.LeafHash(), ev.Seq, h.TreeSize, ev.Proof, head.Root); err != nil {
				t.Fatalf("event %d: %v", ev.Seq, err)
			}
			sawDenial = sawDenial || ev.Decision == haven.DecisionDeny
		}
		if !sawDenial || len(h.Events) < 3 {
			t.Fatalf("history incomplete: %d events", len(h.Events))
		}
		if _, err := e.svc.AccessHistory(e.as(p.patientB), p.chartA.PatientID); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another patient's history: %v", err)
		}
	})
}
