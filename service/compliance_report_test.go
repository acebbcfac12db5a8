package service_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/service"
)

// control returns the report's control id, failing t without it.
func control(t *testing.T, rep *service.ComplianceReport, id string) service.ControlReport {
	t.Helper()
	for _, c := range rep.Controls {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("the report has no control %s", id)
	return service.ControlReport{}
}

// fact returns the value of the control's evidence labelled label.
func fact(t *testing.T, c service.ControlReport, label string) string {
	t.Helper()
	for _, f := range c.Evidence {
		if f.Label == label {
			return f.Value
		}
	}
	t.Fatalf("%s has no evidence %q: %v", c.ID, label, c.Evidence)
	return ""
}

// TestComplianceReportIsLiveEvidence: the compliance officer's report
// covers every safeguard, reflects the instance as it is when made (one
// more workforce member enrolling a factor changes the coverage; an
// agreement ending turns the BAA control to attention), is one audit
// event each time, is refused to other roles, holds no patient detail,
// and the operator's report of the other practice is that practice's.
func TestComplianceReportIsLiveEvidence(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("Reportside", "RPT1")
		q := e.seed("Otherreport", "RPT2")
		ctx := context.Background()

		rep, err := e.svc.ComplianceReport(e.as(p.compliance))
		if err != nil {
			t.Fatal(err)
		}
		if rep.PracticeID != p.id || rep.Practice != "Reportside" || rep.Met+rep.Attention+rep.NotMet != len(rep.Controls) {
			t.Fatalf("report header: %+v", rep)
		}
		for _, id := range []string{"164.312(a)(1)", "164.312(a)(2)(i)", "164.312(a)(2)(ii)", "164.312(a)(2)(iii)", "164.312(a)(2)(iv)",
			"164.312(b)", "164.312(c)(1)", "164.312(c)(2)", "164.312(d)", "164.312(e)(1)", "164.312(e)(2)",
			"164.308(a)(1)", "164.308(a)(5)", "164.308(a)(6)", "164.308(a)(7)", "164.308(b)", "164.404–410", "164.524", "164.526", "164.528"} {
			if c := control(t, rep, id); c.Statement == "" || c.Reason == "" || c.Status == "" {
				t.Errorf("%s is incomplete: %+v", id, c)
			}
		}
		auth := control(t, rep, "164.312(d)")
		if got := fact(t, auth, "Workforce with a second factor"); got != "0 of 5 (0%)" || auth.Status != service.StatusAttention {
			t.Fatalf("before enrolling: %q, %s", got, auth.Status)
		}
		// Training has no records in Haven yet: not met, said so.
		if c := control(t, rep, "164.308(a)(5)"); c.Status != service.StatusNotMet || !strings.Contains(c.Reason, "no training records") {
			t.Fatalf("training: %+v", c)
		}
		if c := control(t, rep, "164.308(a)(6)"); c.Status != service.StatusMet || fact(t, c, "Incidents recorded (kept six years)") != "0" {
			t.Fatalf("incidents: %+v", c)
		}
		if c := control(t, rep, "164.308(a)(7)"); c.Status != service.StatusNotMet || !strings.Contains(c.Reason, "no restore drill") {
			t.Fatalf("contingency without a drill: %+v", c)
		}
		if c := control(t, rep, "164.312(a)(2)(iii)"); fact(t, c, "Workforce: ends after inactivity") != "15 minutes" {
			t.Fatalf("logoff: %+v", c)
		}
		if c := control(t, rep, "164.312(b)"); c.Status == service.StatusNotMet || fact(t, c, "Entries in the practice's log") == "0" {
			t.Fatalf("audit controls on an untouched log: %+v", c)
		}

		// One more workforce member enrols an authenticator; the practice
		// shortens its idle timeout; the admin registers a pharmacy.
		if err := e.db.SetPendingTOTP(ctx, p.clinician.UserID, haven.Sealed("sealed-secret"), e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if ok, err := e.db.ConfirmTOTP(ctx, p.clinician.UserID, e.clock.Now(), 1, e.clock.Now()); !ok || err != nil {
			t.Fatalf("confirm: %v %v", ok, err)
		}
		ps, err := e.svc.Settings(e.as(p.admin))
		if err != nil {
			t.Fatal(err)
		}
		ps.WorkforceIdle = service.Duration(10 * time.Minute)
		if err := e.svc.UpdateSettings(e.as(p.admin), ps); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.AddVendor(e.as(p.admin), pharmacy("Report Pharmacy", e.clock.Now().AddDate(0, 2, 0))); err != nil {
			t.Fatal(err)
		}
		if got := fact(t, control(t, rep, "164.524"), "Records downloaded by patients in the last 12 months"); got != "0" {
			t.Fatalf("downloads before any: %q", got)
		}
		if _, err := e.svc.PrepareExport(e.as(p.patientA), p.patientA.UserID); err != nil {
			t.Fatal(err)
		}
		rep, err = e.svc.ComplianceReport(e.as(p.compliance))
		if err != nil {
			t.Fatal(err)
		}
		if got := fact(t, control(t, rep, "164.312(d)"), "Workforce with a second factor"); got != "1 of 5 (20%)" {
			t.Fatalf("after one enrolment: %q", got)
		}
		if got := fact(t, control(t, rep, "164.312(a)(2)(iii)"), "Workforce: ends after inactivity"); got != "10 minutes" {
			t.Fatalf("after shortening the idle timeout: %q", got)
		}
		if got := fact(t, control(t, rep, "164.524"), "Records downloaded by patients in the last 12 months"); got != "1" {
			t.Fatalf("after patient A downloaded her record: %q", got)
		}
		baa := control(t, rep, "164.308(b)")
		if baa.Status != service.StatusMet || fact(t, baa, "Covered by an agreement in force") != "1" {
			t.Fatalf("with a current agreement: %+v", baa)
		}
		// Two months on the agreement has ended.
		e.clock.Advance(70 * 24 * time.Hour)
		rep, err = e.svc.ComplianceReport(e.as(p.compliance))
		if err != nil {
			t.Fatal(err)
		}
		baa = control(t, rep, "164.308(b)")
		if baa.Status != service.StatusAttention || fact(t, baa, "Agreement ended") != "1" || !strings.Contains(baa.Reason, "ended") {
			t.Fatalf("with an ended agreement: %+v", baa)
		}

		// Every report was one audit event in the practice's log.
		evs, err := e.svc.SearchAudit(e.as(p.compliance), haven.AuditQuery{Action: "audit.verify", Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		made := 0
		for _, ev := range evs {
			if ev.ResourceID == service.ReportResourceID && ev.Decision == haven.DecisionAllow {
				made++
			}
		}
		if made != 3 {
			t.Fatalf("%d report events, want 3", made)
		}

		// Other roles are refused; the other practice's officer gets her own.
		for _, a := range []haven.Actor{p.admin, p.clinician, p.staff, p.patientA} {
			if _, err := e.svc.ComplianceReport(e.as(a)); haven.ErrorCode(err) != haven.EFORBIDDEN {
				t.Fatalf("%s made the report: %v", a.Role, err)
			}
		}
		other, err := e.svc.ComplianceReport(e.as(q.compliance))
		if err != nil || other.PracticeID != q.id || fact(t, control(t, other, "164.308(b)"), "Outside systems registered (in use)") != "0" {
			t.Fatalf("the other practice's report: %+v %v", other, err)
		}
		op, err := e.svc.OperatorComplianceReport(ctx, q.id)
		if err != nil || op.PracticeID != q.id {
			t.Fatalf("the operator's report: %+v %v", op, err)
		}
		if _, err := e.svc.OperatorComplianceReport(ctx, "nosuchpracticeid0000000000"); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("an unknown practice: %v", err)
		}

		// A key rotation is dated in the report; a year on, the next is due.
		enc := control(t, rep, "164.312(a)(2)(iv)")
		if got := fact(t, enc, "Active practice key"); !strings.HasPrefix(got, "version 1, created ") || enc.Status != service.StatusMet {
			t.Fatalf("before a rotation: %q %s", got, enc.Status)
		}
		if err := e.s.Keys.RotatePracticeKey(ctx, p.id, nil); err != nil {
			t.Fatal(err)
		}
		rotated := control(t, mustReport(t, e, p), "164.312(a)(2)(iv)")
		if got := fact(t, rotated, "Active practice key"); got != "version 2, created "+e.clock.Now().Format("2006-01-02") {
			t.Fatalf("after a rotation: %q", got)
		}
		if got := fact(t, rotated, "Earlier versions (rotations)"); !strings.HasPrefix(got, "version 1 created ") {
			t.Fatalf("the earlier version: %q", got)
		}
		e.clock.Advance(400 * 24 * time.Hour)
		if c := control(t, mustReport(t, e, p), "164.312(a)(2)(iv)"); c.Status != service.StatusAttention || !strings.Contains(c.Reason, "rotate") {
			t.Fatalf("a key 400 days old: %+v", c)
		}

		// An audit row edited in the database: the next report says the
		// log does not verify.
		if c := control(t, mustReport(t, e, p), "164.312(b)"); c.Status == service.StatusNotMet {
			t.Fatalf("an untouched log: %+v", c)
		}
		if _, err := e.db.SQL().ExecContext(ctx, `UPDATE audit_events SET action = 'audit.search' WHERE log_id = $1 AND seq = 2`, p.id); err != nil {
			t.Fatal(err)
		}
		tampered := mustReport(t, e, p)
		if c := control(t, tampered, "164.312(b)"); c.Status != service.StatusNotMet || !strings.Contains(c.Reason, "does not verify") {
			t.Fatalf("a tampered log: %+v", c)
		}
		if c := control(t, tampered, "164.312(c)(1)"); c.Status != service.StatusNotMet {
			t.Fatalf("integrity with a tampered log: %+v", c)
		}

		// No patient detail in any form.
		for _, format := range service.ReportFormats {
			body, ctype, name, err := rep.Render(format)
			if err != nil || len(body) == 0 || ctype == "" || !strings.HasSuffix(name, "."+format) {
				t.Fatalf("render %s: %v %q %q", format, err, ctype, name)
			}
			for _, m := range []string{"RPT1", "ptA@", p.patientA.UserID, p.patientB.UserID} {
				if strings.Contains(string(body), m) {
					t.Fatalf("the %s report holds %q", format, m)
				}
			}
			if format == "json" {
				var back service.ComplianceReport
				if err := json.Unmarshal(body, &back); err != nil || len(back.Controls) != len(rep.Controls) {
					t.Fatalf("the JSON report does not read back: %v", err)
				}
			}
		}
		if _, _, _, err := rep.Render("pdf"); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("an unknown format: %v", err)
		}
	})
}

// mustReport is p's compliance officer's report.
func mustReport(t *testing.T, e *env, p *practice) *service.ComplianceReport {
	t.Helper()
	rep, err := e.svc.ComplianceReport(e.as(p.compliance))
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestReportedTestsExist: every test the report names as proving a
// control is a test function in the code, so a renamed or deleted test
// cannot leave the report citing nothing.
func TestReportedTestsExist(t *testing.T) {
	defined := map[string]bool{}
	decl := regexp.MustCompile(`(?m)^func (Test[A-Za-z0-9_]*)\(`)
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllSubmatch(b, -1) {
			defined[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !defined["TestReportedTestsExist"] {
		t.Fatal("the scan did not find this very test: it looked in the wrong place")
	}
	named := 0
	for _, c := range service.Controls() {
		for _, name := range c.Tests {
			named++
			if !defined[name] {
				t.Errorf("%s names %s, which is no test function in the code", c.ID, name)
			}
		}
	}
	if named < 40 {
		t.Fatalf("only %d tests named: the table lost its entries", named)
	}
}

// TestComplianceReportFollowsIncidentsAndBreaches: a breach with letters
// still to send asks for attention; once the 60-day deadline has passed
// with letters unsent, the control is not met; an incident left undecided
// for more than 30 days asks for attention too.
func TestComplianceReportFollowsIncidentsAndBreaches(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("Breachside", "RPT3")
		co := e.as(p.compliance)
		inc, err := e.svc.OpenIncident(co, service.NewIncident{AlertID: insider(t, e, p).ID})
		if err != nil {
			t.Fatal(err)
		}
		rep := mustReport(t, e, p)
		if c := control(t, rep, "164.308(a)(6)"); c.Status != service.StatusMet || fact(t, c, "Open (not yet decided)") != "1" {
			t.Fatalf("one open incident: %+v", c)
		}
		as := service.IncidentAssessment{Nature: "Names and contact details", Person: "A front-desk member without a work reason",
			Acquired: "The charts were viewed", Mitigated: "The account was shut out", Probability: "not_low"}
		if _, err := e.svc.AssessIncident(co, inc.ID, as); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.DecideIncident(co, inc.ID, true, "Charts were viewed without a work reason"); err != nil {
			t.Fatal(err)
		}
		if n, err := e.svc.DraftIncidentLetters(co, inc.ID); err != nil || n != 2 {
			t.Fatalf("drafted %d letters, %v", n, err)
		}
		c := control(t, mustReport(t, e, p), "164.404–410")
		if c.Status != service.StatusAttention || fact(t, c, "Letters not yet sent (drafted or returned)") != "2" || fact(t, c, "Incidents decided to be breaches") != "1" {
			t.Fatalf("a breach with letters drafted: %+v", c)
		}
		e.clock.Advance(61 * 24 * time.Hour)
		c = control(t, mustReport(t, e, p), "164.404–410")
		if c.Status != service.StatusNotMet || fact(t, c, "Letters past the 60-day deadline") != "2" {
			t.Fatalf("letters unsent past the deadline: %+v", c)
		}
		if c := control(t, mustReport(t, e, p), "164.308(a)(6)"); c.Status != service.StatusMet {
			t.Fatalf("a decided incident is not left open: %+v", c)
		}

		// A second incident opened by hand and left undecided for a month.
		if _, err := e.svc.OpenIncident(co, service.NewIncident{Title: "A laptop was lost"}); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(31 * 24 * time.Hour)
		if c := control(t, mustReport(t, e, p), "164.308(a)(6)"); c.Status != service.StatusAttention || !strings.Contains(c.Reason, "more than 30 days") {
			t.Fatalf("an incident open for a month: %+v", c)
		}
	})
}

// TestComplianceReportFollowsTraining: no one trained is not met; one
// member overdue asks for attention; everyone current but no requirement
// asks for attention; everyone current with the requirement on is met;
// a year on, everyone has lapsed (attention), then is overdue.
func TestComplianceReportFollowsTraining(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("Trainside", "RPT4")
		training := func() service.ControlReport { return control(t, mustReport(t, e, p), "164.308(a)(5)") }
		if c := training(); c.Status != service.StatusNotMet || fact(t, c, "Workforce with current training") != "0 of 5" {
			t.Fatalf("no one trained: %+v", c)
		}
		e.passAll(p.clinician)
		if c := training(); c.Status != service.StatusAttention || fact(t, c, "Overdue") != "4" {
			t.Fatalf("one trained of five: %+v", c)
		}
		for _, a := range []haven.Actor{p.admin, p.compliance, p.staff, p.otherClinician} {
			e.passAll(a)
		}
		if c := training(); c.Status != service.StatusAttention || !strings.Contains(c.Reason, "does not require") {
			t.Fatalf("all trained, nothing required: %+v", c)
		}
		e.requireTraining(p, 14*24*time.Hour)
		if c := training(); c.Status != service.StatusMet || fact(t, c, "Workforce with current training") != "5 of 5" ||
			fact(t, c, "Current training required before patient records") != "yes, after a grace period of 14 days" {
			t.Fatalf("all trained and required: %+v", c)
		}
		e.clock.Advance(366 * 24 * time.Hour)
		if c := training(); c.Status != service.StatusAttention || fact(t, c, "Lapsed, within the grace period") != "5" {
			t.Fatalf("a year on: %+v", c)
		}
		e.clock.Advance(15 * 24 * time.Hour)
		if c := training(); c.Status != service.StatusAttention || fact(t, c, "Overdue") != "5" {
			t.Fatalf("past the grace period: %+v", c)
		}
	})
}
