package web_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"haven/internal/testkit"
)

// TestBrowserWorkforceEnrolsAPasskeyAtFirstSignIn: in Chromium with the
// virtual authenticator, a clinician's first sign-in chooses a passkey
// instead of an authenticator app, saves the recovery codes and lands in
// the app; then signs in with password and passkey, and with the passkey
// alone.
func TestBrowserWorkforceEnrolsAPasskeyAtFirstSignIn(t *testing.T) {
	t.Parallel()
	ctx := testkit.Browser(t)
	st := newAuthStack(t, true)
	base := st.withPasskeys()
	auth := virtualAuthenticator(t, ctx)

	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/login")); err != nil {
		t.Fatal(err)
	}
	fill(t, ctx, map[string]string{"email": doctor, "password": stackPassword}, "sign-in", "#passkey-enrol")
	fill(t, ctx, map[string]string{"passkey-nickname": "Work laptop"}, "passkey-enrol", "#recovery-codes li")
	codes, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#recovery-codes li').length`))
	if err != nil || codes != 10 {
		t.Fatalf("%d recovery codes shown, %v", codes, err)
	}
	clickTo(t, ctx, "continue", "#role")
	if role := text(t, ctx, "#role"); role != "clinician" {
		t.Fatalf("signed in as %q", role)
	}
	if n := residentCredentials(t, ctx, auth); n != 1 {
		t.Fatalf("the authenticator holds %d discoverable credentials, want 1", n)
	}
	recs, err := st.db.UserSessionRecords(context.Background(), st.users[doctor])
	if err != nil || !hasLiveSession(recs, "webauthn") {
		t.Fatalf("no live webauthn session among %+v, %v", recs, err)
	}

	// Password, then the passkey as the second factor.
	clickTo(t, ctx, "sign-out", "#sign-in")
	fill(t, ctx, map[string]string{"email": doctor, "password": stackPassword}, "sign-in", "#passkey-verify")
	clickTo(t, ctx, "passkey-verify", "#role")

	// The passkey alone.
	clickTo(t, ctx, "sign-out", "#sign-in")
	clickTo(t, ctx, "passkey-sign-in", "#role")
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasSuffix(loc, "/app") {
		t.Fatalf("passwordless sign-in ended at %s", loc)
	}
}
