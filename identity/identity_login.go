package identity

import (
	"context"
	"encoding/hex"
	"time"

	"haven"
	"haven/auth/session"
	"haven/auth/throttle"
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

// Factors returns the factor kinds u has enrolled, in registration order.
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

// LoginStage is where a sign-in stands.
type LoginStage string

const (
	StageDone         LoginStage = "done"            // a session was started
	StageSecondFactor LoginStage = "second_factor"   // password accepted; a second factor is needed
	StageEnrol        LoginStage = "enrol"           // password accepted; MFA is required and none is enrolled yet
	StageChoose       LoginStage = "choose_practice" // the email and password match accounts in several practices
)

// LoginResult is the outcome of a sign-in step.
type LoginResult struct {
	Stage LoginStage
	// Pending is the token of a sign-in waiting for its next step. It is a
	// credential for PendingLoginTTL: keep it in a short-lived cookie.
	Pending string
	// Factors are the second factors the user may use (StageSecondFactor).
	Factors []FactorKind
	// Choices are the accounts to pick from (StageChoose), each with its
	// own pending token.
	Choices []LoginChoice
	// Session is the new session (StageDone).
	Session *NewSession
	// RecoveryCodes are shown once, after a first enrolment.
	RecoveryCodes []string
	// RecoveryLeft is how many recovery codes remain after one was used.
	RecoveryLeft int
}

// LoginChoice is one of several accounts an email and password opened.
type LoginChoice struct {
	PracticeID   string
	PracticeName string
	Role         haven.Role
	Pending      string
}

// Login checks an email and password. The answer for an unknown email, a
// disabled account and a wrong password is the same error after the same
// work (one argon2id hash, the same throttle and audit writes), so
// neither message, status nor timing tells who has an account. A throttled
// attempt is refused before any hash is computed.
func (id *Service) Login(ctx context.Context, email, password string, c Client) (*LoginResult, error) {
	index, err := id.gate.EmailIndex(ctx, email)
	if err != nil {
		return nil, err
	}
	users, err := id.db.FindUsersByEmailIndex(ctx, index)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "sign-in is unavailable")
	}
	var live []*haven.User
	var ids []string
	for _, u := range users {
		ids = append(ids, u.ID)
		if !u.Disabled && u.PasswordHash != "" {
			live = append(live, u)
		}
	}
	known := false
	if h := c.knownDeviceHash(); h != nil {
		// Asked for an unknown email too (of an id no account has), so the
		// query's cost does not tell the two apart.
		probe := ids
		if len(probe) == 0 {
			probe = []string{"-"}
		}
		if known, err = id.db.KnownDevice(ctx, h, probe...); err != nil {
			return nil, err
		}
	}
	att := throttle.Attempt{Account: accountKey(index), Addr: c.Addr, KnownDevice: known, Device: c.throttleDevice()}
	// Events about a known account go to its practice's log with its id;
	// about an unknown email, to the platform's log with no actor (never
	// the email itself).
	failEvent := func(reason string) error {
		ev := c.event(ActLogin)
		if len(users) > 0 {
			ev = userEvent(users[0], c, "", ActLogin)
		}
		return id.record(ctx, ev, false, reason)
	}
	if wait, err := id.throttle.Allow(ctx, att); err != nil {
		if haven.ErrorCode(err) != haven.ETOOMANY {
			return nil, err
		}
		if rerr := failEvent("throttled"); rerr != nil {
			return nil, rerr
		}
		return nil, throttled(err, wait)
	}

	var matched []*haven.User
	if len(live) == 0 {
		if err := id.passwords.VerifyDummy(ctx, password); err != nil {
			return nil, err
		}
	}
	for _, u := range live {
		// Every candidate is checked, so the time taken depends on how many
		// accounts share the address, not on which password matched.
		ok, rehash, err := id.passwords.Verify(ctx, password, u.PasswordHash)
		if err != nil {
			return nil, err
		}
		if ok {
			matched = append(matched, u)
			if rehash {
				id.rehash(ctx, u, password)
			}
		}
	}
	if len(matched) == 0 {
		reason := "bad_password"
		if len(live) == 0 {
			reason = "unknown_account"
		}
		if err := id.failure(ctx, att, failEvent, reason); err != nil {
			return nil, err
		}
		return nil, errBadLogin
	}

	now := id.now()
	if len(matched) == 1 {
		u := matched[0]
		token, err := id.pendingLogin(ctx, u, c, now)
		if err != nil {
			return nil, err
		}
		if err := id.record(ctx, userEvent(u, c, "", ActPassword), true, ""); err != nil {
			return nil, err
		}
		return id.next(ctx, u, token, c)
	}
	res := &LoginResult{Stage: StageChoose}
	for _, u := range matched {
		token, err := id.pendingLogin(ctx, u, c, now)
		if err != nil {
			return nil, err
		}
		if err := id.record(ctx, userEvent(u, c, "", ActPassword), true, ""); err != nil {
			return nil, err
		}
		name := ""
		if p, err := id.db.FindPracticeByID(ctx, u.PracticeID); err == nil {
			name = p.Name
		}
		res.Choices = append(res.Choices, LoginChoice{PracticeID: u.PracticeID, PracticeName: name, Role: u.Role, Pending: token})
	}
	return res, nil
}

// failure counts a failed attempt, records it, and records the start of a
// backoff when this failure began one.
func (id *Service) failure(ctx context.Context, att throttle.Attempt, record func(string) error, reason string) error {
	if err := id.throttle.Failure(ctx, att); err != nil {
		return err
	}
	if err := record(reason); err != nil {
		return err
	}
	if _, err := id.throttle.Allow(ctx, att); haven.ErrorCode(err) == haven.ETOOMANY {
		// The event names no email and no count, only that waiting began.
		return record("backoff_started")
	}
	return nil
}

// rehash stores a hash with the current parameters after a sign-in proved
// the password, unless the password changed meanwhile. A failure is not
// the user's problem: the old hash still works.
func (id *Service) rehash(ctx context.Context, u *haven.User, password string) {
	h, err := id.passwords.Hash(ctx, password)
	if err != nil {
		return
	}
	if ok, _ := id.db.ReplacePasswordHash(ctx, u.ID, u.PasswordHash, h); ok {
		u.PasswordHash = h
	}
}

// pendingLogin stores a sign-in that passed its password, bound to the
// client's device, and returns its token.
func (id *Service) pendingLogin(ctx context.Context, u *haven.User, c Client, now time.Time) (string, error) {
	token, hash := session.NewToken()
	err := id.db.CreateAuthToken(ctx, sqlstore.AuthToken{Hash: hash, Kind: sqlstore.TokenLogin, UserID: u.ID, PracticeID: u.PracticeID,
		Role: u.Role, ClientAddr: c.Addr, DeviceHash: c.deviceHash(), CreatedAt: now, ExpiresAt: now.Add(PendingLoginTTL)})
	return token, err
}

// next decides what a sign-in that passed its password needs now.
func (id *Service) next(ctx context.Context, u *haven.User, token string, c Client) (*LoginResult, error) {
	factors, err := id.enrolledFactors(ctx, u)
	if err != nil {
		return nil, err
	}
	if len(factors) > 0 {
		return &LoginResult{Stage: StageSecondFactor, Pending: token, Factors: factors}, nil
	}
	pol, err := id.SessionPolicy(ctx, u.PracticeID, u.Role)
	if err != nil {
		return nil, err
	}
	if pol.RequireMFA {
		return &LoginResult{Stage: StageEnrol, Pending: token}, nil
	}
	// A patient without a second factor, where the practice allows it.
	hash, _ := session.HashToken(token)
	if _, err := id.db.UseAuthToken(ctx, hash, sqlstore.TokenLogin, id.now()); err != nil {
		return nil, err
	}
	return id.finish(ctx, u, false, "", c)
}

// finish records a completed sign-in and starts its session.
func (id *Service) finish(ctx context.Context, u *haven.User, mfa bool, factor string, c Client) (*LoginResult, error) {
	reason := factor
	if reason == "" {
		reason = "password_only"
	}
	if err := id.record(ctx, userEvent(u, c, "", ActLogin), true, reason); err != nil {
		return nil, err
	}
	s, err := id.startSession(ctx, u, mfa, factor, c)
	if err != nil {
		return nil, err
	}
	att := id.attemptFor(ctx, u, c)
	if err := id.throttle.Success(ctx, att); err != nil {
		return nil, err
	}
	// This device signed in: from now on strangers failing against the
	// account from elsewhere do not hold it back (auth/throttle). That is
	// a completed sign-in, with the second factor where the account has
	// one; for a patient without one, the right password is the sign-in,
	// and otherwise a stranger could lock them out of their own browser.
	if h := c.knownDeviceHash(); h != nil {
		if err := id.db.RememberDevice(ctx, u.ID, h, id.now()); err != nil {
			return nil, err
		}
	}
	return &LoginResult{Stage: StageDone, Session: s}, nil
}

// PendingLogin is a sign-in waiting for its second factor or enrolment.
type PendingLogin struct {
	UserID     string
	PracticeID string
	Role       haven.Role
	Challenge  FactorChallenge
	Factors    []FactorKind // enrolled; empty means the user must enrol
	Expires    time.Time
	user       *haven.User
	hash       []byte
}

var errNoPending = haven.Errorf(haven.EUNAUTHORIZED, "your sign-in has expired; please start again")

// Pending returns the sign-in that token continues, if it is still
// pending and presented from the device that began it.
func (id *Service) Pending(ctx context.Context, token string, c Client) (*PendingLogin, error) {
	hash, err := session.HashToken(token)
	if err != nil {
		return nil, errNoPending
	}
	t, err := id.db.FindAuthToken(ctx, hash, sqlstore.TokenLogin, id.now())
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return nil, errNoPending
	}
	if err != nil {
		return nil, err
	}
	if t.DeviceHash != c.deviceHash() {
		// A pending sign-in lifted from one browser is no use in another.
		return nil, errNoPending
	}
	u, err := id.db.FindUserByID(ctx, t.UserID)
	if err != nil || u.Disabled {
		return nil, errNoPending
	}
	factors, err := id.enrolledFactors(ctx, u)
	if err != nil {
		return nil, err
	}
	return &PendingLogin{UserID: u.ID, PracticeID: u.PracticeID, Role: u.Role, Factors: factors, Expires: t.ExpiresAt,
		Challenge: FactorChallenge{ID: "login-" + hex.EncodeToString(hash[:16])}, user: u, hash: hash}, nil
}

// Continue picks up a pending sign-in (after the user chose among several
// accounts): it says what it needs next, or finishes it.
func (id *Service) Continue(ctx context.Context, token string, c Client) (*LoginResult, error) {
	p, err := id.Pending(ctx, token, c)
	if err != nil {
		return nil, err
	}
	return id.next(ctx, p.user, token, c)
}

var errBadFactor = haven.Errorf(haven.EUNAUTHORIZED, "that code is not valid; try again")

// SecondFactor completes a pending sign-in with a proof of kind. Wrong
// proofs count against the account's throttle and the pending sign-in:
// after MaxFactorAttempts it ends and the password must be given again.
func (id *Service) SecondFactor(ctx context.Context, token string, kind FactorKind, proof string, c Client) (*LoginResult, error) {
	p, err := id.Pending(ctx, token, c)
	if err != nil {
		return nil, err
	}
	u := p.user
	f := id.factor(kind)
	if f == nil || !hasFactor(p.Factors, kind) {
		return nil, haven.Errorf(haven.EINVALID, "that kind of second factor is not set up for this account")
	}
	att := id.attemptFor(ctx, u, c)
	if wait, err := id.throttle.Allow(ctx, att); err != nil {
		if haven.ErrorCode(err) != haven.ETOOMANY {
			return nil, err
		}
		if rerr := id.record(ctx, userEvent(u, c, "", ActLogin), false, "throttled"); rerr != nil {
			return nil, rerr
		}
		return nil, throttled(err, wait)
	}
	if err := f.Verify(ctx, u, p.Challenge, proof); err != nil {
		code := haven.ErrorCode(err)
		if code != haven.EUNAUTHORIZED && code != haven.EINVALID {
			return nil, err
		}
		record := func(reason string) error { return id.record(ctx, userEvent(u, c, "", ActLogin), false, reason) }
		if ferr := id.failure(ctx, att, record, "bad_"+string(kind)); ferr != nil {
			return nil, ferr
		}
		if n, _ := id.db.CountTokenAttempt(ctx, p.hash); n >= MaxFactorAttempts {
			id.db.UseAuthToken(ctx, p.hash, sqlstore.TokenLogin, id.now())
			return nil, errNoPending
		}
		if code == haven.EINVALID {
			return nil, err
		}
		return nil, errBadFactor
	}
	// Use the pending sign-in up; of two racing requests only one gets here.
	if _, err := id.db.UseAuthToken(ctx, p.hash, sqlstore.TokenLogin, id.now()); err != nil {
		return nil, errNoPending
	}
	res, err := id.finish(ctx, u, true, string(kind), c)
	if err != nil {
		return nil, err
	}
	if kind == FactorRecovery {
		codes, _ := id.db.RecoveryCodes(ctx, u.ID)
		res.RecoveryLeft = len(codes)
	}
	return res, nil
}

func hasFactor(fs []FactorKind, k FactorKind) bool {
	for _, f := range fs {
		if f == k {
			return true
		}
	}
	return false
}

// StepUpRequest is the proof a step-up gives.
type StepUpRequest struct {
	Password string     // required when the session was challenged or the user has no second factor
	Factor   FactorKind // required when the user has a second factor
	Proof    string
}

var errStepUpFailed = haven.Errorf(haven.EUNAUTHORIZED, "that did not match; try again")

// StepUp re-authenticates the session in ctx: a second factor if the user
// has one, the password if not, and both when the session was challenged
// because its address or device changed. On success the session's
// AuthTime is now (policy's step-up window opens again), its challenge is
// lifted, and it belongs to the client's current address and device.
func (id *Service) StepUp(ctx context.Context, req StepUpRequest, c Client) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	rec, err := id.db.SessionRecordByID(ctx, a.UserID, a.SessionID)
	if err != nil || !rec.RevokedAt.IsZero() {
		return errNoSession
	}
	u, err := id.db.FindUserByID(ctx, a.UserID)
	if err != nil || u.Disabled {
		return errNoSession
	}
	factors, err := id.enrolledFactors(ctx, u)
	if err != nil {
		return err
	}
	challenged := !rec.ChallengedAt.IsZero()
	needPassword := challenged || len(factors) == 0 || req.Password != ""
	needFactor := len(factors) > 0
	if needPassword && req.Password == "" {
		return haven.Errorf(haven.EINVALID, "enter your password")
	}
	if needFactor && (req.Proof == "" || !hasFactor(factors, req.Factor)) {
		return haven.Errorf(haven.EINVALID, "enter a code from your authenticator app or a recovery code")
	}
	att := id.attemptFor(ctx, u, c)
	ev := func(reason string, allow bool) error {
		e := userEvent(u, c, rec.ID, ActStepUp)
		e.ResourceKind, e.ResourceID = "session", rec.ID
		return id.record(ctx, e, allow, reason)
	}
	if wait, err := id.throttle.Allow(ctx, att); err != nil {
		if haven.ErrorCode(err) != haven.ETOOMANY {
			return err
		}
		if rerr := ev("throttled", false); rerr != nil {
			return rerr
		}
		return throttled(err, wait)
	}
	fail := func(reason string) error {
		if err := id.failure(ctx, att, func(r string) error { return ev(r, false) }, reason); err != nil {
			return err
		}
		return errStepUpFailed
	}
	if needPassword {
		ok, _, err := id.passwords.Verify(ctx, req.Password, u.PasswordHash)
		if err != nil {
			return err
		}
		if !ok {
			return fail("bad_password")
		}
	}
	factor := rec.Factor
	if needFactor {
		err := id.factor(req.Factor).Verify(ctx, u, FactorChallenge{ID: rec.ID, StepUp: true}, req.Proof)
		if code := haven.ErrorCode(err); code == haven.EUNAUTHORIZED || code == haven.EINVALID {
			return fail("bad_" + string(req.Factor))
		} else if err != nil {
			return err
		}
		factor = string(req.Factor)
	}
	reason := "fresh_auth"
	if challenged {
		reason = "challenge_passed"
	}
	if err := ev(reason, true); err != nil {
		return err
	}
	if err := id.db.Reauthenticate(ctx, rec.ID, id.now(), needFactor || rec.MFA, factor, c.Addr, c.deviceHash()); err != nil {
		return errNoSession
	}
	return id.throttle.Success(ctx, att)
}

// RequireFreshAuth is for services whose sensitive acts are not decided by
// policy.Decide: it returns ESTEPUP unless the actor in ctx authenticated
// within the practice's step-up window, with a second factor when the
// user has one.
func (id *Service) RequireFreshAuth(ctx context.Context) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	now := id.now()
	age := now.Sub(a.AuthTime)
	if a.AuthTime.IsZero() || age < -time.Minute || age > id.stepUpMaxAge(ctx, a.PracticeID) {
		return haven.Errorf(haven.ESTEPUP, "this action needs a fresh authentication")
	}
	if !a.MFA {
		u, err := id.db.FindUserByID(ctx, a.UserID)
		if err != nil {
			return err
		}
		fs, err := id.enrolledFactors(ctx, u)
		if err != nil {
			return err
		}
		if len(fs) > 0 {
			return haven.Errorf(haven.ESTEPUP, "this action needs a fresh authentication with your second factor")
		}
	}
	return nil
}

// WhoAmI describes the signed-in user without opening anything sealed.
type WhoAmI struct {
	UserID, PracticeID, PracticeName, SessionID string
	Role                                        haven.Role
	MFA                                         bool
	AuthTime                                    time.Time
	Factors                                     []FactorKind
}

// Who returns what the session in ctx is.
func (id *Service) Who(ctx context.Context) (*WhoAmI, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	w := &WhoAmI{UserID: a.UserID, PracticeID: a.PracticeID, SessionID: a.SessionID, Role: a.Role, MFA: a.MFA, AuthTime: a.AuthTime}
	if a.PracticeID != "" {
		if p, err := id.db.FindPracticeByID(ctx, a.PracticeID); err == nil {
			w.PracticeName = p.Name
		}
	}
	u, err := id.db.FindUserByID(ctx, a.UserID)
	if err != nil {
		return nil, err
	}
	if w.Factors, err = id.enrolledFactors(ctx, u); err != nil {
		return nil, err
	}
	return w, nil
}
