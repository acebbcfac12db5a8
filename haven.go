// Package haven holds Haven's domain: the types every other package speaks
// (practices, users, roles, actors, sealed values; patients, visits,
// message threads, care teams, break-glass grants, files, alerts, wrapped
// keys, audit queries) and its error codes. A record storage holds carries
// its PHI sealed; its opened form for a reader is a separate …View type
// that only the service makes. The package imports only the standard
// library, so the domain can be read without knowing which database, key
// store or transport is wired in.
package haven

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"strings"
	"time"
)

// Version is the build's version, set with -ldflags at build time.
var Version = "dev"

// NewID returns a random 128-bit identifier in lower-case base32 (26
// characters). Ids are not secrets: every access is decided by policy, never
// by knowing an id. They are random so they reveal neither counts nor order.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("haven: crypto/rand failed: " + err.Error())
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// MaxIDLength bounds every id Haven accepts from outside: NewID makes 26
// characters, and the few other ids (a demo's, a test's, a video guest's)
// stay well within it.
const MaxIDLength = 64

// PlausibleID is Haven's one check of an id that arrives from outside (a
// URL, a query, a body, a join token, a signaling message, a TURN user
// name): 1 to MaxIDLength characters of lower-case letters, digits, '-'
// and '_'. Every id NewID makes passes. Anything else (a NUL, invalid
// UTF-8, upper case, a slash, an attacker's payload) is refused before it
// reaches a query, a log line, a link or the audit log, so the answer to a
// malformed id is the same on every database and nothing a client sends
// is echoed unchecked. It says nothing about whether the id exists.
func PlausibleID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Role is what a user is in a practice. Roles grant least privilege; what
// each may do is decided by package policy alone.
type Role string

const (
	RolePatient           Role = "patient"
	RoleClinician         Role = "clinician"
	RoleStaff             Role = "staff"
	RolePracticeAdmin     Role = "practice_admin"
	RoleComplianceOfficer Role = "compliance_officer"
	RolePlatformOperator  Role = "platform_operator" // belongs to no practice; sees no PHI
	// RoleIntegration is a practice's backend system (a lab's or a
	// pharmacy's, a registry's) reading through the FHIR API with its own
	// signed key, acting for no person. It is an actor's role, never a
	// user's: no account holds it, no one can be invited as it, and it
	// belongs to the one practice that registered the system.
	RoleIntegration Role = "integration"
)

// Roles lists every role, in the order pages show them.
var Roles = []Role{RolePatient, RoleClinician, RoleStaff, RolePracticeAdmin, RoleComplianceOfficer, RolePlatformOperator, RoleIntegration}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	for _, x := range Roles {
		if r == x {
			return true
		}
	}
	return false
}

// Workforce reports whether r is a member of a practice's workforce (or the
// platform's), for whom multi-factor authentication is mandatory. A
// backend system is no person: it takes no training and signs in with
// its key, not a password and a second factor.
func (r Role) Workforce() bool { return r != RolePatient && r != RoleIntegration && r.Valid() }

// Sealed is a ciphertext made by the keyring: versioned, authenticated and
// bound by associated data to where it belongs. Storage persists Sealed
// values as opaque bytes; only the service layer can open them.
type Sealed []byte

// Practice is a tenant: a clinic. Nothing crosses from one practice to another.
type Practice struct {
	ID        string
	Name      string // the clinic's public name; not PHI
	CreatedAt time.Time
}

// Validate checks a practice before it is stored.
func (p *Practice) Validate() error {
	if p.ID == "" {
		return Errorf(EINVALID, "practice id required")
	}
	if n := len(strings.TrimSpace(p.Name)); n == 0 || n > 200 {
		return Errorf(EINVALID, "practice name must be 1 to 200 characters")
	}
	return nil
}

// User is an account. Its email and name are sealed (a patient's email is
// PHI); EmailIndex is a blind index (keyed HMAC) used to find the account at
// sign-in without storing the address in the clear.
type User struct {
	ID           string
	PracticeID   string // empty only for platform operators
	Role         Role
	EmailIndex   []byte
	Email        Sealed
	Name         Sealed
	PasswordHash string // PHC-format argon2id string, parameters included
	Disabled     bool
	CreatedAt    time.Time
}

// Validate checks a user before it is stored.
func (u *User) Validate() error {
	switch {
	case u.ID == "":
		return Errorf(EINVALID, "user id required")
	case !u.Role.Valid():
		return Errorf(EINVALID, "unknown role %q", u.Role)
	case u.Role == RoleIntegration:
		return Errorf(EINVALID, "a backend system is registered as an app, never as a user")
	case u.Role == RolePlatformOperator && u.PracticeID != "":
		return Errorf(EINVALID, "a platform operator belongs to no practice")
	case u.Role != RolePlatformOperator && u.PracticeID == "":
		return Errorf(EINVALID, "user %s needs a practice", u.ID)
	case len(u.EmailIndex) == 0:
		return Errorf(EINVALID, "user %s needs an email index", u.ID)
	}
	return nil
}

// Actor is who is making a request, as established by authentication. Every
// service call carries one in its context; policy decides on it afresh.
type Actor struct {
	UserID     string
	PracticeID string
	Role       Role
	SessionID  string
	MFA        bool      // the session passed a second factor
	AuthTime   time.Time // last full or step-up authentication
	ClientAddr string
	RequestID  string
}

type actorKey struct{}

// NewContextWithActor returns ctx carrying a.
func NewContextWithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFromContext returns the actor in ctx and whether there is one.
func ActorFromContext(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

// SignedIn returns the authenticated actor in ctx, or EUNAUTHORIZED when
// there is none: the first check of every call made on someone's behalf.
func SignedIn(ctx context.Context) (Actor, error) {
	a, ok := ActorFromContext(ctx)
	if !ok || a.UserID == "" {
		return Actor{}, Errorf(EUNAUTHORIZED, "sign in first")
	}
	return a, nil
}
