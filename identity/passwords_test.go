package identity_test

import (
	"context"
	"strings"
	"testing"

	"haven"
	"haven/identity"
)

// TestPasswordResetTokenIsSingleUseAndEndsAllSessions.
func TestPasswordResetTokenIsSingleUseAndEndsAllSessions(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		e.Seed("riverside", "b5")
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
		e.Seed("riverside", "b6")
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
