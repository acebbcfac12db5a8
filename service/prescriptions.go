package service

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"haven"
	"haven/audit"
	"haven/keyring"
	"haven/policy"
)

// Prescriptions, non-controlled only. A clinician related to the patient
// writes a draft from the practice's formulary for one of its registered
// pharmacies; the draft shows the warnings to acknowledge (an allergy on
// the patient's list, an active prescription of the same drug). Signing
// needs a fresh authentication every time: each signature consumes the
// step-up it was made under, so the next needs a new one. The signed
// prescription is locked (only its status moves) and signed with the
// practice's Ed25519 key over its canonical content, then queued in the
// prescription outbox (rx_outbox.go), which carries it to the pharmacy as
// a FHIR R4 Bundle over mutual TLS once the vendor registry says the
// pharmacy's agreement is current. The patient sees her prescriptions and
// asks for a renewal, a message to her care team that the prescriber
// approves into a new draft.

// Limits of a prescription's fields.
const (
	maxRxText       = 200  // strength, form
	maxDirections   = 1000 // directions
	MaxRxQuantity   = 10000
	MaxRxDays       = 365
	MaxRxRefills    = 11
	maxAllergyText  = 200
	maxFormulary    = 20000 // drugs in one import
	maxFormularyCSV = 4 << 20
)

// Audit actions beyond policy's: what the outbox does.
const (
	ActRxTransmit = "prescription.transmit"
	ActRxRenewal  = "prescription.renewal_request"
)

// ImportFormulary replaces the practice's formulary with a CSV of
// "rxnorm,name[,schedule]" rows (a header row naming rxnorm is skipped).
// Schedule is the DEA schedule of a controlled substance (CII to CV):
// such a drug is listed but never prescribed. It needs the admin's
// recent step-up: the formulary decides what can be prescribed.
func (s *Service) ImportFormulary(ctx context.Context, r io.Reader) (int, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return 0, err
	}
	if _, _, err := s.authorize(ctx, policy.PracticeSettings, policy.Resource{Kind: policy.KindPractice, ID: a.PracticeID, PracticeID: a.PracticeID}); err != nil {
		return 0, err
	}
	drugs, err := ParseFormulary(r)
	if err != nil {
		return 0, err
	}
	return len(drugs), s.db.ReplaceFormulary(ctx, a.PracticeID, drugs)
}

// SeedFormulary replaces a practice's formulary without a session, for
// the demo and tests.
func (s *Service) SeedFormulary(ctx context.Context, practiceID string, r io.Reader) error {
	drugs, err := ParseFormulary(r)
	if err != nil {
		return err
	}
	return s.db.ReplaceFormulary(ctx, practiceID, drugs)
}

// ParseFormulary reads a formulary CSV, refusing what is not one with a
// message naming the line.
func ParseFormulary(r io.Reader) ([]haven.Drug, error) {
	cr := csv.NewReader(io.LimitReader(r, maxFormularyCSV))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	var out []haven.Drug
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, haven.Errorf(haven.EINVALID, "the formulary is not CSV (line %d)", line)
		}
		if line == 1 && len(rec) > 0 && strings.EqualFold(strings.TrimSpace(rec[0]), "rxnorm") {
			continue
		}
		if len(rec) < 2 || len(rec) > 3 {
			return nil, haven.Errorf(haven.EINVALID, "line %d: give an RxNorm code and a name (and a schedule for a controlled drug)", line)
		}
		g := haven.Drug{RxNorm: strings.TrimSpace(rec[0]), Name: strings.TrimSpace(rec[1])}
		if len(rec) == 3 {
			g.Schedule = strings.ToUpper(strings.TrimSpace(rec[2]))
		}
		if _, err := strconv.ParseUint(g.RxNorm, 10, 32); err != nil || len(g.RxNorm) > 10 {
			return nil, haven.Errorf(haven.EINVALID, "line %d: an RxNorm code is a number", line)
		}
		if g.Name == "" || len(g.Name) > maxRxText || !utf8.ValidString(g.Name) || strings.ContainsAny(g.Name, "\r\n\x00") {
			return nil, haven.Errorf(haven.EINVALID, "line %d: a drug's name is one line of at most %d characters", line, maxRxText)
		}
		switch g.Schedule {
		case "", "CI", "CII", "CIII", "CIV", "CV":
		default:
			return nil, haven.Errorf(haven.EINVALID, "line %d: a schedule is CI, CII, CIII, CIV or CV", line)
		}
		if out = append(out, g); len(out) > maxFormulary {
			return nil, haven.Errorf(haven.EINVALID, "a formulary holds at most %d drugs", maxFormulary)
		}
	}
	if len(out) == 0 {
		return nil, haven.Errorf(haven.EINVALID, "the formulary lists no drug")
	}
	return out, nil
}

// SearchFormulary returns up to 25 drugs of the prescriber's practice
// whose name contains q. The formulary is the practice's list, not PHI;
// it is still only the prescribers' to search.
func (s *Service) SearchFormulary(ctx context.Context, q string) ([]haven.Drug, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if a.Role != haven.RoleClinician && a.Role != haven.RolePracticeAdmin {
		return nil, haven.Errorf(haven.EFORBIDDEN, "the formulary is for prescribers")
	}
	if len(q) > maxRxText {
		return nil, haven.Errorf(haven.EINVALID, "search for at most %d characters", maxRxText)
	}
	return s.db.SearchFormulary(ctx, a.PracticeID, q, 25)
}

// Pharmacies returns the practice's pharmacies that may receive a
// prescription today, by name, for a prescriber to choose from.
func (s *Service) Pharmacies(ctx context.Context) ([]*haven.Vendor, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if a.Role != haven.RoleClinician {
		return nil, haven.Errorf(haven.EFORBIDDEN, "pharmacies are chosen by prescribers")
	}
	return s.pharmacies(ctx, a.PracticeID)
}

func allergyAD(x *haven.Allergy) keyring.AD {
	return keyring.AD{PracticeID: x.PracticeID, PatientID: x.PatientID, Kind: "allergy", RecordID: x.ID, Field: "detail"}
}

type allergyDetail struct {
	Substance string `json:"substance"`
	Reaction  string `json:"reaction,omitempty"`
}

// Allergies returns the patient's allergy list, for whoever may read the
// chart (the patient her own).
func (s *Service) Allergies(ctx context.Context, patientID string) ([]haven.AllergyView, error) {
	row, err := s.patientRow(ctx, policy.ChartRead, policy.KindChart, patientID)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.ChartRead, chartResource(policy.KindChart, row), patientID); err != nil {
		return nil, err
	}
	return s.openAllergies(ctx, row.ID)
}

func (s *Service) openAllergies(ctx context.Context, patientID string) ([]haven.AllergyView, error) {
	rows, err := s.db.Allergies(ctx, patientID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the allergy list")
	}
	out := make([]haven.AllergyView, 0, len(rows))
	for _, x := range rows {
		var d allergyDetail
		if err := s.openJSON(ctx, allergyAD(x), x.Detail, &d); err != nil {
			return nil, err
		}
		out = append(out, haven.AllergyView{ID: x.ID, Substance: d.Substance, Reaction: d.Reaction, AddedBy: x.AddedBy, Added: x.Added})
	}
	return out, nil
}

// AddAllergy adds an allergy to the patient's list (whoever may write the
// chart: her clinicians, the front desk at intake).
func (s *Service) AddAllergy(ctx context.Context, patientID, substance, reaction string) (*haven.AllergyView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	substance, reaction = strings.TrimSpace(substance), strings.TrimSpace(reaction)
	if substance == "" || len(substance) > maxAllergyText || len(reaction) > maxAllergyText || !oneLine(substance) || !oneLine(reaction) {
		return nil, haven.Errorf(haven.EINVALID, "name the substance (and the reaction) in one line of at most %d characters each", maxAllergyText)
	}
	row, err := s.patientRow(ctx, policy.ChartWrite, policy.KindChart, patientID)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.ChartWrite, chartResource(policy.KindChart, row), patientID); err != nil {
		return nil, err
	}
	x := &haven.Allergy{ID: haven.NewID(), PracticeID: row.PracticeID, PatientID: row.ID, AddedBy: a.UserID}
	if x.Detail, err = s.sealJSON(ctx, allergyAD(x), allergyDetail{Substance: substance, Reaction: reaction}); err != nil {
		return nil, err
	}
	if err := s.db.AddAllergy(ctx, x); err != nil {
		return nil, err
	}
	return &haven.AllergyView{ID: x.ID, Substance: substance, Reaction: reaction, AddedBy: a.UserID, Added: x.Added}, nil
}

// RemoveAllergy removes one allergy from the patient's list.
func (s *Service) RemoveAllergy(ctx context.Context, patientID, allergyID string) error {
	row, err := s.patientRow(ctx, policy.ChartWrite, policy.KindChart, patientID)
	if err != nil {
		return err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.ChartWrite, chartResource(policy.KindChart, row), patientID); err != nil {
		return err
	}
	if !haven.PlausibleID(allergyID) {
		return errNotFound
	}
	return s.db.DeleteAllergy(ctx, row.ID, allergyID)
}

func oneLine(s string) bool { return utf8.ValidString(s) && !strings.ContainsAny(s, "\r\n\x00") }

// NewPrescription is what a prescriber writes.
type NewPrescription struct {
	PatientID    string `json:"patient_id"`
	VisitID      string `json:"visit_id,omitempty"`
	RxNorm       string `json:"rxnorm"`
	Strength     string `json:"strength"`
	Form         string `json:"form"`
	Directions   string `json:"directions"`
	Quantity     int    `json:"quantity"`
	DaysSupply   int    `json:"days_supply"`
	Refills      int    `json:"refills"`
	Substitution bool   `json:"substitution"`
	PharmacyID   string `json:"pharmacy_id"`
}

func rxAD(p *haven.Prescription) keyring.AD {
	return keyring.AD{PracticeID: p.PracticeID, PatientID: p.PatientID, Kind: "prescription", RecordID: p.ID, Field: "content"}
}

func rxResource(p *haven.Prescription) policy.Resource {
	return policy.Resource{Kind: policy.KindPrescription, ID: p.ID, PracticeID: p.PracticeID, PatientID: p.PatientID}
}

// DraftPrescription writes a draft for the patient. It is checked in
// full (the drug in the formulary and not controlled, a current pharmacy,
// the numbers in range) so that signing only signs; its warnings are in
// the answer.
func (s *Service) DraftPrescription(ctx context.Context, np NewPrescription) (*haven.PrescriptionView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	row, err := s.patientRow(ctx, policy.PrescriptionDraft, policy.KindPrescription, np.PatientID)
	if err != nil {
		return nil, err
	}
	p := &haven.Prescription{ID: haven.NewID(), PracticeID: row.PracticeID, PatientID: row.ID, PrescriberID: a.UserID, PharmacyID: np.PharmacyID}
	if _, _, err := s.authorizeRecord(ctx, policy.PrescriptionDraft, rxResource(p), np.PatientID); err != nil {
		return nil, err
	}
	c, err := s.checkPrescription(ctx, a, np)
	if err != nil {
		return nil, err
	}
	if np.VisitID != "" {
		v, err := s.db.FindVisit(ctx, np.VisitID)
		if !haven.PlausibleID(np.VisitID) || err != nil || v.PatientID != row.ID {
			return nil, haven.Errorf(haven.EINVALID, "that visit is not this patient's")
		}
		p.VisitID = v.ID
	}
	return s.storeDraft(ctx, p, c)
}

func (s *Service) storeDraft(ctx context.Context, p *haven.Prescription, c haven.PrescriptionContent) (*haven.PrescriptionView, error) {
	var err error
	if p.Content, err = s.sealJSON(ctx, rxAD(p), c); err != nil {
		return nil, err
	}
	if err := s.db.CreatePrescription(ctx, p); err != nil {
		return nil, err
	}
	return s.viewRx(ctx, p, c, true)
}

// checkPrescription validates what a prescriber wrote and returns its
// content: the drug from the practice's formulary (never a controlled
// one), the pharmacy a current pharmacy vendor of the practice.
func (s *Service) checkPrescription(ctx context.Context, a haven.Actor, np NewPrescription) (haven.PrescriptionContent, error) {
	c := haven.PrescriptionContent{RxNorm: strings.TrimSpace(np.RxNorm), Strength: strings.TrimSpace(np.Strength), Form: strings.TrimSpace(np.Form),
		Directions: strings.TrimSpace(np.Directions), Quantity: np.Quantity, DaysSupply: np.DaysSupply, Refills: np.Refills, Substitution: np.Substitution}
	if c.RxNorm == "" || len(c.RxNorm) > 10 {
		return c, haven.Errorf(haven.EINVALID, "choose a drug from the formulary")
	}
	drug, err := s.db.FindDrug(ctx, a.PracticeID, c.RxNorm)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return c, haven.Errorf(haven.EINVALID, "that drug is not in the practice's formulary")
	}
	if err != nil {
		return c, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read the formulary")
	}
	if drug.Controlled() {
		return c, haven.Errorf(haven.EINVALID, "%s is a controlled substance (schedule %s): Haven does not prescribe controlled substances; prescribe it through your certified EPCS system", drug.Name, drug.Schedule)
	}
	c.Drug = drug.Name
	switch {
	case c.Strength == "" || len(c.Strength) > maxRxText || !oneLine(c.Strength):
		return c, haven.Errorf(haven.EINVALID, "give the strength in one line (for example 500 mg)")
	case c.Form == "" || len(c.Form) > maxRxText || !oneLine(c.Form):
		return c, haven.Errorf(haven.EINVALID, "give the form in one line (for example tablet)")
	case c.Directions == "" || len(c.Directions) > maxDirections || !utf8.ValidString(c.Directions) || strings.ContainsRune(c.Directions, 0):
		return c, haven.Errorf(haven.EINVALID, "give the directions, at most %d characters", maxDirections)
	case c.Quantity < 1 || c.Quantity > MaxRxQuantity:
		return c, haven.Errorf(haven.EINVALID, "the quantity is between 1 and %d", MaxRxQuantity)
	case c.DaysSupply < 1 || c.DaysSupply > MaxRxDays:
		return c, haven.Errorf(haven.EINVALID, "the days' supply is between 1 and %d", MaxRxDays)
	case c.Refills < 0 || c.Refills > MaxRxRefills:
		return c, haven.Errorf(haven.EINVALID, "refills are between 0 and %d", MaxRxRefills)
	}
	if !haven.PlausibleID(np.PharmacyID) {
		return c, haven.Errorf(haven.EINVALID, "choose the patient's pharmacy")
	}
	v, err := s.db.FindVendor(ctx, np.PharmacyID)
	if err != nil || v.PracticeID != a.PracticeID || v.Kind != haven.VendorPharmacy {
		return c, haven.Errorf(haven.EINVALID, "choose one of the practice's pharmacies")
	}
	if r := v.EgressRefusal(haven.PHIMinimum, s.now()); r != "" {
		return c, haven.Errorf(haven.EINVALID, "that pharmacy cannot receive prescriptions now (%s); choose another", strings.ReplaceAll(r, "_", " "))
	}
	return c, nil
}

// warnings are what the prescriber must acknowledge for c: allergies on
// the patient's list that the drug's name names, and active
// prescriptions of the same drug (other than skip).
func (s *Service) warnings(ctx context.Context, patientID, skip string, c haven.PrescriptionContent) ([]string, error) {
	var out []string
	allergies, err := s.openAllergies(ctx, patientID)
	if err != nil {
		return nil, err
	}
	drug := strings.ToLower(c.Drug)
	for _, x := range allergies {
		if sub := strings.ToLower(x.Substance); sub != "" && (strings.Contains(drug, sub) || strings.Contains(sub, drug)) {
			w := "Allergy on the patient's list: " + x.Substance
			if x.Reaction != "" {
				w += " (" + x.Reaction + ")"
			}
			out = append(out, w)
		}
	}
	rxs, err := s.db.PatientPrescriptions(ctx, patientID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the patient's prescriptions")
	}
	for _, p := range rxs {
		if p.ID == skip || !p.Status.Active() {
			continue
		}
		var other haven.PrescriptionContent
		if err := s.openJSON(ctx, rxAD(p), p.Content, &other); err != nil {
			return nil, err
		}
		if other.RxNorm == c.RxNorm {
			out = append(out, fmt.Sprintf("An active prescription of %s (%s) was signed %s", other.Drug, other.Strength, p.Signed.Format("2 Jan 2006")))
		}
	}
	return out, nil
}

// SignPrescription signs a draft and queues it for its pharmacy. It needs
// a step-up that no earlier signature of the prescriber consumed, and,
// when the draft has warnings, acknowledge set.
func (s *Service) SignPrescription(ctx context.Context, id string, acknowledge bool) (*haven.PrescriptionView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.rxRow(ctx, a, policy.PrescriptionWrite, id)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.PrescriptionWrite, rxResource(p), id); err != nil {
		return nil, err
	}
	if p.PrescriberID != a.UserID {
		return nil, haven.Errorf(haven.EFORBIDDEN, "only the prescriber who wrote a prescription signs it")
	}
	if p.Status != haven.RxDraft {
		return nil, haven.Errorf(haven.ECONFLICT, "this prescription is signed already")
	}
	var c haven.PrescriptionContent
	if err := s.openJSON(ctx, rxAD(p), p.Content, &c); err != nil {
		return nil, err
	}
	ws, err := s.warnings(ctx, p.PatientID, p.ID, c)
	if err != nil {
		return nil, err
	}
	if len(ws) > 0 && !acknowledge {
		return nil, haven.Errorf(haven.ECONFLICT, "this prescription has warnings: read them and acknowledge them to sign")
	}
	c.Acknowledged = ws
	if p.Content, err = s.sealJSON(ctx, rxAD(p), c); err != nil {
		return nil, err
	}
	p.Signed, p.SignedAuth = s.now().Truncate(time.Microsecond), a.AuthTime // as storage keeps it
	if p.Signature, p.SigningKeyID, err = s.keys.Sign(ctx, p.PracticeID, CanonicalPrescription(p, c)); err != nil {
		return nil, err
	}
	if err := s.db.SignPrescription(ctx, p); err != nil {
		return nil, err
	}
	s.wakeRx()
	return s.viewRx(ctx, p, c, false)
}

// CanonicalPrescription is the one byte form of a signed prescription
// its signature covers: a type and version line, then JSON of every
// field that says what is prescribed, for whom, by whom, to which
// pharmacy and when (Go writes a struct's fields in their order, so the
// form does not depend on a map's).
func CanonicalPrescription(p *haven.Prescription, c haven.PrescriptionContent) []byte {
	doc := struct {
		ID, Practice, Patient, Prescriber, Visit, Pharmacy, Replaces string
		Signed                                                       string
		Content                                                      haven.PrescriptionContent
	}{p.ID, p.PracticeID, p.PatientID, p.PrescriberID, p.VisitID, p.PharmacyID, p.Replaces, p.Signed.UTC().Format(time.RFC3339Nano), c}
	var b bytes.Buffer
	b.WriteString("haven.prescription.v1\n")
	json.NewEncoder(&b).Encode(doc)
	return b.Bytes()
}

// rxRow loads a prescription the actor named, refusing (audited) an id
// that is not one as unknown; policy decides the rest.
func (s *Service) rxRow(ctx context.Context, a haven.Actor, act policy.Action, id string) (*haven.Prescription, error) {
	if !haven.PlausibleID(id) {
		return nil, s.refuseUnknown(ctx, a, act, policy.KindPrescription, id)
	}
	p, err := s.db.FindPrescription(ctx, id)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return nil, s.refuseUnknown(ctx, a, act, policy.KindPrescription, id)
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the prescription")
	}
	return p, nil
}

// Prescription returns one prescription for whoever may read it.
func (s *Service) Prescription(ctx context.Context, id string) (*haven.PrescriptionView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.rxRow(ctx, a, policy.PrescriptionRead, id)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.PrescriptionRead, rxResource(p), id); err != nil {
		return nil, err
	}
	var c haven.PrescriptionContent
	if err := s.openJSON(ctx, rxAD(p), p.Content, &c); err != nil {
		return nil, err
	}
	return s.viewRx(ctx, p, c, p.Status == haven.RxDraft && a.UserID == p.PrescriberID)
}

// PatientPrescriptions returns the patient's prescriptions, newest
// first: drafts only to their prescriber.
func (s *Service) PatientPrescriptions(ctx context.Context, patientID string) ([]*haven.PrescriptionView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	row, err := s.patientRow(ctx, policy.PrescriptionRead, policy.KindPrescription, patientID)
	if err != nil {
		return nil, err
	}
	res := policy.Resource{Kind: policy.KindPrescription, PracticeID: row.PracticeID, PatientID: row.ID}
	if _, _, err := s.authorizeRecord(ctx, policy.PrescriptionRead, res, patientID); err != nil {
		return nil, err
	}
	rows, err := s.db.PatientPrescriptions(ctx, row.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load prescriptions")
	}
	out := make([]*haven.PrescriptionView, 0, len(rows))
	for _, p := range rows {
		if p.Status == haven.RxDraft && p.PrescriberID != a.UserID {
			continue
		}
		var c haven.PrescriptionContent
		if err := s.openJSON(ctx, rxAD(p), p.Content, &c); err != nil {
			return nil, err
		}
		v, err := s.viewRx(ctx, p, c, false)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// viewRx opens what a view shows beside the content: names, the
// signature's check and, for a draft, its warnings.
func (s *Service) viewRx(ctx context.Context, p *haven.Prescription, c haven.PrescriptionContent, warn bool) (*haven.PrescriptionView, error) {
	v := &haven.PrescriptionView{ID: p.ID, PatientID: p.PatientID, PrescriberID: p.PrescriberID, VisitID: p.VisitID, PharmacyID: p.PharmacyID,
		Replaces: p.Replaces, Status: p.Status, StatusReason: p.StatusReason, Created: p.Created, PrescriptionContent: c}
	if !p.Signed.IsZero() {
		t := p.Signed
		v.Signed = &t
		v.Verified = s.keys.Verify(ctx, p.PracticeID, p.SigningKeyID, CanonicalPrescription(p, c), p.Signature) == nil
	}
	if !p.RenewalAsked.IsZero() {
		t := p.RenewalAsked
		v.RenewalAsked = &t
	}
	if u, err := s.db.FindUserByID(ctx, p.PrescriberID); err == nil {
		if prof, err := s.openUser(ctx, u); err == nil {
			v.Prescriber = prof.Name
		}
	}
	if ph, err := s.db.FindVendor(ctx, p.PharmacyID); err == nil {
		v.Pharmacy = ph.Name
	}
	if row, err := s.db.FindPatient(ctx, p.PatientID); err == nil {
		v.PatientName = patientName(ctx, s, row)
	}
	if warn {
		ws, err := s.warnings(ctx, p.PatientID, p.ID, c)
		if err != nil {
			return nil, err
		}
		v.Warnings = ws
	}
	return v, nil
}

// CancelPrescription cancels a prescription: a draft or one still in the
// outbox never leaves; one the pharmacy has is followed by a
// cancellation. Its prescriber cancels it, after a step-up.
func (s *Service) CancelPrescription(ctx context.Context, id string) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	p, err := s.rxRow(ctx, a, policy.PrescriptionWrite, id)
	if err != nil {
		return err
	}
	act := policy.PrescriptionWrite
	if p.Status == haven.RxDraft {
		act = policy.PrescriptionDraft // discarding a draft sends nothing
	}
	if _, _, err := s.authorizeRecord(ctx, act, rxResource(p), id); err != nil {
		return err
	}
	if err := s.db.CancelPrescription(ctx, p, s.now()); err != nil {
		return err
	}
	s.wakeRx()
	return nil
}

// RequestRenewal is the patient asking for a renewal of one of her
// prescriptions: a message to her care team, given to the prescriber,
// naming the prescription (its id, which the prescriber's page opens).
func (s *Service) RequestRenewal(ctx context.Context, id, note string) (*haven.ThreadView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.rxRow(ctx, a, policy.PrescriptionRead, id)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.PrescriptionRead, rxResource(p), id); err != nil {
		return nil, err
	}
	if a.UserID != p.PatientID {
		return nil, haven.Errorf(haven.EFORBIDDEN, "a renewal is the patient's to ask for")
	}
	if p.Status == haven.RxDraft || p.Status == haven.RxCancelled {
		return nil, haven.Errorf(haven.ECONFLICT, "this prescription cannot be renewed; write to your care team")
	}
	var c haven.PrescriptionContent
	if err := s.openJSON(ctx, rxAD(p), p.Content, &c); err != nil {
		return nil, err
	}
	body := fmt.Sprintf("Please renew my prescription of %s %s (%s).", c.Drug, c.Strength, c.Form)
	if note = strings.TrimSpace(note); note != "" {
		body += "\n\n" + note
	}
	t, err := s.StartThread(ctx, NewThread{Audience: haven.AudienceCareTeam, Subject: "Renewal request: " + c.Drug, Body: body})
	if err != nil {
		return nil, err
	}
	if err := s.db.AssignThread(ctx, t.ID, p.PrescriberID); err != nil {
		return nil, err
	}
	t.AssigneeID = p.PrescriberID
	if _, err := s.db.MarkRenewalAsked(ctx, p.ID); err != nil {
		return nil, err
	}
	ev := audit.ForActor(a, ActRxRenewal)
	ev.ResourceKind, ev.ResourceID, ev.PatientID, ev.Purpose, ev.Decision = string(policy.KindPrescription), p.ID, p.PatientID, audit.PurposePatientRequest, haven.DecisionAllow
	if _, err := s.record(ctx, ev); err != nil {
		return nil, err
	}
	return t, nil
}

// RenewPrescription approves a renewal: a new draft with the same
// content (and pharmacy, if it may still receive), replacing the old one,
// for the prescriber to review and sign.
func (s *Service) RenewPrescription(ctx context.Context, id string) (*haven.PrescriptionView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	old, err := s.rxRow(ctx, a, policy.PrescriptionDraft, id)
	if err != nil {
		return nil, err
	}
	p := &haven.Prescription{ID: haven.NewID(), PracticeID: old.PracticeID, PatientID: old.PatientID, PrescriberID: a.UserID,
		PharmacyID: old.PharmacyID, Replaces: old.ID}
	if _, _, err := s.authorizeRecord(ctx, policy.PrescriptionDraft, rxResource(p), id); err != nil {
		return nil, err
	}
	if old.Status == haven.RxDraft {
		return nil, haven.Errorf(haven.ECONFLICT, "a draft is not renewed; sign it")
	}
	var c haven.PrescriptionContent
	if err := s.openJSON(ctx, rxAD(old), old.Content, &c); err != nil {
		return nil, err
	}
	np := NewPrescription{PatientID: old.PatientID, RxNorm: c.RxNorm, Strength: c.Strength, Form: c.Form, Directions: c.Directions,
		Quantity: c.Quantity, DaysSupply: c.DaysSupply, Refills: c.Refills, Substitution: c.Substitution, PharmacyID: old.PharmacyID}
	nc, err := s.checkPrescription(ctx, a, np)
	if err != nil {
		return nil, err
	}
	return s.storeDraft(ctx, p, nc)
}
