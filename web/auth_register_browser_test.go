package web_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"haven/internal/testkit"
)

// TestBrowserPatientRegistersThemselves drives Chromium through both
// steps of a patient's own registration, from the front page by its
// links: the list of clinics that take registrations, the clinic's page,
// the emailed link (read from the outbox: it leads to the same origin
// the browser is on, and says how long it lasts in words), the details
// form, and the app, signed in as the new patient.
func TestBrowserPatientRegistersThemselves(t *testing.T) {
	t.Parallel()
	ctx := testkit.Browser(t)
	st := newAuthStack(t, true)
	st.openRegistration(st.practice, true, false)

	if err := chromedp.Do(ctx, chromedp.Navigate(st.base+"/")); err != nil {
		t.Fatal(err)
	}
	click(t, ctx, "#home-register")
	click(t, ctx, `#open-practices a[href="/register/`+st.practice+`"]`)
	fill(t, ctx, map[string]string{"email": "rowan@patients.example"}, "send-link", "#register-sent")
	path, _ := st.registerLink(1, "rowan@patients.example")
	if sent := st.mail.Sent(); len(sent) != 1 || !strings.Contains(sent[0].Text, st.base+path) || !strings.Contains(sent[0].Text, "within 1 day:") {
		t.Fatalf("the registration email does not link to %s within 1 day:\n%+v", st.base+path, sent)
	}
	// The sign-in page leads to registration too.
	if err := chromedp.Do(ctx, chromedp.Navigate(st.base+"/login")); err != nil {
		t.Fatal(err)
	}
	click(t, ctx, "#register")
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("open-practices"))); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(st.base+path)); err != nil {
		t.Fatal(err)
	}
	if email := text(t, ctx, "#register-email"); email != "rowan@patients.example" {
		t.Fatalf("the link's page shows %q", email)
	}
	fill(t, ctx, map[string]string{"name": "Rowan Selfreg", "date-of-birth": "1990-04-05",
		"password": "a lantern over the quiet harbour", "confirm": "a lantern over the quiet harbour"}, "create-account", "#role")
	if role := text(t, ctx, "#role"); role != "patient" {
		t.Fatalf("signed in as %q", role)
	}
	// The link is spent: opening it again offers a new one.
	if err := chromedp.Do(ctx, chromedp.Navigate(st.base+path), chromedp.WaitVisible(chromedp.ID("send-link"))); err != nil {
		t.Fatalf("a used link: %v", err)
	}
}
