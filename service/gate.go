package service

import (
	"context"
	"time"

	"haven"
	"haven/audit"
	"haven/auth/password"
	"haven/keyring"
	"haven/policy"
	"haven/store/sqlstore"
)

// record appends ev to its log and returns once it is durable, with its
// sequence number in that log. It is how every event reaches the audit
// log: access decisions (gate) and the events that are not (operator
// commands, reminders, and identity's sign-ins and MFA changes through
// Gate.Record). An error means the event is not recorded; the caller must
// then not proceed.
func (s *Service) record(ctx context.Context, ev audit.Event) (uint64, error) {
	seqs, err := s.audit.Append(ctx, ev)
	if err != nil {
		return 0, haven.Wrap(haven.EUNAVAILABLE, err, "the audit log is unavailable; the request was not carried out")
	}
	return seqs[0], nil
}

// authorize is the gate every PHI path passes: it decides act on res for
// the actor in ctx against freshly loaded facts, and records the decision,
// allowed or denied, in the audit log before returning. It returns nil only
// when the action is allowed AND its audit event is durable, so a caller
// may open sealed values only after a nil return. An audit failure is an
// error even for an allowed action: an access that cannot be audited does
// not happen.
//
// A record of another practice is refused, and recorded in the actor's
// own log, exactly as an id that exists nowhere (see refuseUnknown), so
// that probing ids teaches nothing: the log says not_found, never
// other_practice, and names no patient (its compliance officer would
// otherwise read there which ids exist elsewhere); the practice that owns
// the record is told instead (reportProbe).
func (s *Service) authorize(ctx context.Context, act policy.Action, res policy.Resource) (haven.Actor, policy.Decision, error) {
	return s.gate(ctx, act, res, "", false)
}

// authorizeRecord is authorize for a record the request named by sentID
// and the service looked up (res may name another id: the visit about to
// be booked for the patient sent, the file about to be stored). Refused as
// another practice's, the actor's log records sentID, exactly what an
// unknown sentID records. A patient refused a record that is not their
// own is answered ENOTFOUND whatever policy's reason, as a random id is:
// another patient's visit, break-glass grant, care team or account (which
// a patient's role may never touch) would otherwise answer EFORBIDDEN and
// tell the patient that the id is real. That event keeps policy's reason:
// a patient never reads the practice's log.
func (s *Service) authorizeRecord(ctx context.Context, act policy.Action, res policy.Resource, sentID string) (haven.Actor, policy.Decision, error) {
	return s.gate(ctx, act, res, sentID, true)
}

func (s *Service) gate(ctx context.Context, act policy.Action, res policy.Resource, sentID string, named bool) (haven.Actor, policy.Decision, error) {
	a, d, _, err := s.gateFacts(ctx, act, res, sentID, named)
	return a, d, err
}

// gateFacts is gate, returning also the facts it decided on, for a caller
// that must ask policy more about the same record within the request
// (whom a new message should notify, who may be given a thread) without
// loading them twice.
func (s *Service) gateFacts(ctx context.Context, act policy.Action, res policy.Resource, sentID string, named bool) (haven.Actor, policy.Decision, policy.Facts, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return a, policy.Decision{}, policy.Facts{}, err
	}
	facts, ps, err := s.loadFacts(ctx, a, res)
	if err != nil {
		return a, policy.Decision{}, facts, err
	}
	d, err := s.decide(ctx, a, act, res, facts, ps, sentID, named)
	return a, d, facts, err
}

// gatePatient is the gate for a patient's own record (the chart and what
// hangs from it) named by id: the patient's row and every fact of the
// decision are one read, and the row is returned for the caller to open
// once the access is allowed and recorded. An id that is not plausible or
// names no patient is refused as refuseUnknown does.
func (s *Service) gatePatient(ctx context.Context, act policy.Action, kind policy.Kind, id string) (*haven.Patient, haven.Actor, policy.Decision, policy.Facts, error) {
	return s.gatePatientFor(ctx, act, kind, id, id)
}

// gatePatientFor is gatePatient for a request that named sentID, a
// record of patient id: refused as unknown or another practice's, the
// actor's log records sentID, exactly as an unknown sentID's refusal.
func (s *Service) gatePatientFor(ctx context.Context, act policy.Action, kind policy.Kind, id, sentID string) (*haven.Patient, haven.Actor, policy.Decision, policy.Facts, error) {
	_, row, a, d, facts, err := s.gatePatientKeys(ctx, act, kind, id, sentID)
	return row, a, d, facts, err
}

// gatePatientKeys is gatePatientFor for a caller that opens the patient's
// fields: the context it returns carries the key state read with the
// facts (keyring.CheckedAs), so the opening sends no key-state read of
// its own. The decision, the chart row and the key state come from one
// statement: the facts' own, or for a patient's read of a record named in
// the request, her session's (WithSessionPatient). For a patient the
// facts it returns hold no relations (see relationsFor).
func (s *Service) gatePatientKeys(ctx context.Context, act policy.Action, kind policy.Kind, id, sentID string) (context.Context, *haven.Patient, haven.Actor, policy.Decision, policy.Facts, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return ctx, nil, a, policy.Decision{}, policy.Facts{}, err
	}
	if !haven.PlausibleID(id) {
		return ctx, nil, a, policy.Decision{}, policy.Facts{}, s.refuseUnknown(ctx, a, act, kind, sentID)
	}
	rel := relationsFor(a)
	pf := takeSessionPatient(ctx, a, id, rel)
	if pf == nil {
		if pf, err = s.db.PatientFacts(ctx, a.PracticeID, id, rel); err != nil {
			return ctx, nil, a, policy.Decision{}, policy.Facts{}, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the chart")
		}
	}
	if pf.Patient == nil {
		return ctx, nil, a, policy.Decision{}, policy.Facts{}, s.refuseUnknown(ctx, a, act, kind, sentID)
	}
	res := chartResource(kind, pf.Patient)
	facts, ps, err := s.patientFacts(ctx, a, res, pf)
	if err != nil {
		return ctx, nil, a, policy.Decision{}, facts, err
	}
	d, err := s.decide(ctx, a, act, res, facts, ps, sentID, true)
	if err == nil && pf.KeyRead {
		ctx = s.keys.CheckedAs(ctx, s.db, pf.KeyVersion, pf.KeyRoot)
	}
	return ctx, pf.Patient, a, d, facts, err
}

// relationsFor says whether a decision on a patient's record for a
// needs the patient's relations (care team, break-glass grants, visits):
// policy decides a patient's own access by whose record it is and never
// reads them for her, so a patient's read of her chart leaves them out.
// Only the gate uses it: a caller that asks more of the facts after the
// decision (whom a patient's message notifies) loads them whole.
func relationsFor(a haven.Actor) sqlstore.Relations {
	if a.Role == haven.RolePatient {
		return sqlstore.WithoutRelations
	}
	return sqlstore.WithRelations
}

// decide is the gate once the facts are loaded: policy's decision,
// recorded before it is returned (see authorize), with ps the actor's
// practice's settings the facts were loaded with, for detection.
func (s *Service) decide(ctx context.Context, a haven.Actor, act policy.Action, res policy.Resource, facts policy.Facts, ps PracticeSettings, sentID string, named bool) (policy.Decision, error) {
	var err error
	d := policy.Decide(a, act, res, facts)
	ev := audit.ForActor(a, string(act))
	ev.ResourceKind = string(res.Kind)
	ev.ResourceID = res.ID
	ev.PatientID = res.PatientID
	ev.Purpose = string(d.Purpose)
	ev.Reason = string(d.Reason)
	ev.Decision = haven.DecisionAllow
	if !d.Allow {
		ev.Decision = haven.DecisionDeny
	}
	elsewhere := res.PracticeID != a.PracticeID
	if elsewhere {
		// The event lands in the actor's own practice log, which that
		// practice's compliance officer reads: it keeps the id the actor
		// sent and nothing found behind it, in the same words as an id
		// that does not exist.
		ev.PatientID, ev.Purpose, ev.Reason = "", "", reasonNotFound
		if named {
			ev.ResourceID = sentID
		}
	}
	if ev.Seq, err = s.record(ctx, ev); err != nil {
		return d, err
	}
	if ev.LogID == a.PracticeID {
		s.detectWith(ctx, ev, ps)
	} else {
		s.detect(ctx, ev)
	}
	if elsewhere && !d.Allow {
		probed := res.ID
		if named {
			probed = sentID
		}
		s.reportProbe(ctx, a, act, res, probed)
	}
	if named && !d.Allow && !d.StepUp && a.Role == haven.RolePatient && res.PatientID != a.UserID {
		return d, errNotFound
	}
	return d, d.Err()
}

// reasonNotFound is the audit reason of a refusal for an id that exists
// nowhere, and of one for an id of another practice: one word for both.
const reasonNotFound = "not_found"

// errNotFound is the one answer to an id the actor may not know exists.
var errNotFound = haven.Errorf(haven.ENOTFOUND, "not found")

// Gate is what identity (sign-in, sessions, accounts, invitations) reaches
// of the service, and all it reaches: the access decision with its audit
// event, the audit log for security events, and the keyring, through
// methods that choose the key themselves. Identity holds no key and never
// names one; the wiring hands it the gate (see cmd/haven) and nothing else
// of the service.
//
// The methods that seal and open decide nothing: identity calls them for
// values it holds for a sign-in or a link (a TOTP secret, an invited
// address) and, for anything it shows of another person, after Authorize.
type Gate struct{ s *Service }

// Gate returns the service's gate for identity.
func (s *Service) Gate() *Gate { return &Gate{s: s} }

// Now is the service's clock, which identity shares.
func (g *Gate) Now() time.Time { return g.s.now() }

// Passwords is the pool that hashes passwords, shared with the service.
func (g *Gate) Passwords() *password.Hasher { return g.s.passwords }

// Authorize is the gate every PHI path passes, for identity's own acts
// (an admin opening another account): it decides act on res for the actor
// in ctx against freshly loaded facts and records the decision, allowed or
// denied, before returning. It returns nil only when the act is allowed
// and its event is durable; a record of another practice is refused as an
// id that exists nowhere.
func (g *Gate) Authorize(ctx context.Context, act policy.Action, res policy.Resource) (haven.Actor, policy.Decision, error) {
	return g.s.authorize(ctx, act, res)
}

// AuthorizeRecord is Authorize for a record the request named by sentID:
// refused as another practice's, the event records sentID, as an unknown
// id's does, and a patient refused a record not their own is answered
// ENOTFOUND, as a random id is.
func (g *Gate) AuthorizeRecord(ctx context.Context, act policy.Action, res policy.Resource, sentID string) (haven.Actor, policy.Decision, error) {
	return g.s.authorizeRecord(ctx, act, res, sentID)
}

// RefuseUnknown records a request for an id that does not exist (or is
// not haven.PlausibleID, recorded without its value) as a denial, and
// returns the ENOTFOUND every unknown or foreign id gets.
func (g *Gate) RefuseUnknown(ctx context.Context, a haven.Actor, act policy.Action, kind policy.Kind, id string) error {
	return g.s.refuseUnknown(ctx, a, act, kind, id)
}

// Record appends a security event (a sign-in, an MFA change) and returns
// once it is durable. An error means the event is not recorded; the
// caller must then not proceed.
func (g *Gate) Record(ctx context.Context, ev audit.Event) error {
	_, err := g.s.record(ctx, ev)
	return err
}

// EmailIndex is the blind index that finds an account by its address at
// sign-in, under the platform's index key.
func (g *Gate) EmailIndex(ctx context.Context, email string) ([]byte, error) {
	return g.s.emailIndex(ctx, email)
}

// SealedField names one sealed value identity keeps: the kind and id of
// the record it belongs to and the field. The gate binds it, with the
// practice and (for a patient's) the patient, into the ciphertext, so a
// value opens only where it was sealed.
type SealedField struct{ Kind, RecordID, Field string }

// userField is where u's own values live: their user record.
func userField(u *haven.User, f SealedField) keyring.AD {
	ad := userAD(u, f.Field)
	ad.Kind, ad.RecordID = f.Kind, f.RecordID
	return ad
}

// SealUser seals a value of u's (a TOTP secret, a passkey's name) under
// u's practice's key, or for a patient the patient's own, so erasing the
// patient erases it.
func (g *Gate) SealUser(ctx context.Context, u *haven.User, f SealedField, plaintext []byte) (haven.Sealed, error) {
	return g.s.keys.Seal(ctx, userField(u, f), plaintext)
}

// OpenUser opens what SealUser sealed.
func (g *Gate) OpenUser(ctx context.Context, u *haven.User, f SealedField, sealed haven.Sealed) ([]byte, error) {
	return g.s.keys.Open(ctx, userField(u, f), sealed)
}

// SealPractice seals a value a practice holds before anyone's account
// exists (an invited or registering address) under the practice's key.
func (g *Gate) SealPractice(ctx context.Context, practiceID string, f SealedField, plaintext []byte) (haven.Sealed, error) {
	return g.s.keys.Seal(ctx, practiceField(practiceID, f), plaintext)
}

// OpenPractice opens what SealPractice sealed.
func (g *Gate) OpenPractice(ctx context.Context, practiceID string, f SealedField, sealed haven.Sealed) ([]byte, error) {
	return g.s.keys.Open(ctx, practiceField(practiceID, f), sealed)
}

func practiceField(practiceID string, f SealedField) keyring.AD {
	return keyring.AD{PracticeID: keyPractice(practiceID), Kind: f.Kind, RecordID: f.RecordID, Field: f.Field}
}

// Profile opens u's email and name. Callers have decided and audited the
// access, or u is the signed-in user.
func (g *Gate) Profile(ctx context.Context, u *haven.User) (*UserProfile, error) {
	return g.s.openUser(ctx, u)
}

// SealNewPatient builds a patient's account (email blind-indexed, email
// and name sealed) and chart (sealed under the patient's own data key),
// ready to store with that key, in one transaction, for a patient's own
// registration: the front desk's RegisterPatient seals a new patient the
// same way. The caller has validated np, normalized its email, and
// records the registration.
func (g *Gate) SealNewPatient(ctx context.Context, practiceID, id string, np NewPatient) (*haven.User, *haven.Patient, haven.WrappedKey, error) {
	return g.s.sealNewPatient(ctx, practiceID, id, np)
}

// PracticeSettings loads a practice's settings, or the defaults, without
// an actor: sessions and sign-in read their timeouts and MFA rules.
func (g *Gate) PracticeSettings(ctx context.Context, practiceID string) (PracticeSettings, error) {
	return g.s.settings(ctx, practiceID)
}

// CreatePractice is Service.CreatePractice, for provisioning a practice.
func (g *Gate) CreatePractice(ctx context.Context, name string) (*haven.Practice, error) {
	return g.s.CreatePractice(ctx, name)
}

// CreateUser is Service.CreateUser, for an accepted invitation.
func (g *Gate) CreateUser(ctx context.Context, nu NewUser) (*haven.User, error) {
	return g.s.CreateUser(ctx, nu)
}
