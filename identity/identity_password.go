package identity

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"haven"
	"haven/audit"
	"haven/auth/outbox"
	"haven/auth/password"
	"haven/auth/session"
	"haven/auth/throttle"
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

// countEmailRequest throttles a request that sends email to an address
// (reset, registration): per address and per email, under kind's prefix so
// its counts stay apart from sign-in's, while the source address's count
// is shared, so a spammer's address slows down everywhere at once. Every
// request counts, so a few are free and more must wait.
func (id *Service) countEmailRequest(ctx context.Context, kind string, index []byte, c Client) error {
	att := throttle.Attempt{Account: kind + accountKey(index), Addr: c.Addr}
	if err := id.allow(ctx, att); err != nil {
		return err
	}
	return id.throttle.Failure(ctx, att)
}

// link returns the public URL of path.
func (id *Service) link(path string) string { return strings.TrimRight(id.baseURL, "/") + path }

// issueLink stores a single-use token of kind for u and returns its token.
func (id *Service) issueLink(ctx context.Context, kind string, u *haven.User, ttl time.Duration, c Client) (string, error) {
	token, hash := session.NewToken()
	now := id.now()
	err := id.db.CreateAuthToken(ctx, sqlstore.AuthToken{Hash: hash, Kind: kind, UserID: u.ID, PracticeID: u.PracticeID,
		Role: u.Role, ClientAddr: c.Addr, CreatedAt: now, ExpiresAt: now.Add(ttl)})
	return token, err
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
		id.outbox.Send(ctx, outbox.Message{To: to, Subject: "Reset your Haven password",
			Text: fmt.Sprintf("Someone asked to reset the password of your Haven account.\n\n"+
				"To choose a new password, open this link within %s:\n\n%s\n\n"+
				"If it was not you, ignore this email: your password stays as it is.\n", human(ResetTTL), id.link("/reset/"+token))})
	}
}

func (id *Service) practiceName(ctx context.Context, practiceID string) string {
	if practiceID == "" {
		return "Haven"
	}
	if p, err := id.db.FindPracticeByID(ctx, practiceID); err == nil {
		return p.Name
	}
	return "your clinic"
}

// human says a link's lifetime in an email: "1 day", "7 days", "one hour".
func human(d time.Duration) string {
	switch {
	case d == 24*time.Hour:
		return "1 day"
	case d%(24*time.Hour) == 0 && d >= 24*time.Hour:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d%time.Hour == 0 && d > time.Hour:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d == time.Hour:
		return "one hour"
	}
	return d.String()
}

// LinkInfo describes a reset or setup link before it is used.
type LinkInfo struct {
	PracticeName string
	Role         haven.Role
	Expires      time.Time
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

var errLinkGone = haven.Errorf(haven.ENOTFOUND, "this link has expired or was already used; ask for a new one")

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
	return id.outbox.Send(ctx, outbox.Message{To: prof.Email, Subject: "Set up your Haven account",
		Text: fmt.Sprintf("Your clinic uses Haven for secure messages, video visits and your records.\n\n"+
			"To choose your password, open this link within %s:\n\n%s\n", human(SetupTTL), id.link("/reset/"+token))})
}

// Invitation is a pending invitation as an admin sees it.
type Invitation struct {
	Email     string
	Role      haven.Role
	CreatedAt time.Time
	Expires   time.Time
}

// inviteEmail binds an invitation's sealed address to its token hash in
// its practice.
func inviteEmail(hash []byte) service.SealedField {
	return service.SealedField{Kind: "invite", RecordID: hex.EncodeToString(hash), Field: "email"}
}

// Invite sends a single-use invitation to join the admin's practice in a
// workforce role. The address is sealed in storage; the email carries the
// practice's public name, the role and the link, nothing else.
func (id *Service) Invite(ctx context.Context, email string, role haven.Role, c Client) error {
	if id.outbox == nil {
		return haven.Errorf(haven.EUNAVAILABLE, "email is not configured on this server")
	}
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	email = haven.NormalizeEmail(email)
	if !haven.ValidEmail(email) {
		return haven.Errorf(haven.EINVALID, "email address is not valid")
	}
	if !role.Workforce() || role == haven.RolePlatformOperator {
		return haven.Errorf(haven.EINVALID, "invitations are for the clinic's workforce; patients are registered at the front desk")
	}
	token, hash := session.NewToken()
	// Inviting an admin or a compliance officer is a role grant and needs
	// a step-up (policy.GrantAction); which roles may be granted at all is
	// policy's too (policy.MayGrant).
	if _, _, err := id.gate.Authorize(ctx, policy.GrantAction(role), policy.Resource{Kind: policy.KindUser, ID: "invite-" + hex.EncodeToString(hash[:8]), PracticeID: a.PracticeID}); err != nil {
		return err
	}
	if !policy.MayGrant(a.Role, role) {
		return haven.Errorf(haven.EFORBIDDEN, "you may not invite someone as %s", roleName(role))
	}
	return id.issueInvitation(ctx, a.PracticeID, email, role, a.UserID, c, token, hash)
}

// issueInvitation stores an invitation (email sealed, token hashed) and
// emails its link. The email carries the practice's public name, the role
// and the link, nothing else.
func (id *Service) issueInvitation(ctx context.Context, practiceID, email string, role haven.Role, by string, c Client, token string, hash []byte) error {
	sealed, err := id.gate.SealPractice(ctx, practiceID, inviteEmail(hash), []byte(email))
	if err != nil {
		return err
	}
	now := id.now()
	if err := id.db.CreateAuthToken(ctx, sqlstore.AuthToken{Hash: hash, Kind: sqlstore.TokenInvite, PracticeID: practiceID, Role: role,
		Email: sealed, CreatedBy: by, ClientAddr: c.Addr, CreatedAt: now, ExpiresAt: now.Add(InvitationTTL)}); err != nil {
		return err
	}
	return id.outbox.Send(ctx, outbox.Message{To: email, Subject: "You are invited to Haven",
		Text: fmt.Sprintf("You have been invited to join %s on Haven as %s.\n\n"+
			"To accept, open this link within %s, choose a password and set up your authenticator app:\n\n%s\n",
			id.practiceName(ctx, practiceID), roleName(role), human(InvitationTTL), id.link("/invite/"+token))})
}

func roleName(r haven.Role) string {
	switch r {
	case haven.RolePracticeAdmin:
		return "a practice administrator"
	case haven.RoleComplianceOfficer:
		return "a compliance officer"
	case haven.RoleClinician:
		return "a clinician"
	case haven.RoleStaff:
		return "staff"
	}
	return string(r)
}

// Invitations lists the admin's practice's pending invitations.
func (id *Service) Invitations(ctx context.Context) ([]Invitation, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := id.gate.Authorize(ctx, policy.UserManage, policy.Resource{Kind: policy.KindUser, ID: "invitations", PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	ts, err := id.db.PendingInvitations(ctx, a.PracticeID, id.now())
	if err != nil {
		return nil, err
	}
	var out []Invitation
	for _, t := range ts {
		email, err := id.gate.OpenPractice(ctx, t.PracticeID, inviteEmail(t.Hash), t.Email)
		if err != nil {
			return nil, err
		}
		out = append(out, Invitation{Email: string(email), Role: t.Role, CreatedAt: t.CreatedAt, Expires: t.ExpiresAt})
	}
	return out, nil
}

// InvitationInfo describes an invitation before it is accepted.
type InvitationInfo struct {
	PracticeName string
	Role         haven.Role
	Email        string
	Expires      time.Time
}

// InvitationInfo returns what an invitation link offers, without using it.
// Whoever holds the link was sent it at that address, so showing the
// address to them reveals nothing new.
func (id *Service) InvitationInfo(ctx context.Context, token string) (*InvitationInfo, error) {
	t, err := id.invitation(ctx, token, false)
	if err != nil {
		return nil, err
	}
	email, err := id.gate.OpenPractice(ctx, t.PracticeID, inviteEmail(t.Hash), t.Email)
	if err != nil {
		return nil, err
	}
	return &InvitationInfo{PracticeName: id.practiceName(ctx, t.PracticeID), Role: t.Role, Email: string(email), Expires: t.ExpiresAt}, nil
}

func (id *Service) invitation(ctx context.Context, token string, use bool) (sqlstore.AuthToken, error) {
	hash, err := session.HashToken(token)
	if err != nil {
		return sqlstore.AuthToken{}, errLinkGone
	}
	var t sqlstore.AuthToken
	if use {
		t, err = id.db.UseAuthToken(ctx, hash, sqlstore.TokenInvite, id.now())
	} else {
		t, err = id.db.FindAuthToken(ctx, hash, sqlstore.TokenInvite, id.now())
	}
	if err != nil {
		return t, errLinkGone
	}
	return t, nil
}

// AcceptInvitation turns an invitation into an account with the chosen
// name and password, once, and continues straight into enrolling the
// authenticator every workforce member must have (StageEnrol).
func (id *Service) AcceptInvitation(ctx context.Context, token, name, pw string, c Client) (*LoginResult, error) {
	if err := password.Check(pw); err != nil {
		return nil, err
	}
	if n := len(strings.TrimSpace(name)); n == 0 || n > 200 {
		return nil, haven.Errorf(haven.EINVALID, "name must be 1 to 200 characters")
	}
	t, err := id.invitation(ctx, token, false)
	if err != nil {
		return nil, err
	}
	email, err := id.gate.OpenPractice(ctx, t.PracticeID, inviteEmail(t.Hash), t.Email)
	if err != nil {
		return nil, err
	}
	if t, err = id.invitation(ctx, token, true); err != nil {
		return nil, err
	}
	u, err := id.gate.CreateUser(ctx, service.NewUser{PracticeID: t.PracticeID, Role: t.Role, Email: string(email), Name: name, Password: pw})
	if err != nil {
		return nil, err
	}
	ev := userEvent(u, c, "", ActInviteAccept)
	ev.ResourceKind, ev.ResourceID = "user", t.CreatedBy
	if err := id.record(ctx, ev, true, ""); err != nil {
		return nil, err
	}
	pending, err := id.pendingLogin(ctx, u, c, id.now())
	if err != nil {
		return nil, err
	}
	return id.next(ctx, u, pending, c)
}

// SetDisabled disables (or re-enables) an account in the admin's practice.
// Disabling ends every session and outstanding link at once. An admin
// cannot disable themselves (another admin does that), and the practice's
// last active admin cannot be disabled at all, even by two admins racing
// to disable each other (sqlstore.SetUserDisabledKeepingAdmin).
func (id *Service) SetDisabled(ctx context.Context, userID string, disabled bool) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	u, err := id.userFor(ctx, policy.UserManage, policy.KindUser, userID)
	if err != nil {
		return err
	}
	if _, _, err := id.gate.AuthorizeRecord(ctx, policy.UserManage, userResource(u), userID); err != nil {
		return err
	}
	if u.ID == a.UserID {
		return haven.Errorf(haven.EINVALID, "you cannot disable your own account")
	}
	ev := audit.ForActor(a, ActDisable)
	ev.ResourceKind, ev.ResourceID, ev.PatientID = "user", u.ID, userResource(u).PatientID
	reason := "enabled"
	if disabled {
		reason = "disabled"
	}
	if err := id.db.SetUserDisabledKeepingAdmin(ctx, u.ID, disabled); err != nil {
		if haven.ErrorCode(err) == haven.ECONFLICT {
			id.record(ctx, ev, false, "last_admin")
		}
		return err
	}
	if disabled {
		// Sessions end before anything else can fail: a disabled account
		// must not stay signed in because, say, the audit append below
		// failed.
		if err := id.endEverything(ctx, u.ID); err != nil {
			return err
		}
	}
	return id.record(ctx, ev, true, reason)
}

// Profile returns the signed-in user's own name and email, opened for
// their own account page. Reading one's own contact details is recorded
// like any other opening of sealed values.
func (id *Service) Profile(ctx context.Context) (*service.UserProfile, error) {
	a, u, err := id.signedIn(ctx)
	if err != nil {
		return nil, err
	}
	ev := audit.ForActor(a, "account.read")
	ev.PatientID = ""
	if u.Role == haven.RolePatient {
		ev.PatientID = u.ID
	}
	if err := id.record(ctx, ev, true, "self"); err != nil {
		return nil, err
	}
	return id.gate.Profile(ctx, u)
}
