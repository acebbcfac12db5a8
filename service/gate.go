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
func (s *Service) authorize(ctx context.Context, act policy.Action, res policy.Resource) (haven.Actor, policy.Decision, error) {
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
	if res.PracticeID != "" && res.PracticeID != a.PracticeID && res.PatientID != res.ID {
		// The event lands in the actor's own practice log, which that
		// practice's compliance officer reads: it keeps the id the actor
		// sent, never another practice's patient id found behind it.
		ev.PatientID = ""
	}
	ev.Purpose = string(d.Purpose)
	ev.Reason = string(d.Reason)
	ev.Decision = audit.DecisionAllow
	if !d.Allow {
		ev.Decision = audit.DecisionDeny
	}
	if ev.Seq, err = s.record(ctx, ev); err != nil {
		return a, d, err
	}
	s.detect(ctx, ev)
	return a, d, d.Err()
}
