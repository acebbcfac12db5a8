package identity

import (
	"context"
	"fmt"

	"haven"
	"haven/audit"
	"haven/auth/password"
	"haven/auth/session"
	"haven/policy"
	"haven/service"
	"haven/store/sqlstore"
)

// ChangePassword replaces the signed-in user's password after checking
// the current one (throttled like a sign-in). Every session ends, every
// outstanding link and pending sign-in dies, and this browser continues
// in a new session.
func (id *Service) ChangePassword(ctx context.Context, current, next string, c Client) (*NewSession, error) {
	a, u, err := id.signedIn(ctx)
	if err != nil {
		return nil, err
	}
	if err := password.Check(next); err != nil {
		return nil, err
	}
	att := id.attemptFor(ctx, u, c)
	if err := id.allow(ctx, att); err != nil {
		return nil, err
	}
	ok, _, err := id.passwords.Verify(ctx, current, u.PasswordHash)
	if err != nil {
		return nil, err
	}
	ev := audit.ForActor(a, ActPasswordChange)
	if !ok {
		if err := id.failure(ctx, att, func(r string) error { return id.record(ctx, ev, false, r) }, "bad_password"); err != nil {
			return nil, err
		}
		return nil, haven.Errorf(haven.EUNAUTHORIZED, "your current password is not right")
	}
	h, err := id.passwords.Hash(ctx, next)
	if err != nil {
		return nil, err
	}
	if err := id.record(ctx, ev, true, ""); err != nil {
		return nil, err
	}
	if err := id.db.SetPasswordHash(ctx, u.ID, h); err != nil {
		return nil, err
	}
	u.PasswordHash = h
	return id.rotate(ctx, a, u, a.MFA, "", c)
}

// RequestPasswordReset emails a reset link to every account with this
// address. The answer is the same whether or not one exists, and the
// lookup, the link and the email happen after the answer, in the
// background, so the response time says nothing either. Requests are
// throttled per address and per email, so Haven cannot be made to flood
// someone's inbox.
func (id *Service) RequestPasswordReset(ctx context.Context, email string, c Client) error {
	if id.outbox == nil {
		return haven.Errorf(haven.EUNAVAILABLE, "email is not configured on this server")
	}
	index, err := id.gate.EmailIndex(ctx, email)
	if err != nil {
		return err
	}
	if err := id.countEmailRequest(ctx, "reset:", index, c); err != nil {
		return err
	}
	to := haven.NormalizeEmail(email)
	if !haven.ValidEmail(to) {
		return nil
	}
	bg := context.WithoutCancel(ctx)
	id.bg.Add(1)
	go func() {
		defer id.bg.Done()
		id.sendResets(bg, index, to, c)
	}()
	return nil
}

func (id *Service) sendResets(ctx context.Context, index []byte, to string, c Client) {
	users, err := id.db.FindUsersByEmailIndex(ctx, index)
	if err != nil {
		return
	}
	if len(users) == 0 {
		id.record(ctx, c.event(ActResetRequest), false, "unknown_account")
		return
	}
	for _, u := range users {
		if u.Disabled {
			id.record(ctx, userEvent(u, c, "", ActResetRequest), false, "disabled")
			continue
		}
		if err := id.record(ctx, userEvent(u, c, "", ActResetRequest), true, ""); err != nil {
			continue
		}
		token, err := id.issueLink(ctx, sqlstore.TokenReset, u, ResetTTL, c)
		if err != nil {
			continue
		}
		// No clinic name: for a patient, which clinic they use can itself
		// be health information, and an inbox is not private.
		msg, err := id.gate.ComposeEmail(ctx, u.PracticeID, service.EmailPasswordReset, to, "Reset your Haven password",
			fmt.Sprintf("Someone asked to reset the password of your Haven account.\n\n"+
				"To choose a new password, open this link within %s:\n\n%s\n\n"+
				"If it was not you, ignore this email: your password stays as it is.\n", human(ResetTTL), id.link("/reset/"+token)))
		if err == nil {
			id.outbox.Send(ctx, msg)
		}
	}
}

// ResetInfo reports whether a reset link is still good, without using it.
func (id *Service) ResetInfo(ctx context.Context, token string) (*LinkInfo, error) {
	hash, err := session.HashToken(token)
	if err != nil {
		return nil, errLinkGone
	}
	t, err := id.db.FindAuthToken(ctx, hash, sqlstore.TokenReset, id.now())
	if err != nil {
		return nil, errLinkGone
	}
	return &LinkInfo{PracticeName: id.practiceName(ctx, t.PracticeID), Role: t.Role, Expires: t.ExpiresAt}, nil
}

// ResetPassword sets a new password with a reset link, once: the link is
// used up atomically, every session of the account ends, every other
// outstanding link and pending sign-in dies, and the devices it knew are
// forgotten. The user then signs in with the new password and their
// second factor; a reset never bypasses MFA.
func (id *Service) ResetPassword(ctx context.Context, token, next string, c Client) error {
	if err := password.Check(next); err != nil {
		return err // before the link is used, so a refused password does not burn it
	}
	hash, err := session.HashToken(token)
	if err != nil {
		return errLinkGone
	}
	t, err := id.db.UseAuthToken(ctx, hash, sqlstore.TokenReset, id.now())
	if err != nil {
		return errLinkGone
	}
	u, err := id.db.FindUserByID(ctx, t.UserID)
	if err != nil || u.Disabled {
		return errLinkGone
	}
	h, err := id.passwords.Hash(ctx, next)
	if err != nil {
		return err
	}
	if err := id.record(ctx, userEvent(u, c, "", ActPasswordReset), true, ""); err != nil {
		return err
	}
	if err := id.db.SetPasswordHash(ctx, u.ID, h); err != nil {
		return err
	}
	if err := id.db.ForgetDevices(ctx, u.ID); err != nil {
		return err
	}
	return id.endEverything(ctx, u.ID)
}

// SendAccountSetup emails a patient registered at the front desk (who has
// no password yet) a link to choose one. Staff of the patient's practice
// may send it as a change to the patient's contact (chart.write_contact),
// the practice admin as account management (user.manage on the patient's
// account); either decision is audited naming the patient.
func (id *Service) SendAccountSetup(ctx context.Context, patientID string, c Client) error {
	if id.outbox == nil {
		return haven.Errorf(haven.EUNAVAILABLE, "email is not configured on this server")
	}
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	act, kind := policy.ContactWrite, policy.KindChart
	if a.Role == haven.RolePracticeAdmin {
		act, kind = policy.UserManage, policy.KindUser
	}
	u, err := id.userFor(ctx, act, kind, patientID)
	if err != nil {
		return err
	}
	if u.Role != haven.RolePatient {
		// A workforce account has no setup link: it is answered as an id
		// that does not exist, here or in another practice.
		return id.gate.RefuseUnknown(ctx, a, act, kind, patientID)
	}
	res := policy.Resource{Kind: policy.KindChart, ID: u.ID, PracticeID: u.PracticeID, PatientID: u.ID}
	if a.Role == haven.RolePracticeAdmin {
		res = userResource(u)
	}
	if _, _, err := id.gate.AuthorizeRecord(ctx, act, res, patientID); err != nil {
		return err
	}
	if u.PasswordHash != "" {
		return haven.Errorf(haven.ECONFLICT, "this patient has already chosen a password; they can reset it from the sign-in page")
	}
	prof, err := id.gate.Profile(ctx, u)
	if err != nil {
		return err
	}
	token, err := id.issueLink(ctx, sqlstore.TokenReset, u, SetupTTL, c)
	if err != nil {
		return err
	}
	msg, err := id.gate.ComposeEmail(ctx, u.PracticeID, service.EmailAccountSetup, prof.Email, "Set up your Haven account",
		fmt.Sprintf("Your clinic uses Haven for secure messages, video visits and your records.\n\n"+
			"To choose your password, open this link within %s:\n\n%s\n", human(SetupTTL), id.link("/reset/"+token)))
	if err != nil {
		return err
	}
	return id.outbox.Send(ctx, msg)
}
