package identity

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"haven"
	"haven/auth/password"
	"haven/auth/session"
	"haven/policy"
	"haven/service"
	"haven/store/sqlstore"
)

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
	msg, err := id.gate.ComposeEmail(ctx, practiceID, service.EmailInvitation, email, "You are invited to Haven",
		fmt.Sprintf("You have been invited to join %s on Haven as %s.\n\n"+
			"To accept, open this link within %s, choose a password and set up your authenticator app:\n\n%s\n",
			id.practiceName(ctx, practiceID), roleName(role), human(InvitationTTL), id.link("/invite/"+token)))
	if err != nil {
		return err
	}
	return id.outbox.Send(ctx, msg)
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
