package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"haven"
	"haven/audit"
	"haven/auth/totp"
	"haven/identity"
	"haven/internal/testkit"
	"haven/service"
)

// softKey is a software authenticator written from the WebAuthn spec
// (§6.1 authenticator data, §6.5.4 "none" attestation, §6.3.3 assertion
// signatures), independent of the library Haven verifies with: an ECDSA
// P-256 key, a credential id, a signature counter, and the flags it
// reports. Tests bend it the way an attacker would.
type softKey struct {
	t      testing.TB
	origin string // the origin the "browser" puts in clientDataJSON
	credID []byte
	key    *ecdsa.PrivateKey
	handle []byte // the user handle stored at registration
	count  uint32
	step   uint32 // how much count grows per signature (0: a passkey with no counter)
	uv     bool   // reports user verification
}

const havenOrigin = "https://haven.test"

func newSoftKey(t testing.TB) *softKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	rand.Read(id)
	return &softKey{t: t, origin: havenOrigin, credID: id, key: key, step: 1, uv: true}
}

var b64 = base64.RawURLEncoding

// ceremonyOptions is what the tests read from the options Haven sends.
type ceremonyOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RPID      string `json:"rpId"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		Allow []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
		UserVerification string `json:"userVerification"`
	} `json:"publicKey"`
}

func readOptions(t testing.TB, raw json.RawMessage) ceremonyOptions {
	t.Helper()
	var o ceremonyOptions
	if err := json.Unmarshal(raw, &o); err != nil || o.PublicKey.Challenge == "" {
		t.Fatalf("options %s: %v", raw, err)
	}
	return o
}

func (k *softKey) authData(rpID string, attested []byte) []byte {
	rp := sha256.Sum256([]byte(rpID))
	flags := byte(0x01) // UP
	if k.uv {
		flags |= 0x04
	}
	flags |= 0x08 | 0x10 // BE, BS: a synced passkey
	if attested != nil {
		flags |= 0x40
	}
	out := append(rp[:], flags)
	out = binary.BigEndian.AppendUint32(out, k.count)
	return append(out, attested...)
}

func (k *softKey) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": k.origin, "crossOrigin": false})
	return b
}

// create answers navigator.credentials.create with "none" attestation.
func (k *softKey) create(raw json.RawMessage) string {
	t := k.t
	t.Helper()
	o := readOptions(t, raw)
	handle, err := b64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		t.Fatalf("user id %q: %v", o.PublicKey.User.ID, err)
	}
	k.handle = handle
	cose, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         1, XCoord: k.key.X.FillBytes(make([]byte, 32)), YCoord: k.key.Y.FillBytes(make([]byte, 32))})
	if err != nil {
		t.Fatal(err)
	}
	attested := make([]byte, 16) // AAGUID: zero, as a privacy-minded authenticator sends
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(k.credID)))
	attested = append(attested, k.credID...)
	attested = append(attested, cose...)
	obj, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": k.authData(o.PublicKey.RP.ID, attested)})
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.credID), "rawId": b64.EncodeToString(k.credID), "type": "public-key",
		"authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(k.clientData("webauthn.create", o.PublicKey.Challenge)),
			"attestationObject": b64.EncodeToString(obj),
			"transports":        []string{"internal", "hybrid"},
		},
		"clientExtensionResults": map[string]any{"credProps": map[string]any{"rk": true}},
	})
	return string(resp)
}

// assertion is one navigator.credentials.get answer, kept in parts so
// tests can tamper with them.
type assertion struct {
	credID, clientData, authData, sig, handle []byte
}

func (a assertion) String() string {
	resp, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(a.credID), "rawId": b64.EncodeToString(a.credID), "type": "public-key",
		"authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(a.clientData),
			"authenticatorData": b64.EncodeToString(a.authData),
			"signature":         b64.EncodeToString(a.sig),
			"userHandle":        b64.EncodeToString(a.handle),
		},
		"clientExtensionResults": map[string]any{},
	})
	return string(resp)
}

// sign answers navigator.credentials.get for options raw.
func (k *softKey) sign(raw json.RawMessage) assertion {
	t := k.t
	t.Helper()
	o := readOptions(t, raw)
	k.count += k.step
	a := assertion{credID: k.credID, clientData: k.clientData("webauthn.get", o.PublicKey.Challenge),
		authData: k.authData(o.PublicKey.RPID, nil), handle: k.handle}
	a.sig = k.signature(a)
	return a
}

// signature is k's ECDSA signature over authenticatorData ‖ SHA-256(clientDataJSON).
func (k *softKey) signature(a assertion) []byte {
	h := sha256.Sum256(a.clientData)
	digest := sha256.Sum256(append(append([]byte{}, a.authData...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		k.t.Fatal(err)
	}
	return sig
}

func (k *softKey) get(raw json.RawMessage) string { return k.sign(raw).String() }

// passkeyStack is an identity with passkeys for the origin havenOrigin.
type passkeyStack struct {
	*ident
	pk   *identity.Passkeys
	p    *practice
	name string
}

func (e *env) passkeys(name, marker string) *passkeyStack {
	e.t.Helper()
	p := e.Seed(name, marker)
	id := e.identity()
	pk, err := identity.NewPasskeys(id.Service, identity.PasskeyConfig{PublicURL: havenOrigin + "/"})
	if err != nil {
		e.t.Fatal(err)
	}
	return &passkeyStack{ident: id, pk: pk, p: p, name: name}
}

// patientSession signs the practice's patient A in with a password (the
// practice does not require MFA of patients) and returns the request
// context of that session.
func (s *passkeyStack) patientSession(c identity.Client) (context.Context, *identity.NewSession) {
	s.e.t.Helper()
	return s.patientSessionOf(s.p.ChartA.PatientID, s.patientEmail(), c)
}

func (s *passkeyStack) patientSessionOf(userID, email string, c identity.Client) (context.Context, *identity.NewSession) {
	t := s.e.t
	t.Helper()
	ctx := context.Background()
	if err := s.e.Service.ProvisionPassword(ctx, userID, pw); err != nil {
		t.Fatal(err)
	}
	res, err := s.Login(ctx, email, pw, c)
	if err != nil || res.Stage != identity.StageDone {
		t.Fatalf("patient sign-in: %+v, %v", res, err)
	}
	return s.sessionCtx(res.Session, c), res.Session
}

func (s *passkeyStack) patientEmail() string { return "ptA@" + s.name + ".example" }

// sessionCtx is a request presenting ns from c, as the web layer makes it.
func (s *passkeyStack) sessionCtx(ns *identity.NewSession, c identity.Client) context.Context {
	s.e.t.Helper()
	cur, err := s.Resume(context.Background(), ns.Token, c)
	if err != nil {
		s.e.t.Fatalf("resume: %v", err)
	}
	return haven.NewContextWithActor(context.Background(), cur.Actor)
}

// register registers k for the user signed in in ctx.
func (s *passkeyStack) register(ctx context.Context, k *softKey, nickname string, c identity.Client) *identity.MFAChange {
	t := s.e.t
	t.Helper()
	opts, err := s.pk.BeginRegistration(ctx)
	if err != nil {
		t.Fatalf("begin registration: %v", err)
	}
	ch, err := s.pk.FinishRegistration(ctx, k.create(opts), nickname, c)
	if err != nil {
		t.Fatalf("finish registration: %v", err)
	}
	return ch
}

// passwordless signs in with k alone.
func (s *passkeyStack) passwordless(k *softKey, c identity.Client) (*identity.LoginResult, error) {
	s.e.t.Helper()
	opts, err := s.pk.BeginPasswordless(context.Background(), c)
	if err != nil {
		s.e.t.Fatal(err)
	}
	return s.pk.FinishPasswordless(context.Background(), k.get(opts), c)
}

// events returns the practice log's events of action, newest first.
func (e *env) events(logID, action string) []audit.Event {
	e.t.Helper()
	rows, err := e.DB.SearchAudit(context.Background(), haven.AuditQuery{LogID: logID, Action: action, Limit: 50})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []audit.Event
	for _, r := range rows {
		out = append(out, r.Event)
	}
	return out
}

func TestPatientRegistersPasskeyAndSignsInWithItAlone(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		s := e.passkeys("riverside", "w1")
		ctx, old := s.patientSession(home)
		key := newSoftKey(t)
		ch := s.register(ctx, key, "  Maria's phone ", home)
		if len(ch.RecoveryCodes) != 10 || !ch.Session.Actor.MFA {
			t.Fatalf("first factor: %d recovery codes, session %+v", len(ch.RecoveryCodes), ch.Session.Actor)
		}
		// Adding a factor is an MFA change: the session from before is over.
		if _, err := s.Resume(context.Background(), old.Token, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("the pre-registration session survived: %v", err)
		}
		ev := e.events(s.p.ID, identity.ActMFAEnrol)[0]
		if ev.Decision != haven.DecisionAllow || ev.Reason != "webauthn" || ev.ResourceKind != "webauthn_credential" || ev.ActorID != s.p.ChartA.PatientID {
			t.Fatalf("registration audited as %+v", ev)
		}
		list, err := s.pk.List(s.sessionCtx(ch.Session, home))
		if err != nil || len(list) != 1 || list[0].Nickname != "Maria's phone" || !list[0].Synced || !list[0].Discoverable {
			t.Fatalf("passkeys listed: %+v, %v", list, err)
		}

		// A new browser, no password: the passkey alone signs in, with MFA.
		other := browser("198.51.100.20", "device-new")
		res, err := s.passwordless(key, other)
		if err != nil || res.Stage != identity.StageDone {
			t.Fatalf("passwordless: %+v, %v", res, err)
		}
		a := res.Session.Actor
		if a.UserID != s.p.ChartA.PatientID || a.PracticeID != s.p.ID || a.Role != haven.RolePatient || !a.MFA {
			t.Fatalf("passwordless session actor %+v", a)
		}
		use := e.events(s.p.ID, identity.ActPasskeyUse)[0]
		if use.Decision != haven.DecisionAllow || use.Reason != "passwordless" || use.ResourceID != list[0].ID || use.ClientAddr != other.Addr {
			t.Fatalf("passwordless use audited as %+v", use)
		}
		if ev := e.events(s.p.ID, identity.ActLogin)[0]; ev.Reason != "webauthn" || ev.Decision != haven.DecisionAllow {
			t.Fatalf("sign-in audited as %+v", ev)
		}
		// The nickname is sealed at rest.
		var sealed []byte
		e.DB.SQL().QueryRow(`SELECT nickname_sealed FROM webauthn_credentials`).Scan(&sealed)
		if len(sealed) == 0 || strings.Contains(string(sealed), "Maria") {
			t.Fatalf("nickname stored as %q", sealed)
		}
	})
}

func TestPasskeyIsASecondFactorAfterThePassword(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		s := e.passkeys("riverside", "w2")
		ns, _, _ := s.enrol("doc@riverside.example", home)
		key := newSoftKey(t)
		key.uv = false // a security key without a PIN serves as a second factor
		ch := s.register(s.sessionCtx(ns, home), key, "", home)
		if len(ch.RecoveryCodes) != 0 {
			t.Fatal("recovery codes reissued though the user has them")
		}
		ctx := context.Background()
		res, err := s.Login(ctx, "doc@riverside.example", pw, home)
		if err != nil || res.Stage != identity.StageSecondFactor || !hasKind(res.Factors, identity.FactorWebAuthn) {
			t.Fatalf("login: %+v, %v", res, err)
		}
		opts, err := s.pk.BeginSecondFactor(ctx, res.Pending, home)
		if err != nil {
			t.Fatal(err)
		}
		o := readOptions(t, opts)
		if len(o.PublicKey.Allow) != 1 || o.PublicKey.Allow[0].ID != b64.EncodeToString(key.credID) || o.PublicKey.RPID != "haven.test" {
			t.Fatalf("second-factor options %s", opts)
		}
		done, err := s.pk.SecondFactor(ctx, res.Pending, key.get(opts), home)
		if err != nil || done.Stage != identity.StageDone || !done.Session.Actor.MFA || done.Session.Actor.UserID != s.p.Clinician.UserID {
			t.Fatalf("second factor: %+v, %v", done, err)
		}
		if ev := e.events(s.p.ID, identity.ActPasskeyUse)[0]; ev.Reason != "second_factor" || ev.ClientAddr != home.Addr {
			t.Fatalf("use audited as %+v", ev)
		}
		// The same passkey without user verification cannot sign in alone.
		if _, err := s.passwordless(key, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("passwordless without user verification: %v", err)
		}
	})
}

func hasKind(fs []identity.FactorKind, k identity.FactorKind) bool {
	for _, f := range fs {
		if f == k {
			return true
		}
	}
	return false
}

// TestForgedPasskeySignatureIsRefused: an attacker who knows the
// credential id and answers the challenge without the private key, or
// alters what was signed, gets nothing.
func TestForgedPasskeySignatureIsRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		s := e.passkeys("riverside", "w3")
		ctx, _ := s.patientSession(home)
		key := newSoftKey(t)
		s.register(ctx, key, "", home)

		attacker := newSoftKey(t)
		attacker.credID, attacker.handle = key.credID, key.handle // the victim's public identifiers, another private key
		if _, err := s.passwordless(attacker, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("assertion signed with another key: %v", err)
		}
		if ev := e.events(s.p.ID, identity.ActPasskeyUse)[0]; ev.Decision != haven.DecisionDeny || ev.Reason != "assertion_invalid" {
			t.Fatalf("forgery audited as %+v", ev)
		}
		// A genuine signature over other authenticator data (user
		// verification flag added after signing) is refused too.
		key.uv = false
		opts, _ := s.pk.BeginPasswordless(context.Background(), home)
		a := key.sign(opts)
		a.authData[32] |= 0x04
		if _, err := s.pk.FinishPasswordless(context.Background(), a.String(), home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("flags altered after signing: %v", err)
		}
		// And a phishing site's origin in the signed client data.
		key.uv, key.origin = true, "https://haven-login.example"
		if _, err := s.passwordless(key, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("assertion made for another origin: %v", err)
		}
		key.origin = havenOrigin
		if res, err := s.passwordless(key, home); err != nil || res.Stage != identity.StageDone {
			t.Fatalf("the genuine key after the attempts: %+v, %v", res, err)
		}
	})
}

// TestReplayedPasskeyChallengeIsRefused: a captured answer works once; a
// challenge cannot be answered from another browser or after it expires.
func TestReplayedPasskeyChallengeIsRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		s := e.passkeys("riverside", "w4")
		ctx, _ := s.patientSession(home)
		key := newSoftKey(t)
		s.register(ctx, key, "", home)

		opts, _ := s.pk.BeginPasswordless(context.Background(), home)
		answer := key.get(opts)
		if _, err := s.pk.FinishPasswordless(context.Background(), answer, home); err != nil {
			t.Fatal(err)
		}
		if _, err := s.pk.FinishPasswordless(context.Background(), answer, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("replayed answer: %v", err)
		}
		if ev := e.events(audit.PlatformLogID, identity.ActPasskeyUse)[0]; ev.Reason != "unknown_challenge" || ev.Decision != haven.DecisionDeny {
			t.Fatalf("replay audited as %+v", ev)
		}
		// A challenge issued to one browser, answered from another.
		opts, _ = s.pk.BeginPasswordless(context.Background(), home)
		if _, err := s.pk.FinishPasswordless(context.Background(), key.get(opts), browser("203.0.113.9", "elsewhere")); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("challenge answered from another device: %v", err)
		}
		// An expired challenge.
		opts, _ = s.pk.BeginPasswordless(context.Background(), home)
		answer = key.get(opts)
		e.Clock.Advance(identity.PasskeyChallengeTTL + time.Second)
		if _, err := s.pk.FinishPasswordless(context.Background(), answer, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("expired challenge: %v", err)
		}
		// A second-factor answer replayed into another pending sign-in.
		ctx2 := context.Background()
		first, _ := s.Login(ctx2, s.patientEmail(), pw, home)
		opts, _ = s.pk.BeginSecondFactor(ctx2, first.Pending, home)
		answer = key.get(opts)
		second, _ := s.Login(ctx2, s.patientEmail(), pw, home)
		s.pk.BeginSecondFactor(ctx2, second.Pending, home)
		if _, err := s.pk.SecondFactor(ctx2, second.Pending, answer, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("answer for one sign-in accepted by another: %v", err)
		}
		if done, err := s.pk.SecondFactor(ctx2, first.Pending, answer, home); err != nil || done.Stage != identity.StageDone {
			t.Fatalf("the answer in its own sign-in: %+v, %v", done, err)
		}
	})
}

// TestAnotherUsersPasskeyIsRefused: in one practice, Mallory has a passkey
// of her own; she cannot use it to pass Alice's second factor, nor sign in
// as Alice by naming Alice's user handle.
func TestAnotherUsersPasskeyIsRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		s := e.passkeys("riverside", "w5")
		aliceCtx, _ := s.patientSession(home)
		alice := newSoftKey(t)
		s.register(aliceCtx, alice, "", home)
		docSession, _, _ := s.enrol("doc@riverside.example", home)
		mallory := newSoftKey(t)
		s.register(s.sessionCtx(docSession, home), mallory, "", home)

		ctx := context.Background()
		res, err := s.Login(ctx, s.patientEmail(), pw, home)
		if err != nil {
			t.Fatal(err)
		}
		opts, _ := s.pk.BeginSecondFactor(ctx, res.Pending, home)
		if _, err := s.pk.SecondFactor(ctx, res.Pending, mallory.get(opts), home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("another user's passkey passed the second factor: %v", err)
		}
		if ev := e.events(s.p.ID, identity.ActPasskeyUse)[0]; ev.Reason != "not_own_credential" || ev.ActorID != s.p.ChartA.PatientID {
			t.Fatalf("refusal audited as %+v", ev)
		}
		// Passwordless with Mallory's key claiming Alice's user handle.
		mallory.handle = alice.handle
		if _, err := s.passwordless(mallory, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("passkey signed in as someone else's user handle: %v", err)
		}
	})
}

// TestPasskeyOfAnotherPracticesAccountIsRefused: one person has accounts
// at two practices under one email; a passkey registered to the account at
// one practice passes nothing at the other, and on its own signs in only
// to its own practice.
func TestPasskeyOfAnotherPracticesAccountIsRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		s := e.passkeys("riverside", "w6")
		other, err := e.Service.CreatePractice(context.Background(), "Lakeside")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Service.CreateUser(context.Background(), service.NewUser{PracticeID: other.ID, Role: haven.RoleClinician,
			Email: "doc@riverside.example", Name: "Dr Two Jobs", Password: pw}); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		// Enrol TOTP at both, then a passkey at Lakeside only.
		res, _ := s.Login(ctx, "doc@riverside.example", pw, home)
		if res.Stage != identity.StageChoose || len(res.Choices) != 2 {
			t.Fatalf("login: %+v", res)
		}
		var lakeside, riverside string
		for _, c := range res.Choices {
			if c.PracticeID == other.ID {
				lakeside = c.Pending
			} else {
				riverside = c.Pending
			}
		}
		enrolPending := func(token string) *identity.NewSession {
			en, err := s.BeginPendingEnrolment(ctx, token, home, "")
			if err != nil {
				t.Fatal(err)
			}
			code, _ := totp.Code(en.Secret, e.Clock.Now())
			done, err := s.ConfirmPendingEnrolment(ctx, token, code, home)
			if err != nil {
				t.Fatal(err)
			}
			return done.Session
		}
		lakeSession := enrolPending(lakeside)
		enrolPending(riverside)
		key := newSoftKey(t)
		s.register(s.sessionCtx(lakeSession, home), key, "", home)

		res, _ = s.Login(ctx, "doc@riverside.example", pw, home)
		for _, c := range res.Choices {
			if c.PracticeID == other.ID {
				continue
			}
			// Riverside's account has no passkey: it cannot even be asked for one.
			if _, err := s.pk.BeginSecondFactor(ctx, c.Pending, home); haven.ErrorCode(err) != haven.EINVALID {
				t.Fatalf("passkey challenge for an account without one: %v", err)
			}
			// Nor can an answer from Lakeside's passkey, to a challenge
			// Lakeside's sign-in got, pass Riverside's second factor.
			var lake string
			for _, d := range res.Choices {
				if d.PracticeID == other.ID {
					lake = d.Pending
				}
			}
			opts, _ := s.pk.BeginSecondFactor(ctx, lake, home)
			if _, err := s.pk.SecondFactor(ctx, c.Pending, key.get(opts), home); haven.ErrorCode(err) == "" {
				t.Fatal("another practice's passkey passed the second factor")
			}
		}
		done, err := s.passwordless(key, home)
		if err != nil || done.Session.Actor.PracticeID != other.ID {
			t.Fatalf("passwordless signed in to %+v, %v; want Lakeside only", done, err)
		}
	})
}

// TestPasskeyCounterRegressionIsRefusedAndAudited: a cloned authenticator
// whose counter lags the original's is refused, and the log says so.
func TestPasskeyCounterRegressionIsRefusedAndAudited(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		s := e.passkeys("riverside", "w7")
		ctx, _ := s.patientSession(home)
		key := newSoftKey(t)
		key.count = 5
		s.register(ctx, key, "", home)
		if _, err := s.passwordless(key, home); err != nil { // counter 6
			t.Fatal(err)
		}
		clone := *key
		clone.count = 2 // copied from the device earlier; signs 3
		if _, err := s.passwordless(&clone, browser("203.0.113.77", "clone")); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("lower counter: %v", err)
		}
		ev := e.events(s.p.ID, identity.ActPasskeyCounter)
		if len(ev) != 1 || ev[0].Reason != "counter_regression" || ev[0].Decision != haven.DecisionDeny || ev[0].ClientAddr != "203.0.113.77" {
			t.Fatalf("counter regression audited as %+v", ev)
		}
		// An equal counter is a regression too.
		clone.count = 5 // signs 6 again
		if _, err := s.passwordless(&clone, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("repeated counter: %v", err)
		}
		if _, err := s.passwordless(key, home); err != nil { // 7: the original goes on
			t.Fatalf("the original after the clone: %v", err)
		}
		// A passkey that keeps no counter (always 0) is not a clone.
		nocount := newSoftKey(t)
		nocount.step = 0
		ctx2, _ := s.patientSessionOf(s.p.ChartB.PatientID, "ptB@riverside.example", home)
		s.register(ctx2, nocount, "", home)
		for range 2 {
			if _, err := s.passwordless(nocount, home); err != nil {
				t.Fatalf("a passkey without a counter: %v", err)
			}
		}
	})
}

func TestRemovingPasskeyIsAnAuditedMFAChange(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		s := e.passkeys("riverside", "w8")
		docSession, _, _ := s.enrol("doc@riverside.example", home)
		key := newSoftKey(t)
		ch := s.register(s.sessionCtx(docSession, home), key, "", home)
		laptop := browser("198.51.100.30", "device-laptop")
		onLaptop, err := s.passwordless(key, laptop)
		if err != nil {
			t.Fatal(err)
		}
		ctx := s.sessionCtx(ch.Session, home)
		list, _ := s.pk.List(ctx)

		// Another user (the patient) tries the clinician's passkey id.
		pctx, _ := s.patientSession(laptop)
		if _, err := s.pk.Remove(pctx, list[0].ID, laptop); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("removed someone else's passkey: %v", err)
		}
		if ev := e.events(s.p.ID, identity.ActMFARemove)[0]; ev.Decision != haven.DecisionDeny || ev.ActorID != s.p.ChartA.PatientID {
			t.Fatalf("refusal audited as %+v", ev)
		}
		// With a stale authentication, removal needs a step-up first; the
		// passkey itself can give it.
		e.Clock.Advance(10 * time.Minute)
		ctx = s.sessionCtx(ch.Session, home)
		if _, err := s.pk.Remove(ctx, list[0].ID, home); haven.ErrorCode(err) != haven.ESTEPUP {
			t.Fatalf("removal without a fresh authentication: %v", err)
		}
		opts, err := s.pk.BeginStepUp(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.pk.StepUp(ctx, "", key.get(opts), home); err != nil {
			t.Fatalf("step-up with the passkey: %v", err)
		}
		if ev := e.events(s.p.ID, identity.ActPasskeyUse)[0]; ev.Reason != "step_up" || ev.SessionID != ch.Session.Actor.SessionID {
			t.Fatalf("step-up audited as %+v", ev)
		}
		ctx = s.sessionCtx(ch.Session, home)
		done, err := s.pk.Remove(ctx, list[0].ID, home)
		if err != nil {
			t.Fatal(err)
		}
		if ev := e.events(s.p.ID, identity.ActMFARemove)[0]; ev.Decision != haven.DecisionAllow || ev.Reason != "webauthn" || ev.ResourceID != list[0].ID {
			t.Fatalf("removal audited as %+v", ev)
		}
		// Every other session (the laptop's, and this browser's old one) ended.
		for _, old := range []*identity.NewSession{onLaptop.Session, ch.Session} {
			if _, err := s.Resume(context.Background(), old.Token, laptop); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
				t.Fatalf("a session survived the removal: %v", err)
			}
		}
		if !done.Session.Actor.MFA { // the authenticator app remains
			t.Fatalf("session after removal %+v", done.Session.Actor)
		}
		if _, err := s.passwordless(key, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("a removed passkey signed in: %v", err)
		}

		// A workforce member cannot remove their last factor.
		doc2, _, _ := s.enrol("doc2@riverside.example", home)
		ch2 := s.register(s.sessionCtx(doc2, home), newSoftKey(t), "", home)
		noTOTP, err := s.RemoveTOTP(s.sessionCtx(ch2.Session, home), home)
		if err != nil {
			t.Fatal(err)
		}
		ctx2 := s.sessionCtx(noTOTP.Session, home)
		list2, _ := s.pk.List(ctx2)
		if _, err := s.pk.Remove(ctx2, list2[0].ID, home); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("workforce member removed their last factor: %v", err)
		}
	})
}

// TestPasskeyRegistrationNeedsFreshAuthenticationAndItsOwnChallenge: an
// old session cannot add a passkey, and a registration answer made for
// one session's challenge is refused in another.
func TestPasskeyRegistrationNeedsFreshAuthenticationAndItsOwnChallenge(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		s := e.passkeys("riverside", "w9")
		ctx, _ := s.patientSession(home)
		opts, err := s.pk.BeginRegistration(ctx)
		if err != nil {
			t.Fatal(err)
		}
		o := readOptions(t, opts)
		if o.PublicKey.RP.ID != "haven.test" || o.PublicKey.User.ID != b64.EncodeToString([]byte(s.p.ChartA.PatientID)) {
			t.Fatalf("creation options %s", opts)
		}
		answer := newSoftKey(t).create(opts)
		ctx2, _ := s.patientSession(laptopClient)
		if _, err := s.pk.FinishRegistration(ctx2, answer, "", laptopClient); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("registration answered in another session: %v", err)
		}
		if ev := e.events(s.p.ID, identity.ActMFAEnrol)[0]; ev.Decision != haven.DecisionDeny || ev.Reason != "unknown_challenge" {
			t.Fatalf("refused registration audited as %+v", ev)
		}
		if list, _ := s.pk.List(ctx2); len(list) != 0 {
			t.Fatalf("passkey registered: %+v", list)
		}
		ctx3, _ := s.patientSession(home)
		e.Clock.Advance(20 * time.Minute)
		if _, err := s.pk.BeginRegistration(ctx3); haven.ErrorCode(err) != haven.ESTEPUP {
			t.Fatalf("registration from a stale session: %v", err)
		}
	})
}

var laptopClient = browser("198.51.100.31", "device-laptop2")

// TestDisabledAccountsPasskeyDoesNotSignIn: disabling an account ends its
// passkey sign-ins too, with the same answer as any other refusal.
func TestDisabledAccountsPasskeyDoesNotSignIn(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		s := e.passkeys("riverside", "w10")
		ctx, _ := s.patientSession(home)
		key := newSoftKey(t)
		s.register(ctx, key, "", home)
		if err := e.DB.SetUserDisabled(context.Background(), s.p.ChartA.PatientID, true); err != nil {
			t.Fatal(err)
		}
		_, err := s.passwordless(key, home)
		if haven.ErrorCode(err) != haven.EUNAUTHORIZED || haven.ErrorMessage(err) != haven.ErrorMessage(unknownKeyError(t, s)) {
			t.Fatalf("disabled account: %v", err)
		}
	})
}

// unknownKeyError is the answer to a passkey no account has.
func unknownKeyError(t *testing.T, s *passkeyStack) error {
	_, err := s.passwordless(newSoftKey(t), home)
	if haven.ErrorCode(err) != haven.EUNAUTHORIZED {
		t.Fatalf("unknown passkey: %v", err)
	}
	return err
}

func TestPasskeysNeedAHostNameInThePublicURL(t *testing.T) {
	e := newEnv(t, testkit.SQLite(t))
	id := e.identity()
	for _, bad := range []string{"https://127.0.0.1:8443", "http://clinic.example", "https://clinic.example/app", "clinic.example", "https://[::1]:8443"} {
		if _, err := identity.NewPasskeys(id.Service, identity.PasskeyConfig{PublicURL: bad}); haven.ErrorCode(err) != haven.EINVALID {
			t.Errorf("public URL %q accepted: %v", bad, err)
		}
	}
	pk, err := identity.NewPasskeys(id.Service, identity.PasskeyConfig{PublicURL: "https://LocalHost:8443"})
	if err != nil || pk.RPID() != "localhost" || pk.Origin() != "https://localhost:8443" {
		t.Fatalf("localhost: %v %v", pk, err)
	}
}

// TestAdminResetRemovesPasskeys: a user who lost their factors is reset
// by an administrator; a passkey they lost (or that was stolen) must not
// survive the reset.
func TestAdminResetRemovesPasskeys(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		s := e.passkeys("riverside", "w11")
		docSession, _, _ := s.enrol("doc@riverside.example", home)
		key := newSoftKey(t)
		s.register(s.sessionCtx(docSession, home), key, "", home)
		if err := s.ResetMFA(e.As(s.p.Admin), s.p.Clinician.UserID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.passwordless(key, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("a passkey signed in after the admin reset: %v", err)
		}
		res, err := s.Login(context.Background(), "doc@riverside.example", pw, home)
		if err != nil || res.Stage != identity.StageEnrol {
			t.Fatalf("after the reset the clinician must enrol afresh: %+v, %v", res, err)
		}
	})
}
