package identity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"haven"
	"haven/audit"
	"haven/auth/recovery"
	"haven/auth/throttle"
	"haven/service"
	"haven/store/sqlstore"
)

// Passkeys is WebAuthn for identity: passkeys and security keys that a
// signed-in user registers from their account page, used as a second
// factor (kind "webauthn") after the password and at step-up, and on their
// own as a passwordless sign-in.
//
// Why a passkey alone may sign someone in: the browser binds every
// assertion to Haven's origin, so a look-alike site cannot relay it
// (phishing-resistant), and with user verification required the
// authenticator has checked a PIN or biometric itself. Possession of the
// device plus that check is multi-factor on its own, so a passwordless
// sign-in yields a session with MFA, as password plus TOTP does.
//
// Every challenge is stored server-side, bound to what asked for it (a
// pending sign-in, a session, the browser's device), used up by the one
// answer that finds it, and expires in minutes. The signature counter only
// moves forward: an assertion whose counter does not exceed the stored one
// (a cloned key) is refused and audited. The FIDO metadata service is
// never consulted (nothing is downloaded); attestation is not requested,
// because Haven trusts the user's own enrolment, made after a fresh
// authentication, rather than a vendor's certificate.
type Passkeys struct {
	id     *Service
	wa     *webauthn.WebAuthn
	rpID   string
	origin string
	ttl    time.Duration

	mu        sync.Mutex
	lastPurge time.Time // when expired challenges were last deleted
}

// PasskeyConfig is what NewPasskeys needs.
type PasskeyConfig struct {
	// PublicURL is the https:// address browsers reach Haven at
	// ("https://clinic.example" or "https://localhost:8443"). Its origin is
	// the only origin whose assertions are accepted, and its host name is
	// the relying party id that passkeys are scoped to. An IP address
	// cannot be a relying party id: use a name ("localhost" on one machine).
	PublicURL string
	// ChallengeTTL is how long a ceremony may take; default
	// PasskeyChallengeTTL.
	ChallengeTTL time.Duration
}

// PasskeyChallengeTTL is how long a browser has to answer a passkey
// challenge: long enough to find a security key and type its PIN.
const PasskeyChallengeTTL = 5 * time.Minute

// Kinds of passkey challenge.
const (
	challengeRegister = "register" // bound to the session registering
	challengeFactor   = "factor"   // bound to a pending sign-in or to a session stepping up
	challengeLogin    = "login"    // passwordless, bound to the browser's device
)

// Audit actions for passkeys. Registration and removal are MFA changes
// and use ActMFAEnrol and ActMFARemove with reason "webauthn".
const (
	ActPasskeyUse     = "auth.passkey"         // an assertion accepted (second_factor, step_up, passwordless) or refused
	ActPasskeyCounter = "auth.passkey_counter" // a signature counter that went backwards: a possible clone
)

// resourcePasskey is the audit resource kind of a registered credential.
const resourcePasskey = "webauthn_credential"

// maxPasskeyProof bounds the JSON a browser may send as its answer; real
// answers are a few kilobytes.
const maxPasskeyProof = 64 << 10

// NewPasskeys configures WebAuthn for Haven's public origin and registers
// the passkey second factor with id.
func NewPasskeys(id *Service, cfg PasskeyConfig) (*Passkeys, error) {
	rpID, origin, err := relyingParty(cfg.PublicURL)
	if err != nil {
		return nil, err
	}
	ttl := cfg.ChallengeTTL
	if ttl <= 0 {
		ttl = PasskeyChallengeTTL
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID: rpID,
		// The name authenticators show next to the account. It names no
		// clinic: which clinic a patient uses is health information, and a
		// passkey list is seen by whoever looks over their shoulder.
		RPDisplayName:         "Haven",
		RPOrigins:             []string{origin},
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementPreferred,
			UserVerification: protocol.VerificationPreferred,
		},
		// The browser's own timeout; the server enforces ttl itself with
		// identity's clock, when the challenge is used.
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: ttl, TimeoutUVD: ttl},
			Registration: webauthn.TimeoutConfig{Timeout: ttl, TimeoutUVD: ttl},
		},
		// MDS stays nil: no metadata is downloaded or consulted.
	})
	if err != nil {
		return nil, haven.Wrap(haven.EINVALID, err, "passkeys cannot be configured for "+origin)
	}
	p := &Passkeys{id: id, wa: wa, rpID: rpID, origin: origin, ttl: ttl}
	id.RegisterFactor(passkeyFactor{p})
	return p, nil
}

// relyingParty derives the relying party id and the origin from an
// https:// URL.
func relyingParty(publicURL string) (rpID, origin string, err error) {
	u, perr := url.Parse(strings.TrimSpace(publicURL))
	if perr != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
		(u.Path != "" && u.Path != "/") {
		return "", "", haven.Errorf(haven.EINVALID, "the public URL must be an https:// origin such as https://clinic.example, got %q", publicURL)
	}
	host := strings.ToLower(u.Hostname())
	if net.ParseIP(host) != nil {
		return "", "", haven.Errorf(haven.EINVALID, "passkeys need a host name in the public URL, not the IP address %s (on one machine use https://localhost:%s)", host, u.Port())
	}
	if err := protocol.ValidateRPID(host); err != nil {
		return "", "", haven.Wrap(haven.EINVALID, err, "the public URL's host is not a valid passkey domain")
	}
	origin = "https://" + host
	if port := u.Port(); port != "" && port != "443" {
		origin += ":" + port
	}
	return host, origin, nil
}

// RPID is the relying party id passkeys are scoped to.
func (p *Passkeys) RPID() string { return p.rpID }

// Origin is the only origin whose passkey answers are accepted.
func (p *Passkeys) Origin() string { return p.origin }

// passkeyFactor is the SecondFactor for passkeys and security keys.
type passkeyFactor struct{ p *Passkeys }

func (passkeyFactor) Kind() FactorKind { return FactorWebAuthn }

func (f passkeyFactor) Enrolled(ctx context.Context, u *haven.User) (bool, error) {
	return f.p.id.db.HasWebAuthnCredential(ctx, u.ID)
}

// Verify checks an assertion (the browser's JSON answer) against the
// challenge issued for ch to u, and nobody else.
func (f passkeyFactor) Verify(ctx context.Context, u *haven.User, ch FactorChallenge, proof string) error {
	purpose := "second_factor"
	if ch.StepUp {
		purpose = "step_up"
	}
	_, err := f.p.assert(ctx, u, challengeFactor, ch.ID, proof, purpose)
	return err
}

// clientKey carries the requesting Client to the factor's Verify, which
// the SecondFactor interface does not give it, so passkey audit events
// name the address a clone was used from.
type clientKey struct{}

func withClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

func clientOf(ctx context.Context) Client {
	c, _ := ctx.Value(clientKey{}).(Client)
	return c
}

// passkeyUser is a Haven account as the WebAuthn library sees it. The user
// handle is the account id: random, not PHI, and different for the same
// person's accounts in two practices, so a passkey belongs to one account.
type passkeyUser struct {
	u             *haven.User
	name, display string
	creds         []webauthn.Credential
}

func (w *passkeyUser) WebAuthnID() []byte                         { return []byte(w.u.ID) }
func (w *passkeyUser) WebAuthnName() string                       { return w.name }
func (w *passkeyUser) WebAuthnDisplayName() string                { return w.display }
func (w *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }

// libraryCredential is a stored credential in the library's form.
func libraryCredential(r sqlstore.WebAuthnCredential) webauthn.Credential {
	flags := protocol.FlagUserPresent
	if r.UserVerified {
		flags |= protocol.FlagUserVerified
	}
	if r.BackupEligible {
		flags |= protocol.FlagBackupEligible
	}
	if r.BackupState {
		flags |= protocol.FlagBackupState
	}
	c := webauthn.Credential{ID: r.CredentialID, PublicKey: r.PublicKey, AttestationFormat: r.AttestationFormat,
		Flags: webauthn.NewCredentialFlags(flags), Authenticator: webauthn.Authenticator{AAGUID: r.AAGUID, SignCount: r.SignCount}}
	for _, t := range r.Transports {
		c.Transport = append(c.Transport, protocol.AuthenticatorTransport(t))
	}
	return c
}

// userFor loads u's credentials for the library.
func (p *Passkeys) userFor(ctx context.Context, u *haven.User) (*passkeyUser, []sqlstore.WebAuthnCredential, error) {
	recs, err := p.id.db.WebAuthnCredentials(ctx, u.ID)
	if err != nil {
		return nil, nil, err
	}
	w := &passkeyUser{u: u, name: u.ID, display: u.ID}
	for _, r := range recs {
		w.creds = append(w.creds, libraryCredential(r))
	}
	return w, recs, nil
}

// challengeHash is how a challenge is stored and found: the SHA-256 of its
// base64url form, exactly as the browser echoes it in clientDataJSON.
func challengeHash(challenge string) []byte {
	h := sha256.Sum256([]byte("haven webauthn challenge v1\x00" + challenge))
	return h[:]
}

// store keeps a ceremony's session data until its answer comes.
func (p *Passkeys) store(ctx context.Context, kind, userID, binding string, sd *webauthn.SessionData) error {
	b, err := json.Marshal(sd)
	if err != nil {
		return err
	}
	now := p.id.now()
	// Expired ceremonies go as new ones come (at most once a minute, to
	// spare a write per sign-in), so abandoned ones do not pile up.
	p.mu.Lock()
	purge := now.Sub(p.lastPurge) >= time.Minute || now.Before(p.lastPurge)
	if purge {
		p.lastPurge = now
	}
	p.mu.Unlock()
	if purge {
		if _, err := p.id.db.PurgeWebAuthnChallenges(ctx, now); err != nil {
			return err
		}
	}
	return p.id.db.CreateWebAuthnChallenge(ctx, sqlstore.WebAuthnChallenge{Hash: challengeHash(sd.Challenge), Kind: kind,
		UserID: userID, Binding: binding, SessionData: b, CreatedAt: now, ExpiresAt: now.Add(p.ttl)})
}

// take uses up the challenge a browser answered, if it was issued for kind
// and binding (and to userID, when one is given).
func (p *Passkeys) take(ctx context.Context, challenge, kind, binding, userID string) (*webauthn.SessionData, error) {
	row, err := p.id.db.UseWebAuthnChallenge(ctx, challengeHash(challenge), kind, binding, p.id.now())
	if err != nil {
		return nil, err
	}
	if userID != "" && row.UserID != userID {
		return nil, haven.Errorf(haven.ENOTFOUND, "challenge issued to another user")
	}
	var sd webauthn.SessionData
	if err := json.Unmarshal(row.SessionData, &sd); err != nil {
		return nil, err
	}
	return &sd, nil
}

// options encodes what the browser passes to navigator.credentials.
func options(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	return json.RawMessage(b), err
}

var (
	errPasskeyRefused = haven.Errorf(haven.EUNAUTHORIZED, "that passkey was not accepted; try again")
	errPasskeyAnswer  = haven.Errorf(haven.EINVALID, "the browser's passkey answer could not be read; try again")
	errNoPasskeys     = haven.Errorf(haven.EINVALID, "no passkey is set up for this account")
)

// passkeyEvent is an audit event about a passkey of u (nil: not known),
// made by the client in ctx.
func passkeyEvent(ctx context.Context, u *haven.User, action, credID string) audit.Event {
	c := clientOf(ctx)
	var ev audit.Event
	if u == nil {
		ev = c.event(action)
	} else if a, ok := haven.ActorFromContext(ctx); ok && a.UserID == u.ID {
		ev = audit.ForActor(a, action)
	} else {
		ev = userEvent(u, c, "", action)
	}
	if haven.PlausibleID(credID) {
		ev.ResourceKind, ev.ResourceID = resourcePasskey, credID
	}
	return ev
}

// assert checks an assertion answering a challenge of kind bound to
// binding. For a second factor u is the account signing in and the
// credential must be one of its own; for a passwordless sign-in u is nil
// and the account is the credential's owner. Every refusal is recorded
// with its reason and returned as errPasskeyRefused (or errPasskeyAnswer
// for a malformed answer), so the answer says nothing about which check
// failed or whether an account exists.
func (p *Passkeys) assert(ctx context.Context, u *haven.User, kind, binding, proof, purpose string) (*haven.User, error) {
	refuse := func(who *haven.User, credID, reason string, err error) (*haven.User, error) {
		if rerr := p.id.record(ctx, passkeyEvent(ctx, who, ActPasskeyUse, credID), false, reason); rerr != nil {
			return nil, rerr
		}
		return nil, err
	}
	if len(proof) > maxPasskeyProof {
		return refuse(u, "", "malformed", errPasskeyAnswer)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes([]byte(proof))
	if err != nil {
		return refuse(u, "", "malformed", errPasskeyAnswer)
	}
	userID := ""
	if u != nil {
		userID = u.ID
	}
	sd, err := p.take(ctx, parsed.Response.CollectedClientData.Challenge, kind, binding, userID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return refuse(u, "", "unknown_challenge", errPasskeyRefused)
	} else if err != nil {
		return nil, err
	}
	rec, err := p.id.db.WebAuthnCredentialByCredentialID(ctx, parsed.RawID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return refuse(u, "", "unknown_credential", errPasskeyRefused)
	} else if err != nil {
		return nil, err
	}
	if u == nil {
		owner, err := p.id.db.FindUserByID(ctx, rec.UserID)
		if err != nil {
			return nil, err
		}
		if owner.Disabled {
			return refuse(owner, rec.ID, "account_disabled", errPasskeyRefused)
		}
		u = owner
	} else if rec.UserID != u.ID {
		// Another account's credential (in this practice or another),
		// presented for this one.
		return refuse(u, "", "not_own_credential", errPasskeyRefused)
	}
	w, _, err := p.userFor(ctx, u)
	if err != nil {
		return nil, err
	}
	var got *webauthn.Credential
	if len(sd.UserID) == 0 {
		_, got, err = p.wa.ValidatePasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
			if !bytes.Equal(userHandle, w.WebAuthnID()) || !bytes.Equal(rawID, rec.CredentialID) {
				return nil, errors.New("user handle does not name the credential's owner")
			}
			return w, nil
		}, *sd, parsed)
	} else {
		got, err = p.wa.ValidateLogin(w, *sd, parsed)
	}
	if err != nil {
		return refuse(u, rec.ID, "assertion_invalid", errPasskeyRefused)
	}
	if got.Authenticator.CloneWarning {
		ev := passkeyEvent(ctx, u, ActPasskeyCounter, rec.ID)
		if rerr := p.id.record(ctx, ev, false, "counter_regression"); rerr != nil {
			return nil, rerr
		}
		return refuse(u, rec.ID, "counter_regression", errPasskeyRefused)
	}
	ok, err := p.id.db.UseWebAuthnCredential(ctx, rec.ID, rec.SignCount, got.Authenticator.SignCount, got.Flags.BackupState, p.id.now())
	if err != nil {
		return nil, err
	}
	if !ok {
		// Another assertion moved the counter since this one was checked.
		ev := passkeyEvent(ctx, u, ActPasskeyCounter, rec.ID)
		if rerr := p.id.record(ctx, ev, false, "counter_race"); rerr != nil {
			return nil, rerr
		}
		return refuse(u, rec.ID, "counter_race", errPasskeyRefused)
	}
	if err := p.id.record(ctx, passkeyEvent(ctx, u, ActPasskeyUse, rec.ID), true, purpose); err != nil {
		return nil, err
	}
	return u, nil
}

// BeginSecondFactor starts a passkey check for the pending sign-in token
// and returns the options for navigator.credentials.get. The challenge
// works only for this sign-in, from this browser, once.
func (p *Passkeys) BeginSecondFactor(ctx context.Context, token string, c Client) (json.RawMessage, error) {
	pl, err := p.id.Pending(ctx, token, c)
	if err != nil {
		return nil, err
	}
	if !hasFactor(pl.Factors, FactorWebAuthn) {
		return nil, errNoPasskeys
	}
	return p.beginFactor(ctx, pl.user, pl.Challenge.ID)
}

// BeginStepUp starts a passkey check for a step-up of the session in ctx
// (a challenged session too: it is how the session proves it is its
// owner's again).
func (p *Passkeys) BeginStepUp(ctx context.Context) (json.RawMessage, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	u, err := p.id.db.FindUserByID(ctx, a.UserID)
	if err != nil || u.Disabled {
		return nil, errNoSession
	}
	return p.beginFactor(ctx, u, a.SessionID)
}

func (p *Passkeys) beginFactor(ctx context.Context, u *haven.User, binding string) (json.RawMessage, error) {
	w, _, err := p.userFor(ctx, u)
	if err != nil {
		return nil, err
	}
	if len(w.creds) == 0 {
		return nil, errNoPasskeys
	}
	// As a second factor the password was the first: user verification is
	// welcome but not demanded, so a security key without a PIN serves.
	assertion, sd, err := p.wa.BeginLogin(w, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "cannot start the passkey check")
	}
	if err := p.store(ctx, challengeFactor, u.ID, binding, sd); err != nil {
		return nil, err
	}
	return options(assertion)
}

// SecondFactor completes the pending sign-in token with a passkey answer:
// Identity.SecondFactor with kind "webauthn", its throttle and audit, and
// the passkey's own audit events naming the client.
func (p *Passkeys) SecondFactor(ctx context.Context, token, proof string, c Client) (*LoginResult, error) {
	return p.id.SecondFactor(withClient(ctx, c), token, FactorWebAuthn, proof, c)
}

// StepUp re-authenticates the session in ctx with a passkey answer (and
// the password, which a challenged session must also give).
func (p *Passkeys) StepUp(ctx context.Context, password, proof string, c Client) error {
	return p.id.StepUp(withClient(ctx, c), StepUpRequest{Password: password, Factor: FactorWebAuthn, Proof: proof}, c)
}

// deviceBinding binds a passwordless challenge to the browser that asked.
func deviceBinding(c Client) string { return "device:" + c.deviceHash() }

// BeginPasswordless starts a passwordless sign-in: options for
// navigator.credentials.get with no credential list (the authenticator
// offers the passkeys it holds for Haven) and user verification required.
// It asks for nothing and tells nothing about any account.
func (p *Passkeys) BeginPasswordless(ctx context.Context, c Client) (json.RawMessage, error) {
	assertion, sd, err := p.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "cannot start the passkey sign-in")
	}
	if err := p.store(ctx, challengeLogin, "", deviceBinding(c), sd); err != nil {
		return nil, err
	}
	return options(assertion)
}

// FinishPasswordless signs in with a passkey alone. The credential names
// the account (in its own practice); the authenticator must have verified
// its user. The session has MFA. Every refusal is the same
// EUNAUTHORIZED, recorded with its reason, and counted by the throttle
// against the client's address.
func (p *Passkeys) FinishPasswordless(ctx context.Context, proof string, c Client) (*LoginResult, error) {
	ctx = withClient(ctx, c)
	att := throttle.Attempt{Account: passkeyAccountKey(proof), Addr: c.Addr}
	if wait, err := p.id.throttle.Allow(ctx, att); err != nil {
		if haven.ErrorCode(err) != haven.ETOOMANY {
			return nil, err
		}
		if rerr := p.id.record(ctx, c.event(ActPasskeyUse), false, "throttled"); rerr != nil {
			return nil, rerr
		}
		return nil, throttled(err, wait)
	}
	u, err := p.assert(ctx, nil, challengeLogin, deviceBinding(c), proof, "passwordless")
	if err != nil {
		if code := haven.ErrorCode(err); code == haven.EUNAUTHORIZED || code == haven.EINVALID {
			if ferr := p.id.throttle.Failure(ctx, att); ferr != nil {
				return nil, ferr
			}
		}
		return nil, err
	}
	return p.id.finish(ctx, u, true, string(FactorWebAuthn), c)
}

// passkeyAccountKey is the throttle's account key for a passwordless
// attempt: the credential id it presents, or the whole answer when it has
// none, hashed and kept apart from the email-keyed password counts.
func passkeyAccountKey(proof string) string {
	var v struct {
		RawID string `json:"rawId"`
	}
	key := proof
	if json.Unmarshal([]byte(proof), &v) == nil && v.RawID != "" {
		key = v.RawID
	}
	h := sha256.Sum256([]byte("haven passkey throttle v1\x00" + key))
	return "passkey:" + hex.EncodeToString(h[:16])
}

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
