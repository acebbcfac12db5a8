package identity

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"time"

	"haven"
	"haven/audit"
	"haven/auth/recovery"
	"haven/auth/totp"
	"haven/policy"
	"haven/service"
	"haven/store/sqlstore"
)

// FactorKind names a second factor.
type FactorKind string

const (
	FactorTOTP     FactorKind = "totp"
	FactorRecovery FactorKind = "recovery"
	FactorWebAuthn FactorKind = "webauthn"
)

// SecondFactor is one kind of proof a sign-in or step-up can ask for after
// the password. TOTP and recovery codes are built in; a passkey
// (WebAuthn) implementation plugs in with RegisterFactor, and the sign-in
// flow, the throttle and the audit trail treat it like the others.
type SecondFactor interface {
	Kind() FactorKind
	// Enrolled reports whether u can use this factor now.
	Enrolled(ctx context.Context, u *haven.User) (bool, error)
	// Verify checks proof for u in the sign-in or step-up identified by
	// ch, using up one-time proofs atomically. A wrong proof is
	// EUNAUTHORIZED (or EINVALID for a malformed one); anything else is a
	// fault.
	Verify(ctx context.Context, u *haven.User, ch FactorChallenge, proof string) error
}

// FactorChallenge identifies what a proof is for, so factors that issue a
// challenge first (WebAuthn) can bind their answer to it.
type FactorChallenge struct {
	// ID is stable for one pending sign-in (derived from its token, never
	// the token itself) or one session's step-up (the session id).
	ID string
	// StepUp is true when the proof is for a step-up in a session.
	StepUp bool
}

// RegisterFactor adds a second factor kind (replacing one of the same kind).
func (id *Service) RegisterFactor(f SecondFactor) {
	id.mu.Lock()
	defer id.mu.Unlock()
	for i, g := range id.factors {
		if g.Kind() == f.Kind() {
			id.factors[i] = f
			return
		}
	}
	id.factors = append(id.factors, f)
}

func (id *Service) factor(kind FactorKind) SecondFactor {
	id.mu.Lock()
	defer id.mu.Unlock()
	for _, f := range id.factors {
		if f.Kind() == kind {
			return f
		}
	}
	return nil
}

// enrolledFactors returns the factor kinds u has enrolled, in registration order.
func (id *Service) enrolledFactors(ctx context.Context, u *haven.User) ([]FactorKind, error) {
	id.mu.Lock()
	fs := append([]SecondFactor(nil), id.factors...)
	id.mu.Unlock()
	var out []FactorKind
	for _, f := range fs {
		ok, err := f.Enrolled(ctx, u)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, f.Kind())
		}
	}
	return out, nil
}

// totpSecret is where u's TOTP secret (and one being enrolled) is sealed:
// their own user record.
func totpSecret(u *haven.User) service.SealedField {
	return service.SealedField{Kind: "user", RecordID: u.ID, Field: "totp_secret"}
}

// totpFactor is the authenticator-app factor. Its secret is sealed like
// PHI (a thief of the database must not be able to mint codes) under the
// user's key: a patient's own data key, so shredding a patient erases it.
type totpFactor struct{ id *Service }

func (totpFactor) Kind() FactorKind { return FactorTOTP }

func (f totpFactor) Enrolled(ctx context.Context, u *haven.User) (bool, error) {
	r, err := f.id.db.TOTP(ctx, u.ID)
	return r.Active(), err
}

func (f totpFactor) Verify(ctx context.Context, u *haven.User, _ FactorChallenge, code string) error {
	r, err := f.id.db.TOTP(ctx, u.ID)
	if err != nil {
		return err
	}
	if !r.Active() {
		return errBadFactor
	}
	secret, err := f.id.gate.OpenUser(ctx, u, totpSecret(u), r.Secret)
	if err != nil {
		return err
	}
	// totp.Use refuses steps at or before LastStep and then advances it
	// with a compare-and-set, so a code works once even under a race.
	return totp.Use(ctx, f.id.db, u.ID, string(secret), code, f.id.now(), r.LastStep)
}

// recoveryFactor is the single-use recovery codes issued at enrolment.
type recoveryFactor struct{ id *Service }

func (recoveryFactor) Kind() FactorKind { return FactorRecovery }

func (f recoveryFactor) Enrolled(ctx context.Context, u *haven.User) (bool, error) {
	hs, err := f.id.db.RecoveryCodes(ctx, u.ID)
	return len(hs) > 0, err
}

func (f recoveryFactor) Verify(ctx context.Context, u *haven.User, _ FactorChallenge, code string) error {
	_, err := recovery.Redeem(ctx, f.id.db, u.ID, code)
	return err
}

// TOTPEnrolment is what the enrolment page shows: the otpauth URI (drawn
// as a QR code) and the secret for typing by hand. Both are credentials:
// they go to the enrolling user's screen and nowhere else.
type TOTPEnrolment struct {
	Secret  string
	URI     string
	Issuer  string
	Account string
	Expires time.Time // the pending secret must be confirmed before then
	// Binding names this pending secret for the browser that was shown it
	// (a cookie, web's TOTPEnrolCookie): given back to BeginTOTP or
	// BeginPendingEnrolment, it shows the same secret again, so a reload or
	// a mistyped code never changes the secret an app has just scanned. It
	// is a hash of the sealed secret: it says nothing of the secret.
	Binding string
}

// enrolBinding is the binding of a sealed pending secret.
func enrolBinding(sealed []byte) string {
	sum := sha256.Sum256(sealed)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// enrolTTL is how long a pending secret waits for its first code.
const enrolTTL = 15 * time.Minute

// beginTOTP returns what to show to enrol u's authenticator: the pending
// secret that resume binds, if it is still pending and unexpired (the
// same browser asking again), or else a fresh one, stored in its place.
func (id *Service) beginTOTP(ctx context.Context, u *haven.User, resume string) (*TOTPEnrolment, error) {
	prof, err := id.gate.Profile(ctx, u)
	if err != nil {
		return nil, err
	}
	issuer := "Haven"
	if u.PracticeID != "" {
		if p, err := id.db.FindPracticeByID(ctx, u.PracticeID); err == nil {
			issuer = "Haven " + p.Name
		}
	}
	now := id.now()
	if resume != "" {
		r, err := id.db.TOTP(ctx, u.ID)
		if err != nil {
			return nil, err
		}
		if r.Pending != nil && now.Sub(r.PendingSince) <= enrolTTL &&
			subtle.ConstantTimeCompare([]byte(enrolBinding(r.Pending)), []byte(resume)) == 1 {
			secret, err := id.gate.OpenUser(ctx, u, totpSecret(u), r.Pending)
			if err != nil {
				return nil, err
			}
			return &TOTPEnrolment{Secret: string(secret), URI: totp.URI(string(secret), issuer, prof.Email), Issuer: issuer,
				Account: prof.Email, Expires: r.PendingSince.Add(enrolTTL), Binding: resume}, nil
		}
	}
	secret := totp.NewSecret()
	sealed, err := id.gate.SealUser(ctx, u, totpSecret(u), []byte(secret))
	if err != nil {
		return nil, err
	}
	if err := id.db.SetPendingTOTP(ctx, u.ID, sealed, now); err != nil {
		return nil, err
	}
	return &TOTPEnrolment{Secret: secret, URI: totp.URI(secret, issuer, prof.Email), Issuer: issuer, Account: prof.Email,
		Expires: now.Add(enrolTTL), Binding: enrolBinding(sealed)}, nil
}

var errEnrolExpired = haven.Errorf(haven.EINVALID, "the enrolment has expired; start again")

// confirmTOTP checks code against u's pending secret and makes it active.
func (id *Service) confirmTOTP(ctx context.Context, u *haven.User, code string) error {
	r, err := id.db.TOTP(ctx, u.ID)
	if err != nil {
		return err
	}
	now := id.now()
	if r.Pending == nil || now.Sub(r.PendingSince) > enrolTTL {
		return errEnrolExpired
	}
	secret, err := id.gate.OpenUser(ctx, u, totpSecret(u), r.Pending)
	if err != nil {
		return err
	}
	step, err := totp.Validate(string(secret), code, now, 0)
	if err != nil {
		return err
	}
	ok, err := id.db.ConfirmTOTP(ctx, u.ID, r.PendingSince, step, now)
	if err != nil {
		return err
	}
	if !ok {
		return errEnrolExpired
	}
	return nil
}

// BeginPendingEnrolment starts TOTP enrolment inside a pending sign-in, for
// a user who must have MFA and has none yet (a new workforce member). A
// user who already has a factor cannot enrol here: a password alone must
// never be enough to add an authenticator to a protected account.
// resume is the Binding of the enrolment this browser was shown, if any.
func (id *Service) BeginPendingEnrolment(ctx context.Context, token string, c Client, resume string) (*TOTPEnrolment, error) {
	p, err := id.Pending(ctx, token, c)
	if err != nil {
		return nil, err
	}
	if len(p.Factors) > 0 {
		return nil, haven.Errorf(haven.EFORBIDDEN, "this account already has a second factor; use it to sign in")
	}
	return id.beginTOTP(ctx, p.user, resume)
}

// ConfirmPendingEnrolment finishes a pending sign-in's enrolment with the
// first code from the new authenticator, issues recovery codes (returned
// once) and starts the session.
func (id *Service) ConfirmPendingEnrolment(ctx context.Context, token, code string, c Client) (*LoginResult, error) {
	p, err := id.Pending(ctx, token, c)
	if err != nil {
		return nil, err
	}
	if len(p.Factors) > 0 {
		return nil, haven.Errorf(haven.EFORBIDDEN, "this account already has a second factor; use it to sign in")
	}
	u := p.user
	att := id.attemptFor(ctx, u, c)
	if err := id.allow(ctx, att); err != nil {
		return nil, err
	}
	if err := id.confirmTOTP(ctx, u, code); err != nil {
		if code := haven.ErrorCode(err); code == haven.EUNAUTHORIZED || code == haven.EINVALID {
			id.throttle.Failure(ctx, att)
		}
		return nil, err
	}
	if _, err := id.db.UseAuthToken(ctx, p.hash, sqlstore.TokenLogin, id.now()); err != nil {
		return nil, errNoPending
	}
	if err := id.record(ctx, userEvent(u, c, "", ActMFAEnrol), true, string(FactorTOTP)); err != nil {
		return nil, err
	}
	codes, err := recovery.Issue(ctx, id.db, u.ID)
	if err != nil {
		return nil, err
	}
	if err := id.record(ctx, userEvent(u, c, "", ActRecoveryIssue), true, ""); err != nil {
		return nil, err
	}
	res, err := id.finish(ctx, u, true, string(FactorTOTP), c)
	if err != nil {
		return nil, err
	}
	res.RecoveryCodes = codes
	return res, nil
}

// signedIn returns the actor in ctx and their account.
func (id *Service) signedIn(ctx context.Context) (haven.Actor, *haven.User, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return a, nil, err
	}
	u, err := id.db.FindUserByID(ctx, a.UserID)
	if err != nil {
		return a, nil, err
	}
	if u.Disabled {
		return a, nil, errNoSession
	}
	return a, u, nil
}

// BeginTOTP starts enrolling (or replacing) the signed-in user's
// authenticator. Changing factors is sensitive: it needs a fresh
// authentication (with the current second factor, if any). resume is the
// Binding of the enrolment this browser was shown, if any.
func (id *Service) BeginTOTP(ctx context.Context, resume string) (*TOTPEnrolment, error) {
	_, u, err := id.signedIn(ctx)
	if err != nil {
		return nil, err
	}
	if err := id.RequireFreshAuth(ctx); err != nil {
		return nil, err
	}
	return id.beginTOTP(ctx, u, resume)
}

// MFAChange is the result of enrolling or removing a factor: every other
// session has ended, and this browser continues in Session.
type MFAChange struct {
	Session       *NewSession
	RecoveryCodes []string // shown once
}

// ConfirmTOTP activates the signed-in user's pending authenticator with
// its first code, issues fresh recovery codes and ends every other
// session (whoever might have been signed in before the change is out).
func (id *Service) ConfirmTOTP(ctx context.Context, code string, c Client) (*MFAChange, error) {
	a, u, err := id.signedIn(ctx)
	if err != nil {
		return nil, err
	}
	if err := id.RequireFreshAuth(ctx); err != nil {
		return nil, err
	}
	att := id.attemptFor(ctx, u, c)
	if err := id.allow(ctx, att); err != nil {
		return nil, err
	}
	if err := id.confirmTOTP(ctx, u, code); err != nil {
		if code := haven.ErrorCode(err); code == haven.EUNAUTHORIZED || code == haven.EINVALID {
			id.throttle.Failure(ctx, att)
		}
		return nil, err
	}
	if err := id.record(ctx, audit.ForActor(a, ActMFAEnrol), true, string(FactorTOTP)); err != nil {
		return nil, err
	}
	codes, err := recovery.Issue(ctx, id.db, u.ID)
	if err != nil {
		return nil, err
	}
	if err := id.record(ctx, audit.ForActor(a, ActRecoveryIssue), true, ""); err != nil {
		return nil, err
	}
	s, err := id.rotate(ctx, a, u, true, string(FactorTOTP), c)
	if err != nil {
		return nil, err
	}
	return &MFAChange{Session: s, RecoveryCodes: codes}, nil
}

// RemoveTOTP removes the signed-in user's authenticator (and recovery
// codes, which exist to stand in for it) after a fresh authentication. A
// workforce member, who must have MFA, cannot remove their only factor:
// they replace it with BeginTOTP instead. Every session ends; this browser
// continues in a new one.
func (id *Service) RemoveTOTP(ctx context.Context, c Client) (*MFAChange, error) {
	a, u, err := id.signedIn(ctx)
	if err != nil {
		return nil, err
	}
	if err := id.RequireFreshAuth(ctx); err != nil {
		return nil, err
	}
	factors, err := id.enrolledFactors(ctx, u)
	if err != nil {
		return nil, err
	}
	others := 0
	for _, f := range factors {
		if f != FactorTOTP && f != FactorRecovery {
			others++
		}
	}
	pol, err := id.SessionPolicy(ctx, u.PracticeID, u.Role)
	if err != nil {
		return nil, err
	}
	if pol.RequireMFA && others == 0 {
		return nil, haven.Errorf(haven.EFORBIDDEN, "your role requires a second factor: set up a new authenticator to replace this one")
	}
	if err := id.record(ctx, audit.ForActor(a, ActMFARemove), true, string(FactorTOTP)); err != nil {
		return nil, err
	}
	if err := id.db.DeleteTOTP(ctx, u.ID); err != nil {
		return nil, err
	}
	if others == 0 {
		if err := id.db.ReplaceRecoveryCodes(ctx, u.ID, nil); err != nil {
			return nil, err
		}
	}
	s, err := id.rotate(ctx, a, u, others > 0, "", c)
	if err != nil {
		return nil, err
	}
	return &MFAChange{Session: s}, nil
}

// RegenerateRecoveryCodes replaces the signed-in user's recovery codes
// (after a fresh authentication) and returns the new set, shown once.
func (id *Service) RegenerateRecoveryCodes(ctx context.Context) ([]string, error) {
	a, u, err := id.signedIn(ctx)
	if err != nil {
		return nil, err
	}
	if err := id.RequireFreshAuth(ctx); err != nil {
		return nil, err
	}
	factors, err := id.enrolledFactors(ctx, u)
	if err != nil {
		return nil, err
	}
	primary := false
	for _, f := range factors {
		primary = primary || f != FactorRecovery
	}
	if !primary {
		return nil, haven.Errorf(haven.EINVALID, "set up an authenticator first")
	}
	if err := id.record(ctx, audit.ForActor(a, ActRecoveryIssue), true, ""); err != nil {
		return nil, err
	}
	return recovery.Issue(ctx, id.db, u.ID)
}

// ResetMFA is a practice admin's (or the platform operator's) reset of a
// user who lost every factor: it needs the admin's own step-up, removes the
// user's authenticator and recovery codes, and ends all their sessions, so
// the user enrols afresh at their next sign-in. The audit log records who
// reset whom.
func (id *Service) ResetMFA(ctx context.Context, userID string) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	u, err := id.userFor(ctx, policy.MFAReset, policy.KindUser, userID)
	if err != nil {
		return err
	}
	if _, _, err := id.gate.AuthorizeRecord(ctx, policy.MFAReset, userResource(u), userID); err != nil {
		return err
	}
	if u.ID == a.UserID {
		return haven.Errorf(haven.EFORBIDDEN, "ask another administrator to reset your own second factor")
	}
	if err := id.db.DeleteTOTP(ctx, u.ID); err != nil {
		return err
	}
	// Passkeys too (passkeys.go): a lost or stolen one must not outlive the reset.
	if _, err := id.db.DeleteUserWebAuthnCredentials(ctx, u.ID); err != nil {
		return err
	}
	if err := id.db.ReplaceRecoveryCodes(ctx, u.ID, nil); err != nil {
		return err
	}
	return id.endEverything(ctx, u.ID)
}
