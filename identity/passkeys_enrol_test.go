package identity_test

import (
	"context"
	"testing"
	"time"

	"haven"
	"haven/identity"
)

// TestWorkforceEnrolsAPasskeyAtFirstSignIn: at the first sign-in, a
// clinician chooses a passkey instead of an authenticator app; the
// enrolment issues recovery codes and starts a session with MFA, and
// later sign-ins ask for the passkey (or a recovery code).
func TestWorkforceEnrolsAPasskeyAtFirstSignIn(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		s := e.passkeys("riverside", "we1")
		ctx := context.Background()
		res, err := s.Login(ctx, "doc@riverside.example", pw, home)
		if err != nil || res.Stage != identity.StageEnrol {
			t.Fatalf("first sign-in: %+v, %v", res, err)
		}
		key := newSoftKey(t)
		opts, err := s.pk.BeginEnrolment(ctx, res.Pending, home)
		if err != nil {
			t.Fatal(err)
		}
		// The pending sign-in is bound to its browser: another cannot
		// enrol with its token.
		thief := browser("203.0.113.5", "thief")
		if _, err := s.pk.FinishEnrolment(ctx, res.Pending, key.create(opts), "", thief); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("enrolment from another browser: %v", err)
		}
		if _, err := s.pk.BeginEnrolment(ctx, res.Pending, thief); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("enrolment options for another browser: %v", err)
		}
		done, err := s.pk.FinishEnrolment(ctx, res.Pending, key.create(opts), " Work laptop ", home)
		if err != nil || done.Stage != identity.StageDone || !done.Session.Actor.MFA || len(done.RecoveryCodes) != 10 ||
			done.Session.Actor.UserID != s.p.Clinician.UserID {
			t.Fatalf("FinishEnrolment = %+v, %v", done, err)
		}
		ev := e.events(s.p.ID, identity.ActMFAEnrol)[0]
		if ev.Decision != haven.DecisionAllow || ev.Reason != "webauthn" || ev.ActorID != s.p.Clinician.UserID || ev.ResourceKind != "webauthn_credential" {
			t.Fatalf("enrolment audited as %+v", ev)
		}
		if ev := e.events(s.p.ID, identity.ActRecoveryIssue)[0]; ev.ActorID != s.p.Clinician.UserID {
			t.Fatalf("recovery codes audited as %+v", ev)
		}
		list, err := s.pk.List(s.sessionCtx(done.Session, home))
		if err != nil || len(list) != 1 || list[0].Nickname != "Work laptop" {
			t.Fatalf("passkeys after enrolment: %+v, %v", list, err)
		}
		// The pending sign-in is used up.
		if _, err := s.pk.FinishEnrolment(ctx, res.Pending, newSoftKey(t).create(opts), "", home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("a second enrolment on one sign-in: %v", err)
		}

		// The next sign-in asks for the passkey; a password alone cannot
		// enrol another authenticator now.
		e.Clock.Advance(time.Minute)
		res, err = s.Login(ctx, "doc@riverside.example", pw, home)
		if err != nil || res.Stage != identity.StageSecondFactor || len(res.Factors) != 2 {
			t.Fatalf("second sign-in: %+v, %v", res, err)
		}
		if _, err := s.pk.BeginEnrolment(ctx, res.Pending, home); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("enrolment options on an account with a factor: %v", err)
		}
		if _, err := s.pk.FinishEnrolment(ctx, res.Pending, newSoftKey(t).create(opts), "", home); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("enrolment on an account with a factor: %v", err)
		}
		fopts, err := s.pk.BeginSecondFactor(ctx, res.Pending, home)
		if err != nil {
			t.Fatal(err)
		}
		if done, err := s.pk.SecondFactor(ctx, res.Pending, key.get(fopts), home); err != nil || !done.Session.Actor.MFA {
			t.Fatalf("the enrolled passkey as second factor: %+v, %v", done, err)
		}
	})
}

// TestPasskeyEnrolmentAnswersOnlyItsOwnSignIn: a registration challenge
// issued to one pending sign-in does not enrol a key for another.
func TestPasskeyEnrolmentAnswersOnlyItsOwnSignIn(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		s := e.passkeys("riverside", "we2")
		ctx := context.Background()
		docRes, err := s.Login(ctx, "doc@riverside.example", pw, home)
		if err != nil {
			t.Fatal(err)
		}
		other := browser("198.51.100.8", "desk")
		deskRes, err := s.Login(ctx, "desk@riverside.example", pw, other)
		if err != nil {
			t.Fatal(err)
		}
		docOpts, err := s.pk.BeginEnrolment(ctx, docRes.Pending, home)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.pk.FinishEnrolment(ctx, deskRes.Pending, newSoftKey(t).create(docOpts), "", other); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("another sign-in's challenge: %v", err)
		}
		if ev := e.events(s.p.ID, identity.ActMFAEnrol)[0]; ev.Decision != haven.DecisionDeny || ev.Reason != "unknown_challenge" || ev.ActorID != s.p.Staff.UserID {
			t.Fatalf("the refusal audited as %+v", ev)
		}
		if has, _ := e.DB.HasWebAuthnCredential(ctx, s.p.Staff.UserID); has {
			t.Fatal("a key was enrolled with another sign-in's challenge")
		}
		// A malformed answer is refused and leaves the sign-in pending.
		if _, err := s.pk.FinishEnrolment(ctx, deskRes.Pending, `{"id":"x"}`, "", other); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("a malformed answer: %v", err)
		}
		if _, err := s.Pending(ctx, deskRes.Pending, other); err != nil {
			t.Fatalf("the sign-in ended after a refused answer: %v", err)
		}
	})
}
