package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
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

// Service is who may come in, and for how long: sign-in with a password
// and a second factor, sessions with their timeouts and revocation,
// step-up, throttling, password resets and invitations. It opens sealed
// values (a TOTP secret, an invited address) and writes the audit log only
// through the service's gate; web calls it and never sees a key.
//
// Service holds the state the PHI service does not need (the outbox, the
// throttle, the registered second factors); build it with New over the
// gate of the service it belongs to.
type Service struct {
	gate      *service.Gate
	db        *sqlstore.DB
	now       func() time.Time
	passwords *password.Hasher
	outbox    outbox.Outbox
	throttle  *throttle.Throttle
	baseURL   string
	policyFn  func(ctx context.Context, practiceID string, role haven.Role) (session.Policy, error)

	mu      sync.Mutex
	factors []SecondFactor
	cache   map[string]cachedPolicy // practice id → its session policy facts

	bg sync.WaitGroup // background sends (reset emails), waited for by Close
}

// Config is what New needs beyond the gate.
type Config struct {
	// DB holds accounts, sessions, tokens and credentials. Required.
	DB *sqlstore.DB
	// Outbox sends reset links and invitations. Required for those flows.
	Outbox outbox.Outbox
	// BaseURL is the public https:// origin links in emails point to.
	BaseURL string
	// Throttle slows password and code guessing; default: counts kept in
	// the database, shared by every node, with the throttle's defaults.
	Throttle *throttle.Throttle
	// SessionPolicy, if set, returns the session policy for a practice and
	// role (the practice's own timeouts). Identity still applies it within
	// the role's default, so it can only shorten timeouts or add MFA.
	SessionPolicy func(ctx context.Context, practiceID string, role haven.Role) (session.Policy, error)
}

// Lifetimes of identity's tokens.
const (
	PendingLoginTTL = 10 * time.Minute   // password passed, second factor or enrolment to come
	ResetTTL        = time.Hour          // a password reset link
	SetupTTL        = 72 * time.Hour     // a first-password link for a registered patient
	InvitationTTL   = 7 * 24 * time.Hour // an invitation to a practice's workforce
	// MaxFactorAttempts is how many wrong second factors one pending
	// sign-in may try before it is ended and the password must be given
	// again: with the throttle, this keeps a six-digit code out of reach.
	MaxFactorAttempts = 5
)

// New returns the identity service over the service's gate: it shares
// the service's clock and password pool.
func New(gate *service.Gate, cfg Config) *Service {
	id := &Service{gate: gate, db: cfg.DB, now: gate.Now, passwords: gate.Passwords(), outbox: cfg.Outbox, throttle: cfg.Throttle,
		baseURL: cfg.BaseURL, policyFn: cfg.SessionPolicy, cache: map[string]cachedPolicy{}}
	if id.throttle == nil {
		id.throttle = throttle.New(cfg.DB.ThrottleStore(), throttle.Config{}, gate.Now)
	}
	id.factors = []SecondFactor{totpFactor{id}, recoveryFactor{id}}
	return id
}

// Close waits for background work (emails being sent) to finish.
func (id *Service) Close() { id.bg.Wait() }

// Client is what the web layer knows about the requester. None of it is
// trusted as proof of anything; it is compared and recorded.
type Client struct {
	Addr         string // IP address of the connection
	UserAgent    string
	DeviceCookie string // the long-lived device cookie, or "" for none
	RequestID    string
}

// deviceHash is what a session remembers of the device it began on: a
// hash of the device cookie and the User-Agent, so the record holds no
// fingerprint in the clear and a cookie replayed from elsewhere differs.
func (c Client) deviceHash() string { return session.HashDevice(c.DeviceCookie, c.UserAgent) }

// knownDeviceHash is the stored form of the device cookie for throttling.
func (c Client) knownDeviceHash() []byte {
	if c.DeviceCookie == "" {
		return nil
	}
	h := sha256.Sum256([]byte("haven device v1\x00" + c.DeviceCookie))
	return h[:]
}

// throttleDevice names c's device to the throttle: the hex of its stored
// hash, never the cookie; "" without a device cookie.
func (c Client) throttleDevice() string {
	if h := c.knownDeviceHash(); h != nil {
		return hex.EncodeToString(h)
	}
	return ""
}

// event returns an audit event for action by the anonymous client c (a
// sign-in before anyone is known): no actor, the platform's log.
func (c Client) event(action string) audit.Event {
	return audit.ForActor(haven.Actor{ClientAddr: c.Addr, RequestID: c.RequestID}, action)
}

// userEvent returns an audit event for action concerning u, made by the
// client c: u's practice's log, u as the actor.
func userEvent(u *haven.User, c Client, sessionID, action string) audit.Event {
	return audit.ForActor(haven.Actor{UserID: u.ID, PracticeID: u.PracticeID, Role: u.Role, SessionID: sessionID,
		ClientAddr: c.Addr, RequestID: c.RequestID}, action)
}

// record appends a security event with its decision and reason.
func (id *Service) record(ctx context.Context, ev audit.Event, allow bool, reason string) error {
	ev.Purpose = audit.PurposeSecurity
	ev.Decision = audit.DecisionDeny
	if allow {
		ev.Decision = audit.DecisionAllow
	}
	ev.Reason = reason
	if ev.ResourceKind == "" && ev.ActorID != "" {
		ev.ResourceKind, ev.ResourceID = "user", ev.ActorID
	}
	return id.gate.Record(ctx, ev)
}

// Audit actions identity records.
const (
	ActLogin          = "auth.login"            // a completed or refused sign-in
	ActPassword       = "auth.password"         // password accepted, second factor to come
	ActLockout        = "auth.lockout"          // failures started a backoff
	ActLogout         = "auth.logout"           // the user signed out
	ActStepUp         = "auth.stepup"           // a fresh authentication within a session
	ActChallenge      = "auth.challenge"        // a session's address or device changed
	ActSessionRevoke  = "session.revoke"        // the user ended one or all of their sessions
	ActMFAEnrol       = "mfa.enrol"             // an authenticator was enrolled
	ActMFARemove      = "mfa.remove"            // an authenticator was removed
	ActRecoveryIssue  = "mfa.recovery_issue"    // a new set of recovery codes
	ActMFAReset       = "mfa.reset"             // an admin reset a user's factors
	ActPasswordChange = "account.password"      // the user changed their password
	ActResetRequest   = "account.reset_request" // a reset link was asked for
	ActPasswordReset  = "account.reset"         // a reset link was used
	ActInvite         = "user.invite"           // an admin invited someone
	ActInviteAccept   = "user.invite_accept"    // an invitation became an account
	ActDisable        = "user.disable"          // an admin disabled or re-enabled an account
	ActAccountSetup   = "account.setup"         // a first-password link was sent to a patient
)

// accountKey is how the throttle names an account: the email's blind index,
// whether or not an account has it.
func accountKey(index []byte) string { return hex.EncodeToString(index) }

type cachedPolicy struct {
	patientsMFA bool
	stepUp      time.Duration
	workforce   session.Policy // the practice's own timeouts (zero: none)
	patients    session.Policy
	at          time.Time
}

// policyCacheTTL bounds how stale a practice's MFA and step-up settings may
// be when a session is resumed; settings change rarely, requests often.
const policyCacheTTL = 30 * time.Second

// practicePolicy returns the practice facts sessions need, briefly cached.
func (id *Service) practicePolicy(ctx context.Context, practiceID string) (cachedPolicy, error) {
	now := id.now()
	id.mu.Lock()
	c, ok := id.cache[practiceID]
	id.mu.Unlock()
	if ok && now.Sub(c.at) < policyCacheTTL && !now.Before(c.at) {
		return c, nil
	}
	ps, err := id.gate.PracticeSettings(ctx, practiceID)
	if err != nil {
		return cachedPolicy{}, err
	}
	c = cachedPolicy{patientsMFA: ps.PatientsRequireMFA, stepUp: time.Duration(ps.StepUpMaxAge), at: now,
		workforce: session.Policy{Idle: time.Duration(ps.WorkforceIdle), Absolute: time.Duration(ps.WorkforceAbsolute)},
		patients:  session.Policy{Idle: time.Duration(ps.PatientIdle), Absolute: time.Duration(ps.PatientAbsolute)}}
	id.mu.Lock()
	id.cache[practiceID] = c
	id.mu.Unlock()
	return c, nil
}

// SessionPolicy returns the session policy for role in a practice: the
// role's default, shortened or made to require MFA by the practice.
func (id *Service) SessionPolicy(ctx context.Context, practiceID string, role haven.Role) (session.Policy, error) {
	p := session.DefaultPolicy(role)
	c, err := id.practicePolicy(ctx, practiceID)
	if err != nil {
		return p, err
	}
	if role == haven.RolePatient {
		p = p.Within(c.patients)
		if c.patientsMFA {
			p = p.Within(session.Policy{RequireMFA: true})
		}
	} else {
		p = p.Within(c.workforce)
	}
	if id.policyFn != nil {
		q, err := id.policyFn(ctx, practiceID, role)
		if err != nil {
			return p, err
		}
		p = p.Within(q)
	}
	return p, nil
}

// stepUpMaxAge is how old an authentication may be for a sensitive act.
func (id *Service) stepUpMaxAge(ctx context.Context, practiceID string) time.Duration {
	d := policy.DefaultStepUpMaxAge
	if c, err := id.practicePolicy(ctx, practiceID); err == nil && c.stepUp > 0 && c.stepUp < d {
		d = c.stepUp
	}
	return d
}

// errBadLogin is the one answer to a wrong email or password: the same
// message and status whether or not the account exists.
var errBadLogin = haven.Errorf(haven.EUNAUTHORIZED, "that email and password do not match an account")

// throttledError is ETOOMANY with how long to wait, for a Retry-After.
type throttledError struct {
	err  *haven.Error
	wait time.Duration
}

func (e *throttledError) Error() string { return e.err.Error() }
func (e *throttledError) Unwrap() error { return e.err }

// RetryAfter returns how long a throttled request should wait, or 0.
func RetryAfter(err error) time.Duration {
	var t *throttledError
	if errors.As(err, &t) {
		return t.wait
	}
	return 0
}

func throttled(err error, wait time.Duration) error {
	var he *haven.Error
	if !errors.As(err, &he) {
		he = haven.Errorf(haven.ETOOMANY, "too many attempts; try again later")
	}
	return &throttledError{err: he, wait: wait}
}

// attemptFor is the throttle's view of an attempt on u's account from c.
// KnownDevice is true only when c's device cookie completed a sign-in as u
// before, as the server recorded it.
func (id *Service) attemptFor(ctx context.Context, u *haven.User, c Client) throttle.Attempt {
	att := throttle.Attempt{Account: accountKey(u.EmailIndex), Addr: c.Addr, Device: c.throttleDevice()}
	if h := c.knownDeviceHash(); h != nil {
		att.KnownDevice, _ = id.db.KnownDevice(ctx, h, u.ID)
	}
	return att
}

// allow asks the throttle about att, turning a refusal into ETOOMANY with
// its wait.
func (id *Service) allow(ctx context.Context, att throttle.Attempt) error {
	wait, err := id.throttle.Allow(ctx, att)
	if err != nil && haven.ErrorCode(err) == haven.ETOOMANY {
		return throttled(err, wait)
	}
	return err
}
