package service

import (
	"context"
	"slices"
	"strings"

	"haven"
	"haven/audit"
	"haven/policy"
)

// Disclosures returns the disclosures of a patient's record outside the
// practice, newest first, to the patient herself (audit.read_own: her
// access history's action, audited as it is). They are read from the
// practice's audit log, which records every sending before anything
// leaves (rx_outbox.go, lab_outbox.go), and described from the records they sent,
// opened only for her; and from the written requests answered with a
// copy to another provider (access_requests.go).
func (s *Service) Disclosures(ctx context.Context, patientID string) ([]haven.Disclosure, error) {
	row, _, _, _, err := s.gatePatient(ctx, policy.AuditReadOwn, policy.KindAudit, patientID)
	if err != nil {
		return nil, err
	}
	if ctx, err = s.keys.Checked(ctx); err != nil {
		return nil, err
	}
	// Every sending attempt is recorded before it is made, and a pharmacy
	// or lab that did not answer is tried again: the newest attempt of
	// each record and kind stands for them all, and one that never
	// reached its recipient (still queued, unanswered) was not disclosed.
	out := []haven.Disclosure{}
	for _, act := range []string{ActRxTransmit, ActLabTransmit} {
		entries, err := s.allowedEvents(ctx, row, act)
		if err != nil {
			return nil, err
		}
		cancelled := map[string]bool{}
		for _, e := range entries {
			if e.Reason == "cancel" {
				cancelled[e.ResourceID] = true
			}
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if seen[e.ResourceID+"/"+e.Reason] {
				continue
			}
			seen[e.ResourceID+"/"+e.Reason] = true
			var d haven.Disclosure
			var ok bool
			if act == ActLabTransmit {
				d, ok, err = s.labDisclosure(ctx, row, e.ResourceID, e.Reason == "cancel")
			} else {
				d, ok, err = s.rxDisclosure(ctx, row, e.ResourceID, e.Reason, cancelled[e.ResourceID])
			}
			if err != nil {
				return nil, err
			}
			if ok {
				d.Time, d.Seq = e.Time, e.Seq
				out = append(out, d)
			}
		}
	}
	sent, err := s.requestDisclosures(ctx, row)
	if err != nil {
		return nil, err
	}
	out = append(out, sent...)
	slices.SortStableFunc(out, func(a, b haven.Disclosure) int { return b.Time.Compare(a.Time) })
	return out, nil
}

// allowedEvents returns the patient's allowed events of action act in her
// practice's audit log, newest first.
func (s *Service) allowedEvents(ctx context.Context, row *haven.Patient, act string) ([]audit.Entry, error) {
	var entries []audit.Entry
	q := haven.AuditQuery{LogID: row.PracticeID, PatientID: row.ID, Action: act, Decision: haven.DecisionAllow, Limit: 500}
	for {
		page, err := s.db.SearchAudit(ctx, q)
		if err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read the audit log")
		}
		entries = append(entries, page...)
		if len(page) < q.Limit {
			return entries, nil
		}
		q.BeforeSeq = page[len(page)-1].Seq
	}
}

// rxDisclosure describes one sending of a prescription to its pharmacy:
// the drug, and whether it was the prescription or its cancellation.
func (s *Service) rxDisclosure(ctx context.Context, row *haven.Patient, rxID, kind string, cancelSent bool) (haven.Disclosure, bool, error) {
	p, err := s.db.FindPrescription(ctx, rxID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return haven.Disclosure{}, false, nil
	}
	if err != nil {
		return haven.Disclosure{}, false, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load a prescription")
	}
	if p.PatientID != row.ID || p.PracticeID != row.PracticeID {
		return haven.Disclosure{}, false, nil
	}
	// A cancellation is sent only for a prescription the pharmacy has.
	reached := p.Status == haven.RxSent || p.Status == haven.RxAccepted || p.Status == haven.RxRejected || cancelSent
	if kind != "cancel" && !reached {
		return haven.Disclosure{}, false, nil
	}
	var c haven.PrescriptionContent
	if err := s.openJSON(ctx, rxAD(p), p.Content, &c); err != nil {
		return haven.Disclosure{}, false, err
	}
	d := haven.Disclosure{Recipient: "A pharmacy no longer registered", RecipientKind: string(haven.VendorPharmacy),
		What: "Your prescription for " + strings.TrimSpace(c.Drug+" "+c.Strength+" "+c.Form) + ", with your name, date of birth and sex",
		Why:  "Treatment: so the pharmacy can fill your prescription"}
	if kind == "cancel" {
		d.What = "The cancellation of your prescription for " + strings.TrimSpace(c.Drug+" "+c.Strength+" "+c.Form)
		d.Why = "Treatment: so the pharmacy does not fill a cancelled prescription"
	}
	if v, err := s.db.FindVendor(ctx, p.PharmacyID); err == nil && v.PracticeID == row.PracticeID {
		d.Recipient, d.RecipientKind = v.Name, string(v.Kind)
	}
	return d, true, nil
}

// labDisclosure describes the sending of a lab order to its lab: the
// tests ordered. An order the lab answered (acknowledged, refused, or
// resulted) reached it; one still waiting unanswered did not.
func (s *Service) labDisclosure(ctx context.Context, row *haven.Patient, orderID string, cancel bool) (haven.Disclosure, bool, error) {
	o, err := s.db.FindLabOrder(ctx, orderID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return haven.Disclosure{}, false, nil
	}
	if err != nil {
		return haven.Disclosure{}, false, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load a lab order")
	}
	if o.PatientID != row.ID || o.PracticeID != row.PracticeID {
		return haven.Disclosure{}, false, nil
	}
	if o.AckCode == "" && o.Status != haven.LabSent && o.Status != haven.LabRejected && o.Status != haven.LabResulted {
		return haven.Disclosure{}, false, nil
	}
	if cancel && o.Status == haven.LabCancelling {
		return haven.Disclosure{}, false, nil // the cancellation is not answered yet
	}
	var c haven.LabOrderContent
	if err := s.openJSON(ctx, labOrderAD(o), o.Content, &c); err != nil {
		return haven.Disclosure{}, false, err
	}
	names := make([]string, 0, len(c.Tests))
	for _, t := range c.Tests {
		names = append(names, t.Name)
	}
	d := haven.Disclosure{Recipient: "A lab no longer registered", RecipientKind: string(haven.VendorLab),
		What: "Your lab order for " + strings.Join(names, ", ") + ", with your name, date of birth, sex and record number",
		Why:  "Treatment: so the lab can run the tests your clinician ordered"}
	if cancel {
		d.What = "The cancellation of your lab order for " + strings.Join(names, ", ") + ", with your name, date of birth, sex and record number"
	}
	if v, err := s.db.FindVendor(ctx, o.LabID); err == nil && v.PracticeID == row.PracticeID {
		d.Recipient, d.RecipientKind = v.Name, string(v.Kind)
	}
	return d, true, nil
}
