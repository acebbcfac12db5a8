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
// leaves (rx_outbox.go), and described from the records they sent,
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
	// that did not answer is tried again: the newest attempt of each
	// prescription and kind stands for them all, and a prescription that
	// never reached its pharmacy (still queued) was not disclosed.
	var entries []audit.Entry
	q := haven.AuditQuery{LogID: row.PracticeID, PatientID: row.ID, Action: ActRxTransmit, Decision: haven.DecisionAllow, Limit: 500}
	for {
		page, err := s.db.SearchAudit(ctx, q)
		if err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read the audit log")
		}
		entries = append(entries, page...)
		if len(page) < q.Limit {
			break
		}
		q.BeforeSeq = page[len(page)-1].Seq
	}
	cancelled := map[string]bool{}
	for _, e := range entries {
		if e.Reason == "cancel" {
			cancelled[e.ResourceID] = true
		}
	}
	out := []haven.Disclosure{}
	seen := map[string]bool{}
	for _, e := range entries {
		if seen[e.ResourceID+"/"+e.Reason] {
			continue
		}
		seen[e.ResourceID+"/"+e.Reason] = true
		d, ok, err := s.rxDisclosure(ctx, row, e.ResourceID, e.Reason, cancelled[e.ResourceID])
		if err != nil {
			return nil, err
		}
		if ok {
			d.Time, d.Seq = e.Time, e.Seq
			out = append(out, d)
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
