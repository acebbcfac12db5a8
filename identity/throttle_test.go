package identity_test

import (
	"context"
	"testing"

	"haven"
	"haven/identity"
)

// TestThrottleKicksInAndEnds drives the sign-in throttle with the injected
// clock: five failures from one address, then even the right password
// waits; the wait ends by itself; a known device gets past an account's
// backoff that strangers caused.
func TestThrottleKicksInAndEnds(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "a6")
		id := e.identity()
		ctx := context.Background()
		_, secret, _ := id.enrol("doc@riverside.example", home)
		attacker := browser("203.0.113.9", "attacker")
		for i := range 5 {
			if _, err := id.Login(ctx, "doc@riverside.example", "guess-"+string(rune('a'+i)), attacker); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
				t.Fatalf("guess %d: %v", i, err)
			}
		}
		_, err := id.Login(ctx, "doc@riverside.example", pw, attacker)
		wait := identity.RetryAfter(err)
		if haven.ErrorCode(err) != haven.ETOOMANY || wait <= 0 {
			t.Fatalf("sixth attempt: %v (wait %v), want %s", err, wait, haven.ETOOMANY)
		}
		if ev := e.lastEvent(p.ID); ev.Action != identity.ActLogin || ev.Reason != "throttled" {
			t.Fatalf("throttled attempt audited as %+v", ev)
		}
		lockout, _ := e.DB.SearchAudit(ctx, haven.AuditQuery{LogID: p.ID, Action: identity.ActLogin, Limit: 100})
		found := false
		for _, r := range lockout {
			found = found || r.Event.Reason == "backoff_started"
		}
		if !found {
			t.Fatal("the start of the backoff was not audited")
		}
		e.Clock.Advance(wait)
		if res, err := id.Login(ctx, "doc@riverside.example", pw, attacker); err != nil || res.Stage != identity.StageSecondFactor {
			t.Fatalf("after the wait: %+v, %v", res, err)
		}

		// Strangers at many addresses push the account into backoff; its
		// owner, on the device that signed in before, is not held back.
		for i := range 30 {
			id.Login(ctx, "doc@riverside.example", "spray", browser("192.0.2."+itoa(10+i), "bot"))
		}
		if _, err := id.Login(ctx, "doc@riverside.example", pw, browser("198.51.100.200", "new-device")); haven.ErrorCode(err) != haven.ETOOMANY {
			t.Fatalf("a new device during the account's backoff: %v", err)
		}
		if _, err := id.signIn("doc@riverside.example", secret, home); err != nil {
			t.Fatalf("the owner's known device was locked out: %v", err)
		}
	})
}

// TestStrangersCannotLockAPatientOutOfHerOwnBrowser: a patient without a
// second factor signed in from her browser once. Strangers then fail her
// password 24 times from 6 addresses (4 each, under every address's own
// allowance), waiting out each backoff the account earns, which leaves
// her account in backoff: a device she never
// used must wait, but her browser signs in at once, and its own failures
// are still counted against it alone.
func TestStrangersCannotLockAPatientOutOfHerOwnBrowser(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "b15")
		id := e.identity()
		ctx := context.Background()
		if err := e.Service.ProvisionPassword(ctx, p.PatientA.UserID, pw); err != nil {
			t.Fatal(err)
		}
		const email = "ptA@riverside.example"
		if res, err := id.Login(ctx, email, pw, home); err != nil || res.Stage != identity.StageDone {
			t.Fatalf("first sign-in: %+v, %v", res, err)
		}
		for a := range 6 {
			for g := 0; g < 4; {
				stranger := browser("203.0.113."+itoa(10+a), "bot-"+itoa(a))
				_, err := id.Login(ctx, email, "wrong guess "+itoa(g), stranger)
				switch haven.ErrorCode(err) {
				case haven.EUNAUTHORIZED:
					g++
				case haven.ETOOMANY: // the strangers wait out each backoff
					e.Clock.Advance(identity.RetryAfter(err))
				default:
					t.Fatalf("stranger %d guess %d: %v", a, g, err)
				}
			}
		}
		if _, err := id.Login(ctx, email, pw, browser("198.51.100.200", "never-seen")); haven.ErrorCode(err) != haven.ETOOMANY {
			t.Fatalf("an unknown device during the account's backoff: %v, want %s", err, haven.ETOOMANY)
		}
		res, err := id.Login(ctx, email, pw, home)
		if err != nil || res.Stage != identity.StageDone {
			t.Fatalf("the patient's own browser was locked out by strangers: %+v, %v", res, err)
		}

		// Her browser's cookie in a thief's hands buys no guesses: its
		// failures, from any address, are its own to wait out.
		for i := range 5 {
			thief := browser("192.0.2."+itoa(50+i), "device-home")
			if _, err := id.Login(ctx, email, "thief guess", thief); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
				t.Fatalf("thief guess %d: %v", i, err)
			}
		}
		if _, err := id.Login(ctx, email, pw, browser("192.0.2.99", "device-home")); haven.ErrorCode(err) != haven.ETOOMANY {
			t.Fatalf("the known device after 5 failures of its own: %v, want %s", err, haven.ETOOMANY)
		}
	})
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
