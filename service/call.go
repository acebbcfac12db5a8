package service

import (
	"context"
	"slices"
	"time"

	"haven"
	"haven/audit"
	"haven/policy"
	"haven/video/token"
)

// The call: what the video endpoint asks of the service once a join token
// has redeemed (is this person still allowed in), what it records, and the
// pages' questions around it (what state is my visit in, who may I book
// with, give me a join token). The media and the tokens' cryptography are
// package video's; every decision about people and visits is made here.

// Visit returns one visit, opened (visit.read, audited).
func (s *Service) Visit(ctx context.Context, visitID string) (*haven.VisitView, error) {
	_, v, err := s.visitFor(ctx, policy.VisitRead, visitID)
	if err != nil {
		return nil, err
	}
	return s.openVisit(ctx, v)
}

// VisitStatePoll is how often WatchVisit looks at the database while it
// waits: a patient admitted sees the call open within this.
const VisitStatePoll = 500 * time.Millisecond

// Clinicians lists the clinicians of the actor's practice, for booking. A
// clinic's roster is public information, not PHI, so listing it is not
// audited; which clinician a patient then books is (visit.book).
func (s *Service) Clinicians(ctx context.Context) ([]haven.Member, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if a.PracticeID == "" {
		return nil, haven.Errorf(haven.EFORBIDDEN, "only members of a practice book visits")
	}
	users, err := s.db.ListUsers(ctx, a.PracticeID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list clinicians")
	}
	var out []haven.Member
	for _, u := range users {
		if u.Role != haven.RoleClinician || u.Disabled {
			continue
		}
		p, err := s.openUser(ctx, u)
		if err != nil {
			return nil, err
		}
		out = append(out, haven.Member{UserID: u.ID, Name: p.Name, Role: u.Role})
	}
	return out, nil
}

// CallPass is a join token and what it makes its holder in the call.
type CallPass struct {
	Token string     `json:"token"`
	Role  token.Role `json:"role"`
}

// CallToken mints the signed-in user's join token for an admitted visit:
// the patient's or the clinician's (see JoinToken), or a guest's if the
// clinician invited them. Anyone else is refused, and audited as such.
func (s *Service) CallToken(ctx context.Context, visitID string) (*CallPass, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if !haven.PlausibleID(visitID) {
		return nil, s.refuseUnknown(ctx, a, policy.VisitJoin, policy.KindVisit, visitID)
	}
	if v, err := s.db.FindVisit(ctx, visitID); err == nil && a.UserID != v.PatientID && a.UserID != v.ClinicianID {
		if invited, err := s.db.IsGuest(ctx, v.ID, a.UserID); err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the visit's guests")
		} else if invited {
			if err := s.guestAllowed(ctx, a, v); err != nil {
				return nil, err
			}
			tok, err := token.Mint(s.videoKey, token.Claims{VisitID: v.ID, ParticipantID: a.UserID, Role: token.Guest}, s.now())
			if err != nil {
				return nil, err
			}
			return &CallPass{Token: tok, Role: token.Guest}, nil
		}
	}
	tok, err := s.JoinToken(ctx, visitID)
	if err != nil {
		return nil, err
	}
	c, err := token.Verify(s.videoKey, tok, visitID, a.UserID, s.now())
	if err != nil {
		return nil, err
	}
	return &CallPass{Token: tok, Role: c.Role}, nil
}

// CallAllowed is asked by the call endpoint after a join token redeems and
// before its holder is seated: is the visit still admitted (not ended or
// cancelled since the token was minted, on this node or another), and is
// the holder still its patient, its clinician on the care team, or an
// invited guest of its practice. It passes the gate (visit.join), so a
// refusal here is audited with policy's reason.
func (s *Service) CallAllowed(ctx context.Context, c token.Claims) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	if c.ParticipantID != a.UserID {
		return haven.Errorf(haven.EFORBIDDEN, "the join token is for someone else")
	}
	if len(s.videoKey) != token.KeySize {
		return haven.Errorf(haven.EUNAVAILABLE, "video is not configured")
	}
	if c.Role == token.Guest {
		v, err := s.db.FindVisit(ctx, c.VisitID)
		if haven.ErrorCode(err) == haven.ENOTFOUND {
			return s.refuseUnknown(ctx, a, policy.VisitJoin, policy.KindVisit, c.VisitID)
		} else if err != nil {
			return haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the visit")
		}
		return s.guestAllowed(ctx, a, v)
	}
	_, v, err := s.visitFor(ctx, policy.VisitJoin, c.VisitID)
	if err != nil {
		return err
	}
	switch {
	case c.Role == token.Clinician && a.UserID != v.ClinicianID, c.Role == token.Patient && a.UserID != v.PatientID:
		return haven.Errorf(haven.EFORBIDDEN, "the join token is not for your part in this visit")
	case v.State != haven.VisitAdmitted:
		return haven.Errorf(haven.ECONFLICT, "the visit is %s", v.State)
	}
	return nil
}

// CallStillOpen is asked by the call endpoint again and again while a
// participant is seated (CallAllowed decides only the join): is the visit
// still admitted, not ended or cancelled since (on this node or another),
// and is the participant still its patient, its clinician or an invited
// guest. It is not audited: it reads only the state of a visit whose join
// was decided and audited, as WatchVisit's repeated looks are not, and
// the endpoint audits the cut that a refusal leads to.
func (s *Service) CallStillOpen(ctx context.Context, c token.Claims) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	if c.ParticipantID != a.UserID {
		return haven.Errorf(haven.EFORBIDDEN, "the join token is for someone else")
	}
	v, err := s.db.FindVisit(ctx, c.VisitID)
	if haven.ErrorCode(err) == haven.ENOTFOUND || (err == nil && v.PracticeID != a.PracticeID) {
		return haven.Errorf(haven.ENOTFOUND, "not found")
	}
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the visit")
	}
	if v.State != haven.VisitAdmitted {
		return haven.Errorf(haven.ECONFLICT, "the visit is %s", v.State)
	}
	switch c.Role {
	case token.Patient:
		if a.UserID != v.PatientID {
			return haven.Errorf(haven.EFORBIDDEN, "not this visit's patient")
		}
	case token.Clinician:
		if a.UserID != v.ClinicianID {
			return haven.Errorf(haven.EFORBIDDEN, "not this visit's clinician")
		}
	case token.Guest:
		invited, err := s.db.IsGuest(ctx, v.ID, a.UserID)
		if err != nil {
			return haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the visit's guests")
		}
		if !invited {
			return haven.Errorf(haven.EFORBIDDEN, "not invited")
		}
	default:
		return haven.Errorf(haven.EFORBIDDEN, "no part in this visit")
	}
	return nil
}

// guestAllowed decides a guest's join or token. Policy knows patients and
// care teams, not invitations, so this check is the clinician's
// invitation itself: recorded for this visit and this user, in the
// visit's practice, while the visit is admitted. It is audited like a
// gate decision (visit.join, reason invited_guest or why not). A user of
// another practice learns nothing: the visit is "not found" to them.
func (s *Service) guestAllowed(ctx context.Context, a haven.Actor, v *haven.Visit) error {
	if a.PracticeID != v.PracticeID {
		return s.refuseUnknown(ctx, a, policy.VisitJoin, policy.KindVisit, v.ID)
	}
	reason := "invited_guest"
	if invited, err := s.db.IsGuest(ctx, v.ID, a.UserID); err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the visit's guests")
	} else if !invited {
		reason = "not_invited"
	}
	if reason == "invited_guest" && v.State != haven.VisitAdmitted {
		reason = "visit_" + v.State
	}
	ev := audit.ForActor(a, string(policy.VisitJoin))
	ev.ResourceKind, ev.ResourceID, ev.PatientID = string(policy.KindVisit), v.ID, v.PatientID
	ev.Purpose, ev.Decision, ev.Reason = audit.PurposeTreatment, haven.DecisionAllow, reason
	if reason != "invited_guest" {
		ev.Decision = haven.DecisionDeny
	}
	var err error
	if ev.Seq, err = s.record(ctx, ev); err != nil {
		return err
	}
	s.detect(ctx, ev)
	switch reason {
	case "invited_guest":
		return nil
	case "not_invited":
		return haven.Errorf(haven.EFORBIDDEN, "the clinician has not invited you to this visit")
	default:
		return haven.Errorf(haven.ECONFLICT, "the visit is %s", v.State)
	}
}

// InviteGuest records that the visit's clinician invites guestID (an
// interpreter, a family member: any active user of the practice) to the
// call, so the guest can fetch a join token from their own signed-in
// page. Only the visit's clinician, while it is admitted, may invite. The
// access passes the gate (visit.join); the call endpoint audits the
// invitation itself, naming the guest, before calling this.
func (s *Service) InviteGuest(ctx context.Context, visitID, guestID string) error {
	a, v, err := s.visitFor(ctx, policy.VisitJoin, visitID)
	if err != nil {
		return err
	}
	if a.UserID != v.ClinicianID {
		return haven.Errorf(haven.EFORBIDDEN, "only the visit's clinician may invite")
	}
	if v.State != haven.VisitAdmitted {
		return haven.Errorf(haven.ECONFLICT, "the visit is %s", v.State)
	}
	if !haven.PlausibleID(guestID) {
		return haven.Errorf(haven.ENOTFOUND, "no such user in this practice")
	}
	g, err := s.db.FindUserByID(ctx, guestID)
	if err != nil || g.PracticeID != v.PracticeID || g.Disabled {
		return haven.Errorf(haven.ENOTFOUND, "no active user %s in this practice", guestID)
	}
	if g.ID == v.PatientID || g.ID == v.ClinicianID {
		return haven.Errorf(haven.ECONFLICT, "that person is already a participant of this visit")
	}
	if err := s.db.InviteGuest(ctx, v.ID, g.ID, a.UserID); err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot record the invitation")
	}
	return nil
}

// CallEvent is something that happened in a call, for the audit log: a
// participant seated, refused, leaving, ending the visit or inviting.
type CallEvent struct {
	Action  string // "visit.join", "visit.join_refused", "visit.leave", "visit.end", "visit.invite"
	VisitID string
	Refused bool   // a refusal (decision deny)
	Reason  string // a code: why refused, "reconnect", "left", "disconnected"
	Subject string // the invitee's user id, for an invitation
}

// RecordCall appends e for the actor in ctx to their practice's log. The
// patient is named only when the visit belongs to the actor's own practice,
// so an outsider's probe of another practice's visit id never writes that
// practice's patient into the outsider's log.
func (s *Service) RecordCall(ctx context.Context, e CallEvent) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	ev := audit.ForActor(a, e.Action)
	ev.ResourceKind, ev.Decision = string(policy.KindVisit), haven.DecisionAllow
	if e.Refused {
		ev.Decision = haven.DecisionDeny
	}
	if haven.PlausibleID(e.VisitID) {
		ev.ResourceID = e.VisitID
		if v, err := s.db.FindVisit(ctx, e.VisitID); err == nil && v.PracticeID == a.PracticeID {
			ev.PatientID = v.PatientID
			if !e.Refused {
				ev.Purpose = audit.PurposeTreatment
			}
		}
	}
	switch {
	case e.Subject != "" && haven.PlausibleID(e.Subject):
		ev.Reason = "guest:" + e.Subject
	case haven.PlausibleID(e.Reason):
		ev.Reason = e.Reason
	}
	if ev.Seq, err = s.record(ctx, ev); err != nil {
		return err
	}
	s.detect(ctx, ev)
	return nil
}

// CallSeat is what the signed-in user is in a visit's call, and who takes
// part in it by name: the call page offers each part only its own
// controls (ending the visit and inviting are the clinician's) and names
// every tile.
type CallSeat struct {
	Part  token.Role        `json:"part"`
	State string            `json:"state"`
	Names map[string]string `json:"names"` // participant id → name
	// PatientID is the visit's patient, for its clinician only: the call
	// page's way to her prescribe form.
	PatientID string `json:"patient_id,omitempty"`
}

// CallSeat finds the signed-in user's part in a visit's call (its
// patient, its clinician or an invited guest) and names its participants.
// Someone with no part gets "not found", as for a visit that does not
// exist. A participant's look at who takes part is audited (visit.read,
// reason call_participant); it decides nothing: only a join token,
// minted and checked through the gate, seats anyone.
func (s *Service) CallSeat(ctx context.Context, visitID string) (*CallSeat, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if !haven.PlausibleID(visitID) {
		return nil, s.refuseUnknown(ctx, a, policy.VisitRead, policy.KindVisit, visitID)
	}
	v, err := s.db.FindVisit(ctx, visitID)
	if haven.ErrorCode(err) == haven.ENOTFOUND || (err == nil && v.PracticeID != a.PracticeID) {
		return nil, s.refuseUnknown(ctx, a, policy.VisitRead, policy.KindVisit, visitID)
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the visit")
	}
	guests, err := s.db.VisitGuests(ctx, v.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the visit's guests")
	}
	seat := &CallSeat{State: v.State, Names: map[string]string{}}
	switch {
	case a.UserID == v.ClinicianID:
		seat.Part, seat.PatientID = token.Clinician, v.PatientID
	case a.UserID == v.PatientID:
		seat.Part = token.Patient
	case slices.Contains(guests, a.UserID):
		seat.Part = token.Guest
	default:
		return nil, s.refuseUnknown(ctx, a, policy.VisitRead, policy.KindVisit, visitID)
	}
	ev := audit.ForActor(a, string(policy.VisitRead))
	ev.ResourceKind, ev.ResourceID, ev.PatientID = string(policy.KindVisit), v.ID, v.PatientID
	ev.Purpose, ev.Decision, ev.Reason = audit.PurposeTreatment, haven.DecisionAllow, "call_participant"
	if ev.Seq, err = s.record(ctx, ev); err != nil {
		return nil, err
	}
	s.detect(ctx, ev)
	if row, err := s.db.FindPatient(ctx, v.PatientID); err == nil {
		seat.Names[v.PatientID] = patientName(ctx, s, row)
	}
	for _, id := range append([]string{v.ClinicianID}, guests...) {
		if name := s.workforceName(ctx, v.PracticeID, id); name != "" {
			seat.Names[id] = name
		}
	}
	return seat, nil
}

// CallInvitation is a call the signed-in user is invited to, as their
// home page shows it: when, with whom, and the way in.
type CallInvitation struct {
	VisitID       string
	Start         time.Time
	ClinicianName string
}

// CallInvitations returns the calls under way that the signed-in user is
// invited to as a guest. It names no patient and opens nothing: joining
// is decided and audited when they join.
func (s *Service) CallInvitations(ctx context.Context) ([]CallInvitation, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	vs, err := s.db.GuestVisits(ctx, a.UserID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load invitations")
	}
	var out []CallInvitation
	for _, v := range vs {
		if v.PracticeID != a.PracticeID {
			continue
		}
		out = append(out, CallInvitation{VisitID: v.ID, Start: v.Start, ClinicianName: s.workforceName(ctx, v.PracticeID, v.ClinicianID)})
	}
	return out, nil
}
