package service

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"haven"
	"haven/audit"
	"haven/keyring"
	"haven/policy"
)

// Demographics are who the patient is.
type Demographics struct {
	Name        string `json:"name"`
	DateOfBirth string `json:"date_of_birth"` // YYYY-MM-DD
	Sex         string `json:"sex,omitempty"`
}

// Contact is how to reach the patient.
type Contact struct {
	Email   string `json:"email"`
	Phone   string `json:"phone,omitempty"`
	Address string `json:"address,omitempty"`
}

// Chart is a patient's opened chart: demographics, contact details, MRN.
type Chart struct {
	PatientID    string       `json:"patient_id"`
	PracticeID   string       `json:"practice_id"`
	MRN          string       `json:"mrn"`
	Demographics Demographics `json:"demographics"`
	Contact      Contact      `json:"contact"`
	Version      int          `json:"version"`
	UpdatedAt    time.Time    `json:"updated_at"`
	// BreakGlassUntil is set when the reader opened the chart under a
	// break-glass grant: when that access ends, so the page can say so.
	BreakGlassUntil *time.Time `json:"break_glass_until,omitempty"`
}

// NewPatient is what the front desk enters to register a patient.
type NewPatient struct {
	MRN          string       `json:"mrn"`
	Demographics Demographics `json:"demographics"`
	Contact      Contact      `json:"contact"`
}

// EarliestDateOfBirth is the earliest date of birth a chart accepts; the
// latest is today (see validate). Anything outside is a typing slip
// (0980 for 1980) or a probe (9999-12-31), not a patient, and a wrong
// date of birth follows a patient into every prescription and lab order.
const EarliestDateOfBirth = "1900-01-01"

// Validate checks demographics at now: a name, a plausible date of birth.
func (d Demographics) Validate(now time.Time) error {
	if err := text("name", d.Name, 1, 200); err != nil {
		return err
	}
	dob, err := time.Parse("2006-01-02", d.DateOfBirth)
	if err != nil {
		return haven.Errorf(haven.EINVALID, "date of birth must be a date written YYYY-MM-DD")
	}
	earliest, _ := time.Parse("2006-01-02", EarliestDateOfBirth)
	// Today where it is latest (UTC+14), so a baby born today anywhere is
	// not refused for being born tomorrow in UTC.
	y, m, day := now.UTC().Add(14 * time.Hour).Date()
	if dob.Before(earliest) || dob.After(time.Date(y, m, day, 0, 0, 0, 0, time.UTC)) {
		return haven.Errorf(haven.EINVALID, "date of birth must be between %s and today", EarliestDateOfBirth)
	}
	return text("sex", d.Sex, 0, 40)
}

func (c Contact) validate() error {
	if !haven.ValidEmail(haven.NormalizeEmail(c.Email)) {
		return haven.Errorf(haven.EINVALID, "email address is not valid")
	}
	if err := text("phone", c.Phone, 0, 40); err != nil {
		return err
	}
	return text("address", c.Address, 0, 500)
}

func validMRN(mrn string) error { return text("MRN", mrn, 1, 64) }

// text checks a free-text field's length and that it is valid UTF-8
// without control characters. The message names the field, not its value.
func text(field, v string, min, max int) error {
	n := utf8.RuneCountInString(strings.TrimSpace(v))
	if !utf8.ValidString(v) || n < min || n > max {
		return haven.Errorf(haven.EINVALID, "%s must be %d to %d characters", field, min, max)
	}
	for _, r := range v {
		if r < 0x20 && r != '\n' || r == 0x7f {
			return haven.Errorf(haven.EINVALID, "%s contains control characters", field)
		}
	}
	return nil
}

// mrnIndex is the practice's blind index of an MRN, for lookup by MRN.
func (s *Service) mrnIndex(ctx context.Context, practiceID, mrn string) ([]byte, error) {
	return s.keys.BlindIndex(ctx, practiceID, "mrn", []byte(strings.ToUpper(strings.TrimSpace(mrn))))
}

// RegisterPatient creates a patient's account (without a password: they
// are invited to set one) and chart, every field sealed under the patient's
// own data key.
func (s *Service) RegisterPatient(ctx context.Context, np NewPatient) (*Chart, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if err := np.Validate(s.now()); err != nil {
		return nil, err
	}
	id := haven.NewID()
	if _, _, err := s.authorize(ctx, policy.PatientRegister, policy.Resource{Kind: policy.KindPatient, ID: id, PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	np.Contact.Email = haven.NormalizeEmail(np.Contact.Email)
	u, row, key, err := s.sealNewPatient(ctx, a.PracticeID, id, np)
	if err != nil {
		return nil, err
	}
	if err := s.db.CreatePatient(ctx, u, row, &key); err != nil {
		return nil, err
	}
	return &Chart{PatientID: id, PracticeID: a.PracticeID, MRN: np.MRN, Demographics: np.Demographics, Contact: np.Contact, Version: row.Version, UpdatedAt: row.UpdatedAt}, nil
}

// Validate checks a new chart at now: its MRN, demographics and contact.
func (np NewPatient) Validate(now time.Time) error {
	if err := validMRN(np.MRN); err != nil {
		return err
	}
	if err := np.Demographics.Validate(now); err != nil {
		return err
	}
	return np.Contact.validate()
}

// sealNewPatient builds a new patient's account (email blind-indexed,
// email and name sealed) and chart (every field sealed under the
// patient's own data key), ready to store with that key, which is not
// stored yet (keyring's NewDataKey): the caller stores all three in one
// transaction. It is the one place a new patient is sealed, shared by the
// front desk's RegisterPatient and a patient's own registration
// (identity/registration.go); callers have validated np, normalized its
// email and decided and audited the act.
func (s *Service) sealNewPatient(ctx context.Context, practiceID, id string, np NewPatient) (*haven.User, *haven.Patient, haven.WrappedKey, error) {
	ctx, err := s.keys.Checked(ctx) // one key-state read for the five fields, not one each
	if err != nil {
		return nil, nil, haven.WrappedKey{}, err
	}
	ctx, key, err := s.keys.NewDataKey(ctx, keyPractice(practiceID), id)
	if err != nil {
		return nil, nil, haven.WrappedKey{}, err
	}
	u := &haven.User{ID: id, PracticeID: practiceID, Role: haven.RolePatient, CreatedAt: s.now()}
	if err := s.sealUser(ctx, u, np.Contact.Email, np.Demographics.Name); err != nil {
		return nil, nil, haven.WrappedKey{}, err
	}
	row := &haven.Patient{ID: id, PracticeID: practiceID}
	if err := s.sealChart(ctx, row, np.MRN, np.Demographics, np.Contact); err != nil {
		return nil, nil, haven.WrappedKey{}, err
	}
	return u, row, key, nil
}

func (s *Service) sealChart(ctx context.Context, row *haven.Patient, mrn string, d Demographics, c Contact) error {
	var err error
	if row.MRNIndex, err = s.mrnIndex(ctx, row.PracticeID, mrn); err != nil {
		return err
	}
	if row.MRN, err = s.keys.Seal(ctx, chartAD(row.PracticeID, row.ID, "mrn"), []byte(strings.TrimSpace(mrn))); err != nil {
		return err
	}
	if row.Demographics, err = s.sealJSON(ctx, chartAD(row.PracticeID, row.ID, "demographics"), d); err != nil {
		return err
	}
	row.Contact, err = s.sealJSON(ctx, chartAD(row.PracticeID, row.ID, "contact"), c)
	return err
}

func (s *Service) sealJSON(ctx context.Context, ad keyring.AD, v any) (haven.Sealed, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return s.keys.Seal(ctx, ad, b)
}

func (s *Service) openJSON(ctx context.Context, ad keyring.AD, sealed haven.Sealed, v any) error {
	b, err := s.keys.Open(ctx, ad, sealed)
	if err != nil {
		return err
	}
	defer clear(b)
	if err := json.Unmarshal(b, v); err != nil {
		return haven.Wrap(haven.EINTERNAL, err, "a sealed record is unreadable")
	}
	return nil
}

// openChart opens a chart row. Only call after authorize returned nil.
func (s *Service) openChart(ctx context.Context, row *haven.Patient) (*Chart, error) {
	ctx, err := s.keys.Checked(ctx) // one key-state read for the three fields, unless the gate's carried one
	if err != nil {
		return nil, err
	}
	c := &Chart{PatientID: row.ID, PracticeID: row.PracticeID, Version: row.Version, UpdatedAt: row.UpdatedAt}
	mrn, err := s.keys.Open(ctx, chartAD(row.PracticeID, row.ID, "mrn"), row.MRN)
	if err != nil {
		return nil, err
	}
	c.MRN = string(mrn)
	if err := s.openJSON(ctx, chartAD(row.PracticeID, row.ID, "demographics"), row.Demographics, &c.Demographics); err != nil {
		return nil, err
	}
	if err := s.openJSON(ctx, chartAD(row.PracticeID, row.ID, "contact"), row.Contact, &c.Contact); err != nil {
		return nil, err
	}
	return c, nil
}

// patientRow loads the sealed chart of id for act. An id that does not
// exist is audited as a denial, like any other refused access, and answered
// with the same ENOTFOUND an id of another practice gets: probing ids
// teaches nothing and is seen.
func (s *Service) patientRow(ctx context.Context, act policy.Action, kind policy.Kind, id string) (*haven.Patient, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if !haven.PlausibleID(id) {
		return nil, s.refuseUnknown(ctx, a, act, kind, id)
	}
	row, err := s.db.FindPatient(ctx, id)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return nil, s.refuseUnknown(ctx, a, act, kind, id)
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the chart")
	}
	return row, nil
}

// refuseUnknown audits a request for an id that does not exist as a
// denial and returns ENOTFOUND, the same answer, and the same audit
// reason, that another practice's or patient's id gets (see authorize).
// Callers send it every id that is not haven.PlausibleID before any query
// sees it, so a NUL, invalid UTF-8 or an attacker's payload gets this
// answer on every database; such an id is recorded without its value.
func (s *Service) refuseUnknown(ctx context.Context, a haven.Actor, act policy.Action, kind policy.Kind, id string) error {
	ev := audit.ForActor(a, string(act))
	ev.ResourceKind, ev.Decision, ev.Reason = string(kind), haven.DecisionDeny, reasonNotFound
	if haven.PlausibleID(id) {
		ev.ResourceID = id
	}
	var err error
	if ev.Seq, err = s.record(ctx, ev); err != nil {
		return err
	}
	s.detect(ctx, ev)
	return errNotFound
}

func chartResource(kind policy.Kind, row *haven.Patient) policy.Resource {
	return policy.Resource{Kind: kind, ID: row.ID, PracticeID: row.PracticeID, PatientID: row.ID}
}

// Chart returns a patient's chart to an actor policy allows, after the
// access is durably audited.
func (s *Service) Chart(ctx context.Context, patientID string) (*Chart, error) {
	ctx, row, a, d, facts, err := s.gatePatientKeys(ctx, policy.ChartRead, policy.KindChart, patientID, patientID)
	if err != nil {
		return nil, err
	}
	ch, err := s.openChart(ctx, row)
	if err != nil || d.Reason != policy.ReasonBreakGlass {
		return ch, err
	}
	// The grants the decision was taken on (the practice's own).
	if until, ok := policy.BreakGlassUntil(a, facts.Patient.BreakGlass, s.now()); ok {
		ch.BreakGlassUntil = &until
	}
	return ch, nil
}

// ChartUpdate is a change to a chart. Nil parts are left as they are.
// Version must be the version the editor read.
type ChartUpdate struct {
	Version      int           `json:"version"`
	MRN          *string       `json:"mrn,omitempty"`
	Demographics *Demographics `json:"demographics,omitempty"`
	Contact      *Contact      `json:"contact,omitempty"`
}

// UpdateChart changes a chart. A change to the contact details alone is a
// chart.write_contact (patients may keep their own current); anything else
// is a chart.write.
func (s *Service) UpdateChart(ctx context.Context, patientID string, up ChartUpdate) (*Chart, error) {
	act := policy.ChartWrite
	if up.MRN == nil && up.Demographics == nil {
		act = policy.ContactWrite
	}
	if up.MRN == nil && up.Demographics == nil && up.Contact == nil {
		return nil, haven.Errorf(haven.EINVALID, "nothing to change")
	}
	if up.MRN != nil {
		if err := validMRN(*up.MRN); err != nil {
			return nil, err
		}
	}
	if up.Demographics != nil {
		if err := up.Demographics.Validate(s.now()); err != nil {
			return nil, err
		}
	}
	if up.Contact != nil {
		if err := up.Contact.validate(); err != nil {
			return nil, err
		}
		up.Contact.Email = haven.NormalizeEmail(up.Contact.Email)
	}
	row, _, _, _, err := s.gatePatient(ctx, act, policy.KindChart, patientID)
	if err != nil {
		return nil, err
	}
	c, err := s.openChart(ctx, row)
	if err != nil {
		return nil, err
	}
	if up.Version != row.Version {
		return nil, haven.Errorf(haven.ECONFLICT, "the chart changed since you opened it (version %d, now %d); reload and try again", up.Version, row.Version)
	}
	if up.MRN != nil {
		c.MRN = *up.MRN
	}
	if up.Demographics != nil {
		c.Demographics = *up.Demographics
	}
	if up.Contact != nil {
		c.Contact = *up.Contact
	}
	if err := s.sealChart(ctx, row, c.MRN, c.Demographics, c.Contact); err != nil {
		return nil, err
	}
	if err := s.db.UpdatePatient(ctx, row); err != nil {
		return nil, err
	}
	c.Version, c.UpdatedAt = row.Version, row.UpdatedAt
	return c, nil
}

// PatientSummary is one line of a patient list. An erased patient's line
// has only the id and ErasedAt: there is nothing left to open.
type PatientSummary struct {
	PatientID   string `json:"patient_id"`
	Name        string `json:"name,omitempty"`
	DateOfBirth string `json:"date_of_birth,omitempty"`
	MRN         string `json:"mrn,omitempty"`
	// Erased is set for a patient whose data key was destroyed; ErasedAt is
	// when (nil if the date was never recorded, as after a crash between
	// the shred and the record).
	Erased   bool       `json:"erased,omitempty"`
	ErasedAt *time.Time `json:"erased_at,omitempty"`
}

// Patients lists the patients the actor may see: the whole practice for the
// front desk (patient.search), the care team's patients for a clinician
// (careteam.patients).
// Each chart shown is decided and audited on its own.
//
// An erased patient never breaks the list. The practice-wide list shows
// them as a line that says when they were erased (the practice must be
// able to answer for a record it no longer holds); a clinician's care-team
// list leaves them out, since there is no one left to treat.
func (s *Service) Patients(ctx context.Context) ([]PatientSummary, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	var rows []*haven.Patient
	practiceList := a.Role != haven.RoleClinician
	switch a.Role {
	case haven.RoleClinician:
		if _, _, err := s.authorize(ctx, policy.CareTeamPatients, policy.Resource{Kind: policy.KindPatient, PracticeID: a.PracticeID}); err != nil {
			return nil, err
		}
		ids, err := s.db.PatientsOfCareTeamMember(ctx, a.UserID)
		if err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the care team")
		}
		for _, id := range ids {
			row, err := s.db.FindPatient(ctx, id)
			if err == nil && row.PracticeID == a.PracticeID {
				rows = append(rows, row)
			}
		}
	default:
		if _, _, err := s.authorize(ctx, policy.PatientSearch, policy.Resource{Kind: policy.KindPatient, PracticeID: a.PracticeID}); err != nil {
			return nil, err
		}
		if rows, err = s.db.ListPatients(ctx, a.PracticeID); err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list patients")
		}
	}
	erased, err := s.db.ErasedPatients(ctx, a.PracticeID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list patients")
	}
	// One key-state read for the whole list, made after the list was read:
	// a patient shredded before this request is not opened.
	if ctx, err = s.keys.Checked(ctx); err != nil {
		return nil, err
	}
	out := make([]PatientSummary, 0, len(rows))
	for _, row := range rows {
		if at, ok := erased[row.ID]; ok {
			// Nothing is opened, so there is no chart read to decide or audit.
			if practiceList {
				out = append(out, PatientSummary{PatientID: row.ID, Erased: true, ErasedAt: &at})
			}
			continue
		}
		if _, _, err := s.authorize(ctx, policy.ChartRead, chartResource(policy.KindChart, row)); err != nil {
			if haven.ErrorCode(err) == haven.EUNAVAILABLE {
				return nil, err
			}
			continue
		}
		c, err := s.openChart(ctx, row)
		if errors.Is(err, keyring.ErrKeyDestroyed) {
			// Shredded, but the date was not recorded (or the shred came
			// from elsewhere): erased all the same.
			if practiceList {
				out = append(out, PatientSummary{PatientID: row.ID, Erased: true})
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, PatientSummary{PatientID: c.PatientID, Name: c.Demographics.Name, DateOfBirth: c.Demographics.DateOfBirth, MRN: c.MRN})
	}
	return out, nil
}
