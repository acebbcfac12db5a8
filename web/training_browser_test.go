package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"haven"
)

// TestBrowserTrainingChecklistAndContactCheck walks, on a phone (390 px),
// by links from each person's home: Dr Rivera opens Security training,
// reads the phishing module and passes its quiz, and her module shows as
// current; the administrator opens who is due and finds her current and
// the others overdue, by name; Maria Lopez opens her security checklist
// (second factor off, with the way to turn it on), checks the code of an
// email her practice sent her (genuine, a reset link) and reports a
// suspicious message; the compliance officer finds the report among her
// alerts. Every page is checked for width and accessibility by the walker.
func TestBrowserTrainingChecklistAndContactCheck(t *testing.T) {
	st := newDemoStack(t)
	w := newWalker(t, st.base)
	w.use(phone)

	// The clinician takes the phishing module and passes.
	w.start()
	w.signIn(doctor, "")
	w.follow("#nav-training")
	if got := w.text("#module-phishing .state"); got != "not taken yet" {
		t.Errorf("the phishing module before: %q", got)
	}
	w.follow("#take-phishing")
	m, _ := haven.FindTrainingModule("phishing")
	for i, q := range m.Questions {
		click(t, w.ctx, fmt.Sprintf("#q%d-%d", i, q.Answer))
	}
	w.press("#send-quiz")
	if got := w.at(); got != "/app/training?done=passed" {
		t.Fatalf("after the quiz, at %s", got)
	}
	if got := w.text("#module-phishing .state"); got != "current" {
		t.Errorf("the phishing module after passing: %q", got)
	}
	w.signOut()

	// The administrator sees who is due.
	w.start()
	w.signIn(admin, "")
	w.follow("#nav-training")
	w.follow("#training-report")
	people := w.text("#training-people")
	if !strings.Contains(people, "Rivera") {
		t.Errorf("the report does not name Dr Rivera: %q", people)
	}
	if !w.has(`#training-people tr[data-state="overdue"]`) {
		t.Errorf("nobody is overdue in the report")
	}
	if ids := w.rawIDs(); len(ids) > 0 {
		t.Errorf("the report shows raw ids: %v", ids)
	}
	w.signOut()

	// An email from her practice to Maria Lopez, with its code.
	before := len(st.mail.Sent())
	expectStatus(t, st.client(firefox).post("/reset", url.Values{"email": {patientEmail}}), http.StatusOK)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := st.mail.Wait(ctx, before+1)
	if err != nil {
		t.Fatal(err)
	}
	code := codeRE.FindStringSubmatch(msgs[len(msgs)-1].Text)
	if code == nil {
		t.Fatalf("the email has no code: %q", msgs[len(msgs)-1].Text)
	}

	// Maria: her checklist, the check, the report.
	w.start()
	w.signIn(patientEmail, "")
	w.follow("#nav-security")
	if got := w.text("#second-factor-state"); !strings.HasPrefix(got, "Off") {
		t.Errorf("her second factor shows %q", got)
	}
	if !w.has("#turn-on-second-factor") || !w.has("#check-network") || !w.has("#check-contact") || !w.has("#check-report") {
		t.Error("the checklist is missing an item or the way to turn the second factor on")
	}
	w.follow("#checklist-check-message")
	w.fill(map[string]string{"contact-code": strings.ToLower(code[1])})
	w.press("#check-code")
	if got := w.text("#check-result"); !strings.HasPrefix(got, "Genuine") || !strings.Contains(got, "reset your password") {
		t.Errorf("the check says %q", got)
	}
	w.fill(map[string]string{"report-code": "ZZZZ-0000"})
	w.press("#report-message")
	if !w.has("#reported") {
		t.Fatal("the report was not acknowledged")
	}
	w.signOut()

	// The compliance officer finds it among her alerts.
	w.start()
	w.signIn("compliance@riverside.example", "")
	w.follow("#home-alerts")
	if got := w.text("#alerts"); !strings.Contains(got, "A patient reported a suspicious message") {
		t.Errorf("the alerts do not show the report: %q", got)
	}
	w.signOut()
}
