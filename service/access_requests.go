package service

import (
	"context"
	"strings"
	"time"

	"haven"
	"haven/keyring"
	"haven/policy"
)

// Written requests for access (HIPAA 164.524(b)): the front desk records
// a patient's written request with the day it was received, which starts
// the 30-day clock; the practice's list shows every open request with the
// days left, to the front desk and the compliance officer; the front desk
// produces the same export the patient can download herself, after a
// fresh authentication, once per request. A copy sent to another
// provider at her request is a disclosure, in her accounting.

// NewAccessRequest is a written request as the front desk records it.
type NewAccessRequest struct {
	PatientID string `json:"patient_id"`
	// Received is the day the request arrived (YYYY-MM-DD); the practice
	// has AccessDays from it.
	Received string `json:"received"`
	// Recipient is whom the copy goes to, when not the patient herself
	// (another provider, named as the request names them).
	Recipient string `json:"recipient,omitempty"`
}

type accessDetail struct {
	Recipient string `json:"recipient,omitempty"`
}

func accessAD(r *haven.AccessRequest) keyring.AD {
	return keyring.AD{PracticeID: r.PracticeID, PatientID: r.PatientID, Kind: "access_request", RecordID: r.ID, Field: "detail"}
}

// maxRecipient bounds a recipient's name and address.
const maxRecipient = 300

// RecordAccessRequest records a patient's written request for a copy of
// her record.
func (s *Service) RecordAccessRequest(ctx context.Context, nr NewAccessRequest) (*haven.AccessRequestView, error) {
	received, err := time.Parse(time.DateOnly, strings.TrimSpace(nr.Received))
	if err != nil {
		return nil, haven.Errorf(haven.EINVALID, "give the day the request was received (YYYY-MM-DD)")
	}
	// A day that has begun somewhere (UTC+14) is not in the future.
	if received.After(s.now().Add(14*time.Hour)) || received.Before(s.now().AddDate(0, 0, -haven.AccessDays*3)) {
		return nil, haven.Errorf(haven.EINVALID, "the day the request was received is today or in the last few weeks")
	}
	recipient := strings.TrimSpace(nr.Recipient)
	if len(recipient) > maxRecipient || !oneLine(recipient) {
		return nil, haven.Errorf(haven.EINVALID, "the recipient is one line of at most %d characters", maxRecipient)
	}
	row, a, _, _, err := s.gatePatient(ctx, policy.AccessRequestManage, policy.KindAccessRequest, nr.PatientID)
	if err != nil {
		return nil, err
	}
	r := &haven.AccessRequest{ID: haven.NewID(), PracticeID: row.PracticeID, PatientID: row.ID, Received: received.UTC(),
		Due: received.UTC().AddDate(0, 0, haven.AccessDays), RecordedBy: a.UserID}
	if r.Detail, err = s.sealJSON(ctx, accessAD(r), accessDetail{Recipient: recipient}); err != nil {
		return nil, err
	}
	if err := s.db.CreateAccessRequest(ctx, r); err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot record the request")
	}
	return s.accessView(ctx, r, recipient, true), nil
}

// accessView is r for the practice's list.
func (s *Service) accessView(ctx context.Context, r *haven.AccessRequest, recipient string, showRecipient bool) *haven.AccessRequestView {
	v := &haven.AccessRequestView{ID: r.ID, PatientID: r.PatientID, Received: r.Received, Due: r.Due, Fulfilled: r.Fulfilled, ToOther: recipient != ""}
	if row, err := s.db.FindPatient(ctx, r.PatientID); err == nil {
		v.PatientName = patientName(ctx, s, row)
	}
	if showRecipient {
		v.Recipient = recipient
	}
	v.DaysLeft = int(r.Due.Sub(s.now()).Hours() / 24)
	if r.Due.Before(s.now()) {
		v.DaysLeft = -int(s.now().Sub(r.Due).Hours()/24) - 1
	}
	return v
}

// maxAccessList bounds the practice's list.
const maxAccessList = 500

// AccessRequests returns the practice's written requests for access:
// open ones first, soonest due first, with the days left (negative when
// late), then those answered. The compliance officer sees whose request
// each is and its clock; the front desk, who fulfil them, also whom the
// copy goes to.
func (s *Service) AccessRequests(ctx context.Context) ([]*haven.AccessRequestView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorize(ctx, policy.AccessRequestQueue, policy.Resource{Kind: policy.KindAccessRequest, PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	rows, err := s.db.PracticeAccessRequests(ctx, a.PracticeID, maxAccessList)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list the requests")
	}
	staff := policy.Permits(a.Role, policy.AccessRequestManage)
	out := make([]*haven.AccessRequestView, 0, len(rows))
	for _, r := range rows {
		if r.PracticeID != a.PracticeID {
			continue
		}
		var d accessDetail
		if err := s.openJSON(ctx, accessAD(r), r.Detail, &d); err != nil && !errKeyDestroyed(err) {
			return nil, err
		}
		out = append(out, s.accessView(ctx, r, d.Recipient, staff))
	}
	return out, nil
}

// FulfilAccessRequest produces the export a written request asks for:
// the front desk, after a fresh authentication (export.request, recorded
// as one event for the patient, for her request), once per request. The
// request is marked answered when the export is made.
func (s *Service) FulfilAccessRequest(ctx context.Context, requestID string) (*Export, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if !haven.PlausibleID(requestID) {
		return nil, s.refuseUnknown(ctx, a, policy.ExportForRequest, policy.KindChart, requestID)
	}
	r, err := s.db.FindAccessRequest(ctx, requestID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return nil, s.refuseUnknown(ctx, a, policy.ExportForRequest, policy.KindChart, requestID)
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the request")
	}
	if r.PracticeID != a.PracticeID {
		// Refused as an id that exists nowhere, and reported to the
		// practice it belongs to (see authorizeRecord).
		_, _, err := s.authorizeRecord(ctx, policy.ExportForRequest, policy.Resource{Kind: policy.KindChart, ID: r.PatientID,
			PracticeID: r.PracticeID, PatientID: r.PatientID}, requestID)
		if err == nil {
			err = errNotFound
		}
		return nil, err
	}
	row, _, _, _, err := s.gatePatient(ctx, policy.ExportForRequest, policy.KindChart, r.PatientID)
	if err != nil {
		return nil, err
	}
	if r.Fulfilled != nil {
		return nil, haven.Errorf(haven.ECONFLICT, "this request is already answered")
	}
	x, err := s.openExport(ctx, row)
	if err != nil {
		return nil, err
	}
	if err := s.db.FulfilAccessRequest(ctx, r.ID, a.UserID); err != nil {
		return nil, err
	}
	return x, nil
}

// requestDisclosures are the copies of her record sent to another
// provider at her written request.
func (s *Service) requestDisclosures(ctx context.Context, row *haven.Patient) ([]haven.Disclosure, error) {
	rs, err := s.db.PatientAccessRequests(ctx, row.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the requests")
	}
	var out []haven.Disclosure
	for _, r := range rs {
		if r.PracticeID != row.PracticeID || r.Fulfilled == nil {
			continue
		}
		var d accessDetail
		if err := s.openJSON(ctx, accessAD(r), r.Detail, &d); err != nil {
			return nil, err
		}
		if d.Recipient == "" {
			continue // a copy to the patient herself is not a disclosure to account for
		}
		out = append(out, haven.Disclosure{Time: *r.Fulfilled, Recipient: d.Recipient, RecipientKind: "provider",
			What: "A copy of your whole record", Why: "At your written request of " + r.Received.Format("2 January 2006")})
	}
	return out, nil
}
