package service

import (
	"context"
	"time"

	"haven"
	"haven/keyring"
	"haven/policy"
)

// BreakGlassDefault is how long emergency access lasts unless the clinician
// asks for less; policy caps any grant at policy.BreakGlassMaxDuration.
const BreakGlassDefault = time.Hour

func grantAD(g *haven.BreakGlassGrant, field string) keyring.AD {
	return keyring.AD{PracticeID: g.PracticeID, PatientID: g.PatientID, Kind: "breakglass", RecordID: g.ID, Field: field}
}

// RequestBreakGlass gives a clinician off the patient's care team
// time-boxed emergency access to one patient. It needs a stated reason and
// a recent step-up; the grant alerts the compliance officer at once (rule
// break_glass) and every use under it lands in the review queue.
func (s *Service) RequestBreakGlass(ctx context.Context, patientID, reason string, d time.Duration) (*haven.BreakGlassGrantView, error) {
	if err := text("reason", reason, 10, 1000); err != nil {
		return nil, haven.Errorf(haven.EINVALID, "state the emergency in 10 to 1000 characters")
	}
	if d <= 0 {
		d = BreakGlassDefault
	}
	if d > policy.BreakGlassMaxDuration {
		d = policy.BreakGlassMaxDuration
	}
	row, a, _, _, err := s.gatePatient(ctx, policy.BreakGlassRequest, policy.KindBreakGlass, patientID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	g := &haven.BreakGlassGrant{ID: haven.NewID(), PracticeID: row.PracticeID, PatientID: row.ID, UserID: a.UserID, Start: now, Expires: now.Add(d)}
	if g.Reason, err = s.keys.Seal(ctx, grantAD(g, "reason"), []byte(reason)); err != nil {
		return nil, err
	}
	if err := s.db.CreateBreakGlassGrant(ctx, g); err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot store the grant")
	}
	return &haven.BreakGlassGrantView{ID: g.ID, PatientID: g.PatientID, UserID: g.UserID, Reason: reason, Start: g.Start, Expires: g.Expires}, nil
}

// BreakGlassQueue is the compliance officer's review queue: unreviewed
// grants with their reasons and how often each was used.
func (s *Service) BreakGlassQueue(ctx context.Context) ([]haven.BreakGlassGrantView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorize(ctx, policy.BreakGlassReview, policy.Resource{Kind: policy.KindBreakGlass, PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	grants, err := s.db.UnreviewedBreakGlassGrants(ctx, a.PracticeID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the review queue")
	}
	out := make([]haven.BreakGlassGrantView, 0, len(grants))
	for _, g := range grants {
		reason, err := s.keys.Open(ctx, grantAD(g, "reason"), g.Reason)
		if err != nil {
			return nil, err
		}
		uses, err := s.db.SearchAudit(ctx, haven.AuditQuery{LogID: g.PracticeID, PatientID: g.PatientID, ActorID: g.UserID,
			Decision: haven.DecisionAllow, Since: g.Start, Until: g.Expires, Limit: 1000})
		if err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot count uses")
		}
		n := 0
		for _, e := range uses {
			if e.Reason == string(policy.ReasonBreakGlass) {
				n++
			}
		}
		bg := haven.BreakGlassGrantView{ID: g.ID, PatientID: g.PatientID, UserID: g.UserID, Reason: string(reason), Start: g.Start, Expires: g.Expires, Uses: n}
		if u, err := s.db.FindUserByID(ctx, g.UserID); err == nil {
			if p, err := s.openUser(ctx, u); err == nil {
				bg.UserName = p.Name
			}
		}
		out = append(out, bg)
	}
	return out, nil
}

// ReviewBreakGlass closes one grant's review with the officer's note.
func (s *Service) ReviewBreakGlass(ctx context.Context, grantID, note string) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	if err := text("review note", note, 1, 2000); err != nil {
		return err
	}
	if !haven.PlausibleID(grantID) {
		return s.refuseUnknown(ctx, a, policy.BreakGlassReview, policy.KindBreakGlass, grantID)
	}
	g, err := s.db.FindBreakGlassGrant(ctx, grantID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return s.refuseUnknown(ctx, a, policy.BreakGlassReview, policy.KindBreakGlass, grantID)
	}
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the grant")
	}
	if _, _, err := s.authorizeRecord(ctx, policy.BreakGlassReview, policy.Resource{Kind: policy.KindBreakGlass, ID: g.ID, PracticeID: g.PracticeID}, grantID); err != nil {
		return err
	}
	sealed, err := s.keys.Seal(ctx, grantAD(g, "review"), []byte(note))
	if err != nil {
		return err
	}
	return s.db.ReviewBreakGlassGrant(ctx, g.ID, a.UserID, sealed)
}
