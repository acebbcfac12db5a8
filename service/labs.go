package service

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"errors"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"haven"
	"haven/keyring"
	"haven/policy"
	"haven/store/sqlstore"
)

// Lab orders. A clinician related to the patient orders tests from the
// practice's lab catalogue (LOINC codes and names) from one of its
// registered labs whose agreement is current; the order is sealed under
// the patient's key and queued in the lab outbox (lab_outbox.go), which
// carries it to the lab as an HL7 v2 ORM^O01 over MLLP inside TLS and
// records the lab's acknowledgment. Results come back through
// lab_results.go.

// Limits of a lab order and the catalogue.
const (
	maxLabTestName   = 200
	maxLabTests      = 20 // tests in one order
	maxLabNote       = 500
	maxCatalogue     = 20000
	maxCatalogueCSV  = 4 << 20
	labOrderNumberCh = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
)

// ActLabTransmit is the audit action of an order's message leaving for
// its lab.
const ActLabTransmit = "lab.transmit"

// loincCode is a LOINC code's form: up to seven digits, a dash, a check digit.
var loincCode = regexp.MustCompile(`^[0-9]{1,7}-[0-9]$`)

// ValidLOINC reports whether code has a LOINC code's form and its check
// digit (mod 10, as LOINC computes it) is right.
func ValidLOINC(code string) bool {
	if !loincCode.MatchString(code) {
		return false
	}
	digits, check := code[:len(code)-2], int(code[len(code)-1]-'0')
	sum := 0
	for i := 0; i < len(digits); i++ {
		d := int(digits[len(digits)-1-i] - '0')
		if i%2 == 0 { // from the right, every other digit doubled
			d *= 2
			if d > 9 {
				d = d/10 + d%10
			}
		}
		sum += d
	}
	return (10-sum%10)%10 == check
}

// ParseLabCatalogue reads a catalogue CSV of "loinc,name" rows (a header
// row naming loinc is skipped), refusing what is not one with a message
// naming the line.
func ParseLabCatalogue(r io.Reader) ([]haven.LabTest, error) {
	cr := csv.NewReader(io.LimitReader(r, maxCatalogueCSV))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	var out []haven.LabTest
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, haven.Errorf(haven.EINVALID, "the catalogue is not CSV (line %d)", line)
		}
		if line == 1 && len(rec) > 0 && strings.EqualFold(strings.TrimSpace(rec[0]), "loinc") {
			continue
		}
		if len(rec) != 2 {
			return nil, haven.Errorf(haven.EINVALID, "line %d: give a LOINC code and a name", line)
		}
		t := haven.LabTest{LOINC: strings.TrimSpace(rec[0]), Name: strings.TrimSpace(rec[1])}
		if !ValidLOINC(t.LOINC) {
			return nil, haven.Errorf(haven.EINVALID, "line %d: a LOINC code is digits, a dash and its check digit (for example 2345-7)", line)
		}
		if t.Name == "" || len(t.Name) > maxLabTestName || !oneLine(t.Name) {
			return nil, haven.Errorf(haven.EINVALID, "line %d: a test's name is one line of at most %d characters", line, maxLabTestName)
		}
		if out = append(out, t); len(out) > maxCatalogue {
			return nil, haven.Errorf(haven.EINVALID, "a catalogue holds at most %d tests", maxCatalogue)
		}
	}
	if len(out) == 0 {
		return nil, haven.Errorf(haven.EINVALID, "the catalogue lists no test")
	}
	return out, nil
}

// ImportLabCatalogue replaces the practice's lab catalogue with a CSV. It
// needs the admin's recent step-up: the catalogue decides what can be
// ordered.
func (s *Service) ImportLabCatalogue(ctx context.Context, r io.Reader) (int, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return 0, err
	}
	if _, _, err := s.authorize(ctx, policy.PracticeSettings, policy.Resource{Kind: policy.KindPractice, ID: a.PracticeID, PracticeID: a.PracticeID}); err != nil {
		return 0, err
	}
	tests, err := ParseLabCatalogue(r)
	if err != nil {
		return 0, err
	}
	return len(tests), s.db.ReplaceLabCatalogue(ctx, a.PracticeID, tests)
}

// SeedLabCatalogue replaces a practice's catalogue without a session, for
// the demo and tests.
func (s *Service) SeedLabCatalogue(ctx context.Context, practiceID string, r io.Reader) error {
	tests, err := ParseLabCatalogue(r)
	if err != nil {
		return err
	}
	return s.db.ReplaceLabCatalogue(ctx, practiceID, tests)
}

// SearchLabCatalogue returns up to 25 tests of the clinician's practice
// whose name contains q.
func (s *Service) SearchLabCatalogue(ctx context.Context, q string) ([]haven.LabTest, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if a.Role != haven.RoleClinician && a.Role != haven.RolePracticeAdmin {
		return nil, haven.Errorf(haven.EFORBIDDEN, "the lab catalogue is for clinicians")
	}
	if len(q) > maxLabTestName {
		return nil, haven.Errorf(haven.EINVALID, "search for at most %d characters", maxLabTestName)
	}
	return s.db.SearchLabCatalogue(ctx, a.PracticeID, q, 25)
}

// Labs returns the practice's labs that may receive an order today, by
// name, for a clinician to choose from.
func (s *Service) Labs(ctx context.Context) ([]*haven.Vendor, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if a.Role != haven.RoleClinician {
		return nil, haven.Errorf(haven.EFORBIDDEN, "labs are chosen by clinicians")
	}
	all, err := s.db.Vendors(ctx, a.PracticeID, false)
	if err != nil {
		return nil, err
	}
	var out []*haven.Vendor
	for _, v := range all {
		if v.Kind == haven.VendorLab && v.EgressRefusal(haven.PHIMinimum, s.now()) == "" {
			out = append(out, v)
		}
	}
	return out, nil
}

// NewLabOrder is what a clinician orders.
type NewLabOrder struct {
	PatientID string   `json:"patient_id"`
	LabID     string   `json:"lab_id"`
	Tests     []string `json:"tests"` // LOINC codes from the catalogue
	Note      string   `json:"note,omitempty"`
}

func labOrderAD(o *haven.LabOrder) keyring.AD {
	return keyring.AD{PracticeID: o.PracticeID, PatientID: o.PatientID, Kind: "lab_order", RecordID: o.ID, Field: "content"}
}

func labResource(o *haven.LabOrder) policy.Resource {
	return policy.Resource{Kind: policy.KindLab, ID: o.ID, PracticeID: o.PracticeID, PatientID: o.PatientID}
}

// newOrderNumber is a random placer order number: twelve characters a lab
// can read back over the phone (no 0/O, 1/I).
func newOrderNumber() string {
	var b [12]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = labOrderNumberCh[int(b[i])%len(labOrderNumberCh)]
	}
	return "HVN" + string(b[:])
}

// OrderLabs orders tests for the patient from a lab and queues the order
// for it. Everything is checked here (the tests in the catalogue, the lab
// the practice's and current) so that the outbox only sends.
func (s *Service) OrderLabs(ctx context.Context, n NewLabOrder) (*haven.LabOrderView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	row, err := s.patientRow(ctx, policy.LabOrder, policy.KindLab, n.PatientID)
	if err != nil {
		return nil, err
	}
	o := &haven.LabOrder{ID: haven.NewID(), PracticeID: row.PracticeID, PatientID: row.ID, OrdererID: a.UserID, LabID: n.LabID, Number: newOrderNumber()}
	if _, _, err := s.authorizeRecord(ctx, policy.LabOrder, labResource(o), n.PatientID); err != nil {
		return nil, err
	}
	c := haven.LabOrderContent{Note: strings.TrimSpace(n.Note)}
	if len(n.Tests) == 0 || len(n.Tests) > maxLabTests {
		return nil, haven.Errorf(haven.EINVALID, "choose between 1 and %d tests from the catalogue", maxLabTests)
	}
	seen := map[string]bool{}
	for _, code := range n.Tests {
		code = strings.TrimSpace(code)
		if seen[code] {
			continue
		}
		seen[code] = true
		if !ValidLOINC(code) {
			return nil, haven.Errorf(haven.EINVALID, "choose tests from the practice's catalogue")
		}
		t, err := s.db.FindLabTest(ctx, a.PracticeID, code)
		if haven.ErrorCode(err) == haven.ENOTFOUND {
			return nil, haven.Errorf(haven.EINVALID, "choose tests from the practice's catalogue")
		}
		if err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read the lab catalogue")
		}
		c.Tests = append(c.Tests, haven.LabTestRef{LOINC: t.LOINC, Name: t.Name})
	}
	if len(c.Note) > maxLabNote || !utf8.ValidString(c.Note) || strings.ContainsRune(c.Note, 0) {
		return nil, haven.Errorf(haven.EINVALID, "a note to the lab is at most %d characters", maxLabNote)
	}
	if !haven.PlausibleID(n.LabID) {
		return nil, haven.Errorf(haven.EINVALID, "choose one of the practice's labs")
	}
	lab, err := s.db.FindVendor(ctx, n.LabID)
	if err != nil || lab.PracticeID != a.PracticeID || lab.Kind != haven.VendorLab {
		return nil, haven.Errorf(haven.EINVALID, "choose one of the practice's labs")
	}
	if r := lab.EgressRefusal(haven.PHIMinimum, s.now()); r != "" {
		return nil, haven.Errorf(haven.EINVALID, "that lab cannot receive orders now (%s); choose another", strings.ReplaceAll(r, "_", " "))
	}
	if o.Content, err = s.sealJSON(ctx, labOrderAD(o), c); err != nil {
		return nil, err
	}
	if err := s.db.CreateLabOrder(ctx, o, haven.NewID(), s.now()); err != nil {
		return nil, err
	}
	s.wakeLabs()
	return s.viewLabOrder(ctx, o, c), nil
}

// CancelLabOrder cancels an order before its result: a clinician who may
// order the patient's labs, decided and audited as such. An order that
// never left Haven is withdrawn and cancelled at once; one that may have
// reached the lab is cancelled there by an ORM^O01 whose ORC-1 is CA,
// through the outbox, and is cancelled when the lab acknowledges it. A
// result that arrives for a cancelled order is still kept, flagged.
func (s *Service) CancelLabOrder(ctx context.Context, id string) (*haven.LabOrderView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.labOrderRow(ctx, a, policy.LabOrder, id)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.LabOrder, labResource(o), id); err != nil {
		return nil, err
	}
	sent, err := s.db.CancelLabOrder(ctx, o.ID, sqlstore.CancelControlPrefix+haven.NewID(), s.now())
	if err != nil {
		return nil, err
	}
	if sent {
		s.wakeLabs()
	}
	return s.LabOrder(ctx, id)
}

// labOrderRow loads an order the actor named, refusing (audited) an id
// that is not one as unknown.
func (s *Service) labOrderRow(ctx context.Context, a haven.Actor, act policy.Action, id string) (*haven.LabOrder, error) {
	if !haven.PlausibleID(id) {
		return nil, s.refuseUnknown(ctx, a, act, policy.KindLab, id)
	}
	o, err := s.db.FindLabOrder(ctx, id)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return nil, s.refuseUnknown(ctx, a, act, policy.KindLab, id)
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the lab order")
	}
	return o, nil
}

// LabOrder returns one order to a clinician who may read the patient's
// labs. Patients see their results (Results), not the orders' traffic.
func (s *Service) LabOrder(ctx context.Context, id string) (*haven.LabOrderView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.labOrderRow(ctx, a, policy.LabRead, id)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.LabRead, labResource(o), id); err != nil {
		return nil, err
	}
	var c haven.LabOrderContent
	if err := s.openJSON(ctx, labOrderAD(o), o.Content, &c); err != nil {
		return nil, err
	}
	return s.viewLabOrder(ctx, o, c), nil
}

// PatientLabOrders returns the patient's lab orders, newest first, for
// whoever may read her labs.
func (s *Service) PatientLabOrders(ctx context.Context, patientID string) ([]*haven.LabOrderView, error) {
	row, err := s.patientRow(ctx, policy.LabRead, policy.KindLab, patientID)
	if err != nil {
		return nil, err
	}
	res := policy.Resource{Kind: policy.KindLab, PracticeID: row.PracticeID, PatientID: row.ID}
	if _, _, err := s.authorizeRecord(ctx, policy.LabRead, res, patientID); err != nil {
		return nil, err
	}
	rows, err := s.db.PatientLabOrders(ctx, row.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load lab orders")
	}
	out := make([]*haven.LabOrderView, 0, len(rows))
	for _, o := range rows {
		var c haven.LabOrderContent
		if err := s.openJSON(ctx, labOrderAD(o), o.Content, &c); err != nil {
			return nil, err
		}
		out = append(out, s.viewLabOrder(ctx, o, c))
	}
	return out, nil
}

func (s *Service) viewLabOrder(ctx context.Context, o *haven.LabOrder, c haven.LabOrderContent) *haven.LabOrderView {
	v := &haven.LabOrderView{ID: o.ID, PatientID: o.PatientID, OrdererID: o.OrdererID, LabID: o.LabID, Number: o.Number, Status: o.Status,
		StatusReason: o.StatusReason, AckCode: o.AckCode, Created: o.Created, LabOrderContent: c}
	if u, err := s.db.FindUserByID(ctx, o.OrdererID); err == nil {
		if prof, err := s.openUser(ctx, u); err == nil {
			v.Orderer = prof.Name
		}
	}
	if lab, err := s.db.FindVendor(ctx, o.LabID); err == nil {
		v.Lab = lab.Name
	}
	if row, err := s.db.FindPatient(ctx, o.PatientID); err == nil {
		v.PatientName = patientName(ctx, s, row)
	}
	return v
}
