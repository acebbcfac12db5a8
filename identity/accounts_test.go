package identity_test

import (
	"context"
	"testing"

	"haven"
)

func TestDisablingAnAccountEndsItsSessions(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "b9")
		id := e.identity()
		s, _, _ := id.enrol("doc@riverside.example", home)
		if err := id.SetDisabled(e.As(p.Admin), p.Clinician.UserID, true); err != nil {
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
		p := e.Seed("riverside", "b8")
		id := e.identity()
		s, _, _ := id.enrol("doc@riverside.example", home)
		if _, err := id.resume(s, home); err != nil {
			t.Fatalf("the session before disabling: %v", err)
		}
		if err := e.DB.SetUserDisabledKeepingAdmin(context.Background(), p.Clinician.UserID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := id.resume(s, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("a disabled account's unended session: %v", err)
		}
	})
}
