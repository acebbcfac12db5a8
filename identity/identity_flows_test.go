package identity_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/auth/totp"
	"haven/identity"
	"haven/service"
)

func TestRevokedSessionIsRefusedOnItsNextRequest(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		e.seed("riverside", "b1")
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
		e.seed("riverside", "b2")
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
		p := e.seed("riverside", "b3")
		id := e.identity()
		s, secret, _ := id.enrol("doc@riverside.example", home)
		thief := browser("203.0.113.77", "device-home") // same cookies, other network
		cur, err := id.resume(s, thief)
		if err != nil || !cur.Challenged || cur.Actor.MFA || !cur.Actor.AuthTime.IsZero() {
			t.Fatalf("request from another network: %+v, %v", cur, err)
		}
		if ev := e.lastEvent(p.id); ev.Action != identity.ActChallenge || ev.Reason != "network_changed" || ev.Decision != "deny" {
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
		code, _ := totp.Code(secret, e.clock.Now())
		if err := id.StepUp(ctxOf(cur), identity.StepUpRequest{Factor: identity.FactorTOTP, Proof: code}, home); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("step-up without password on a challenged session: %v", err)
		}
		if err := id.StepUp(ctxOf(cur), identity.StepUpRequest{Password: pw, Factor: identity.FactorTOTP, Proof: code}, home); err != nil {
			t.Fatal(err)
		}
		cur, err = id.resume(s, home)
		if err != nil || cur.Challenged || !cur.Actor.MFA || !cur.Actor.AuthTime.Equal(e.clock.Now()) {
			t.Fatalf("after passing the challenge: %+v, %v", cur, err)
		}
	})
}

// TestStepUpRefreshesAuthTime: after the step-up window, sensitive acts
// answer ESTEPUP; a fresh code opens the window again; a replayed or wrong
// code does not.
func TestStepUpRefreshesAuthTime(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "b4")
		id := e.identity()
		id.enrol("desk@riverside.example", browser("198.51.100.9", "desk"))
		s, secret, _ := id.enrol("admin@riverside.example", home)
		e.clock.Advance(6 * time.Minute)
		cur, _ := id.resume(s, home)
		if err := id.RequireFreshAuth(ctxOf(cur)); haven.ErrorCode(err) != haven.ESTEPUP {
			t.Fatalf("RequireFreshAuth after 6 minutes: %v", err)
		}
		if err := id.ResetMFA(ctxOf(cur), p.staff.UserID); haven.ErrorCode(err) != haven.ESTEPUP {
			t.Fatalf("an MFA reset without a fresh authentication: %v", err)
		}
		code, _ := totp.Code(secret, e.clock.Now())
		if err := id.StepUp(ctxOf(cur), identity.StepUpRequest{Factor: identity.FactorTOTP, Proof: "000000"}, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("wrong code: %v", err)
		}
		if err := id.StepUp(ctxOf(cur), identity.StepUpRequest{Factor: identity.FactorTOTP, Proof: code}, home); err != nil {
			t.Fatal(err)
		}
		if err := id.StepUp(ctxOf(cur), identity.StepUpRequest{Factor: identity.FactorTOTP, Proof: code}, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("a step-up code replayed: %v", err)
		}
		cur, _ = id.resume(s, home)
		if err := id.RequireFreshAuth(ctxOf(cur)); err != nil {
			t.Fatal(err)
		}
		if err := id.ResetMFA(ctxOf(cur), p.staff.UserID); err != nil {
			t.Fatalf("MFA reset after step-up: %v", err)
		}
		// The reset user is out and enrols afresh at their next sign-in.
		if res, err := id.Login(context.Background(), "desk@riverside.example", pw, home); err != nil || res.Stage != identity.StageEnrol {
			t.Fatalf("after an MFA reset: %+v, %v", res, err)
		}
	})
}

var linkRE = regexp.MustCompile(`https://haven\.test(/[a-z]+/[A-Za-z0-9_-]{43})`)

// mailedLink waits for the n-th email and returns its link's path.
func (id *ident) mailedLink(n int, to string) string {
	id.e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := id.mail.Wait(ctx, n)
	if err != nil {
		id.e.t.Fatalf("no email %d: %v", n, err)
	}
	m := msgs[n-1]
	if m.To != to {
		id.e.t.Fatalf("email to %q, want %q", m.To, to)
	}
	match := linkRE.FindStringSubmatch(m.Text)
	if match == nil {
		id.e.t.Fatalf("no link in %q", m.Text)
	}
	return match[1]
}

// TestPasswordResetTokenIsSingleUseAndEndsAllSessions.
func TestPasswordResetTokenIsSingleUseAndEndsAllSessions(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		e.seed("riverside", "b5")
		id := e.identity()
		ctx := context.Background()
		s1, secret, _ := id.enrol("doc@riverside.example", home)
		s2, _ := id.signIn("doc@riverside.example", secret, browser("198.51.100.30", "tablet"))
		if err := id.RequestPasswordReset(ctx, "Doc@Riverside.example", home); err != nil {
			t.Fatal(err)
		}
		path := id.mailedLink(1, "doc@riverside.example")
		token := strings.TrimPrefix(path, "/reset/")
		if m := id.mail.Sent()[0]; strings.Contains(m.Text, "Worker") || strings.Contains(m.Text, "Name") {
			t.Fatalf("the email names a person: %q", m.Text)
		}
		if _, err := id.ResetInfo(ctx, token); err != nil {
			t.Fatal(err)
		}
		if err := id.ResetPassword(ctx, token, "password", home); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("a breached password was accepted: %v", err)
		}
		const next = "a brand new lantern for the harbour"
		if err := id.ResetPassword(ctx, token, next, home); err != nil {
			t.Fatalf("reset with a refused password first must not burn the link: %v", err)
		}
		for _, s := range []*identity.NewSession{s1, s2} {
			if _, err := id.resume(s, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
				t.Fatalf("a session survived the reset: %v", err)
			}
		}
		if err := id.ResetPassword(ctx, token, "yet another harbour lantern", home); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("a reset link worked twice: %v", err)
		}
		if _, err := id.Login(ctx, "doc@riverside.example", pw, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("the old password still works: %v", err)
		}
		// The reset did not bypass MFA.
		if res, err := id.Login(ctx, "doc@riverside.example", next, home); err != nil || res.Stage != identity.StageSecondFactor {
			t.Fatalf("sign-in with the new password: %+v, %v", res, err)
		}
		// An unknown address gets the same answer and no email.
		if err := id.RequestPasswordReset(ctx, "nobody@riverside.example", home); err != nil {
			t.Fatal(err)
		}
		id.Close()
		if n := len(id.mail.Sent()); n != 1 {
			t.Fatalf("%d emails sent, want 1", n)
		}
	})
}

func TestPasswordChangeEndsEveryOtherSession(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		e.seed("riverside", "b6")
		id := e.identity()
		s1, secret, _ := id.enrol("doc@riverside.example", home)
		s2, _ := id.signIn("doc@riverside.example", secret, home)
		cur, _ := id.resume(s1, home)
		if _, err := id.ChangePassword(ctxOf(cur), "wrong", "a brand new lantern for the harbour", home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("change with a wrong current password: %v", err)
		}
		ns, err := id.ChangePassword(ctxOf(cur), pw, "a brand new lantern for the harbour", home)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []*identity.NewSession{s1, s2} {
			if _, err := id.resume(s, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
				t.Fatalf("a session survived the password change: %v", err)
			}
		}
		if cur, err := id.resume(ns, home); err != nil || !cur.Actor.MFA {
			t.Fatalf("the changing browser's new session: %+v, %v", cur, err)
		}
	})
}

func TestMFAChangeEndsEveryOtherSessionAndAPasswordAloneCannotEnrol(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		e.seed("riverside", "b7")
		id := e.identity()
		ctx := context.Background()
		s1, secret, _ := id.enrol("doc@riverside.example", home)
		s2, _ := id.signIn("doc@riverside.example", secret, home)
		// An attacker with the password cannot add their own authenticator.
		res, _ := id.Login(ctx, "doc@riverside.example", pw, browser("203.0.113.5", "x"))
		if _, err := id.BeginPendingEnrolment(ctx, res.Pending, browser("203.0.113.5", "x"), ""); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("enrolment with a password alone on a protected account: %v", err)
		}
		cur, _ := id.resume(s2, home)
		// A workforce member cannot drop to no second factor.
		if _, err := id.RemoveTOTP(ctxOf(cur), home); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("removing the only factor: %v", err)
		}
		en, err := id.BeginTOTP(ctxOf(cur), "")
		if err != nil {
			t.Fatal(err)
		}
		// The old authenticator works until the new one is confirmed.
		code, _ := totp.Code(en.Secret, e.clock.Now())
		ch, err := id.ConfirmTOTP(ctxOf(cur), code, home)
		if err != nil || len(ch.RecoveryCodes) != 10 {
			t.Fatalf("ConfirmTOTP = %+v, %v", ch, err)
		}
		for _, s := range []*identity.NewSession{s1, s2} {
			if _, err := id.resume(s, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
				t.Fatalf("a session survived the MFA change: %v", err)
			}
		}
		if _, err := id.resume(ch.Session, home); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(30 * time.Second)
		if _, err := id.signIn("doc@riverside.example", secret, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("the replaced authenticator still works: %v", err)
		}
		if _, err := id.signIn("doc@riverside.example", en.Secret, home); err != nil {
			t.Fatalf("the new authenticator: %v", err)
		}
		if ev := e.lastEvent(cur.Actor.PracticeID); ev.Action != identity.ActLogin {
			t.Fatalf("last event %+v", ev)
		}
	})
}

func TestInvitationIsSingleUseAndLeadsToEnrolment(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "b8")
		id := e.identity()
		ctx := context.Background()
		if err := id.Invite(e.as(p.clinician), "new.nurse@riverside.example", haven.RoleStaff, home); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("a clinician sent an invitation: %v", err)
		}
		if err := id.Invite(e.as(p.admin), "someone@patients.example", haven.RolePatient, home); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("a patient invitation: %v", err)
		}
		if err := id.Invite(e.as(p.admin), "New.Nurse@riverside.example", haven.RoleStaff, home); err != nil {
			t.Fatal(err)
		}
		pending, err := id.Invitations(e.as(p.admin))
		if err != nil || len(pending) != 1 || pending[0].Email != "new.nurse@riverside.example" {
			t.Fatalf("Invitations = %+v, %v", pending, err)
		}
		token := strings.TrimPrefix(id.mailedLink(1, "new.nurse@riverside.example"), "/invite/")
		info, err := id.InvitationInfo(ctx, token)
		if err != nil || info.Role != haven.RoleStaff || info.PracticeName != "riverside" {
			t.Fatalf("InvitationInfo = %+v, %v", info, err)
		}
		res, err := id.AcceptInvitation(ctx, token, "Nurse Nia", "harbour lanterns glow at dusk", home)
		if err != nil || res.Stage != identity.StageEnrol {
			t.Fatalf("AcceptInvitation = %+v, %v", res, err)
		}
		if _, err := id.AcceptInvitation(ctx, token, "Mallory", "harbour lanterns glow at dawn", browser("203.0.113.5", "x")); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("an invitation was accepted twice: %v", err)
		}
		en, err := id.BeginPendingEnrolment(ctx, res.Pending, home, "")
		if err != nil {
			t.Fatal(err)
		}
		// The browser that was shown the secret gets it again (a reload, a
		// mistyped code); a binding that is not this enrolment's (another
		// browser's, a forged one) gets a fresh secret, which replaces it.
		again, err := id.BeginPendingEnrolment(ctx, res.Pending, home, en.Binding)
		if err != nil || again.Secret != en.Secret || again.Binding != en.Binding || !again.Expires.Equal(en.Expires) {
			t.Fatalf("resumed enrolment: %+v, %v (first %+v)", again, err, en)
		}
		wrong, _ := totp.Code(en.Secret, e.clock.Now().Add(-10*time.Minute))
		if _, err := id.ConfirmPendingEnrolment(ctx, res.Pending, wrong, home); err == nil {
			t.Fatal("a stale code confirmed the enrolment")
		}
		if again, err = id.BeginPendingEnrolment(ctx, res.Pending, home, en.Binding); err != nil || again.Secret != en.Secret {
			t.Fatalf("after a wrong code, the enrolment changed: %v", err)
		}
		other, err := id.BeginPendingEnrolment(ctx, res.Pending, home, "forged-binding")
		if err != nil || other.Secret == en.Secret || other.Binding == en.Binding {
			t.Fatalf("a foreign binding resumed the enrolment: %+v, %v", other, err)
		}
		code, _ := totp.Code(other.Secret, e.clock.Now())
		done, err := id.ConfirmPendingEnrolment(ctx, res.Pending, code, home)
		if err != nil || done.Session.Actor.Role != haven.RoleStaff || done.Session.Actor.PracticeID != p.id {
			t.Fatalf("enrolment after the invitation: %+v, %v", done, err)
		}
	})
}

func TestDisablingAnAccountEndsItsSessions(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "b9")
		id := e.identity()
		s, _, _ := id.enrol("doc@riverside.example", home)
		if err := id.SetDisabled(e.as(p.admin), p.clinician.UserID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := id.resume(s, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("a disabled account's session: %v", err)
		}
		if _, err := id.Login(context.Background(), "doc@riverside.example", pw, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("a disabled account signed in: %v", err)
		}
	})
}

// A session of a disabled account is refused even where ending the
// account's sessions did not happen (a crash between the two writes, a
// database edited by hand): every request checks the account too.
func TestDisabledAccountsSessionIsRefusedEvenIfItWasNotEnded(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "b8")
		id := e.identity()
		s, _, _ := id.enrol("doc@riverside.example", home)
		if _, err := id.resume(s, home); err != nil {
			t.Fatalf("the session before disabling: %v", err)
		}
		if err := e.db.SetUserDisabledKeepingAdmin(context.Background(), p.clinician.UserID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := id.resume(s, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("a disabled account's unended session: %v", err)
		}
	})
}

// TestPatientWithoutMFASignsInWithPasswordUnlessThePracticeRequiresIt.
func TestPatientWithoutMFASignsInWithPasswordUnlessThePracticeRequiresIt(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "b10")
		id := e.identity()
		ctx := context.Background()
		if err := e.svc.ProvisionPassword(ctx, p.patientA.UserID, pw); err != nil {
			t.Fatal(err)
		}
		res, err := id.Login(ctx, "ptA@riverside.example", pw, home)
		if err != nil || res.Stage != identity.StageDone || res.Session.Actor.MFA {
			t.Fatalf("patient sign-in: %+v, %v", res, err)
		}
		cur, _ := id.resume(res.Session, home)
		if _, err := e.svc.Chart(ctxOf(cur), p.patientA.UserID); err != nil {
			t.Fatalf("a patient cannot read their own chart: %v", err)
		}
		ps := service.DefaultSettings()
		ps.PatientsRequireMFA = true
		if err := e.svc.UpdateSettings(e.as(p.admin), ps); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Minute) // past the settings cache
		if _, err := id.resume(res.Session, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("a password-only patient session survived the practice requiring MFA: %v", err)
		}
		if res, err := id.Login(ctx, "ptA@riverside.example", pw, home); err != nil || res.Stage != identity.StageEnrol {
			t.Fatalf("patient sign-in under required MFA: %+v, %v", res, err)
		}
	})
}

func TestPurgeForgetsEndedSessionsButNotLiveOnes(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		e.seed("riverside", "b11")
		id := e.identity()
		old, secret, _ := id.enrol("doc@riverside.example", home)
		e.clock.Advance(72 * time.Hour)
		fresh, err := id.signIn("doc@riverside.example", secret, home)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if rows, _ := e.db.UserSessionRecords(ctx, old.Actor.UserID); len(rows) != 2 {
			t.Fatalf("%d session rows before the purge, want 2", len(rows))
		}
		if err := id.Purge(ctx); err != nil {
			t.Fatal(err)
		}
		rows, _ := e.db.UserSessionRecords(ctx, old.Actor.UserID)
		if len(rows) != 1 || rows[0].ID != fresh.Actor.SessionID {
			t.Fatalf("after the purge: %d rows, want only the live session", len(rows))
		}
		if _, err := id.resume(fresh, home); err != nil {
			t.Fatalf("a live session was purged: %v", err)
		}
	})
}
