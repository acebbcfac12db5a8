// Package session owns Haven's server-side sessions: the random token a
// browser holds, the record the server keeps, and the rules that end a
// session (idle and absolute timeouts, revocation) or demand more proof
// (step-up, a changed address or device).
//
// It never stores or logs a token: the server keeps only the token's
// SHA-256, so a leaked database or backup yields no usable session. It
// does no HTTP (the web layer sets the __Host- cookie) and no SQL (Store is
// implemented by the storage adapter). Every rule takes the time as an
// argument, so tests and callers decide what "now" is.
package session

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/netip"
	"time"

	"haven"
)

// TokenBytes is the token's entropy: 256 bits, beyond guessing however many
// requests an attacker sends.
const TokenBytes = 32

// tokenLen is the length of a token in unpadded base64url.
var tokenLen = base64.RawURLEncoding.EncodedLen(TokenBytes)

// NewToken returns a fresh token for the cookie and the hash to store.
func NewToken() (token string, hash []byte) {
	b := make([]byte, TokenBytes)
	if _, err := rand.Read(b); err != nil {
		panic("session: crypto/rand failed: " + err.Error())
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256(b)
	return token, h[:]
}

// HashToken returns the stored hash of a token presented by a client, or
// haven.EUNAUTHORIZED if it is not a well-formed token. A plain hash is
// enough (no salt, no slow hash): the token is 256 random bits, so there is
// nothing to guess, and lookups by hash stay a single indexed query. That
// lookup need not be constant-time either: an attacker cannot choose
// inputs whose hashes share a prefix with a real one.
func HashToken(token string) ([]byte, error) {
	if len(token) != tokenLen {
		return nil, errNoSession
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(b) != TokenBytes {
		return nil, errNoSession
	}
	h := sha256.Sum256(b)
	return h[:], nil
}

// Session is what the server knows about one signed-in browser or client.
type Session struct {
	ID         string // random id to list, revoke and audit by; not the token
	TokenHash  []byte // SHA-256 of the token; the token itself is never stored
	UserID     string
	PracticeID string
	Role       haven.Role
	CreatedAt  time.Time // start; the absolute timeout counts from here
	LastSeen   time.Time // last request; the idle timeout counts from here
	AuthTime   time.Time // last full sign-in or step-up
	MFA        bool      // a second factor was passed at AuthTime
	ClientAddr string    // address the session was established from
	DeviceHash string    // HashDevice of the client's device signals
	RevokedAt  time.Time // zero while the session is live
}

// New returns a session for a user who has just signed in at now, and the
// token to give their browser.
func New(userID, practiceID string, role haven.Role, mfa bool, clientAddr, deviceHash string, now time.Time) (token string, s Session) {
	token, hash := NewToken()
	now = now.UTC()
	return token, Session{
		ID:         haven.NewID(),
		TokenHash:  hash,
		UserID:     userID,
		PracticeID: practiceID,
		Role:       role,
		CreatedAt:  now,
		LastSeen:   now,
		AuthTime:   now,
		MFA:        mfa,
		ClientAddr: clientAddr,
		DeviceHash: deviceHash,
	}
}

// Policy is how long a session may live.
type Policy struct {
	Idle       time.Duration // ends after this long without a request
	Absolute   time.Duration // ends this long after sign-in, however active
	WarnBefore time.Duration // the page warns (and clears PHI from view) this long before the end
	RequireMFA bool          // a session without a second factor is not a session
}

// Defaults by role. Workforce sessions reach many patients' records, so
// they end sooner and always need MFA (HIPAA's automatic logoff; 15
// minutes idle is the common clinical choice); a patient sees only their
// own record, so theirs last longer and MFA is offered, not required.
var (
	WorkforcePolicy = Policy{Idle: 15 * time.Minute, Absolute: 12 * time.Hour, WarnBefore: 2 * time.Minute, RequireMFA: true}
	PatientPolicy   = Policy{Idle: 30 * time.Minute, Absolute: 24 * time.Hour, WarnBefore: 2 * time.Minute}
)

// DefaultPolicy returns the platform's policy for role. An unknown role
// gets the workforce policy, the stricter one.
func DefaultPolicy(role haven.Role) Policy {
	if role == haven.RolePatient {
		return PatientPolicy
	}
	return WorkforcePolicy
}

// Validate checks a policy a practice admin wants to set.
func (p Policy) Validate() error {
	switch {
	case p.Idle < time.Minute:
		return haven.Errorf(haven.EINVALID, "idle timeout must be at least one minute")
	case p.Absolute < p.Idle:
		return haven.Errorf(haven.EINVALID, "absolute timeout must be at least the idle timeout")
	case p.WarnBefore < 0 || p.WarnBefore >= p.Idle:
		return haven.Errorf(haven.EINVALID, "the warning must come before the idle timeout")
	}
	return nil
}

// Within returns p limited by a practice's policy: a practice may shorten
// timeouts and require MFA, never lengthen or relax them. Zero durations
// in practice mean "no limit of its own".
func (p Policy) Within(practice Policy) Policy {
	shorter := func(a, b time.Duration) time.Duration {
		if b > 0 && b < a {
			return b
		}
		return a
	}
	q := Policy{
		Idle:       shorter(p.Idle, practice.Idle),
		Absolute:   shorter(p.Absolute, practice.Absolute),
		WarnBefore: max(p.WarnBefore, practice.WarnBefore),
		RequireMFA: p.RequireMFA || practice.RequireMFA,
	}
	q.WarnBefore = min(q.WarnBefore, q.Idle/2)
	return q
}

// Expires returns when s ends under p if no request comes: the earlier of
// its idle and absolute deadlines.
func Expires(s Session, p Policy) time.Time {
	idle := s.LastSeen.Add(p.Idle)
	abs := s.CreatedAt.Add(p.Absolute)
	if abs.Before(idle) {
		return abs
	}
	return idle
}

// WarnAt returns when the page should warn that s is about to end.
func WarnAt(s Session, p Policy) time.Time { return Expires(s, p).Add(-p.WarnBefore) }

var (
	errNoSession = haven.Errorf(haven.EUNAUTHORIZED, "please sign in")
	errExpired   = haven.Errorf(haven.EUNAUTHORIZED, "your session has ended; please sign in again")
	errNoMFA     = haven.Errorf(haven.EUNAUTHORIZED, "a second factor is required; please sign in again")
)

// Check reports whether s may serve a request at now under p:
// haven.EUNAUTHORIZED if it was revoked, has been idle too long, has lived
// too long, or lacks a second factor p requires. It is a pure function of
// its arguments; call it on every request, before anything else.
func Check(s Session, p Policy, now time.Time) error {
	switch {
	case !s.RevokedAt.IsZero():
		return errExpired
	case s.CreatedAt.IsZero() || s.LastSeen.IsZero():
		return errNoSession // a record without its times is not one we made
	case !now.Before(Expires(s, p)):
		return errExpired
	case p.RequireMFA && !s.MFA:
		return errNoMFA
	}
	return nil
}

// NeedsStepUp reports whether s must re-authenticate (password and second
// factor again) before a sensitive action at now: prescribing, exporting,
// break-glass, MFA and role changes, admitting to a visit. It is true
// unless the last full authentication was within the given window and
// passed a second factor; an AuthTime in the future (a clock fault or a
// forged record) counts as stale.
func NeedsStepUp(s Session, now time.Time, within time.Duration) bool {
	if !s.MFA || s.AuthTime.IsZero() || s.AuthTime.After(now) {
		return true
	}
	return now.Sub(s.AuthTime) > within
}

// DeviceChanged reports whether a request from addr with device signals
// hashing to device comes from somewhere other than where s was
// established, so the caller challenges again (a stolen cookie replayed
// from the thief's machine). Addresses count as the same within an IPv4
// /24 or an IPv6 /64, so a phone moving within its carrier's or a clinic's
// network is not challenged at every step; anything that does not parse
// must match exactly. A device hash that appears, disappears or differs is
// a change: stripping the signal must not dodge the check.
func DeviceChanged(s Session, addr, device string) bool {
	return s.DeviceHash != device || network(s.ClientAddr) != network(addr)
}

func network(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		if ap, err2 := netip.ParseAddrPort(addr); err2 == nil {
			a = ap.Addr()
		} else {
			return "raw:" + addr
		}
	}
	a = a.Unmap().WithZone("")
	bits := 64
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p.String()
}

// HashDevice condenses a client's device signals (a long-lived device
// cookie, the User-Agent) into the DeviceHash stored with a session, so the
// record holds no browser fingerprint in the clear.
func HashDevice(signals ...string) string {
	h := sha256.New()
	for _, s := range signals {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}
