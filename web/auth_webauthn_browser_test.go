package web_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"haven/identity"
	"haven/internal/testkit"
	"haven/store/sqlstore"
)

// withPasskeys serves st again with passkeys on, at
// https://localhost:<port> of a new port: a relying party id must be a
// host name, and the browser reaches the test server's loopback address
// by that name. st.base is the new server's; it returns the base URL the
// browser must use.
func (st *authStack) withPasskeys() string {
	st.t.Helper()
	ln, base := listener(st.t)
	browser := strings.Replace(base, "127.0.0.1", "localhost", 1)
	pk, err := identity.NewPasskeys(st.id, identity.PasskeyConfig{PublicURL: browser})
	if err != nil {
		st.t.Fatal(err)
	}
	st.web.Passkeys = pk
	st.srv = newWebServer(st.t, st.web)
	serveOn(st.t, st.srv, ln)
	st.base = base
	return browser
}

// virtualAuthenticator attaches Chromium's DevTools virtual authenticator
// to the tab: a CTAP2 platform authenticator that keeps resident keys and
// verifies its user (as a phone's or laptop's screen lock does).
func virtualAuthenticator(t *testing.T, ctx context.Context) cdpwebauthn.AuthenticatorID {
	t.Helper()
	id, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (cdpwebauthn.AuthenticatorID, error) {
		if _, err := cdp.Call(ctx, tg, cdpwebauthn.Enable, cdpwebauthn.EnableParams{}); err != nil {
			return "", err
		}
		res, err := cdp.Call(ctx, tg, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{
			Options: &cdpwebauthn.VirtualAuthenticatorOptions{
				Protocol: cdpwebauthn.AuthenticatorProtocolCtap2, Transport: cdpwebauthn.AuthenticatorTransportInternal,
				HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
			}})
		return res.AuthenticatorID, err
	})
	if err != nil {
		t.Fatalf("virtual authenticator: %v", err)
	}
	return id
}

// residentCredentials counts the discoverable credentials the virtual
// authenticator holds.
func residentCredentials(t *testing.T, ctx context.Context, id cdpwebauthn.AuthenticatorID) int {
	t.Helper()
	res, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (cdpwebauthn.GetCredentialsResult, error) {
		return cdp.Call(ctx, tg, cdpwebauthn.GetCredentials, cdpwebauthn.GetCredentialsParams{AuthenticatorID: id})
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range res.Credentials {
		if c.IsResidentCredential {
			n++
		}
	}
	return n
}

func clickTo(t *testing.T, ctx context.Context, id, next string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID(id)), chromedp.Click(chromedp.ID(id)), chromedp.WaitVisible(chromedp.CSS(next))); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("after #%s, waiting for %s at %s: %v\n%s", id, next, loc, err, body)
	}
}

// TestBrowserRegistersPasskeyAndSignsInWithIt is the acceptance test: in
// Chromium with its virtual authenticator, a patient signs in with a
// password, registers a passkey from their account, signs out, and signs
// in with the passkey alone, landing on /app in a session with MFA. Then,
// with the password, the passkey serves as the second factor.
func TestBrowserRegistersPasskeyAndSignsInWithIt(t *testing.T) {
	t.Parallel()
	ctx := testkit.Browser(t)
	st := newAuthStack(t, true)
	base := st.withPasskeys()
	auth := virtualAuthenticator(t, ctx)

	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/login")); err != nil {
		t.Fatal(err)
	}
	fill(t, ctx, map[string]string{"email": patientEmail, "password": stackPassword}, "sign-in", "#welcome")
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/account")); err != nil {
		t.Fatal(err)
	}
	clickTo(t, ctx, "manage-passkeys", "#no-passkeys")
	fill(t, ctx, map[string]string{"passkey-nickname": "Test laptop"}, "add-passkey", "#recovery-codes li")
	clickTo(t, ctx, "continue", "#passkeys .passkey-name")
	if name := text(t, ctx, "#passkeys .passkey-name"); name != "Test laptop" {
		t.Fatalf("passkey listed as %q", name)
	}
	if n := residentCredentials(t, ctx, auth); n != 1 {
		t.Fatalf("the authenticator holds %d discoverable credentials, want 1", n)
	}

	// Signed out, with no email and no password: the passkey alone.
	clickTo(t, ctx, "sign-out", "#sign-in")
	clickTo(t, ctx, "passkey-sign-in", "#role")
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasSuffix(loc, "/app") {
		t.Fatalf("passwordless sign-in ended at %s", loc)
	}
	if role := text(t, ctx, "#role"); role != "patient" {
		t.Fatalf("signed in as %q", role)
	}
	mfa, err := chromedp.Run(ctx, chromedp.Evaluate[bool](
		`fetch('/api/v1/session', {credentials: 'same-origin'}).then(r => r.json()).then(s => s.mfa === true && s.role === 'patient')`,
		chromedp.EvalAwaitPromise))
	if err != nil || !mfa {
		t.Fatalf("the passwordless session is not a patient's with MFA: %v", err)
	}
	patient := st.users[patientEmail]
	recs, err := st.db.UserSessionRecords(context.Background(), patient)
	if err != nil {
		t.Fatal(err)
	}
	if !hasLiveSession(recs, "webauthn") {
		t.Fatalf("no live webauthn session among %+v", recs)
	}

	// With the password, the passkey is now the second factor.
	clickTo(t, ctx, "sign-out", "#sign-in")
	fill(t, ctx, map[string]string{"email": patientEmail, "password": stackPassword}, "sign-in", "#passkey-verify")
	clickTo(t, ctx, "passkey-verify", "#welcome")
}

func hasLiveSession(recs []sqlstore.SessionRecord, factor string) bool {
	for _, r := range recs {
		if r.Factor == factor && r.MFA && r.RevokedAt.IsZero() {
			return true
		}
	}
	return false
}
