package identity

import (
	"context"

	"haven"
	"haven/audit"
	"haven/service"
)

// ActIncidentContain is one account shut out by an incident's containment.
const ActIncidentContain = "incident.contain_account"

// ContainIncident contains an incident in one step: every account it
// covers is disabled, its sessions revoked, its outstanding links
// (resets, invitations, pending sign-ins) ended, its password cleared and
// its second factors (authenticator, passkeys, recovery codes) removed, so
// that whoever holds any of them is out, and the account, once an admin
// enables it again, signs in only after a password reset and a fresh
// enrolment. Visit join tokens are redeemed only by a live session of an
// enabled account, so none of theirs can be used any more either. The
// compliance officer's fresh authentication is required (incident.contain,
// through the gate); each account's containment is its own audit event,
// naming the incident. The officer's own account is never contained by
// their own hand.
func (id *Service) ContainIncident(ctx context.Context, incidentID string) ([]service.ContainedAccount, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	accounts, err := id.gate.IncidentToContain(ctx, incidentID)
	if err != nil {
		return nil, err
	}
	now := id.now()
	var done []service.ContainedAccount
	for _, uid := range accounts {
		c := service.ContainedAccount{UserID: uid}
		u, err := id.db.FindUserByID(ctx, uid)
		if err != nil || u.PracticeID != a.PracticeID || !u.Role.Workforce() {
			continue // the scope holds only the practice's workforce (ScopeIncident)
		}
		if u.ID == a.UserID {
			c.Note = "your own account: ask another officer or the administrator"
			done = append(done, c)
			continue
		}
		if p, err := id.gate.Profile(ctx, u); err == nil {
			c.Name = p.Name
		}
		// Sessions end before anything else can fail, as SetDisabled's do.
		switch err := id.db.SetUserDisabledKeepingAdmin(ctx, u.ID, true); {
		case err == nil:
			c.Disabled = true
		case haven.ErrorCode(err) == haven.ECONFLICT:
			c.Note = "the practice's last administrator stays enabled; every credential is cleared"
		default:
			return done, err
		}
		if c.SessionsEnded, err = id.db.RevokeUserSessions(ctx, u.ID, now); err != nil {
			return done, err
		}
		if c.TokensEnded, err = id.db.EndUserTokens(ctx, u.ID, "", now); err != nil {
			return done, err
		}
		if _, err := id.db.EndUserSMARTGrants(ctx, u.ID); err != nil {
			return done, err
		}
		if err := id.db.SetPasswordHash(ctx, u.ID, ""); err != nil {
			return done, err
		}
		c.PasswordCleared = true
		if err := id.db.DeleteTOTP(ctx, u.ID); err != nil {
			return done, err
		}
		if _, err := id.db.DeleteUserWebAuthnCredentials(ctx, u.ID); err != nil {
			return done, err
		}
		if err := id.db.ReplaceRecoveryCodes(ctx, u.ID, nil); err != nil {
			return done, err
		}
		c.FactorsCleared = true
		ev := audit.ForActor(a, ActIncidentContain)
		ev.ResourceKind, ev.ResourceID = "user", u.ID
		if err := id.record(ctx, ev, true, "incident_"+incidentID); err != nil {
			return done, err
		}
		done = append(done, c)
	}
	if err := id.gate.IncidentContained(ctx, incidentID, done); err != nil {
		return done, err
	}
	return done, nil
}
