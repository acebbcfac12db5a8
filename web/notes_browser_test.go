package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"haven"
	"haven/internal/testkit"
)

// TestBrowserVisitNoteAndAmendment: Dr. Rivera writes Maria Lopez's
// visit note in the side panel of the call (saved as she types), then
// opens it from her schedule and signs it, confirming it is her when the
// practice asks (its step-up age is 15 seconds here); the page shows the
// signature checked. Maria reads the note from her record, by links from
// "/", and asks for a correction; Dr. Rivera finds the request on the
// practice's list with its days left and denies it with a reason; Maria
// attaches a statement of disagreement, which then shows with the note.
// Every page is checked (width, axe-core) on a desktop, and the pages are
// walked again on a 390×844 phone.
func TestBrowserVisitNoteAndAmendment(t *testing.T) {
	st := newVisitStack(t, true)
	visit := st.bookNextSlot(patientEmail, doctor)
	ctx := context.Background()
	as := func(email string, role haven.Role) context.Context {
		return haven.NewContextWithActor(ctx, haven.Actor{UserID: st.users[email], PracticeID: st.practice, Role: role, MFA: true,
			AuthTime: time.Now(), SessionID: "scene", ClientAddr: "127.0.0.1", RequestID: "scene"})
	}
	if _, err := st.svc.CheckIn(as(patientEmail, haven.RolePatient), visit.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.svc.Admit(as(doctor, haven.RoleClinician), visit.ID); err != nil {
		t.Fatal(err)
	}
	// A short step-up age, so that signing asks for one.
	if err := st.db.PutPracticeSettings(ctx, st.practice, `{"step_up_max_age":"15s"}`); err != nil {
		t.Fatal(err)
	}

	doc := newWalker(t, st.base, testkit.FakeMedia...)
	doc.start()
	secret := doc.signIn(doctor, "")
	doc.follow("#join-" + visit.ID)
	doc.fill(map[string]string{"panel-subjective": "Sore throat for three days", "panel-objective": "Red pharynx, no exudate",
		"panel-assessment": "Viral pharyngitis", "panel-plan": "Rest and fluids; come back if it lasts a week"})
	if err := chromedp.Do(doc.ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById('panel-plan').dispatchEvent(new Event('input', {bubbles: true}))`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, doc.ctx, "the draft saved from the call's panel", `Number(document.getElementById('panel-note-form').dataset.saved || 0)`)

	// Afterwards, from her schedule.
	doc.follow("#nav-home")
	doc.follow("#note-" + visit.ID)
	if got, _ := chromedp.Run(doc.ctx, chromedp.Evaluate[string](`document.getElementById('note-assessment').value`)); got != "Viral pharyngitis" {
		t.Fatalf("the draft reads %q", got)
	}
	time.Sleep(15500 * time.Millisecond) // older than the practice's step-up age
	doc.press("#sign-note")
	if !strings.HasPrefix(doc.at(), "/account/step-up") {
		t.Fatalf("signing did not ask to confirm it is her: at %s", doc.at())
	}
	code, err := appCode(secret, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if doc.has("#password") {
		doc.fill(map[string]string{"password": stackPassword})
	}
	doc.fill(map[string]string{"code": code})
	doc.press("#confirm")
	if !strings.HasSuffix(doc.at(), "/app/visits/"+visit.ID+"/note") {
		t.Fatalf("after the step-up: at %s", doc.at())
	}
	doc.press("#sign-note")
	if got := doc.text("#signature-check"); !strings.Contains(got, "Signature checked") {
		t.Fatalf("the signed note's check says %q", got)
	}
	if doc.has("#note-form") || !doc.has("#add-addendum") {
		t.Fatal("a signed note is still offered for editing, or offers no addendum")
	}

	// Maria reads it from her record and asks for a correction.
	pat := newWalker(t, st.base)
	pat.start()
	pat.signIn(patientEmail, "")
	pat.follow("#home-record")
	pat.follow("#note-" + visit.ID)
	if got := pat.text("#note-plan"); got != "Rest and fluids; come back if it lasts a week" {
		t.Fatalf("Maria reads the plan as %q", got)
	}
	if got := pat.text("#signature-check"); !strings.Contains(got, "Signature checked") {
		t.Errorf("Maria's signature check: %q", got)
	}
	pat.fill(map[string]string{"amend-reason": "The sore throat started five days ago, not three."})
	pat.press("#request-amendment-button")
	amendment := strings.TrimPrefix(strings.SplitN(pat.at(), "?", 2)[0], "/app/amendments/")
	if !haven.PlausibleID(amendment) || !strings.Contains(pat.text(".flash"), "60 days") {
		t.Fatalf("after the request: at %s", pat.at())
	}

	// Dr. Rivera denies it from the practice's list.
	doc.follow("#nav-amendments")
	if got := doc.text("#amendment-list"); !strings.Contains(got, "Maria Lopez") || !strings.Contains(got, "60 days left") {
		t.Fatalf("the practice's list shows %q", got)
	}
	doc.follow("#amendment-" + amendment)
	if got := doc.text("#amendment-reason"); !strings.Contains(got, "five days ago") {
		t.Fatalf("the clinician reads the request as %q", got)
	}
	click(t, doc.ctx, "#decision-deny")
	doc.fill(map[string]string{"decision-text": "You told me three days during the visit."})
	doc.press("#decide-button")
	if got := doc.text("#amendment-state"); got != "Denied" {
		t.Fatalf("after the denial the state reads %q", got)
	}

	// Maria disagrees; her statement shows with the note.
	pat.follow("#back-to-amendments")
	pat.follow("#amendment-" + amendment)
	if got := pat.text("#amendment-response"); !strings.Contains(got, "three days") {
		t.Fatalf("Maria reads the denial as %q", got)
	}
	pat.fill(map[string]string{"disagreement-text": "I said five days; please keep my statement with the note."})
	pat.press("#disagree-button")
	pat.follow("#amendment-note")
	if got := pat.text("#note-amendments"); !strings.Contains(got, "I said five days") {
		t.Fatalf("the note shows %q", got)
	}

	// The same pages on a phone.
	pat.use(phone)
	pat.follow("#nav-record")
	pat.follow("#note-" + visit.ID)
	pat.follow("#back-to-record")
	pat.follow("#amendment-" + amendment)
	doc.use(phone)
	doc.follow("#nav-amendments")
	doc.follow("#amendment-" + amendment)
	doc.follow("#amendment-note")
	if got := doc.text("#note-amendments"); !strings.Contains(got, "I said five days") {
		t.Fatalf("the clinician's note page shows %q", got)
	}
	doc.follow("#nav-home")
}
