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

// TestBrowserWaitingRoomMessage: in two headless Chromiums, the clinician
// writes to a waiting patient from the queue, with markup in the text;
// the patient's waiting page shows it without a reload, as text (no
// element is made of it), and the patient's reply reaches the queue.
func TestBrowserWaitingRoomMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("two browsers")
	}
	st := newVisitStack(t, true)
	visit := st.bookNextSlot(patientEmail, doctor)
	patientCtx := haven.NewContextWithActor(context.Background(), haven.Actor{UserID: st.users[patientEmail], PracticeID: st.practice,
		Role: haven.RolePatient, SessionID: "test", ClientAddr: "127.0.0.1", RequestID: "test", AuthTime: time.Now()})
	if _, err := st.svc.CheckIn(patientCtx, visit.ID); err != nil {
		t.Fatal(err)
	}
	patient, clinician := testkit.Browser(t), testkit.Browser(t)

	signInPatient(t, patient, st.base)
	click(t, patient, "#nav-visits")
	click(t, patient, "#check-in-"+visit.ID)
	waitFor(t, patient, "the waiting room's messages", `document.getElementById('visit-messages').hidden ? 0 : 1`)

	// Following links, not navigating, so the sign-in's own last
	// navigation is never cut short.
	signInClinician(t, clinician, st.base)
	click(t, clinician, "#nav-waiting-room")
	text := `Running 10 minutes late <img id="injected" src="/x" onerror="document.title='pwned'"> <b>sorry</b>`
	if err := chromedp.Do(clinician, chromedp.WaitVisible(chromedp.ID("message-"+visit.ID)), chromedp.SetValue(chromedp.ID("message-"+visit.ID), text)); err != nil {
		t.Fatal(err)
	}
	click(t, clinician, "#send-"+visit.ID)

	waitFor(t, patient, "the message arrives", `Number(document.getElementById('visit-messages').dataset.count || 0)`)
	if got := textOf(t, patient, "#message-list li .body"); got != text {
		t.Fatalf("the patient sees %q", got)
	}
	if n, err := chromedp.Run(patient, chromedp.Evaluate[float64](`document.querySelectorAll('#message-list img, #message-list b, #injected').length`)); err != nil || n != 0 {
		t.Fatalf("the message became markup: %v elements, %v", n, err)
	}
	if title, _ := chromedp.Run(patient, chromedp.Title()); title == "pwned" {
		t.Fatal("the message ran script")
	}
	if from := textOf(t, patient, "#message-list li .from"); !strings.HasPrefix(from, "Worker "+doctor) {
		t.Fatalf("from %q", from)
	}

	// The patient replies; the queue counts it and shows the thread.
	if err := chromedp.Do(patient, chromedp.SetValue(chromedp.ID("reply"), "Thanks, I will wait.")); err != nil {
		t.Fatal(err)
	}
	click(t, patient, "#send-reply")
	waitFor(t, patient, "the reply is shown", `document.getElementById('visit-messages').dataset.count === '2' ? 1 : 0`)
	waitFor(t, clinician, "the queue counts the reply", `document.querySelector("tr[data-visit='`+visit.ID+`']").dataset.messages === '2' ? 1 : 0`)
	click(t, clinician, "#thread-"+visit.ID)
	waitFor(t, clinician, "the thread opens", `document.querySelectorAll('#thread-list-`+visit.ID+` li').length === 2 ? 1 : 0`)
	if got := textOf(t, clinician, "#thread-list-"+visit.ID+" li.mine .body"); got != "Thanks, I will wait." {
		t.Fatalf("the clinician reads %q", got)
	}
}
