package identity

import (
	"context"
	"time"

	"haven"
	"haven/policy"
	"haven/store/sqlstore"
)

// Accounts as the practice admin manages them: who works here, in which
// role, whether they can sign in and with what, and one patient's account
// when a patient asks for help.
//
// Workforce names and addresses are the practice's own staff directory
// (personal data, not health information), so the admin sees the whole
// workforce. A patient's are PHI, and the admin "sees no PHI by default":
// policy gives the admin no patient list (patient.search is the front
// desk's), so neither does this page. The admin reaches one patient's
// account by the exact email the patient gives them (a blind-index
// lookup, never a search) or by the id the front desk gives them; each
// such opening is decided and audited naming the patient, so it appears in
// the patient's own access history.

// Account is one account as the practice admin sees it.
type Account struct {
	ID    string
	Role  haven.Role
	Name  string
	Email string
	// Disabled accounts cannot sign in; disabling ended their sessions.
	Disabled bool
	// SetUp is false for a patient registered at the front desk who has
	// not yet chosen a password (their setup link may still be on its way).
	SetUp         bool
	TOTP          bool
	Passkeys      int
	RecoveryCodes int
	LastSignIn    time.Time // zero: never, as far as the audit log knows
	// Self is the admin's own account: the page offers no disable and no
	// factor reset on it (the service refuses both).
	Self bool
}

// Status is what the page shows: "disabled", "invited" (no password yet)
// or "active".
func (a Account) Status() string {
	switch {
	case a.Disabled:
		return "disabled"
	case !a.SetUp:
		return "invited"
	}
	return "active"
}

// SecondFactor reports whether the account has a factor to sign in with
// (recovery codes alone stand in for one, they are not one).
func (a Account) SecondFactor() bool { return a.TOTP || a.Passkeys > 0 }

// userResource is the policy resource for managing account u: a patient's
// account names the patient, so the decision lands in their access history.
func userResource(u *haven.User) policy.Resource {
	r := policy.Resource{Kind: policy.KindUser, ID: u.ID, PracticeID: u.PracticeID}
	if u.Role == haven.RolePatient {
		r.PatientID = u.ID
	}
	return r
}

// userFor loads the account a request named for act on a resource of
// kind, refusing an id that exists nowhere (or is not an id at all) as
// the gate refuses one of another practice: ENOTFOUND, and a denial in
// the actor's log with the same reason, so probing ids teaches nothing.
func (id *Service) userFor(ctx context.Context, act policy.Action, kind policy.Kind, userID string) (*haven.User, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if !haven.PlausibleID(userID) {
		return nil, id.gate.RefuseUnknown(ctx, a, act, kind, userID)
	}
	u, err := id.db.FindUserByID(ctx, userID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return nil, id.gate.RefuseUnknown(ctx, a, act, kind, userID)
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the account")
	}
	return u, nil
}

// account opens row for the admin after the caller's decision.
func (id *Service) account(ctx context.Context, a haven.Actor, row sqlstore.AccountRow) (Account, error) {
	p, err := id.gate.Profile(ctx, row.User)
	if err != nil {
		return Account{}, err
	}
	u := row.User
	return Account{ID: u.ID, Role: u.Role, Name: p.Name, Email: p.Email, Disabled: u.Disabled, SetUp: u.PasswordHash != "",
		TOTP: row.TOTP, Passkeys: row.Passkeys, RecoveryCodes: row.RecoveryCodes, LastSignIn: row.LastSignIn, Self: u.ID == a.UserID}, nil
}

// WorkforceAccounts lists the admin's practice's workforce accounts, oldest
// first. The list read is decided and audited (user.manage on "workforce"),
// and so is each account opened, like every other list of records.
func (id *Service) WorkforceAccounts(ctx context.Context) ([]Account, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := id.gate.Authorize(ctx, policy.UserManage, policy.Resource{Kind: policy.KindUser, ID: "workforce", PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	rows, err := id.db.PracticeAccounts(ctx, a.PracticeID, ActLogin)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list accounts")
	}
	var out []Account
	for _, row := range rows {
		if !row.User.Role.Workforce() {
			continue
		}
		if _, _, err := id.gate.Authorize(ctx, policy.UserManage, userResource(row.User)); err != nil {
			if haven.ErrorCode(err) == haven.EUNAVAILABLE {
				return nil, err
			}
			continue
		}
		acc, err := id.account(ctx, a, row)
		if err != nil {
			return nil, err
		}
		out = append(out, acc)
	}
	return out, nil
}

// Account returns one account of the admin's practice by id. Another
// practice's id is ENOTFOUND, and the attempt is audited.
func (id *Service) Account(ctx context.Context, userID string) (*Account, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if !haven.PlausibleID(userID) {
		return nil, id.gate.RefuseUnknown(ctx, a, policy.UserManage, policy.KindUser, userID)
	}
	row, err := id.db.Account(ctx, userID, ActLogin)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return nil, id.gate.RefuseUnknown(ctx, a, policy.UserManage, policy.KindUser, userID)
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the account")
	}
	if _, _, err := id.gate.AuthorizeRecord(ctx, policy.UserManage, userResource(row.User), userID); err != nil {
		return nil, err
	}
	acc, err := id.account(ctx, a, row)
	if err != nil {
		return nil, err
	}
	return &acc, nil
}

// FindPatientAccount returns the patient account of the admin's practice
// with exactly this email, for helping a patient who calls. The lookup is
// decided and audited before anything is searched, so even a miss leaves
// a trace; a hit is decided and audited again naming the patient.
func (id *Service) FindPatientAccount(ctx context.Context, email string) (*Account, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := id.gate.Authorize(ctx, policy.UserManage, policy.Resource{Kind: policy.KindUser, ID: "patient-lookup", PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	email = haven.NormalizeEmail(email)
	if !haven.ValidEmail(email) {
		return nil, haven.Errorf(haven.EINVALID, "email address is not valid")
	}
	index, err := id.gate.EmailIndex(ctx, email)
	if err != nil {
		return nil, err
	}
	users, err := id.db.FindUsersByEmailIndex(ctx, index)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot look up the account")
	}
	for _, u := range users {
		if u.Role == haven.RolePatient && u.PracticeID == a.PracticeID {
			return id.Account(ctx, u.ID)
		}
	}
	return nil, haven.Errorf(haven.ENOTFOUND, "no patient of this practice has an account with that email address")
}

// GrantableRoles returns the roles the signed-in member may invite
// someone as (policy.Grantable); none for anyone but a practice admin.
func (id *Service) GrantableRoles(ctx context.Context) []haven.Role {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil
	}
	return policy.Grantable(a.Role)
}
