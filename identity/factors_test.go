package identity_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"haven"
	"haven/auth/totp"
	"haven/identity"
	"haven/keyring"
)

func TestReplayedTOTPCodeIsRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		e.Seed("riverside", "a3")
		id := e.identity()
		_, secret, _ := id.enrol("doc@riverside.example", home)
		ctx := context.Background()
		code, _ := totp.Code(secret, e.Clock.Now())
		first, _ := id.Login(ctx, "doc@riverside.example", pw, home)
		if _, err := id.SecondFactor(ctx, first.Pending, identity.FactorTOTP, code, home); err != nil {
			t.Fatal(err)
		}
		// A phisher replays the same code seconds later, with the password.
		e.Clock.Advance(10 * time.Second)
		second, _ := id.Login(ctx, "doc@riverside.example", pw, browser("203.0.113.66", "phisher"))
		if _, err := id.SecondFactor(ctx, second.Pending, identity.FactorTOTP, code, browser("203.0.113.66", "phisher")); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("replayed code: %v, want %s", err, haven.EUNAUTHORIZED)
		}

		// Two sign-ins racing with one fresh code: exactly one gets a session.
		e.Clock.Advance(30 * time.Second)
		code, _ = totp.Code(secret, e.Clock.Now())
		var pend []string
		for range 6 {
			r, err := id.Login(ctx, "doc@riverside.example", pw, home)
			if err != nil {
				t.Fatal(err)
			}
			pend = append(pend, r.Pending)
		}
		var mu sync.Mutex
		wins := 0
		var wg sync.WaitGroup
		for _, p := range pend {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := id.SecondFactor(ctx, p, identity.FactorTOTP, code, home); err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("one TOTP code signed in %d times", wins)
		}
	})
}

func TestRecoveryCodeSignsInOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		e.Seed("riverside", "a4")
		id := e.identity()
		_, _, codes := id.enrol("desk@riverside.example", home)
		ctx := context.Background()
		r, _ := id.Login(ctx, "desk@riverside.example", pw, home)
		done, err := id.SecondFactor(ctx, r.Pending, identity.FactorRecovery, strings.ToLower(codes[0]), home)
		if err != nil || done.RecoveryLeft != 9 || !done.Session.Actor.MFA {
			t.Fatalf("recovery sign-in: %+v, %v", done, err)
		}
		r, _ = id.Login(ctx, "desk@riverside.example", pw, home)
		if _, err := id.SecondFactor(ctx, r.Pending, identity.FactorRecovery, codes[0], home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("a used recovery code worked again: %v", err)
		}
	})
}

func TestMFAChangeEndsEveryOtherSessionAndAPasswordAloneCannotEnrol(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		e.Seed("riverside", "b7")
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
		code, _ := totp.Code(en.Secret, e.Clock.Now())
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
		e.Clock.Advance(30 * time.Second)
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

// TestSecondFactorsAreSealedWhereErasureReaches: identity never names a
// key; the gate picks it. A patient's TOTP secret and passkey names must
// be sealed under the patient's own data key, so that erasing the patient
// leaves them unreadable with the rest of the record, and a clinician's
// secret under the practice's. The associated data is spelled out here
// because every stored secret was sealed with it: opening with anything
// else would lock every enrolled user out.
func TestSecondFactorsAreSealedWhereErasureReaches(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		s := e.passkeys("riverside", "g1")
		ctx := context.Background()
		patient := s.p.PatientA.UserID
		pctx, _ := s.patientSession(home)
		en, err := s.BeginTOTP(pctx, "")
		if err != nil {
			t.Fatal(err)
		}
		code, _ := totp.Code(en.Secret, e.Clock.Now())
		ch, err := s.ConfirmTOTP(pctx, code, home)
		if err != nil {
			t.Fatal(err)
		}
		s.register(s.sessionCtx(ch.Session, home), newSoftKey(t), "Kitchen phone", home)
		rec, err := e.DB.TOTP(ctx, patient)
		if err != nil {
			t.Fatal(err)
		}
		creds, err := e.DB.WebAuthnCredentials(ctx, patient)
		if err != nil || len(creds) != 1 {
			t.Fatalf("credentials: %d, %v", len(creds), err)
		}
		secretAD := keyring.AD{PracticeID: s.p.ID, PatientID: patient, Kind: "user", RecordID: patient, Field: "totp_secret"}
		nickAD := keyring.AD{PracticeID: s.p.ID, PatientID: patient, Kind: "webauthn_credential", RecordID: creds[0].ID, Field: "nickname"}
		if got, err := e.Keys.Open(ctx, secretAD, rec.Secret); err != nil || string(got) != en.Secret {
			t.Fatalf("the patient's TOTP secret under the patient's key: %q, %v", got, err)
		}
		if got, err := e.Keys.Open(ctx, nickAD, creds[0].Nickname); err != nil || string(got) != "Kitchen phone" {
			t.Fatalf("the passkey's name under the patient's key: %q, %v", got, err)
		}

		_, docSecret, _ := s.enrol("doc@riverside.example", home)
		doc := s.p.Clinician.UserID
		drec, err := e.DB.TOTP(ctx, doc)
		if err != nil {
			t.Fatal(err)
		}
		docAD := keyring.AD{PracticeID: s.p.ID, Kind: "user", RecordID: doc, Field: "totp_secret"}
		if got, err := e.Keys.Open(ctx, docAD, drec.Secret); err != nil || string(got) != docSecret {
			t.Fatalf("the clinician's TOTP secret under the practice's key: %q, %v", got, err)
		}

		if err := e.Service.ErasePatient(ctx, patient); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Keys.Open(ctx, secretAD, rec.Secret); err == nil {
			t.Fatal("an erased patient's TOTP secret still opens")
		}
		if _, err := e.Keys.Open(ctx, nickAD, creds[0].Nickname); err == nil {
			t.Fatal("an erased patient's passkey name still opens")
		}
		if _, err := e.Keys.Open(ctx, docAD, drec.Secret); err != nil {
			t.Fatalf("erasing a patient took the clinician's secret with it: %v", err)
		}
	})
}
