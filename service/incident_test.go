package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/service"
)

// insider scripts a front-desk member browsing two charts (A three times,
// B once) while a clinician reads A for care, out of scope, and returns
// the alert the practice's detection would raise about the insider.
func insider(t *testing.T, e *env, p *practice) *haven.Alert {
	t.Helper()
	for i := 0; i < 3; i++ {
		if _, err := e.svc.Chart(e.as(p.staff), p.chartA.PatientID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.Chart(e.as(p.staff), p.chartB.PatientID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Chart(e.as(p.clinician), p.chartA.PatientID); err != nil {
		t.Fatal(err)
	}
	al := &haven.Alert{ID: haven.NewID(), PracticeID: p.id, Rule: service.RuleBulkAccess, ActorID: p.staff.UserID, Detail: "test"}
	if err := e.db.CreateAlert(context.Background(), al); err != nil {
		t.Fatal(err)
	}
	return al
}

func TestIncidentAffectedPatientsComeFromTheAuditLog(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "inc1")
		al := insider(t, e, p)
		co := e.as(p.compliance)
		inc, err := e.svc.OpenIncident(co, service.NewIncident{AlertID: al.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(inc.Accounts) != 1 || inc.Accounts[0].UserID != p.staff.UserID || inc.Accounts[0].Name == "" {
			t.Fatalf("opened from the alert, the scope is the alert's account by name: %+v", inc.Accounts)
		}
		if want := inc.Discovered.AddDate(0, 0, 60); !inc.Deadline.Equal(want) || inc.DaysLeft < 59 {
			t.Fatalf("the 60-day clock: %v, %d days left", inc.Deadline, inc.DaysLeft)
		}
		// After the window closes, further reads are not in scope.
		sc := inc.Scope
		sc.Until = e.clock.Now().Add(time.Second)
		if _, err := e.svc.ScopeIncident(co, inc.ID, sc); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Minute)
		if _, err := e.svc.Chart(e.as(p.staff), p.chartB.PatientID); err != nil {
			t.Fatal(err)
		}
		aff, err := e.svc.IncidentAffected(co, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(aff) != 2 || aff[0].PatientID != p.chartA.PatientID || aff[0].Accesses != 3 || aff[0].Kinds["chart"] != 3 ||
			aff[1].PatientID != p.chartB.PatientID || aff[1].Accesses != 1 || aff[0].Name != "Nameinc1A" {
			t.Fatalf("affected = %+v", aff)
		}
		// Kinds and patients narrow the scope.
		sc.Kinds = []string{"file"}
		if _, err := e.svc.ScopeIncident(co, inc.ID, sc); err != nil {
			t.Fatal(err)
		}
		if aff, _ := e.svc.IncidentAffected(co, inc.ID); len(aff) != 0 {
			t.Fatalf("no file was opened: %+v", aff)
		}
		sc.Kinds, sc.Patients = []string{"chart"}, []string{p.chartB.PatientID}
		if _, err := e.svc.ScopeIncident(co, inc.ID, sc); err != nil {
			t.Fatal(err)
		}
		if aff, _ := e.svc.IncidentAffected(co, inc.ID); len(aff) != 1 || aff[0].PatientID != p.chartB.PatientID {
			t.Fatalf("only patient B: %+v", aff)
		}
		// A patient is never an account in scope, nor another role's tool.
		bad := sc
		bad.Accounts = []string{p.patientA.UserID}
		if _, err := e.svc.ScopeIncident(co, inc.ID, bad); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("a patient's id as an account: %v", err)
		}
		for _, who := range []haven.Actor{p.admin, p.staff, p.clinician, p.patientA} {
			if _, err := e.svc.Incident(e.as(who), inc.ID); err == nil {
				t.Fatalf("%s reads an incident", who.Role)
			}
			if _, err := e.svc.Incidents(e.as(who)); haven.ErrorCode(err) != haven.EFORBIDDEN {
				t.Fatalf("%s lists incidents: %v", who.Role, err)
			}
		}
	})
}

// TestIncidentScopeTooLargeIsRefused: a scope that covers more audit
// events than one list reads is refused with words that say what to do,
// never answered with a list cut short (patients left out of the letters).
func TestIncidentScopeTooLargeIsRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "inc9")
		al := insider(t, e, p)
		co := e.as(p.compliance)
		inc, err := e.svc.OpenIncident(co, service.NewIncident{AlertID: al.ID})
		if err != nil {
			t.Fatal(err)
		}
		// The bound counts every allowed event of the scoped accounts in the
		// window, the ones out of scope too.
		evs, err := e.db.SearchAudit(context.Background(), haven.AuditQuery{LogID: p.id, ActorID: p.staff.UserID, Decision: haven.DecisionAllow, Limit: 1000})
		if err != nil || len(evs) < 4 {
			t.Fatalf("the insider's events: %d %v", len(evs), err)
		}
		defer service.SetMaxScopeEvents(len(evs))()
		if aff, err := e.svc.IncidentAffected(co, inc.ID); err != nil || len(aff) != 2 {
			t.Fatalf("at the bound: %+v %v", aff, err)
		}
		if _, err := e.svc.Chart(e.as(p.staff), p.chartB.PatientID); err != nil {
			t.Fatal(err)
		}
		aff, err := e.svc.IncidentAffected(co, inc.ID)
		if haven.ErrorCode(err) != haven.EINVALID || !strings.Contains(haven.ErrorMessage(err), "narrow") || aff != nil {
			t.Fatalf("past the bound: %+v %v", aff, err)
		}
	})
}

func TestIncidentOfAnotherPracticeIsRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "inc2")
		q := e.seed("hillside", "inc3")
		al := insider(t, e, p)
		inc, err := e.svc.OpenIncident(e.as(p.compliance), service.NewIncident{Title: "Lost laptop"})
		if err != nil {
			t.Fatal(err)
		}
		other := e.as(q.compliance)
		if _, err := e.svc.OpenIncident(other, service.NewIncident{AlertID: al.ID}); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another practice's alert: %v", err)
		}
		if _, err := e.svc.Incident(other, inc.ID); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another practice's incident: %v", err)
		}
		if _, err := e.svc.IncidentAffected(other, inc.ID); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another practice's incident: %v", err)
		}
		if _, err := e.svc.IncidentAffected(other, "not an id"); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("not an id: %v", err)
		}
		if list, err := e.svc.Incidents(other); err != nil || len(list) != 0 {
			t.Fatalf("the other practice lists %d incidents, %v", len(list), err)
		}
		// Scoping one's own incident with another practice's accounts or patients.
		own, err := e.svc.OpenIncident(other, service.NewIncident{Title: "Ours"})
		if err != nil {
			t.Fatal(err)
		}
		sc := own.Scope
		sc.Accounts = []string{p.staff.UserID}
		if _, err := e.svc.ScopeIncident(other, own.ID, sc); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another practice's account in scope: %v", err)
		}
		sc.Accounts, sc.Patients = []string{q.staff.UserID}, []string{p.chartA.PatientID}
		if _, err := e.svc.ScopeIncident(other, own.ID, sc); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another practice's patient in scope: %v", err)
		}
		// The practice that owns the incident hears of the probe.
		e.svc.Wait()
		found := false
		rows, _ := e.db.SearchAudit(context.Background(), haven.AuditQuery{LogID: p.id, Action: "incident.manage", Decision: haven.DecisionDeny})
		for _, r := range rows {
			found = found || (r.ActorID == q.compliance.UserID && r.ResourceID == inc.ID)
		}
		if !found {
			t.Fatal("the owning practice's log does not show the probe")
		}
	})
}

func TestBreachLettersHoldOnlyTheirPatient(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "inc4")
		al := insider(t, e, p)
		co := e.as(p.compliance)
		inc, err := e.svc.OpenIncident(co, service.NewIncident{AlertID: al.ID})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.DecideIncident(co, inc.ID, true, "too early"); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("a decision before the assessment: %v", err)
		}
		as := service.IncidentAssessment{Nature: "Names, dates of birth and contact details", Person: "A front-desk member without a work reason",
			Acquired: "The charts were opened and viewed", Mitigated: "The account was shut out the same day", Probability: "not_low"}
		if _, err := e.svc.AssessIncident(co, inc.ID, as); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.DecideIncident(co, inc.ID, false, "no"); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("not a breach with a probability that is not low: %v", err)
		}
		if _, err := e.svc.DraftIncidentLetters(co, inc.ID); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("letters before the decision: %v", err)
		}
		v, err := e.svc.DecideIncident(co, inc.ID, true, "Charts were viewed without a work reason")
		if err != nil || v.Decision != haven.DecisionBreach || v.Affected != 2 || v.Media {
			t.Fatalf("decided: %+v, %v", v, err)
		}
		if _, err := e.svc.AssessIncident(co, inc.ID, as); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("a decided incident's assessment changes: %v", err)
		}
		if n, err := e.svc.DraftIncidentLetters(co, inc.ID); err != nil || n != 2 {
			t.Fatalf("drafted %d letters, %v", n, err)
		}
		if n, err := e.svc.DraftIncidentLetters(co, inc.ID); err != nil || n != 0 {
			t.Fatalf("drafted again %d letters, %v", n, err)
		}
		ls, err := e.svc.IncidentLetters(co, inc.ID)
		if err != nil || len(ls) != 2 {
			t.Fatalf("letters: %+v, %v", ls, err)
		}
		for _, l := range ls {
			full, err := e.svc.IncidentLetter(co, l.ID)
			if err != nil {
				t.Fatal(err)
			}
			mine, theirs := "inc4A", "inc4B"
			if l.PatientID == p.chartB.PatientID {
				mine, theirs = theirs, mine
			}
			if !strings.Contains(full.Body, "Name"+mine) || !strings.Contains(full.Body, "Street"+mine) || strings.Contains(full.Body, theirs) {
				t.Fatalf("letter for %s:\n%s", mine, full.Body)
			}
			if l.State != haven.LetterDrafted {
				t.Fatalf("state %s", l.State)
			}
			// Opening her letter is in her access history.
			rows, _ := e.db.SearchAudit(context.Background(), haven.AuditQuery{LogID: p.id, PatientID: l.PatientID, Action: "incident.letter"})
			if len(rows) == 0 {
				t.Fatal("the letter's opening is not in the patient's history")
			}
		}
		id := ls[0].ID
		if err := e.svc.SetLetterState(co, id, haven.LetterReturned); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("returned before sent: %v", err)
		}
		for _, st := range []string{haven.LetterSent, haven.LetterReturned, haven.LetterSent} {
			if err := e.svc.SetLetterState(co, id, st); err != nil {
				t.Fatalf("%s: %v", st, err)
			}
		}
		if l, _ := e.svc.IncidentLetter(co, id); l.State != haven.LetterSent || l.SentAt == nil || l.ReturnedAt == nil {
			t.Fatalf("letter %+v", l)
		}
		// Another practice's officer reaches no letter.
		q := e.seed("hillside", "inc5")
		if _, err := e.svc.IncidentLetter(e.as(q.compliance), id); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another practice's letter: %v", err)
		}
		if err := e.svc.SetLetterState(e.as(q.compliance), id, haven.LetterSent); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another practice's letter: %v", err)
		}
		// What the incident and the letters say is sealed at rest.
		e.svc.Wait()
		e.assertNotInTheClear(t, "incident_letters", "Nameinc4A", "Streetinc4A", "Nameinc4B", "Charts were viewed without", "front-desk member without")
	})
}
