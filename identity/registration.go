package identity

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"haven"
	"haven/audit"
	"haven/auth/password"
	"haven/auth/session"
	"haven/policy"
	"haven/service"
	"haven/store/sqlstore"
)

// Self-registration: a patient creates their own account from a
// practice's public registration page, where the practice allows it
// (PracticeSettings.SelfRegistration; the front desk's RegisterPatient
// and invitations remain the other ways in).
//
// It takes two steps, because an account must belong to whoever reads
// its email address:
//
//  1. RequestRegistration: the patient gives an email address. The answer
//     is the same whatever was given, and the lookup, the link and the
//     email happen after the answer, in the background, so neither
//     message, status nor timing says whether the address has an account
//     at the practice (or whether the practice is taking registrations
//     at all). An address with no account gets a single-use link, good
//     for VerifyTTL, carrying a 256-bit token that is stored only as its
//     hash, the address sealed beside it; an address with an account gets
//     a note saying so, with where to sign in or reset the password, and
//     no token. Requests are throttled per source address and per email,
//     so Haven cannot be used to flood an inbox.
//  2. CompleteRegistration: the link's holder gives their name, date of
//     birth and a password. The link is used up, and the patient's
//     account and chart are created (sealed exactly as the front desk
//     seals them, by sealNewPatient), in one transaction: a refused
//     password or a fault burns nothing, and a link clicked twice creates
//     one patient. Both are audited. The patient is then signed in, or
//     taken into enrolment if the practice requires MFA of patients.
//
// The link names the practice (its random id, never its name) as well as
// the token, and the token must belong to it: a link from one practice's
// page cannot create a patient in another. No email names the clinic or
// the patient: which clinic someone uses can itself be health
// information, and an inbox is not private.
//
// Self-registration is not decided by policy.Decide: there is no actor
// yet. What allows it is the practice's own setting, checked at both
// steps, and the proof of the address that only its owner can give.

// VerifyTTL is how long a registration link stays good.
const VerifyTTL = 24 * time.Hour

// Audit actions of self-registration. The chart's creation is recorded
// as policy.PatientRegister, as at the front desk, with reason
// "self_registration".
const (
	ActRegisterRequest = "account.register_request" // an address asked for a registration link (deny: closed, or the address has an account)
	ActRegister        = "account.register"         // a patient created their own account with a registration link (or was refused)
)

var (
	errRegistrationClosed = haven.Errorf(haven.ENOTFOUND, "this clinic does not take registrations online; please contact the clinic")
	errAlreadyRegistered  = haven.Errorf(haven.ECONFLICT, "an account with this email address already exists at this clinic: sign in, or reset your password if you have forgotten it")
)

// registrationEmail binds a registration link's sealed address to its token
// hash in its practice. It is sealed under the practice's key, not a
// patient's (there is no patient yet); the row is purged with the other
// expired tokens.
func registrationEmail(hash []byte) service.SealedField {
	return service.SealedField{Kind: "registration", RecordID: hex.EncodeToString(hash), Field: "email"}
}

// practiceEvent is an audit event in a practice's log made by an
// anonymous client (someone who is not signed in).
func practiceEvent(practiceID string, c Client, action string) audit.Event {
	return audit.ForActor(haven.Actor{PracticeID: practiceID, ClientAddr: c.Addr, RequestID: c.RequestID}, action)
}

// registrationPractice returns the practice practiceID if its
// registration is open, nil if it is unknown or closed.
func (id *Service) registrationPractice(ctx context.Context, practiceID string) (*haven.Practice, error) {
	if !haven.PlausibleID(practiceID) {
		return nil, nil
	}
	p, err := id.db.FindPracticeByID(ctx, practiceID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return nil, nil
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "registration is unavailable")
	}
	ps, err := id.gate.PracticeSettings(ctx, practiceID)
	if err != nil {
		return nil, err
	}
	if !ps.SelfRegistration {
		return nil, nil
	}
	return p, nil
}

// OpenPractice is a practice that takes registrations online, as the
// public list of them shows it.
type OpenPractice struct {
	ID, Name string
}

// RegistrationPractices lists the practices that take registrations
// online, by name, for the public page from which a new patient finds her
// clinic's registration. A practice is listed only once it opens its own
// registration (setting self_registration), whose page is public anyway;
// no other practice is named.
func (id *Service) RegistrationPractices(ctx context.Context) ([]OpenPractice, error) {
	ps, err := id.db.ListPractices(ctx)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "registration is unavailable")
	}
	out := []OpenPractice{}
	for _, p := range ps {
		open, err := id.registrationPractice(ctx, p.ID)
		if err != nil {
			return nil, err
		}
		if open != nil {
			out = append(out, OpenPractice{ID: open.ID, Name: open.Name})
		}
	}
	slices.SortFunc(out, func(a, b OpenPractice) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// RegistrationPractice returns the public name of the practice whose
// registration page practiceID names, or ENOTFOUND when there is no such
// practice or it does not take registrations online (one answer for
// both: the page is simply not there).
func (id *Service) RegistrationPractice(ctx context.Context, practiceID string) (string, error) {
	p, err := id.registrationPractice(ctx, practiceID)
	if err != nil {
		return "", err
	}
	if p == nil {
		return "", errRegistrationClosed
	}
	return p.Name, nil
}

// RequestRegistration is step 1: it sends email a registration link for
// practiceID, or a note that it has an account there already. A nil
// error is the one answer for a new address, a known one, and a practice
// that is not taking registrations (which sends nothing); only a
// malformed address (EINVALID, which says nothing about accounts) and
// throttling (ETOOMANY, counted per email whether or not it has an
// account) are told apart.
func (id *Service) RequestRegistration(ctx context.Context, practiceID, email string, c Client) error {
	if id.outbox == nil {
		return haven.Errorf(haven.EUNAVAILABLE, "email is not configured on this server")
	}
	to := haven.NormalizeEmail(email)
	if !haven.ValidEmail(to) {
		return haven.Errorf(haven.EINVALID, "enter a valid email address")
	}
	index, err := id.gate.EmailIndex(ctx, to)
	if err != nil {
		return err
	}
	if err := id.countEmailRequest(ctx, "register:", index, c); err != nil {
		return err
	}
	p, err := id.registrationPractice(ctx, practiceID)
	if err != nil {
		return err
	}
	if p == nil {
		ev := c.event(ActRegisterRequest)
		if haven.PlausibleID(practiceID) {
			if _, err := id.db.FindPracticeByID(ctx, practiceID); err == nil {
				ev = practiceEvent(practiceID, c, ActRegisterRequest)
			}
		}
		return id.record(ctx, ev, false, "registration_closed")
	}
	bg := context.WithoutCancel(ctx)
	id.bg.Add(1)
	go func() {
		defer id.bg.Done()
		id.sendRegistration(bg, p.ID, index, to, c)
	}()
	return nil
}

// sendRegistration is the background half of RequestRegistration.
// Failures are not reported to anyone: the requester was already
// answered, and telling them would say whether the address was known.
func (id *Service) sendRegistration(ctx context.Context, practiceID string, index []byte, to string, c Client) {
	users, err := id.db.FindUsersByEmailIndex(ctx, index)
	if err != nil {
		return
	}
	for _, u := range users {
		if u.PracticeID != practiceID {
			continue // a patient of another clinic may register here too
		}
		if id.record(ctx, userEvent(u, c, "", ActRegisterRequest), false, "account_exists") != nil {
			return
		}
		msg, err := id.gate.ComposeEmail(ctx, practiceID, service.EmailAccountExists, to, "Your Haven account",
			fmt.Sprintf("Someone asked to create a Haven account with this email address, but the clinic already "+
				"has an account with it, so no new one was made.\n\n"+
				"To sign in, open:\n\n%s\n\n"+
				"If you have forgotten your password, choose a new one here:\n\n%s\n\n"+
				"If it was not you, ignore this email: nothing has changed.\n", id.link("/login"), id.link("/reset")))
		if err == nil {
			id.outbox.Send(ctx, msg)
		}
		return
	}
	token, hash := session.NewToken()
	sealed, err := id.gate.SealPractice(ctx, practiceID, registrationEmail(hash), []byte(to))
	if err != nil {
		return
	}
	now := id.now()
	if err := id.record(ctx, practiceEvent(practiceID, c, ActRegisterRequest), true, ""); err != nil {
		return
	}
	if err := id.db.CreateAuthToken(ctx, sqlstore.AuthToken{Hash: hash, Kind: sqlstore.TokenVerify, PracticeID: practiceID,
		Role: haven.RolePatient, Email: sealed, ClientAddr: c.Addr, CreatedAt: now, ExpiresAt: now.Add(VerifyTTL)}); err != nil {
		return
	}
	msg, err := id.gate.ComposeEmail(ctx, practiceID, service.EmailRegistration, to, "Confirm your email address for Haven",
		fmt.Sprintf("Someone asked to create a Haven patient account with this email address.\n\n"+
			"To confirm it is yours and continue, open this link within %s:\n\n%s\n\n"+
			"The link works once. If it was not you, ignore this email: no account is made.\n",
			human(VerifyTTL), id.link("/register/"+practiceID+"/"+token)))
	if err == nil {
		id.outbox.Send(ctx, msg)
	}
}

// RegistrationLink describes a registration link before it is used. Its
// holder was sent it at Email, so showing it to them reveals nothing new.
type RegistrationLink struct {
	PracticeName string
	Email        string
	Expires      time.Time
}

// registrationToken returns the unused, unexpired registration token of
// practiceID's page, without using it up. A token of another practice is
// refused as if it did not exist (and the attempt recorded in its own
// practice's log); a practice that has closed registration since the link
// was sent refuses it too.
func (id *Service) registrationToken(ctx context.Context, practiceID, token string, c Client) (sqlstore.AuthToken, []byte, error) {
	hash, err := session.HashToken(token)
	if err != nil {
		return sqlstore.AuthToken{}, nil, errLinkGone
	}
	t, err := id.db.FindAuthToken(ctx, hash, sqlstore.TokenVerify, id.now())
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return t, nil, errLinkGone
	} else if err != nil {
		return t, nil, haven.Wrap(haven.EUNAVAILABLE, err, "registration is unavailable")
	}
	if t.PracticeID != practiceID {
		if err := id.record(ctx, practiceEvent(t.PracticeID, c, ActRegister), false, "other_practice"); err != nil {
			return t, nil, err
		}
		return t, nil, errLinkGone
	}
	p, err := id.registrationPractice(ctx, practiceID)
	if err != nil {
		return t, nil, err
	}
	if p == nil {
		return t, nil, errRegistrationClosed
	}
	return t, hash, nil
}

// RegistrationLinkInfo reports whether a registration link is still good
// for practiceID's page, without using it.
func (id *Service) RegistrationLinkInfo(ctx context.Context, practiceID, token string, c Client) (*RegistrationLink, error) {
	t, hash, err := id.registrationToken(ctx, practiceID, token, c)
	if err != nil {
		return nil, err
	}
	email, err := id.gate.OpenPractice(ctx, t.PracticeID, registrationEmail(hash), t.Email)
	if err != nil {
		return nil, err
	}
	return &RegistrationLink{PracticeName: id.practiceName(ctx, t.PracticeID), Email: string(email), Expires: t.ExpiresAt}, nil
}

// SelfRegistration is what a patient gives at step 2.
type SelfRegistration struct {
	Name        string
	DateOfBirth string // YYYY-MM-DD
	Password    string
}

// selfRegisteredMRN is the record number a self-registered patient starts
// with: "SR-" and ten random characters (a collision is refused as a
// conflict, never merged), until the front desk gives the chart the
// practice's own number (UpdateChart).
func selfRegisteredMRN() string { return "SR-" + strings.ToUpper(haven.NewID()[:10]) }

// CompleteRegistration is step 2: with a registration link of
// practiceID's page, it creates the patient's account and chart, uses the
// link up, and continues into the sign-in (StageDone with a session, or
// StageEnrol when the practice requires MFA of patients). A refused
// password or name, a link of another practice, an expired or used link
// (ENOTFOUND), or an address that meanwhile got an account (ECONFLICT)
// changes nothing.
func (id *Service) CompleteRegistration(ctx context.Context, practiceID, token string, reg SelfRegistration, c Client) (*LoginResult, error) {
	if err := password.Check(reg.Password); err != nil {
		return nil, err // before the link is looked at: a refused password burns nothing
	}
	d := service.Demographics{Name: strings.TrimSpace(reg.Name), DateOfBirth: strings.TrimSpace(reg.DateOfBirth)}
	if err := d.Validate(id.now()); err != nil {
		return nil, err
	}
	t, hash, err := id.registrationToken(ctx, practiceID, token, c)
	if err != nil {
		return nil, err
	}
	email, err := id.gate.OpenPractice(ctx, t.PracticeID, registrationEmail(hash), t.Email)
	if err != nil {
		return nil, err
	}
	np := service.NewPatient{MRN: selfRegisteredMRN(), Demographics: d, Contact: service.Contact{Email: haven.NormalizeEmail(string(email))}}
	clear(email)
	if err := np.Validate(id.now()); err != nil {
		return nil, err
	}
	pid := haven.NewID()
	u, row, key, err := id.gate.SealNewPatient(ctx, practiceID, pid, np)
	if err != nil {
		return nil, err
	}
	// Checked here for a clear answer before any work; the unique index
	// decides a race, inside the transaction below.
	others, err := id.db.FindUsersByEmailIndex(ctx, u.EmailIndex)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "registration is unavailable")
	}
	for _, o := range others {
		if o.PracticeID == practiceID {
			return nil, errAlreadyRegistered
		}
	}
	if u.PasswordHash, err = id.passwords.Hash(ctx, reg.Password); err != nil {
		return nil, err
	}
	// Audited before the write, as every PHI write is: an account that
	// cannot be audited is not created. The chart's creation is recorded
	// as the front desk's is, for the patient's own access history.
	chartEv := userEvent(u, c, "", string(policy.PatientRegister))
	chartEv.ResourceKind, chartEv.ResourceID, chartEv.PatientID = string(policy.KindPatient), pid, pid
	chartEv.Purpose, chartEv.Decision, chartEv.Reason = audit.PurposePatientRequest, haven.DecisionAllow, "self_registration"
	if err := id.gate.Record(ctx, chartEv); err != nil {
		return nil, err
	}
	if err := id.record(ctx, userEvent(u, c, "", ActRegister), true, "email_verified"); err != nil {
		return nil, err
	}
	if _, err := id.db.CreatePatientWithToken(ctx, hash, sqlstore.TokenVerify, id.now(), u, row, &key); err != nil {
		reason, out := "", err
		switch haven.ErrorCode(err) {
		case haven.ENOTFOUND:
			reason, out = "link_used", errLinkGone // a second click raced the first
		case haven.ECONFLICT:
			reason, out = "account_exists", errAlreadyRegistered
		}
		if reason != "" {
			if rerr := id.record(ctx, userEvent(u, c, "", ActRegister), false, reason); rerr != nil {
				return nil, rerr
			}
		}
		return nil, out
	}
	pending, err := id.pendingLogin(ctx, u, c, id.now())
	if err != nil {
		return nil, err
	}
	return id.next(ctx, u, pending, c)
}
