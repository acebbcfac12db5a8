package identity_test

import (
	"context"
	"testing"
	"time"

	"haven"
	"haven/auth/totp"
	"haven/identity"
)

// TestStepUpRefreshesAuthTime: after the step-up window, sensitive acts
// answer ESTEPUP; a fresh code opens the window again; a replayed or wrong
// code does not.
func TestStepUpRefreshesAuthTime(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "b4")
		id := e.identity()
		id.enrol("desk@riverside.example", browser("198.51.100.9", "desk"))
		s, secret, _ := id.enrol("admin@riverside.example", home)
		e.Clock.Advance(6 * time.Minute)
		cur, _ := id.resume(s, home)
		if err := id.RequireFreshAuth(ctxOf(cur)); haven.ErrorCode(err) != haven.ESTEPUP {
			t.Fatalf("RequireFreshAuth after 6 minutes: %v", err)
		}
		if err := id.ResetMFA(ctxOf(cur), p.Staff.UserID); haven.ErrorCode(err) != haven.ESTEPUP {
			t.Fatalf("an MFA reset without a fresh authentication: %v", err)
		}
		code, _ := totp.Code(secret, e.Clock.Now())
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
		if err := id.ResetMFA(ctxOf(cur), p.Staff.UserID); err != nil {
			t.Fatalf("MFA reset after step-up: %v", err)
		}
		// The reset user is out and enrols afresh at their next sign-in.
		if res, err := id.Login(context.Background(), "desk@riverside.example", pw, home); err != nil || res.Stage != identity.StageEnrol {
			t.Fatalf("after an MFA reset: %+v, %v", res, err)
		}
	})
}
