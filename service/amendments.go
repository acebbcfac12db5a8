package service

import (
	"context"
	"time"

	"haven"
	"haven/keyring"
	"haven/policy"
)

// Amendments (HIPAA 164.526): a patient asks for a signed note, or her
// details, to be amended and says why; a clinician related to her accepts
// (an addendum to the note, signed like it) or denies with a reason,
// within 60 days of the request, or once 30 more with a reason given; a
// patient whose request was denied may attach a statement of
// disagreement, which is then shown with that part of her record wherever
// it is shown. Every step is decided and audited (amendment.request,
// amendment.read, amendment.decide, amendment.queue, note.sign for an
// accepted note's addendum). Reasons, answers and statements are sealed
// under the patient's data key.

// Deadlines of an amendment request.
const (
	AmendmentDays  = 60 // to act on a request
	ExtensionDays  = 30 // one extension, with a reason
	MaxAmendText   = 4000
	amendmentQueue = 500 // the most requests the practice's list shows
)

func amendmentAD(a *haven.Amendment, field string) keyring.AD {
	return keyring.AD{PracticeID: a.PracticeID, PatientID: a.PatientID, Kind: "amendment", RecordID: a.ID, Field: field}
}

func amendmentResource(a *haven.Amendment) policy.Resource {
	return policy.Resource{Kind: policy.KindAmendment, ID: a.ID, PracticeID: a.PracticeID, PatientID: a.PatientID}
}

// RequestAmendment records the signed-in patient's request to amend part
// of her record: a signed note she can read (AmendNote and the note's id)
// or her details (AmendChart and her own id).
func (s *Service) RequestAmendment(ctx context.Context, part, recordID, reason string) (*haven.AmendmentView, error) {
	reason, err := longText(reason, 1, MaxAmendText)
	if err != nil {
		return nil, haven.Errorf(haven.EINVALID, "say what should change and why, in 1 to %d characters", MaxAmendText)
	}
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	am := &haven.Amendment{ID: haven.NewID(), Part: part, RecordID: recordID, State: haven.AmendmentRequested}
	switch part {
	case haven.AmendNote:
		if !haven.PlausibleID(recordID) {
			return nil, s.refuseUnknown(ctx, a, policy.AmendmentRequest, policy.KindAmendment, recordID)
		}
		n, err := s.db.FindNote(ctx, recordID)
		if haven.ErrorCode(err) == haven.ENOTFOUND {
			return nil, s.refuseUnknown(ctx, a, policy.AmendmentRequest, policy.KindAmendment, recordID)
		}
		if err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the note")
		}
		am.PracticeID, am.PatientID = n.PracticeID, n.PatientID
		if _, _, err := s.authorizeRecord(ctx, policy.AmendmentRequest, amendmentResource(am), recordID); err != nil {
			return nil, err
		}
		if !s.released(n) {
			return nil, errNotFound
		}
	case haven.AmendChart:
		row, err := s.patientRow(ctx, policy.AmendmentRequest, policy.KindAmendment, recordID)
		if err != nil {
			return nil, err
		}
		am.PracticeID, am.PatientID = row.PracticeID, row.ID
		if _, _, err := s.authorizeRecord(ctx, policy.AmendmentRequest, amendmentResource(am), recordID); err != nil {
			return nil, err
		}
	default:
		return nil, haven.Errorf(haven.EINVALID, "ask to amend a signed note or your details")
	}
	now := s.now().UTC()
	am.CreatedUS, am.ChangedUS = now.UnixMicro(), now.UnixMicro()
	am.DueUS = now.AddDate(0, 0, AmendmentDays).UnixMicro()
	if am.Reason, err = s.keys.Seal(ctx, amendmentAD(am, "reason"), []byte(reason)); err != nil {
		return nil, err
	}
	if err := s.db.CreateAmendment(ctx, am); err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot store the request")
	}
	return s.openAmendment(ctx, a, am, "")
}

// amendmentFor loads a request for act and decides it. Unknown ids and
// other patients' or practices' get the one ENOTFOUND.
func (s *Service) amendmentFor(ctx context.Context, act policy.Action, id string) (haven.Actor, *haven.Amendment, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return a, nil, err
	}
	if !haven.PlausibleID(id) {
		return a, nil, s.refuseUnknown(ctx, a, act, policy.KindAmendment, id)
	}
	am, err := s.db.FindAmendment(ctx, id)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return a, nil, s.refuseUnknown(ctx, a, act, policy.KindAmendment, id)
	}
	if err != nil {
		return a, nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the request")
	}
	if _, _, err := s.authorizeRecord(ctx, act, amendmentResource(am), id); err != nil {
		return a, nil, err
	}
	return a, am, nil
}

// Amendment opens one request (amendment.read).
func (s *Service) Amendment(ctx context.Context, id string) (*haven.AmendmentView, error) {
	a, am, err := s.amendmentFor(ctx, policy.AmendmentRead, id)
	if err != nil {
		return nil, err
	}
	return s.openAmendment(ctx, a, am, "")
}

// PatientAmendments lists a patient's requests (amendment.read on her
// record), newest first.
func (s *Service) PatientAmendments(ctx context.Context, patientID string) ([]haven.AmendmentView, error) {
	row, err := s.patientRow(ctx, policy.AmendmentRead, policy.KindAmendment, patientID)
	if err != nil {
		return nil, err
	}
	a, _, err := s.authorizeRecord(ctx, policy.AmendmentRead, chartResource(policy.KindAmendment, row), patientID)
	if err != nil {
		return nil, err
	}
	ams, err := s.db.PatientAmendments(ctx, row.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list requests")
	}
	out := []haven.AmendmentView{}
	for _, am := range ams {
		if am.PracticeID != row.PracticeID {
			continue
		}
		av, err := s.openAmendment(ctx, a, am, "")
		if err != nil {
			return nil, err
		}
		out = append(out, *av)
	}
	return out, nil
}

// DecideAmendment accepts or denies a request (amendment.decide). An
// accepted request about a note appends text to it as an addendum, which
// is signing and needs note.sign's recent step-up too; a denial gives the
// reason in text. The patient is told by an email that says nothing but
// that there is an update.
func (s *Service) DecideAmendment(ctx context.Context, id string, accept bool, text string) (*haven.AmendmentView, error) {
	text, err := longText(text, 1, MaxAmendText)
	if err != nil {
		if accept {
			return nil, haven.Errorf(haven.EINVALID, "write the amendment, 1 to %d characters", MaxAmendText)
		}
		return nil, haven.Errorf(haven.EINVALID, "give the reason for the denial, 1 to %d characters", MaxAmendText)
	}
	a, am, err := s.amendmentFor(ctx, policy.AmendmentDecide, id)
	if err != nil {
		return nil, err
	}
	if am.State != haven.AmendmentRequested {
		return nil, haven.Errorf(haven.ECONFLICT, "this request was answered already")
	}
	am.DecidedBy, am.DecidedUS = a.UserID, s.now().UTC().UnixMicro()
	am.State = haven.AmendmentDenied
	if accept {
		am.State = haven.AmendmentAccepted
	}
	if am.Response, err = s.keys.Seal(ctx, amendmentAD(am, "response"), []byte(text)); err != nil {
		return nil, err
	}
	if accept && am.Part == haven.AmendNote {
		n, err := s.db.FindNote(ctx, am.RecordID)
		if err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the note")
		}
		v, err := s.db.FindVisit(ctx, n.VisitID)
		if err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the visit")
		}
		if _, _, err := s.authorizeRecord(ctx, policy.NoteSign, noteResource(v), v.ID); err != nil {
			return nil, err
		}
		if _, err := s.appendAddendum(ctx, a, n, text, am); err != nil {
			return nil, err
		}
	} else if err := s.db.DecideAmendment(ctx, am); err != nil {
		if haven.ErrorCode(err) == haven.ECONFLICT {
			return nil, err
		}
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot store the answer")
	}
	s.notifyUpdate(ctx, am.PracticeID, am.PatientID)
	return s.openAmendment(ctx, a, am, "")
}

// ExtendAmendment moves a request's deadline by ExtensionDays, once, with
// the reason the patient is owed (amendment.decide).
func (s *Service) ExtendAmendment(ctx context.Context, id, reason string) (*haven.AmendmentView, error) {
	reason, err := longText(reason, 1, MaxAmendText)
	if err != nil {
		return nil, haven.Errorf(haven.EINVALID, "give the reason for the extension, 1 to %d characters", MaxAmendText)
	}
	a, am, err := s.amendmentFor(ctx, policy.AmendmentDecide, id)
	if err != nil {
		return nil, err
	}
	if am.State != haven.AmendmentRequested || am.Extension != nil {
		return nil, haven.Errorf(haven.ECONFLICT, "a request's deadline may be extended once, before it is answered")
	}
	am.DueUS = time.UnixMicro(am.DueUS).UTC().AddDate(0, 0, ExtensionDays).UnixMicro()
	am.ChangedUS = s.now().UTC().UnixMicro()
	if am.Extension, err = s.keys.Seal(ctx, amendmentAD(am, "extension"), []byte(reason)); err != nil {
		return nil, err
	}
	if err := s.db.ExtendAmendment(ctx, am); err != nil {
		if haven.ErrorCode(err) == haven.ECONFLICT {
			return nil, err
		}
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot store the extension")
	}
	s.notifyUpdate(ctx, am.PracticeID, am.PatientID)
	return s.openAmendment(ctx, a, am, "")
}

// DisagreeAmendment attaches the patient's statement of disagreement to a
// denied request of hers, once (amendment.request).
func (s *Service) DisagreeAmendment(ctx context.Context, id, statement string) (*haven.AmendmentView, error) {
	statement, err := longText(statement, 1, MaxAmendText)
	if err != nil {
		return nil, haven.Errorf(haven.EINVALID, "a statement of disagreement is 1 to %d characters", MaxAmendText)
	}
	a, am, err := s.amendmentFor(ctx, policy.AmendmentRequest, id)
	if err != nil {
		return nil, err
	}
	if am.State != haven.AmendmentDenied || am.Disagreement != nil {
		return nil, haven.Errorf(haven.ECONFLICT, "a statement of disagreement is attached once, to a denied request")
	}
	am.DisagreedUS = s.now().UTC().UnixMicro()
	if am.Disagreement, err = s.keys.Seal(ctx, amendmentAD(am, "disagreement"), []byte(statement)); err != nil {
		return nil, err
	}
	if err := s.db.DisagreeAmendment(ctx, am); err != nil {
		if haven.ErrorCode(err) == haven.ECONFLICT {
			return nil, err
		}
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot store the statement")
	}
	return s.openAmendment(ctx, a, am, "")
}

// PracticeAmendments is the practice's list of requests for clinicians and
// the compliance officer (amendment.queue): open ones first by deadline,
// with days left, whose they are and what part they concern, and none of
// their text.
func (s *Service) PracticeAmendments(ctx context.Context) ([]haven.AmendmentView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorize(ctx, policy.AmendmentQueue, policy.Resource{Kind: policy.KindAmendment, PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	ams, err := s.db.PracticeAmendments(ctx, a.PracticeID, amendmentQueue)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list requests")
	}
	names := map[string]string{}
	out := []haven.AmendmentView{}
	for _, am := range ams {
		name, ok := names[am.PatientID]
		if !ok {
			if row, err := s.db.FindPatient(ctx, am.PatientID); err == nil && row.PracticeID == a.PracticeID {
				name = patientName(ctx, s, row)
			}
			names[am.PatientID] = name
		}
		out = append(out, s.amendmentFacts(a, am, name))
	}
	return out, nil
}

// amendmentFacts is what anyone allowed to see a request sees of it:
// everything but its texts.
func (s *Service) amendmentFacts(a haven.Actor, am *haven.Amendment, patientName string) haven.AmendmentView {
	now := s.now()
	due := time.UnixMicro(am.DueUS).UTC()
	av := haven.AmendmentView{ID: am.ID, PatientID: am.PatientID, PatientName: patientName, Part: am.Part, RecordID: am.RecordID,
		PartLabel: "Your details", State: am.State, RequestedAt: time.UnixMicro(am.CreatedUS).UTC(), Due: due,
		Extended: am.Extension != nil, AddendumID: am.AddendumID}
	if am.Part == haven.AmendNote {
		av.PartLabel = "Visit note"
	} else if a.Role != haven.RolePatient {
		av.PartLabel = "The patient's details"
	}
	if am.State == haven.AmendmentRequested {
		av.DaysLeft = int(due.Sub(now).Hours() / 24)
		if due.After(now) && due.Sub(now)%(24*time.Hour) != 0 {
			av.DaysLeft++ // a part of a day left is a day left
		}
	}
	if am.DecidedUS != 0 {
		t := time.UnixMicro(am.DecidedUS).UTC()
		av.DecidedAt = &t
	}
	if am.DisagreedUS != 0 {
		t := time.UnixMicro(am.DisagreedUS).UTC()
		av.DisagreedAt = &t
	}
	return av
}

// openAmendment opens a request's texts for a reader already allowed.
func (s *Service) openAmendment(ctx context.Context, a haven.Actor, am *haven.Amendment, patientName string) (*haven.AmendmentView, error) {
	av := s.amendmentFacts(a, am, patientName)
	open := func(field string, sealed haven.Sealed) (string, error) {
		if sealed == nil {
			return "", nil
		}
		b, err := s.keys.Open(ctx, amendmentAD(am, field), sealed)
		return string(b), err
	}
	var err error
	if av.Reason, err = open("reason", am.Reason); err != nil {
		return nil, err
	}
	if av.Extension, err = open("extension", am.Extension); err != nil {
		return nil, err
	}
	if av.Response, err = open("response", am.Response); err != nil {
		return nil, err
	}
	if av.Disagreement, err = open("disagreement", am.Disagreement); err != nil {
		return nil, err
	}
	if am.Part == haven.AmendNote {
		if n, err := s.db.FindNote(ctx, am.RecordID); err == nil && n.PatientID == am.PatientID {
			av.VisitID = n.VisitID
		}
	}
	if am.DecidedBy != "" {
		av.DeciderName = s.workforceName(ctx, am.PracticeID, am.DecidedBy)
	}
	requested := am.State == haven.AmendmentRequested
	clinician := a.Role == haven.RoleClinician && policy.Permits(a.Role, policy.AmendmentDecide)
	av.CanDecide = requested && clinician
	av.CanExtend = requested && clinician && am.Extension == nil
	av.CanDisagree = am.State == haven.AmendmentDenied && am.Disagreement == nil && a.UserID == am.PatientID
	return &av, nil
}
