package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"haven"
	"haven/auth/session"
	"haven/identity"
	"haven/internal/testkit"
)

// fill types into a field and submits with a click, waiting for the next
// page to show sel.
func fill(t *testing.T, ctx context.Context, fields map[string]string, submit, next string) {
	t.Helper()
	for id, v := range fields {
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID(id)), chromedp.SetValue(chromedp.ID(id), v)); err != nil {
			t.Fatalf("fill #%s: %v", id, err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID(submit)), chromedp.WaitVisible(chromedp.CSS(next))); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("after #%s, waiting for %s at %s: %v\n%s", submit, next, loc, err, body)
	}
}

// text returns the trimmed text of the element sel, once that element
// itself is visible. Waiting for another element of the same page and
// then reading this one raced the page's loading ("No node with given id
// found"): wait for what is read.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// TestBrowserEnrolsTOTPAndSignsIn drives Chromium through a clinician's
// first sign-in: password, the enrolment page's QR code and key, a code
// computed by an independent TOTP implementation, the recovery codes;
// then signs out and in again with a fresh code.
func TestBrowserEnrolsTOTPAndSignsIn(t *testing.T) {
	t.Parallel()
	ctx := testkit.Browser(t)
	st := newAuthStack(t, true)

	if err := chromedp.Do(ctx, chromedp.Navigate(st.base+"/login")); err != nil {
		t.Fatal(err)
	}
	fill(t, ctx, map[string]string{"email": doctor, "password": stackPassword}, "sign-in", "#totp-secret")
	if src, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("totp-qr"), "src", chromedp.NodeVisible)); err != nil || !strings.HasPrefix(src.Value, "data:image/png;base64,") {
		t.Fatalf("QR image: %+v, %v", src, err)
	}
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('totp-qr').naturalWidth > 100`))
	if err != nil || !loaded {
		t.Fatalf("the QR image did not load under the CSP: %v", err)
	}
	secret := strings.ReplaceAll(text(t, ctx, "#totp-secret"), " ", "")
	// The secret stays the same for the whole enrolment: a reload, or a
	// mistyped code, must not change what the app has just scanned.
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("totp-secret"))); err != nil {
		t.Fatal(err)
	}
	if again := strings.ReplaceAll(text(t, ctx, "#totp-secret"), " ", ""); again != secret {
		t.Fatalf("a reload changed the secret being enrolled: %s, then %s", secret, again)
	}
	wrong, _ := appCode(secret, time.Now().Add(-10*time.Minute))
	fill(t, ctx, map[string]string{"code": wrong}, "confirm", "#error")
	if again := strings.ReplaceAll(text(t, ctx, "#totp-secret"), " ", ""); again != secret {
		t.Fatalf("a wrong code changed the secret being enrolled: %s, then %s", secret, again)
	}
	code, err := appCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fill(t, ctx, map[string]string{"code": code}, "confirm", "#recovery-codes li")
	codes, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#recovery-codes li').length`))
	if err != nil || codes != 10 {
		t.Fatalf("%d recovery codes shown, %v", codes, err)
	}
	// One code per line, and ways to keep them: print, download.
	lines, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`new Set(Array.from(document.querySelectorAll('#recovery-codes li')).map(li => Math.round(li.getBoundingClientRect().top))).size`))
	if lines != 10 {
		t.Errorf("the 10 recovery codes take %d lines, want one each", lines)
	}
	keep, _ := chromedp.Run(ctx, chromedp.Evaluate[[]bool](`[!!document.querySelector('#print-codes:not([hidden])'), !!document.querySelector('a#download-codes[download]')]`))
	if len(keep) != 2 || !keep[0] || !keep[1] {
		t.Errorf("no print button or download link for the recovery codes: %v", keep)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("continue")), chromedp.WaitVisible(chromedp.ID("role"))); err != nil {
		t.Fatal(err)
	}
	if role := text(t, ctx, "#role"); role != "clinician" {
		t.Fatalf("signed in as %q", role)
	}
	// The session cookie is out of the page's reach.
	if jar, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`)); strings.Contains(jar, "haven_session") {
		t.Fatalf("the page's script can read the session cookie: %q", jar)
	}

	// Sign out, and in again: the enrolment code's step is used, so the
	// app's next code (one step ahead, within the allowed skew) is typed.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("sign-in"))); err != nil {
		t.Fatal(err)
	}
	fill(t, ctx, map[string]string{"email": doctor, "password": stackPassword}, "sign-in", "#code")
	next, _ := appCode(secret, time.Now().Add(30*time.Second))
	fill(t, ctx, map[string]string{"code": next}, "verify", "#role")

	// The same code again, from a second sign-in, is refused.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("sign-in"))); err != nil {
		t.Fatal(err)
	}
	fill(t, ctx, map[string]string{"email": doctor, "password": stackPassword}, "sign-in", "#code")
	fill(t, ctx, map[string]string{"code": next}, "verify", "#error")
	if msg := text(t, ctx, "#error"); !strings.Contains(msg, "not valid") {
		t.Fatalf("replayed code: %q", msg)
	}
}

// TestBrowserIdleWarningClearsThePage: with a short idle timeout, the
// page removes its content and says the session is about to end; "Stay
// signed in" keeps it; left alone, the browser ends on the sign-in page.
func TestBrowserIdleWarningClearsThePage(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a (short) idle timeout")
	}
	t.Parallel()
	ctx := testkit.Browser(t)
	st := newAuthStack(t, true, func(c *identity.Config) {
		c.SessionPolicy = func(context.Context, string, haven.Role) (session.Policy, error) {
			// 16 s idle; the warning comes at half of it (Within caps it at Idle/2).
			return session.Policy{Idle: 16 * time.Second}, nil
		}
	})
	if err := chromedp.Do(ctx, chromedp.Navigate(st.base+"/login")); err != nil {
		t.Fatal(err)
	}
	fill(t, ctx, map[string]string{"email": patientEmail, "password": stackPassword}, "sign-in", "#welcome")
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("stay-signed-in"))); err != nil {
		t.Fatalf("no idle warning: %v", err)
	}
	if text(t, ctx, "#session-warning-title") != "Your session is about to end" {
		t.Fatal("the warning does not say the session is about to end")
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#welcome, #role').length`)); n != 0 {
		t.Fatal("the page's content is still on screen under the warning")
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("stay-signed-in")), chromedp.WaitVisible(chromedp.ID("welcome"))); err != nil {
		t.Fatalf("stay signed in: %v", err)
	}
	// Left alone, the page goes to the sign-in page when the session ends.
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("sign-in"))); err != nil {
		t.Fatalf("the page did not end on the sign-in page: %v", err)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.Contains(loc, "/login?ended=1") {
		t.Fatalf("ended at %s", loc)
	}
}
