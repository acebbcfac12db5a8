package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"haven"
	"haven/audit"
	"haven/hl7"
	"haven/keyring"
	"haven/policy"
	"haven/store/sqlstore"
)

// Lab results in. A lab sends ORU^R01 messages over MLLP inside mutual
// TLS (recognised by its client certificate) or POSTs them over HTTPS
// with an integration token; either way ReceiveHL7 answers each with an
// original-mode ACK:
//
//   - AR when the sender is refused: no lab known by that certificate or
//     token, a retired lab, or one whose agreement has ended;
//   - AE when the message is wrong (unreadable, not an ORU^R01, a value
//     that is not what its type says): nothing is stored;
//   - AA when it is stored: matched to its patient (by the MRN's blind
//     index and the date of birth) and to her order (by the placer order
//     number), or, when it matches no one or more than one, sealed in the
//     staff queue to be matched by hand.
//
// A message control id a lab has sent before gets the ACK it got then,
// and nothing is stored twice. Stored results wait for the ordering
// clinician, who reviews, comments and releases them; a critical value
// (HH, LL, AA) marks the result critical and tells the clinician at once:
// every page they open shows an alert linking to it until they review it
// (CriticalResultWaiting), besides the email that their record has news.
// The patient sees released results with ranges, flags in plain words and
// the trend of each numeric test.

// LabInboundActor is the audit log's actor for what arrives from labs.
const LabInboundActor = "system:lab-results"

// LabInboundActorName is how the lab results receiver appears in a
// patient's access history.
const LabInboundActorName = "Haven (lab result received from the lab)"

// Audit actions of results coming in.
const (
	ActLabReceive = "lab.receive" // a message stored, matched or queued; or refused
	ActLabMatch   = "lab.match"   // the receiver opened a chart to check a date of birth
)

// maxResultComment bounds a reviewer's comment.
const maxResultComment = 2000

// SetLabInterface sets how a lab is recognised: certPEM, its client
// certificate for the MLLP listener ("" keeps the one registered), and,
// with token, a new integration token for POST /api/v1/hl7 in place of
// any earlier one, returned once (only its hash is kept). The practice
// admin, after a recent step-up; a bad certificate changes nothing.
func (s *Service) SetLabInterface(ctx context.Context, labID, certPEM string, token bool) (string, error) {
	a, v, li, err := s.labInterface(ctx, labID)
	if err != nil {
		return "", err
	}
	if _, _, err := s.authorize(ctx, policy.PracticeSettings, policy.Resource{Kind: policy.KindPractice, ID: a.PracticeID, PracticeID: a.PracticeID}); err != nil {
		return "", err
	}
	if strings.TrimSpace(certPEM) == "" && !token {
		return "", haven.Errorf(haven.EINVALID, "give the lab's client certificate, or ask for a token, or both")
	}
	if strings.TrimSpace(certPEM) != "" {
		block, _ := pem.Decode([]byte(certPEM))
		if block == nil || block.Type != "CERTIFICATE" {
			return "", haven.Errorf(haven.EINVALID, "give the lab's client certificate in PEM form (the text from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----)")
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return "", haven.Errorf(haven.EINVALID, "the lab's certificate cannot be read")
		}
		li.CertSHA256, li.CertSubject, li.CertExpires = certFingerprint(block.Bytes), cert.Subject.String(), cert.NotAfter.UTC()
	}
	plain := ""
	if token {
		var b [32]byte
		rand.Read(b[:])
		plain = "hl7_" + base64.RawURLEncoding.EncodeToString(b[:])
		li.TokenHash, li.TokenMade = tokenFingerprint(plain), s.now().UTC()
	}
	if err := s.db.SetLabInterface(ctx, li); err != nil {
		return "", err
	}
	return plain, s.recordVendorChange(ctx, a, ActLabInterfaceSet, v)
}

// Audit actions of a lab's results interface being set or revoked (which
// parts is in the registry row, not the log).
const (
	ActLabInterfaceSet    = "lab.interface_set"
	ActLabInterfaceRevoke = "lab.interface_revoke"
)

// RevokeLabInterface stops recognising the lab by its client certificate
// (cert) and/or its integration token (token). The practice admin, after
// a recent step-up.
func (s *Service) RevokeLabInterface(ctx context.Context, labID string, cert, token bool) error {
	a, v, li, err := s.labInterface(ctx, labID)
	if err != nil {
		return err
	}
	if _, _, err := s.authorize(ctx, policy.PracticeSettings, policy.Resource{Kind: policy.KindPractice, ID: a.PracticeID, PracticeID: a.PracticeID}); err != nil {
		return err
	}
	if cert {
		li.CertSHA256, li.CertSubject, li.CertExpires = "", "", time.Time{}
	}
	if token {
		li.TokenHash, li.TokenMade = "", time.Time{}
	}
	if err := s.db.SetLabInterface(ctx, li); err != nil {
		return err
	}
	return s.recordVendorChange(ctx, a, ActLabInterfaceRevoke, v)
}

// LabInterface returns a lab of the actor's practice and what is
// registered to recognise it (an empty interface when nothing is); the
// look is decided and audited as a read of the vendor. Only those who may
// change the registry see it: it is the admin's page, not the
// compliance officer's.
func (s *Service) LabInterface(ctx context.Context, labID string) (*haven.Vendor, *haven.LabInterface, error) {
	a, v, li, err := s.labInterface(ctx, labID)
	if err == nil && !policy.Permits(a.Role, policy.VendorManage) {
		return nil, nil, haven.Errorf(haven.EFORBIDDEN, "only the practice admin manages a lab's results interface")
	}
	return v, li, err
}

// labInterface finds the lab labID of the actor's practice, decides the
// actor may see it, and loads its interface.
func (s *Service) labInterface(ctx context.Context, labID string) (haven.Actor, *haven.Vendor, *haven.LabInterface, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return a, nil, nil, err
	}
	v, err := s.findVendor(ctx, a, policy.VendorRead, labID)
	if err != nil {
		return a, nil, nil, err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.VendorRead, vendorResource(v, a), v.ID); err != nil {
		return a, nil, nil, err
	}
	if v.Kind != haven.VendorLab || v.PracticeID != a.PracticeID {
		return a, nil, nil, haven.Errorf(haven.EINVALID, "only a laboratory of the practice sends results")
	}
	li, err := s.db.LabInterface(ctx, v.PracticeID, v.ID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		li, err = &haven.LabInterface{LabID: v.ID, PracticeID: v.PracticeID}, nil
	}
	return a, v, li, err
}

func certFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

func tokenFingerprint(token string) string {
	sum := sha256.Sum256([]byte("haven.lab-token.v1\n" + token))
	return hex.EncodeToString(sum[:])
}

// LabByCertificate returns the lab id a client certificate belongs to,
// or "" when it is no lab's.
func (s *Service) LabByCertificate(ctx context.Context, cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	id, _ := s.db.LabByCertificate(ctx, certFingerprint(cert.Raw))
	return id
}

// LabByToken returns the lab id an integration token belongs to, or "",
// whatever certificate the lab has registered (LabPosting is the check of
// a request).
func (s *Service) LabByToken(ctx context.Context, token string) string {
	id, _ := s.labToken(ctx, token)
	return id
}

func (s *Service) labToken(ctx context.Context, token string) (string, string) {
	if !strings.HasPrefix(token, "hl7_") || len(token) > 100 {
		return "", ""
	}
	id, cert, _ := s.db.LabByToken(ctx, tokenFingerprint(token))
	return id, cert
}

// LabPosting returns the lab a message posted over HTTPS is from: the lab
// its integration token belongs to, when the connection presented the
// client certificate registered for that lab, if one is (a lab with a
// certificate has no token that works without it, as a backend system's
// token is bound to its certificate in package smart). "" and why not
// ("unknown_token" or "certificate_not_presented") otherwise.
func (s *Service) LabPosting(ctx context.Context, token string, peer *x509.Certificate) (string, string) {
	id, cert := s.labToken(ctx, token)
	switch {
	case id == "":
		return "", "unknown_token"
	case cert != "" && (peer == nil || s.now().After(peer.NotAfter) || subtle.ConstantTimeCompare([]byte(certFingerprint(peer.Raw)), []byte(cert)) != 1):
		return "", "certificate_not_presented"
	}
	return id, ""
}

// ackID is an ACK's own control id, derived from what it answers so that
// the same message always gets the same bytes.
func ackID(labID, controlID string) string {
	sum := sha256.Sum256([]byte(labID + "\n" + controlID))
	return "HVN" + strings.ToUpper(hex.EncodeToString(sum[:8]))
}

// ReceiveHL7 takes one message from the lab labID ("" when the sender is
// no known lab) and returns the ACK to answer it with. It never fails:
// every fault is an AE or an AR, and an AE or AR stores nothing.
func (s *Service) ReceiveHL7(ctx context.Context, labID string, raw []byte) []byte {
	now := s.now()
	at := now.UTC().Format("20060102150405") + "+0000"
	m, perr := hl7.Parse(raw)
	h := hl7.Header{}
	if m != nil {
		h = m.Header()
	}
	refuse := func(code hl7.AckCode, err error, logID, reason string) []byte {
		if logID != "" {
			ev := audit.Event{LogID: logID, ActorID: LabInboundActor, Action: ActLabReceive, ResourceKind: string(policy.KindVendor),
				ResourceID: labID, Purpose: audit.PurposeTreatment, Decision: haven.DecisionDeny, Reason: reason}
			s.record(ctx, ev)
		}
		return hl7.AckFor(m, code, err, ackID(labID, h.ControlID), at).Encode()
	}

	var lab *haven.Vendor
	if haven.PlausibleID(labID) {
		lab, _ = s.db.FindVendor(ctx, labID)
	}
	if lab == nil || lab.Kind != haven.VendorLab {
		return refuse(hl7.Reject, &hl7.Error{Code: hl7.CodeUnknownKey, Segment: "MSH", Sequence: 1, Field: 4, Reason: "the sender is not a lab of this practice"}, "", "")
	}
	if r := lab.EgressRefusal(haven.PHIMinimum, now); r != "" {
		return refuse(hl7.Reject, &hl7.Error{Code: hl7.CodeUnknownKey, Segment: "MSH", Sequence: 1, Field: 4, Reason: "the lab has no current agreement with the practice"}, lab.PracticeID, r)
	}
	if perr != nil {
		return refuse(hl7.ErrorAck, perr, lab.PracticeID, "unreadable")
	}
	if ack, err := s.db.InboxAck(ctx, lab.ID, h.ControlID); err == nil {
		return ack
	}
	rm, err := hl7.ReadORU(m)
	if err != nil {
		return refuse(hl7.ErrorAck, err, lab.PracticeID, "not_a_result")
	}
	ack := hl7.AckFor(m, hl7.Accept, nil, ackID(lab.ID, h.ControlID), at).Encode()
	internal := func() []byte {
		return hl7.AckFor(m, hl7.Reject, &hl7.Error{Code: hl7.CodeInternal, Reason: "the result could not be stored now; send it again later"}, ackID(lab.ID, h.ControlID), at).Encode()
	}

	patient, orders, reason, err := s.matchResult(ctx, lab, rm)
	if err != nil {
		return internal()
	}
	if reason != "" {
		u := &haven.LabUnmatched{ID: haven.NewID(), PracticeID: lab.PracticeID, LabID: lab.ID, Reason: reason, Received: now}
		ev := audit.Event{LogID: lab.PracticeID, ActorID: LabInboundActor, Action: ActLabReceive, ResourceKind: string(policy.KindLab),
			ResourceID: u.ID, Purpose: audit.PurposeTreatment, Decision: haven.DecisionAllow, Reason: "unmatched_" + reason}
		if _, err := s.record(ctx, ev); err != nil {
			return internal()
		}
		if u.Message, err = s.keys.Seal(ctx, unmatchedAD(u), raw); err != nil {
			return internal()
		}
		return s.answered(ctx, lab.ID, h.ControlID, ack, s.db.StoreLabUnmatched(ctx, h.ControlID, ack, u), internal)
	}
	results, err := s.sealResults(ctx, lab, patient, orders, rm, now)
	if err != nil {
		return internal()
	}
	err = s.db.StoreLabResults(ctx, lab.ID, h.ControlID, ack, results)
	if err == nil {
		for _, r := range results {
			if r.Critical {
				// The clinician is told at once (an email that says only that
				// the record has an update); the review queue puts it first.
				s.db.MarkUpdate(ctx, r.ReviewerID, r.PracticeID, now.UnixMicro())
			}
		}
	}
	return s.answered(ctx, lab.ID, h.ControlID, ack, err, internal)
}

// answered returns ack once stored; the ACK stored by a request that won
// a race for the same message; or an AR asking the lab to try again.
func (s *Service) answered(ctx context.Context, labID, controlID string, ack []byte, err error, internal func() []byte) []byte {
	if err == nil {
		return ack
	}
	if errors.Is(err, sqlstore.ErrAnswered) {
		if prev, err := s.db.InboxAck(ctx, labID, controlID); err == nil {
			return prev
		}
	}
	return internal()
}

func unmatchedAD(u *haven.LabUnmatched) keyring.AD {
	return keyring.AD{PracticeID: u.PracticeID, Kind: "lab_unmatched", RecordID: u.ID, Field: "message"}
}

func labResultAD(r *haven.LabResult, field string) keyring.AD {
	return keyring.AD{PracticeID: r.PracticeID, PatientID: r.PatientID, Kind: "lab_result", RecordID: r.ID, Field: field}
}

// matchResult finds the patient (by the blind index of each MRN the lab
// gave: none found is no one, two patients a conflict; then the date of
// birth, checked on her opened chart after the check is audited) and
// each OBR's order (by placer order number: it must be hers, and this
// lab's). reason is why it matched no one, or more than one.
func (s *Service) matchResult(ctx context.Context, lab *haven.Vendor, rm *hl7.ResultMessage) (*haven.Patient, []*haven.LabOrder, string, error) {
	// Every record number the lab gave for her (those under the practice's
	// own assigning authority, as orders send it, when there are any):
	// each names one patient or none; two patients is a conflict.
	var row *haven.Patient
	for _, mrn := range rm.Patient.MRNs(lab.PracticeID, 5) {
		if len(mrn) > 64 {
			continue
		}
		idx, err := s.mrnIndex(ctx, lab.PracticeID, mrn)
		if err != nil {
			return nil, nil, "", err
		}
		found, err := s.db.FindPatientByMRN(ctx, lab.PracticeID, idx)
		if haven.ErrorCode(err) == haven.ENOTFOUND {
			continue
		}
		if err != nil {
			return nil, nil, "", err
		}
		if row != nil && row.ID != found.ID {
			return nil, nil, "conflict", nil // two of her numbers name two patients
		}
		row = found
	}
	if row == nil {
		return nil, nil, "no_patient", nil
	}
	ev := audit.Event{LogID: lab.PracticeID, ActorID: LabInboundActor, Action: ActLabMatch, ResourceKind: string(policy.KindChart),
		ResourceID: row.ID, PatientID: row.ID, Purpose: audit.PurposeTreatment, Decision: haven.DecisionAllow}
	if _, err := s.record(ctx, ev); err != nil {
		return nil, nil, "", err
	}
	var d Demographics
	if err := s.openJSON(ctx, chartAD(row.PracticeID, row.ID, "demographics"), row.Demographics, &d); err != nil {
		if errKeyDestroyed(err) {
			return nil, nil, "no_patient", nil
		}
		return nil, nil, "", err
	}
	if dob := rm.Patient.BirthDay(); dob == "" || dob != strings.ReplaceAll(d.DateOfBirth, "-", "") {
		return nil, nil, "identity_mismatch", nil
	}
	var orders []*haven.LabOrder
	for _, o := range rm.Orders {
		if o.PlacerOrder == "" || len(o.PlacerOrder) > 64 {
			return nil, nil, "no_order", nil
		}
		ord, err := s.db.FindLabOrderByNumber(ctx, lab.PracticeID, o.PlacerOrder)
		if haven.ErrorCode(err) == haven.ENOTFOUND {
			return nil, nil, "no_order", nil
		}
		if err != nil {
			return nil, nil, "", err
		}
		if ord.PatientID != row.ID || ord.LabID != lab.ID {
			return nil, nil, "conflict", nil // the MRN names one patient, the order another
		}
		orders = append(orders, ord)
	}
	return row, orders, "", nil
}

// resultContent is what one OBR reports, as Haven keeps it.
func resultContent(o hl7.ResultOrder) (haven.LabResultContent, bool) {
	c := haven.LabResultContent{Test: haven.LabTestRef{LOINC: o.TestCode, Name: o.TestName}, ResultStatus: o.Status, ObservedAt: o.ObservedAt, Notes: o.Notes}
	critical := false
	for _, x := range o.Observations {
		c.Observations = append(c.Observations, haven.LabObservation{Code: x.Code, Name: x.Name, ValueType: x.ValueType, Value: x.Value,
			Numeric: x.Numeric, Units: x.Units, Range: x.Range, Flags: x.Flags, Notes: x.Notes})
		for _, f := range x.Flags {
			critical = critical || hl7.Critical(f)
		}
	}
	return c, critical
}

// sealResults seals one result per OBR, for the clinician who ordered it.
func (s *Service) sealResults(ctx context.Context, lab *haven.Vendor, patient *haven.Patient, orders []*haven.LabOrder, rm *hl7.ResultMessage, now time.Time) ([]*haven.LabResult, error) {
	var out []*haven.LabResult
	for i, o := range rm.Orders {
		ord := orders[i]
		c, critical := resultContent(o)
		c.OrderCancelled = ord.Status.Cancelled()
		r := &haven.LabResult{ID: haven.NewID(), PracticeID: patient.PracticeID, PatientID: patient.ID, OrderID: ord.ID, LabID: lab.ID,
			ReviewerID: ord.OrdererID, Critical: critical, Received: now}
		var err error
		if r.Content, err = s.sealJSON(ctx, labResultAD(r, "content"), c); err != nil {
			return nil, err
		}
		ev := audit.Event{LogID: r.PracticeID, ActorID: LabInboundActor, Action: ActLabReceive, ResourceKind: string(policy.KindLab),
			ResourceID: r.ID, PatientID: r.PatientID, Purpose: audit.PurposeTreatment, Decision: haven.DecisionAllow}
		if critical {
			ev.Reason = "critical"
		}
		if _, err := s.record(ctx, ev); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// resultRow loads a result the actor named, refusing (audited) an id that
// is not one as unknown.
func (s *Service) resultRow(ctx context.Context, a haven.Actor, act policy.Action, id string) (*haven.LabResult, error) {
	if !haven.PlausibleID(id) {
		return nil, s.refuseUnknown(ctx, a, act, policy.KindLab, id)
	}
	r, err := s.db.FindLabResult(ctx, id)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return nil, s.refuseUnknown(ctx, a, act, policy.KindLab, id)
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the result")
	}
	return r, nil
}

func resultResource(r *haven.LabResult) policy.Resource {
	return policy.Resource{Kind: policy.KindLab, ID: r.ID, PracticeID: r.PracticeID, PatientID: r.PatientID}
}

// LabResult returns one result: to the patient once released (before, it
// is unknown to her, as another patient's is), to her clinicians always.
func (s *Service) LabResult(ctx context.Context, id string) (*haven.LabResultView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.resultRow(ctx, a, policy.LabRead, id)
	if err != nil {
		return nil, err
	}
	if a.Role == haven.RolePatient && r.Status != haven.ResultReleased {
		return nil, s.refuseUnknown(ctx, a, policy.LabRead, policy.KindLab, id)
	}
	if _, _, err := s.authorizeRecord(ctx, policy.LabRead, resultResource(r), id); err != nil {
		return nil, err
	}
	all, err := s.db.PatientLabResults(ctx, r.PatientID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load results")
	}
	views, err := s.openResults(ctx, all, a.Role == haven.RolePatient)
	if err != nil {
		return nil, err
	}
	for _, v := range views {
		if v.ID == id {
			return v, nil
		}
	}
	return nil, errNotFound
}

// Results returns the patient's results, newest first, each with the
// trend of its numeric tests: released ones only to the patient.
func (s *Service) Results(ctx context.Context, patientID string) ([]*haven.LabResultView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	row, err := s.patientRow(ctx, policy.LabRead, policy.KindLab, patientID)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.LabRead, policy.Resource{Kind: policy.KindLab, PracticeID: row.PracticeID, PatientID: row.ID}, patientID); err != nil {
		return nil, err
	}
	all, err := s.db.PatientLabResults(ctx, row.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load results")
	}
	views, err := s.openResults(ctx, all, a.Role == haven.RolePatient)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(views, func(i, j int) bool { return views[i].Received.After(views[j].Received) })
	return views, nil
}

// openResults opens rows (oldest first; only released ones when
// releasedOnly) and gives each numeric test the trend of its earlier
// values among them.
func (s *Service) openResults(ctx context.Context, rows []*haven.LabResult, releasedOnly bool) ([]*haven.LabResultView, error) {
	var out []*haven.LabResultView
	history := map[string][]haven.TrendPoint{}
	for _, r := range rows {
		if releasedOnly && r.Status != haven.ResultReleased {
			continue
		}
		v, err := s.viewResult(ctx, r)
		if err != nil {
			return nil, err
		}
		v.Trends = map[string][]haven.TrendPoint{}
		for _, o := range v.Observations {
			if o.Numeric == "" || o.Code == "" {
				continue
			}
			if len(history[o.Code]) > 0 {
				v.Trends[o.Code] = append([]haven.TrendPoint(nil), history[o.Code]...)
			}
			history[o.Code] = append(history[o.Code], haven.TrendPoint{At: r.Received, Value: o.Numeric, Flags: o.Flags})
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Service) viewResult(ctx context.Context, r *haven.LabResult) (*haven.LabResultView, error) {
	v := &haven.LabResultView{ID: r.ID, PatientID: r.PatientID, OrderID: r.OrderID, ReviewerID: r.ReviewerID, Status: r.Status, Critical: r.Critical, Received: r.Received}
	if err := s.openJSON(ctx, labResultAD(r, "content"), r.Content, &v.LabResultContent); err != nil {
		return nil, err
	}
	if len(r.Comment) > 0 {
		c, err := s.keys.Open(ctx, labResultAD(r, "comment"), r.Comment)
		if err != nil {
			return nil, err
		}
		v.Comment = string(c)
	}
	if !r.Released.IsZero() {
		t := r.Released
		v.Released = &t
	}
	if lab, err := s.db.FindVendor(ctx, r.LabID); err == nil {
		v.Lab = lab.Name
	}
	if u, err := s.db.FindUserByID(ctx, r.ReviewerID); err == nil {
		if prof, err := s.openUser(ctx, u); err == nil {
			v.Reviewer = prof.Name
		}
	}
	if row, err := s.db.FindPatient(ctx, r.PatientID); err == nil {
		v.PatientName = patientName(ctx, s, row)
	}
	return v, nil
}

// ResultsToReview returns the results waiting for the signed-in
// clinician, critical ones first; each is decided and audited as it is
// opened.
func (s *Service) ResultsToReview(ctx context.Context) ([]*haven.LabResultView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if a.Role != haven.RoleClinician {
		return nil, haven.Errorf(haven.EFORBIDDEN, "results are reviewed by the clinicians who ordered them")
	}
	rows, err := s.db.ResultsToReview(ctx, a.UserID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load results")
	}
	var out []*haven.LabResultView
	for _, r := range rows {
		if _, _, err := s.authorizeRecord(ctx, policy.LabRead, resultResource(r), r.ID); err != nil {
			continue // no longer on her care team: the result waits for whoever is
		}
		v, err := s.viewResult(ctx, r)
		if errKeyDestroyed(err) {
			continue // the patient's record was erased: nothing is left to review
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// CriticalResultWaiting returns the id of the oldest critical result
// waiting for the signed-in clinician's review, or "" (for anyone else
// too). It opens nothing and says nothing of whom the result is about: it
// is for the alert every page shows the clinician until they review it.
func (s *Service) CriticalResultWaiting(ctx context.Context) string {
	a, err := haven.SignedIn(ctx)
	if err != nil || a.Role != haven.RoleClinician {
		return ""
	}
	id, err := s.db.CriticalToReview(ctx, a.UserID)
	if err != nil {
		return ""
	}
	return id
}

// ReviewResult records the ordering clinician's comment on a result and,
// with release, releases it to the patient (who is told her record has an
// update). Only the clinician who ordered it reviews it.
func (s *Service) ReviewResult(ctx context.Context, id, comment string, release bool) (*haven.LabResultView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.resultRow(ctx, a, policy.LabOrder, id)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.LabOrder, resultResource(r), id); err != nil {
		return nil, err
	}
	if r.ReviewerID != a.UserID {
		return nil, haven.Errorf(haven.EFORBIDDEN, "the clinician who ordered the test reviews its result")
	}
	comment = strings.TrimSpace(comment)
	if len(comment) > maxResultComment || !utf8.ValidString(comment) || strings.ContainsRune(comment, 0) {
		return nil, haven.Errorf(haven.EINVALID, "a comment is at most %d characters", maxResultComment)
	}
	r.Comment = nil
	if comment != "" {
		if r.Comment, err = s.keys.Seal(ctx, labResultAD(r, "comment"), []byte(comment)); err != nil {
			return nil, err
		}
	}
	if err := s.db.ReviewLabResult(ctx, r, release); err != nil {
		return nil, err
	}
	if release {
		s.db.MarkUpdate(ctx, r.PatientID, r.PracticeID, s.now().UnixMicro())
	}
	r, err = s.db.FindLabResult(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.viewResult(ctx, r)
}

// UnmatchedResults returns the practice's results waiting to be matched
// by hand, for the front desk.
func (s *Service) UnmatchedResults(ctx context.Context) ([]*haven.LabUnmatchedView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorize(ctx, policy.PatientSearch, policy.Resource{Kind: policy.KindPatient, PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	rows, err := s.db.OpenLabUnmatched(ctx, a.PracticeID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the queue")
	}
	out := make([]*haven.LabUnmatchedView, 0, len(rows))
	for _, u := range rows {
		v, _, err := s.openUnmatched(ctx, u)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Service) openUnmatched(ctx context.Context, u *haven.LabUnmatched) (*haven.LabUnmatchedView, *hl7.ResultMessage, error) {
	raw, err := s.keys.Open(ctx, unmatchedAD(u), u.Message)
	if err != nil {
		return nil, nil, err
	}
	m, err := hl7.Parse(raw)
	if err != nil {
		return nil, nil, haven.Wrap(haven.EINTERNAL, err, "a queued message cannot be read")
	}
	rm, err := hl7.ReadORU(m)
	if err != nil {
		return nil, nil, haven.Wrap(haven.EINTERNAL, err, "a queued message cannot be read")
	}
	v := &haven.LabUnmatchedView{ID: u.ID, Reason: u.Reason, Received: u.Received, MRN: rm.Patient.MRN(), BirthDate: rm.Patient.BirthDate,
		Name: rm.Patient.Name()}
	if lab, err := s.db.FindVendor(ctx, u.LabID); err == nil {
		v.Lab = lab.Name
	}
	for _, o := range rm.Orders {
		v.Orders = append(v.Orders, o.PlacerOrder)
		v.Tests = append(v.Tests, o.TestName)
	}
	return v, rm, nil
}

// MatchResult matches a queued message by hand to one of the practice's
// lab orders (which names the patient and the clinician who reviews):
// every test it reports becomes a result of that order.
func (s *Service) MatchResult(ctx context.Context, unmatchedID, orderID string) ([]*haven.LabResultView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if !haven.PlausibleID(unmatchedID) {
		return nil, s.refuseUnknown(ctx, a, policy.PatientSearch, policy.KindPatient, unmatchedID)
	}
	u, err := s.db.FindLabUnmatched(ctx, unmatchedID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		// Matched already, or nowhere: the same answer.
		return nil, s.refuseUnknown(ctx, a, policy.PatientSearch, policy.KindPatient, unmatchedID)
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the queue")
	}
	if _, _, err := s.authorizeRecord(ctx, policy.PatientSearch, policy.Resource{Kind: policy.KindPatient, ID: u.ID, PracticeID: u.PracticeID}, unmatchedID); err != nil {
		return nil, err
	}
	o, err := s.labOrderRow(ctx, a, policy.LabRead, orderID)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.ChartWrite, policy.Resource{Kind: policy.KindChart, ID: o.PatientID, PracticeID: o.PracticeID, PatientID: o.PatientID}, orderID); err != nil {
		return nil, err
	}
	if o.LabID != u.LabID {
		return nil, haven.Errorf(haven.EINVALID, "that order went to another lab")
	}
	_, rm, err := s.openUnmatched(ctx, u)
	if err != nil {
		return nil, err
	}
	patient, err := s.db.FindPatient(ctx, o.PatientID)
	if err != nil {
		return nil, err
	}
	lab, err := s.db.FindVendor(ctx, u.LabID)
	if err != nil {
		return nil, err
	}
	orders := make([]*haven.LabOrder, len(rm.Orders))
	for i := range orders {
		orders[i] = o
	}
	results, err := s.sealResults(ctx, lab, patient, orders, rm, s.now())
	if err != nil {
		return nil, err
	}
	if err := s.db.ResolveLabUnmatched(ctx, u.ID, a.UserID, results); err != nil {
		return nil, err
	}
	var out []*haven.LabResultView
	for _, r := range results {
		v, err := s.viewResult(ctx, r)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// OpenLabOrders returns the practice's orders still waiting for a result
// (patient, tests, lab), for the front desk to match a queued result to
// one by name.
func (s *Service) OpenLabOrders(ctx context.Context) ([]*haven.LabOrderView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorize(ctx, policy.PatientSearch, policy.Resource{Kind: policy.KindPatient, PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	rows, err := s.db.OpenLabOrders(ctx, a.PracticeID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load lab orders")
	}
	out := make([]*haven.LabOrderView, 0, len(rows))
	for _, o := range rows {
		var c haven.LabOrderContent
		if err := s.openJSON(ctx, labOrderAD(o), o.Content, &c); err != nil {
			if errKeyDestroyed(err) {
				continue
			}
			return nil, err
		}
		out = append(out, s.viewLabOrder(ctx, o, c))
	}
	return out, nil
}
