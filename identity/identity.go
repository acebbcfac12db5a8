package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"haven"
	"haven/audit"
	"haven/auth/outbox"
	"haven/auth/password"
	"haven/auth/session"
	"haven/auth/throttle"
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
		baseURL: cfg.BaseURL, policyFn: cfg.SessionPolicy}
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
	ev.Decision = haven.DecisionDeny
	if allow {
		ev.Decision = haven.DecisionAllow
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
