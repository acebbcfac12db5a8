package web_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"haven"
	"haven/service"
)

// TestBrowserIncidentJourney: the front desk at Riverside browses two
// charts and an alert is raised; the compliance officer, on a phone
// (390 px), goes from her home to the alert, opens an incident from it,
// saves its scope, reads the affected patients by name, contains it,
// fills the four-factor assessment, decides it is a breach and drafts the
// letters, then opens one and marks it sent. No page shows a raw id, and
// the 60-day clock is on every page of the incident.
func TestBrowserIncidentJourney(t *testing.T) {
	st := newDemoStack(t)
	w := newWalker(t, st.base)
	desk := st.demoActor("Riverside Family Clinic", haven.RoleStaff)
	pts, err := st.svc.Patients(desk)
	if err != nil || len(pts) < 2 {
		t.Fatalf("patients %v %v", pts, err)
	}
	names := map[string]bool{}
	for _, p := range pts[:2] {
		if _, err := st.svc.Chart(desk, p.PatientID); err != nil {
			t.Fatal(err)
		}
		names[p.Name] = true
	}
	deskActor, _ := haven.ActorFromContext(desk)
	al := &haven.Alert{ID: haven.NewID(), PracticeID: deskActor.PracticeID, Rule: service.RuleBulkAccess, ActorID: deskActor.UserID,
		Detail: "3 or more distinct patients within 10m0s"}
	if err := st.db.CreateAlert(context.Background(), al); err != nil {
		t.Fatal(err)
	}
	w.use(phone)
	w.start()
	w.signIn("compliance@riverside.example", "")
	if got := w.text("#count-incidents"); got != "0" {
		t.Errorf("open incidents on the home page: %q", got)
	}
	w.follow("#home-alerts")
	w.press("#incident-from-" + al.ID)
	clock := func(where string) {
		if got := w.text("#incident-clock"); !strings.Contains(got, "of 60 days left") {
			t.Errorf("%s: the clock says %q", where, got)
		}
	}
	clock("opened")
	if v, _ := chromedp.Run(w.ctx, chromedp.Evaluate[bool](`document.querySelector('#account-`+deskActor.UserID+`').checked`)); !v {
		t.Error("the alert's account is not ticked in the scope")
	}
	w.press("#save-scope")
	got := w.text("#affected-list")
	for n := range names {
		if !strings.Contains(got, n) {
			t.Errorf("the affected list lacks %s: %q", n, got)
		}
	}
	if ids := w.rawIDs(); len(ids) > 0 {
		t.Errorf("the incident page shows raw ids: %v", ids)
	}
	w.press("#contain-button")
	if got := w.text("#contained"); !strings.Contains(got, "Contained") {
		t.Errorf("after containment: %q", got)
	}
	clock("contained")
	w.fill(map[string]string{"factor-nature": "Names, dates of birth, contact details", "factor-person": "A front-desk member without a work reason",
		"factor-acquired": "The charts were opened and read", "factor-mitigated": "The account was shut out within the hour"})
	click(t, w.ctx, "#probability-not-low")
	w.press("#save-assessment")
	click(t, w.ctx, "#decision-breach")
	w.fill(map[string]string{"decision-reason": "Charts were viewed without a work reason"})
	w.press("#save-decision")
	if got := w.text("#decided"); !strings.Contains(got, "A breach") || !strings.Contains(got, "2 patients") {
		t.Errorf("the decision reads %q", got)
	}
	clock("decided")
	w.press("#draft-letters")
	if n, _ := chromedp.Run(w.ctx, chromedp.Evaluate[int](`document.querySelectorAll('#letter-list tbody tr').length`)); n != 2 {
		t.Errorf("%d letters, want 2", n)
	}
	first := w.text("#letter-list tbody tr a")
	w.follow("#letter-list tbody tr a")
	clock("letter")
	body := w.text("#letter-body")
	if !strings.Contains(body, first) {
		t.Errorf("the letter to %s does not name her:\n%s", first, body)
	}
	for n := range names {
		if n != first && strings.Contains(body, n) {
			t.Errorf("the letter to %s names %s", first, n)
		}
	}
	if ids := w.rawIDs(); len(ids) > 0 {
		t.Errorf("the letter page shows raw ids: %v", ids)
	}
	w.press("#mark-sent")
	if got := w.text("#letter-state"); !strings.HasPrefix(got, "Sent") {
		t.Errorf("after marking sent: %q", got)
	}
	w.follow("#nav-incidents")
	if got := w.text("#incidents"); !strings.Contains(got, "Breach") {
		t.Errorf("the incidents list: %q", got)
	}
	w.follow("#nav-home")
	if got := w.text("#count-notices"); !strings.HasPrefix(got, "1 breach") {
		t.Errorf("the home page's breaches with letters to send: %q", got)
	}
}
