package identity

import (
	"context"
	"encoding/json"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"haven"
	"haven/auth/recovery"
	"haven/service"
	"haven/store/sqlstore"
)

// BeginRegistration starts registering a passkey or security key for the
// signed-in user, which needs a fresh authentication. It returns the
// options for navigator.credentials.create. Keys the user already has are
// excluded, so one authenticator is not registered twice.
func (p *Passkeys) BeginRegistration(ctx context.Context) (json.RawMessage, error) {
	a, u, err := p.id.signedIn(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.id.RequireFreshAuth(ctx); err != nil {
		return nil, err
	}
	return p.beginRegistration(ctx, u, a.SessionID)
}

// beginRegistration returns creation options for a new credential of u,
// its challenge bound to binding (the session adding it, or the pending
// sign-in enrolling it).
func (p *Passkeys) beginRegistration(ctx context.Context, u *haven.User, binding string) (json.RawMessage, error) {
	w, _, err := p.userFor(ctx, u)
	if err != nil {
		return nil, err
	}
	prof, err := p.id.gate.Profile(ctx, u)
	if err != nil {
		return nil, err
	}
	// The account's own address and name, shown by the user's own
	// authenticator when it offers the passkey.
	w.name, w.display = prof.Email, prof.Name
	if w.display == "" {
		w.display = prof.Email
	}
	var exclude []protocol.CredentialDescriptor
	for _, c := range w.creds {
		exclude = append(exclude, c.Descriptor())
	}
	creation, sd, err := p.wa.BeginRegistration(w,
		webauthn.WithExclusions(exclude),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementPreferred),
		webauthn.WithExtensions(webauthn.WithExtensionCredProps()))
	if err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "cannot start registering a passkey")
	}
	if err := p.store(ctx, challengeRegister, u.ID, binding, sd); err != nil {
		return nil, err
	}
	return options(creation)
}

// maxNickname bounds the name a user gives a passkey.
const maxNickname = 64

func cleanNickname(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxNickname {
		return "", haven.Errorf(haven.EINVALID, "a passkey's name must be at most %d characters", maxNickname)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", haven.Errorf(haven.EINVALID, "a passkey's name cannot contain control characters")
		}
	}
	return s, nil
}

// nicknameField binds a passkey's sealed nickname to its row and owner.
func nicknameField(credID string) service.SealedField {
	return service.SealedField{Kind: resourcePasskey, RecordID: credID, Field: "nickname"}
}

// FinishRegistration checks the browser's answer to BeginRegistration and
// stores the new passkey under nickname (optional). Adding a factor is an
// MFA change: every other session ends and this browser continues in a
// new one, with MFA. A user's first factor also gets recovery codes,
// returned once.
func (p *Passkeys) FinishRegistration(ctx context.Context, proof, nickname string, c Client) (*MFAChange, error) {
	a, u, err := p.id.signedIn(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.id.RequireFreshAuth(ctx); err != nil {
		return nil, err
	}
	ctx = withClient(ctx, c)
	if err := p.createCredential(ctx, u, a.SessionID, proof, nickname); err != nil {
		return nil, err
	}
	codes, err := p.firstRecoveryCodes(ctx, u)
	if err != nil {
		return nil, err
	}
	s, err := p.id.rotate(ctx, a, u, true, string(FactorWebAuthn), c)
	if err != nil {
		return nil, err
	}
	return &MFAChange{Session: s, RecoveryCodes: codes}, nil
}

// createCredential checks the browser's answer to the registration
// challenge bound to binding and stores u's new credential under
// nickname, audited as an MFA enrolment (refusals too).
func (p *Passkeys) createCredential(ctx context.Context, u *haven.User, binding, proof, nickname string) error {
	nickname, err := cleanNickname(nickname)
	if err != nil {
		return err
	}
	refuse := func(reason string, err error) error {
		if rerr := p.id.record(ctx, passkeyEvent(ctx, u, ActMFAEnrol, ""), false, reason); rerr != nil {
			return rerr
		}
		return err
	}
	if len(proof) > maxPasskeyProof {
		return refuse("malformed", errPasskeyAnswer)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(proof))
	if err != nil {
		return refuse("malformed", errPasskeyAnswer)
	}
	sd, err := p.take(ctx, parsed.Response.CollectedClientData.Challenge, challengeRegister, binding, u.ID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return refuse("unknown_challenge", haven.Errorf(haven.EINVALID, "the passkey registration expired; start again"))
	} else if err != nil {
		return err
	}
	w, _, err := p.userFor(ctx, u)
	if err != nil {
		return err
	}
	cred, err := p.wa.CreateCredential(w, *sd, parsed)
	if err != nil {
		return refuse("attestation_invalid", haven.Errorf(haven.EINVALID, "the passkey could not be registered; try again"))
	}
	now := p.id.now()
	rec := sqlstore.WebAuthnCredential{ID: haven.NewID(), CredentialID: cred.ID, UserID: u.ID, PracticeID: u.PracticeID,
		PublicKey: cred.PublicKey, SignCount: cred.Authenticator.SignCount, AAGUID: cred.Authenticator.AAGUID,
		AttestationFormat: cred.AttestationFormat, UserVerified: cred.Flags.UserVerified, BackupEligible: cred.Flags.BackupEligible,
		BackupState: cred.Flags.BackupState, Discoverable: cred.Extensions.RK != nil && *cred.Extensions.RK, CreatedAt: now}
	for _, t := range cred.Transport {
		if s := string(t); s != "" && !strings.Contains(s, ",") && len(s) <= 32 {
			rec.Transports = append(rec.Transports, s)
		}
	}
	if nickname != "" {
		if rec.Nickname, err = p.id.gate.SealUser(ctx, u, nicknameField(rec.ID), []byte(nickname)); err != nil {
			return err
		}
	}
	ev := passkeyEvent(ctx, u, ActMFAEnrol, rec.ID)
	if err := p.id.db.CreateWebAuthnCredential(ctx, rec); err != nil {
		if haven.ErrorCode(err) == haven.ECONFLICT {
			return refuse("duplicate_credential", haven.Errorf(haven.EINVALID, "this passkey is already registered"))
		}
		return err
	}
	return p.id.record(ctx, ev, true, string(FactorWebAuthn))
}

// firstRecoveryCodes issues u's recovery codes (returned once) if u has
// none: a first factor comes with them, as at TOTP enrolment.
func (p *Passkeys) firstRecoveryCodes(ctx context.Context, u *haven.User) ([]string, error) {
	have, err := p.id.db.RecoveryCodes(ctx, u.ID)
	if err != nil || len(have) > 0 {
		return nil, err
	}
	codes, err := recovery.Issue(ctx, p.id.db, u.ID)
	if err != nil {
		return nil, err
	}
	if err := p.id.record(ctx, passkeyEvent(ctx, u, ActRecoveryIssue, ""), true, ""); err != nil {
		return nil, err
	}
	return codes, nil
}

// BeginEnrolment starts registering a passkey or security key as the
// first second factor of a pending sign-in that must enrol one
// (StageEnrol: a new workforce member, or a patient whose practice
// requires MFA), instead of an authenticator app. The challenge is bound
// to that sign-in, from that browser. As with BeginPendingEnrolment, an
// account that already has a factor cannot enrol here: a password alone
// never adds an authenticator to a protected account.
func (p *Passkeys) BeginEnrolment(ctx context.Context, token string, c Client) (json.RawMessage, error) {
	pl, err := p.id.Pending(ctx, token, c)
	if err != nil {
		return nil, err
	}
	if len(pl.Factors) > 0 {
		return nil, errHasFactor
	}
	return p.beginRegistration(ctx, pl.user, pl.Challenge.ID)
}

var errHasFactor = haven.Errorf(haven.EFORBIDDEN, "this account already has a second factor; use it to sign in")

// FinishEnrolment stores the passkey the browser created for the pending
// sign-in token, issues recovery codes (returned once, as after TOTP
// enrolment), uses the sign-in up and starts its session, with MFA.
func (p *Passkeys) FinishEnrolment(ctx context.Context, token, proof, nickname string, c Client) (*LoginResult, error) {
	pl, err := p.id.Pending(ctx, token, c)
	if err != nil {
		return nil, err
	}
	if len(pl.Factors) > 0 {
		return nil, errHasFactor
	}
	u := pl.user
	ctx = withClient(ctx, c)
	if err := p.createCredential(ctx, u, pl.Challenge.ID, proof, nickname); err != nil {
		return nil, err
	}
	if _, err := p.id.db.UseAuthToken(ctx, pl.hash, sqlstore.TokenLogin, p.id.now()); err != nil {
		return nil, errNoPending
	}
	codes, err := p.firstRecoveryCodes(ctx, u)
	if err != nil {
		return nil, err
	}
	res, err := p.id.finish(ctx, u, true, string(FactorWebAuthn), c)
	if err != nil {
		return nil, err
	}
	res.RecoveryCodes = codes
	return res, nil
}

// PasskeyView is one of the user's passkeys, for the account page.
type PasskeyView struct {
	ID           string
	Nickname     string // "" when the user gave none
	Synced       bool   // backed up by a passkey provider (may live on several devices)
	Discoverable bool   // can sign in without a password
	Transports   []string
	CreatedAt    time.Time
	LastUsedAt   time.Time // zero if never used
}

// List returns the signed-in user's passkeys, oldest first.
func (p *Passkeys) List(ctx context.Context) ([]PasskeyView, error) {
	_, u, err := p.id.signedIn(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := p.id.db.WebAuthnCredentials(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	out := make([]PasskeyView, 0, len(recs))
	for _, r := range recs {
		v := PasskeyView{ID: r.ID, Synced: r.BackupState, Discoverable: r.Discoverable, Transports: r.Transports,
			CreatedAt: r.CreatedAt, LastUsedAt: r.LastUsedAt}
		if len(r.Nickname) > 0 {
			name, err := p.id.gate.OpenUser(ctx, u, nicknameField(r.ID), r.Nickname)
			if err != nil {
				return nil, err
			}
			v.Nickname = string(name)
		}
		out = append(out, v)
	}
	return out, nil
}

// Remove deletes one of the signed-in user's passkeys after a fresh
// authentication. Another user's passkey id is ENOTFOUND (and audited). A
// user whose role or practice requires MFA cannot remove their last
// factor. Removing a factor is an MFA change: every session ends and this
// browser continues in a new one; with no factor left, the recovery codes
// (which stand in for one) go too.
func (p *Passkeys) Remove(ctx context.Context, credID string, c Client) (*MFAChange, error) {
	a, u, err := p.id.signedIn(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.id.RequireFreshAuth(ctx); err != nil {
		return nil, err
	}
	ctx = withClient(ctx, c)
	recs, err := p.id.db.WebAuthnCredentials(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	own := false
	for _, r := range recs {
		own = own || r.ID == credID
	}
	if !own {
		if err := p.id.record(ctx, passkeyEvent(ctx, u, ActMFARemove, credID), false, "not_own_credential"); err != nil {
			return nil, err
		}
		return nil, haven.Errorf(haven.ENOTFOUND, "no such passkey")
	}
	factors, err := p.id.enrolledFactors(ctx, u)
	if err != nil {
		return nil, err
	}
	left := len(recs) > 1
	for _, f := range factors {
		left = left || (f != FactorWebAuthn && f != FactorRecovery)
	}
	pol, err := p.id.SessionPolicy(ctx, u.PracticeID, u.Role)
	if err != nil {
		return nil, err
	}
	if pol.RequireMFA && !left {
		return nil, haven.Errorf(haven.EFORBIDDEN, "your account requires a second factor: add another passkey or an authenticator app before removing this one")
	}
	if err := p.id.record(ctx, passkeyEvent(ctx, u, ActMFARemove, credID), true, string(FactorWebAuthn)); err != nil {
		return nil, err
	}
	if err := p.id.db.DeleteWebAuthnCredential(ctx, u.ID, credID); err != nil {
		return nil, err
	}
	if !left {
		if err := p.id.db.ReplaceRecoveryCodes(ctx, u.ID, nil); err != nil {
			return nil, err
		}
	}
	s, err := p.id.rotate(ctx, a, u, left, "", c)
	if err != nil {
		return nil, err
	}
	return &MFAChange{Session: s}, nil
}
