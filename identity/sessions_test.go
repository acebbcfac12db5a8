package identity_test

import (
	"context"
	"testing"
	"time"

	"haven"
	"haven/auth/totp"
	"haven/identity"
	"haven/service"
)

// TestExpiredSessionIsRefused moves the injected clock: idle and absolute
// timeouts are enforced by the server on the next request.
func TestExpiredSessionIsRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		e.Seed("riverside", "a7")
		id := e.identity()
		s, secret, _ := id.enrol("doc@riverside.example", home)
		e.Clock.Advance(14 * time.Minute)
		cur, err := id.resume(s, home)
		if err != nil {
			t.Fatalf("after 14 idle minutes: %v", err)
		}
		if want := e.Clock.Now().Add(15 * time.Minute); !cur.Expires.Equal(want) || !cur.WarnAt.Before(cur.Expires) {
			t.Fatalf("Expires %v WarnAt %v, want %v and a warning before it", cur.Expires, cur.WarnAt, want)
		}
		e.Clock.Advance(15 * time.Minute)
		if _, err := id.resume(s, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("after 15 idle minutes: %v", err)
		}

		// Active all day, a workforce session still ends 12 hours after sign-in.
		s, err = id.signIn("doc@riverside.example", secret, home)
		if err != nil {
			t.Fatal(err)
		}
		start := e.Clock.Now()
		for e.Clock.Now().Before(start.Add(12*time.Hour - 10*time.Minute)) {
			e.Clock.Advance(10 * time.Minute)
			if _, err := id.resume(s, home); err != nil {
				t.Fatalf("active session refused at +%v: %v", e.Clock.Now().Sub(start), err)
			}
		}
		e.Clock.Advance(start.Add(12 * time.Hour).Sub(e.Clock.Now()))
		if _, err := id.resume(s, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("at the absolute end: %v", err)
		}
	})
}

func TestRevokedSessionIsRefusedOnItsNextRequest(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		e.Seed("riverside", "b1")
		id := e.identity()
		laptop, secret, _ := id.enrol("doc@riverside.example", home)
		phone, err := id.signIn("doc@riverside.example", secret, home)
		if err != nil {
			t.Fatal(err)
		}
		cur, _ := id.resume(laptop, home)
		list, err := id.Sessions(ctxOf(cur))
		if err != nil || len(list) != 2 || !list[1].Current || list[0].Device != "Firefox on Linux" {
			t.Fatalf("Sessions = %+v, %v", list, err)
		}
		if err := id.RevokeSession(ctxOf(cur), phone.Actor.SessionID); err != nil {
			t.Fatal(err)
		}
		if _, err := id.resume(phone, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("revoked session: %v", err)
		}
		if ev := e.lastEvent(cur.Actor.PracticeID); ev.Action != identity.ActSessionRevoke || ev.ResourceID != phone.Actor.SessionID {
			t.Fatalf("revocation audited as %+v", ev)
		}
		// Logging out revokes too.
		if err := id.Logout(ctxOf(cur)); err != nil {
			t.Fatal(err)
		}
		if _, err := id.resume(laptop, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("after logout: %v", err)
		}
	})
}

func TestNobodyRevokesAnotherUsersSession(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		e.Seed("riverside", "b2")
		id := e.identity()
		victim, _, _ := id.enrol("doc@riverside.example", home)
		attacker, _, _ := id.enrol("desk@riverside.example", browser("198.51.100.9", "desk"))
		cur, _ := id.resume(attacker, browser("198.51.100.9", "desk"))
		if err := id.RevokeSession(ctxOf(cur), victim.Actor.SessionID); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("revoking another user's session: %v", err)
		}
		if _, err := id.resume(victim, home); err != nil {
			t.Fatalf("the victim's session ended: %v", err)
		}
	})
}

// TestDeviceChangeChallengesTheSession: a cookie replayed from another
// network or browser stops working until the owner re-authenticates with
// password and second factor, and the challenge is audited.
func TestDeviceChangeChallengesTheSession(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "b3")
		id := e.identity()
		s, secret, _ := id.enrol("doc@riverside.example", home)
		thief := browser("203.0.113.77", "device-home") // same cookies, other network
		cur, err := id.resume(s, thief)
		if err != nil || !cur.Challenged || cur.Actor.MFA || !cur.Actor.AuthTime.IsZero() {
			t.Fatalf("request from another network: %+v, %v", cur, err)
		}
		if ev := e.lastEvent(p.ID); ev.Action != identity.ActChallenge || ev.Reason != "network_changed" || ev.Decision != "deny" {
			t.Fatalf("challenge audited as %+v", ev)
		}
		// The challenge holds even back on the original network.
		if cur, _ := id.resume(s, home); !cur.Challenged {
			t.Fatal("the challenge was lifted without re-authentication")
		}
		other := home
		other.UserAgent = "curl/8.0"
		if cur, _ := id.resume(s, other); !cur.Challenged {
			t.Fatal("a changed device was not challenged")
		}
		// A code alone does not lift a challenge: the password is needed too.
		code, _ := totp.Code(secret, e.Clock.Now())
		if err := id.StepUp(ctxOf(cur), identity.StepUpRequest{Factor: identity.FactorTOTP, Proof: code}, home); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("step-up without password on a challenged session: %v", err)
		}
		if err := id.StepUp(ctxOf(cur), identity.StepUpRequest{Password: pw, Factor: identity.FactorTOTP, Proof: code}, home); err != nil {
			t.Fatal(err)
		}
		cur, err = id.resume(s, home)
		if err != nil || cur.Challenged || !cur.Actor.MFA || !cur.Actor.AuthTime.Equal(e.Clock.Now()) {
			t.Fatalf("after passing the challenge: %+v, %v", cur, err)
		}
	})
}

func TestPurgeForgetsEndedSessionsButNotLiveOnes(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		e.Seed("riverside", "b11")
		id := e.identity()
		old, secret, _ := id.enrol("doc@riverside.example", home)
		e.Clock.Advance(72 * time.Hour)
		fresh, err := id.signIn("doc@riverside.example", secret, home)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if rows, _ := e.DB.UserSessionRecords(ctx, old.Actor.UserID); len(rows) != 2 {
			t.Fatalf("%d session rows before the purge, want 2", len(rows))
		}
		if err := id.Purge(ctx); err != nil {
			t.Fatal(err)
		}
		rows, _ := e.DB.UserSessionRecords(ctx, old.Actor.UserID)
		if len(rows) != 1 || rows[0].ID != fresh.Actor.SessionID {
			t.Fatalf("after the purge: %d rows, want only the live session", len(rows))
		}
		if _, err := id.resume(fresh, home); err != nil {
			t.Fatalf("a live session was purged: %v", err)
		}
	})
}

// TestPracticeShortensSessionTimeouts: a practice's own timeouts apply to
// its sessions, but can only shorten the platform's defaults: a longer one
// is refused, saying so, rather than stored and silently ignored.
func TestPracticeShortensSessionTimeouts(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "s1")
		id := identity.New(e.Service.Gate(), identity.Config{DB: e.DB})
		defer id.Close()
		st := service.DefaultSettings()
		st.WorkforceIdle = service.Duration(5 * time.Minute)
		st.PatientAbsolute = service.Duration(48 * time.Hour) // longer than the default
		if err := e.Service.UpdateSettings(e.As(p.Admin), st); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("a timeout longer than the platform's default was accepted: %v", err)
		}
		st.PatientAbsolute = 0
		if err := e.Service.UpdateSettings(e.As(p.Admin), st); err != nil {
			t.Fatal(err)
		}
		e.Clock.Advance(time.Minute) // past the identity's policy cache
		wf, err := id.SessionPolicy(e.As(p.Admin), p.ID, haven.RoleClinician)
		if err != nil || wf.Idle != 5*time.Minute || wf.Absolute != 12*time.Hour {
			t.Fatalf("workforce policy %+v %v", wf, err)
		}
		pt, err := id.SessionPolicy(e.As(p.Admin), p.ID, haven.RolePatient)
		if err != nil || pt.Absolute != 24*time.Hour || pt.Idle != 30*time.Minute {
			t.Fatalf("patient policy %+v %v", pt, err)
		}
		st.WorkforceIdle = service.Duration(time.Second)
		if err := e.Service.UpdateSettings(e.As(p.Admin), st); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("a one-second timeout was accepted: %v", err)
		}
	})
}

// TestShorterIdleSetOnAnotherNodeEndsSessionsAtOnce: a practice that
// shortens its patients' idle timeout on one node has every node decide
// the next request on it; nothing caches the practice's settings.
func TestShorterIdleSetOnAnotherNodeEndsSessionsAtOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "c3")
		id := e.identity()
		ctx := context.Background()
		if err := e.Service.ProvisionPassword(ctx, p.PatientA.UserID, pw); err != nil {
			t.Fatal(err)
		}
		res, err := id.Login(ctx, "ptA@riverside.example", pw, home)
		if err != nil || res.Stage != identity.StageDone {
			t.Fatalf("patient sign-in: %+v, %v", res, err)
		}
		e.Clock.Advance(10 * time.Minute)
		if _, err := id.resume(res.Session, home); err != nil {
			t.Fatalf("10 minutes idle under the default 30: %v", err)
		}
		e.Clock.Advance(6 * time.Minute)
		ps := service.DefaultSettings()
		ps.PatientIdle = service.Duration(5 * time.Minute)
		if err := e.Node().Service.UpdateSettings(e.As(p.Admin), ps); err != nil {
			t.Fatal(err)
		}
		if _, err := id.resume(res.Session, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("6 minutes idle after another node set 5: %v", err)
		}
	})
}
