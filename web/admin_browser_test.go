package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"haven/internal/testkit"
)

// TestBrowserAdminDisablesAClinician drives Chromium through a practice
// admin's first sign-in (authenticator enrolled with a code from an
// independent TOTP implementation), to the people page from the home
// page's link, and a click on a signed-in clinician's Disable button: the
// row says disabled, and the clinician's very next request is signed out.
// The form's token travels in the browser's own __Host- cookie.
func TestBrowserAdminDisablesAClinician(t *testing.T) {
	t.Parallel()
	ctx := testkit.Browser(t)
	st := newAuthStack(t, true)

	doc := st.client(firefox)
	expectRedirect(t, doc.post("/login", url.Values{"email": {doctor}, "password": {stackPassword}}), "/login/mfa")
	m := secretRE.FindStringSubmatch(readAll(t, doc.get("/login/mfa")))
	if m == nil {
		t.Fatal("no enrolment secret for the clinician")
	}
	code, _ := appCode(strings.ReplaceAll(m[1], " ", ""), time.Now())
	expectStatus(t, doc.post("/login/enrol", url.Values{"code": {code}}), http.StatusOK)
	expectStatus(t, doc.get("/api/v1/session"), http.StatusOK)

	if err := chromedp.Do(ctx, chromedp.Navigate(st.base+"/login")); err != nil {
		t.Fatal(err)
	}
	fill(t, ctx, map[string]string{"email": admin, "password": stackPassword}, "sign-in", "#totp-secret")
	secret := strings.ReplaceAll(text(t, ctx, "#totp-secret"), " ", "")
	code, err := appCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fill(t, ctx, map[string]string{"code": code}, "confirm", "#recovery-codes li")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("continue")), chromedp.WaitVisible(chromedp.ID("home-people"))); err != nil {
		t.Fatal(err)
	}
	row := "#user-" + st.users[doctor]
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("home-people")), chromedp.WaitVisible(chromedp.CSS(row))); err != nil {
		t.Fatal(err)
	}
	if s := text(t, ctx, row+" .status"); s != "active" {
		t.Fatalf("the clinician's status before: %q", s)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("disable-"+st.users[doctor])),
		chromedp.WaitVisible(chromedp.CSS(row+`[data-status="disabled"]`))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("after Disable: %v\n%s", err, body)
	}
	if flash := text(t, ctx, ".flash"); !strings.Contains(flash, "Every session it had has ended") {
		t.Fatalf("flash: %q", flash)
	}
	expectStatus(t, doc.get("/api/v1/session"), http.StatusUnauthorized)
}
