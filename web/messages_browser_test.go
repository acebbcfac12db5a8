package web_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserSecureMessaging: Maria Lopez, on a phone (390×844), writes
// to her care team from her messages page, with markup in the text; Dr.
// Rosa Rivera sees the unread conversation on her home page, opens it from
// the inbox and answers, and Maria's open page shows the answer without a
// reload; the front desk answers too and gives the conversation to Dr.
// Rivera by name. Then Maria keeps the front desk out of her messages
// from her account, and the front desk's inbox no longer lists it, while
// Dr. Rivera's still does. Every page is walked by links, at its width,
// with axe-core.
func TestBrowserSecureMessaging(t *testing.T) {
	st := newDemoStack(t)
	pat := newWalker(t, st.base)
	pat.use(phone)
	pat.start()
	pat.signIn(patientEmail, "")
	pat.follow("#home-messages")
	if !pat.has("#no-threads") {
		t.Fatal("a new patient's messages page does not say there are none")
	}
	pat.follow("#write-care-team")
	text := "It started on Monday <b>after the new cream</b>.\nIt itches at night."
	pat.fill(map[string]string{"subject": "Rash on my arm", "body": text})
	pat.press("#send")
	if got := pat.text("#thread-subject"); got != "Rash on my arm" {
		t.Fatalf("the new conversation's heading: %q", got)
	}
	if got := pat.text("#thread-messages li .body"); got != strings.ReplaceAll(text, "\n", " ") && got != text {
		t.Fatalf("her message reads %q", got)
	}
	noMarkup := `document.querySelectorAll('#thread-messages b').length === 0 ? 1 : 0`
	waitFor(t, pat.ctx, "her message shown as text", noMarkup)
	// Marked, to tell a redraw from a reload.
	if err := chromedp.Do(pat.ctx, chromedp.Evaluate[chromedp.Void](`window.__sameDocument = true`)); err != nil {
		t.Fatal(err)
	}

	doc := newWalker(t, st.base)
	doc.start()
	doc.signIn(doctor, "")
	if got := doc.text("#unread-count"); got != "1" {
		t.Errorf("the clinician's home counts %q unread conversations", got)
	}
	doc.follow("#home-inbox")
	if got := doc.text("#thread-list"); !strings.Contains(got, "Maria Lopez") || !strings.Contains(got, "Rash on my arm") {
		t.Fatalf("the inbox shows %q", got)
	}
	doc.follow("#thread-rows a")
	waitFor(t, doc.ctx, "the patient's message shown as text", noMarkup)
	if got := doc.text("#thread-messages li .from"); got != "Maria Lopez" {
		t.Errorf("the clinician sees the message from %q", got)
	}
	doc.fill(map[string]string{"reply-body": "Please stop the new cream, and send a photo if it spreads."})
	doc.press("#send-reply")

	waitFor(t, pat.ctx, "the answer arrives on her open page", `document.getElementById('thread').dataset.count === '2' ? 1 : 0`)
	if same, err := chromedp.Run(pat.ctx, chromedp.Evaluate[bool](`window.__sameDocument === true`)); err != nil || !same {
		t.Fatalf("her page was reloaded to show the answer (%v)", err)
	}
	if got := textOf(t, pat.ctx, "#thread-messages li:last-child .from"); got != "Dr. Rosa Rivera" {
		t.Errorf("the answer is from %q", got)
	}
	pat.check()

	fd := newWalker(t, st.base)
	fd.start()
	fd.signIn(desk, "")
	if got := fd.text("#unread-count"); got != "1" {
		t.Errorf("the front desk's home counts %q unread conversations", got)
	}
	fd.follow("#nav-inbox")
	fd.follow("#thread-rows a")
	fd.fill(map[string]string{"reply-body": "The front desk can book you a visit this week."})
	fd.press("#send-reply")
	// The person is chosen by name.
	if err := chromedp.Do(fd.ctx, chromedp.Evaluate[chromedp.Void](`(() => {
		const s = document.getElementById('assignee');
		s.value = Array.from(s.options).find((o) => o.text.startsWith('Dr. Rosa Rivera')).value;
	})()`)); err != nil {
		t.Fatal(err)
	}
	fd.press("#assign")
	if got := fd.text("#thread-assignee"); got != "Dr. Rosa Rivera" {
		t.Errorf("given to %q", got)
	}
	fd.follow("#back-to-list")
	waitFor(t, pat.ctx, "the front desk's answer arrives", `document.getElementById('thread').dataset.count === '3' ? 1 : 0`)

	// Maria keeps the front desk out, from her account.
	pat.follow("#nav-account")
	pat.follow("#account-restrictions")
	click(t, pat.ctx, "#staff-from-messages")
	pat.press("#save-restrictions")
	if !strings.Contains(pat.text(".flash"), "saved") {
		t.Error("saving her limits says nothing")
	}
	if on, err := chromedp.Run(pat.ctx, chromedp.Evaluate[bool](`document.getElementById('staff-from-messages').checked`)); err != nil || !on {
		t.Fatal("her limit is not kept")
	}

	fd.follow("#nav-inbox")
	if fd.has("#thread-rows a") || !fd.has("#no-threads") {
		t.Errorf("the front desk still sees her conversation: %q", fd.text("main"))
	}
	doc.follow("#nav-inbox")
	if got := doc.text("#thread-list"); !strings.Contains(got, "Maria Lopez") || !strings.Contains(got, "Dr. Rosa Rivera") {
		t.Errorf("her clinician's inbox shows %q", got)
	}
	pat.follow("#nav-messages")
	if got := pat.text("#thread-list"); !strings.Contains(got, "Rash on my arm") {
		t.Errorf("her messages page shows %q", got)
	}
}
