package identity_test

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/auth/session"
	"haven/auth/totp"
	"haven/identity"
	"haven/keyring"
	"haven/store/sqlstore"
)

func TestInvitationIsSingleUseAndLeadsToEnrolment(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "b8")
		id := e.identity()
		ctx := context.Background()
		if err := id.Invite(e.As(p.Clinician), "new.nurse@riverside.example", haven.RoleStaff, home); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("a clinician sent an invitation: %v", err)
		}
		if err := id.Invite(e.As(p.Admin), "someone@patients.example", haven.RolePatient, home); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("a patient invitation: %v", err)
		}
		if err := id.Invite(e.As(p.Admin), "New.Nurse@riverside.example", haven.RoleStaff, home); err != nil {
			t.Fatal(err)
		}
		pending, err := id.Invitations(e.As(p.Admin))
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
		wrong, _ := totp.Code(en.Secret, e.Clock.Now().Add(-10*time.Minute))
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
		code, _ := totp.Code(other.Secret, e.Clock.Now())
		done, err := id.ConfirmPendingEnrolment(ctx, res.Pending, code, home)
		if err != nil || done.Session.Actor.Role != haven.RoleStaff || done.Session.Actor.PracticeID != p.ID {
			t.Fatalf("enrolment after the invitation: %+v, %v", done, err)
		}
	})
}

// TestInvitedAddressIsSealedUnderThePracticesKey: an invitation's address
// is sealed, through the gate, under the practice's key and bound to the
// invitation's token hash. The associated data is spelled out because
// invitations live for days: one sealed before a release must open after.
func TestInvitedAddressIsSealedUnderThePracticesKey(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "b9")
		id := e.identity()
		ctx := context.Background()
		if err := id.Invite(e.As(p.Admin), "new.nurse@riverside.example", haven.RoleStaff, home); err != nil {
			t.Fatal(err)
		}
		token := strings.TrimPrefix(id.mailedLink(1, "new.nurse@riverside.example"), "/invite/")
		hash, err := session.HashToken(token)
		if err != nil {
			t.Fatal(err)
		}
		row, err := e.DB.FindAuthToken(ctx, hash, sqlstore.TokenInvite, e.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(row.Email), "nurse") {
			t.Fatal("the invited address is stored in the clear")
		}
		ad := keyring.AD{PracticeID: p.ID, Kind: "invite", RecordID: hex.EncodeToString(hash), Field: "email"}
		if got, err := e.Keys.Open(ctx, ad, row.Email); err != nil || string(got) != "new.nurse@riverside.example" {
			t.Fatalf("the invited address under the practice's key: %q, %v", got, err)
		}
	})
}
