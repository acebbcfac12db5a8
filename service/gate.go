package service

import (
	"context"

	"haven"
	"haven/audit"
	"haven/policy"
)

// Record appends ev to its log and returns once it is durable. It is how
// events that are not access decisions (sign-ins, MFA changes, key
// operations) reach the audit log. An error means the event is not
// recorded; the caller must then not proceed.
func (s *Service) Record(ctx context.Context, ev audit.Event) error {
	_, err := s.record(ctx, ev)
	return err
}

// record appends ev and returns its sequence number in its log.
func (s *Service) record(ctx context.Context, ev audit.Event) (uint64, error) {
	seqs, err := s.audit.Append(ctx, ev)
	if err != nil {
		return 0, haven.Wrap(haven.EUNAVAILABLE, err, "the audit log is unavailable; the request was not carried out")
	}
	return seqs[0], nil
}

// actor returns the authenticated actor in ctx, or EUNAUTHORIZED.
func actor(ctx context.Context) (haven.Actor, error) {
	a, ok := haven.ActorFromContext(ctx)
	if !ok || a.UserID == "" {
		return haven.Actor{}, haven.Errorf(haven.EUNAUTHORIZED, "sign in first")
	}
	return a, nil
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
	a, err := actor(ctx)
	if err != nil {
		return a, policy.Decision{}, err
	}
	facts, err := s.loadFacts(ctx, a, res)
	if err != nil {
		return a, policy.Decision{}, err
	}
	d := policy.Decide(a, act, res, facts)
	ev := audit.ForActor(a, string(act))
	ev.ResourceKind = string(res.Kind)
	ev.ResourceID = res.ID
	ev.PatientID = res.PatientID
	ev.Purpose = string(d.Purpose)
	ev.Reason = string(d.Reason)
	ev.Decision = audit.DecisionAllow
	if !d.Allow {
		ev.Decision = audit.DecisionDeny
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
		return a, d, err
	}
	s.detect(ctx, ev)
	if elsewhere && !d.Allow {
		probed := res.ID
		if named {
			probed = sentID
		}
		s.reportProbe(ctx, a, act, res, probed)
	}
	if named && !d.Allow && !d.StepUp && a.Role == haven.RolePatient && res.PatientID != a.UserID {
		return a, d, errNotFound
	}
	return a, d, d.Err()
}

// reasonNotFound is the audit reason of a refusal for an id that exists
// nowhere, and of one for an id of another practice: one word for both.
const reasonNotFound = "not_found"

// errNotFound is the one answer to an id the actor may not know exists.
var errNotFound = haven.Errorf(haven.ENOTFOUND, "not found")
