package service

import (
	"context"
	"strconv"
	"strings"
	"time"

	"haven"
	"haven/audit"
	"haven/keyring"
	"haven/policy"
)

// Vital signs a patient records herself, from a device or an app through
// the FHIR API: sealed under her key like the rest of her record, and
// read with her results (LabRead) as Observations of category
// vital-signs, in her Observation search, her export and $everything.

// NewVitalSign is a vital sign a patient's app records (package fhir has
// checked its code, unit and range).
type NewVitalSign struct {
	PatientID string
	Status    string
	LOINC     string
	Display   string
	Value     float64
	Unit      string // UCUM
	Effective time.Time
}

// vitalFuture is how far ahead of the server's clock a measurement's time
// may lie (a device's clock differs a little); further is a mistake.
const vitalFuture = 10 * time.Minute

func patientObservationAD(o *haven.PatientObservation) keyring.AD {
	return keyring.AD{PracticeID: o.PracticeID, PatientID: o.PatientID, Kind: "patient_observation", RecordID: o.ID, Field: "content"}
}

// FHIRRecordObservation is the FHIR API's create of an Observation: the
// signed-in patient records a vital sign of her own, decided
// (ObservationRecord: her own record only) and audited before it is
// sealed and stored, and returned as FHIRResource reads it back. Another
// patient's id is refused as one that exists nowhere, and recorded; the
// workforce records nothing here.
func (s *Service) FHIRRecordObservation(ctx context.Context, v NewVitalSign) (map[string]any, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if v.Effective.IsZero() || v.Effective.After(s.now().Add(vitalFuture)) {
		return nil, haven.Errorf(haven.EINVALID, "effectiveDateTime is in the future")
	}
	if only, ok := PatientContext(ctx); ok && v.PatientID != only {
		return nil, s.refuseUnknown(ctx, a, policy.ObservationRecord, policy.KindLab, v.PatientID)
	}
	if a.Role != haven.RolePatient {
		// Refused before any record is looked up, and recorded: the id
		// sent, never whether it names a patient.
		ev := audit.ForActor(a, string(policy.ObservationRecord))
		ev.ResourceKind, ev.Decision, ev.Reason = string(policy.KindLab), haven.DecisionDeny, "fhir_create_patient_only"
		if haven.PlausibleID(v.PatientID) {
			ev.ResourceID = v.PatientID
		}
		if _, err := s.record(ctx, ev); err != nil {
			return nil, err
		}
		return nil, haven.Errorf(haven.EFORBIDDEN, "only a patient records her own vital signs here")
	}
	row, _, _, _, err := s.gatePatientFor(ctx, policy.ObservationRecord, policy.KindLab, v.PatientID, v.PatientID)
	if err != nil {
		return nil, err
	}
	o := &haven.PatientObservation{ID: haven.NewID(), PracticeID: row.PracticeID, PatientID: row.ID, RecordedBy: a.UserID}
	if client, ok := strings.CutPrefix(a.SessionID, "smart:"); ok && haven.PlausibleID(client) {
		o.Source = client // the app it came through
	}
	if o.Content, err = s.sealJSON(ctx, patientObservationAD(o), haven.ObservationContent{Status: v.Status, LOINC: v.LOINC,
		Display: v.Display, Value: v.Value, Unit: v.Unit, Effective: v.Effective.UTC()}); err != nil {
		return nil, err
	}
	if err := s.db.AddPatientObservation(ctx, o); err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot store the observation")
	}
	return s.FHIRResource(ctx, "Observation", o.ID)
}

// addVitals adds the vital signs she recorded, each an Observation of
// category vital-signs whose performer is she, and a line of the summary
// naming the reading, when it was measured, and the app it came through.
func (b *recordBuilder) addVitals(ctx context.Context, pref fhirRef) error {
	obs, err := b.s.db.PatientObservations(ctx, b.row.ID)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot load recorded observations")
	}
	category := []map[string]any{{"coding": []fhirCoding{{System: "http://terminology.hl7.org/CodeSystem/observation-category", Code: "vital-signs", Display: "Vital Signs"}}}}
	for _, o := range obs {
		if o.PracticeID != b.row.PracticeID || o.PatientID != b.row.ID {
			continue
		}
		var c haven.ObservationContent
		if err := b.s.openJSON(ctx, patientObservationAD(o), o.Content, &c); err != nil {
			return err
		}
		b.add("Observation/"+o.ID, map[string]any{"resourceType": "Observation", "id": fhirID(o.ID), "status": c.Status, "category": category,
			"code":    map[string]any{"coding": []fhirCoding{{System: fhirLOINC, Code: c.LOINC, Display: c.Display}}, "text": c.Display},
			"subject": pref, "performer": []fhirRef{pref}, "effectiveDateTime": fhirTime(c.Effective), "issued": fhirTime(o.Recorded),
			"valueQuantity": map[string]any{"value": c.Value, "unit": c.Unit, "system": "http://unitsofmeasure.org", "code": c.Unit}})
		detail := "Recorded " + sumTime(o.Recorded)
		if o.Source != "" {
			if app, err := b.s.db.FindSMARTClient(ctx, o.Source); err == nil && app.PracticeID == b.row.PracticeID {
				detail += " through " + app.Name
			}
		}
		b.sum.Readings = append(b.sum.Readings, summaryLine{When: sumTime(c.Effective),
			What: c.Display + ": " + strconv.FormatFloat(c.Value, 'f', -1, 64) + " " + c.Unit, Detail: detail})
	}
	return nil
}

// VitalView is a vital sign a patient recorded, opened for a reader
// policy allowed.
type VitalView struct {
	ID        string
	Name      string // the LOINC code's name: "Systolic blood pressure"
	Value     string // as measured, with no trailing zeros
	Unit      string // UCUM: "mm[Hg]"
	Effective time.Time
	Recorded  time.Time
}

// PatientVitals returns the vital signs a patient recorded from her apps
// and devices, newest first, once the read is decided as her results'
// (LabRead) and audited: what her chart shows her and her clinicians.
func (s *Service) PatientVitals(ctx context.Context, patientID string) ([]VitalView, error) {
	ctx, row, _, _, _, err := s.gatePatientKeys(ctx, policy.LabRead, policy.KindLab, patientID, patientID)
	if err != nil {
		return nil, err
	}
	obs, err := s.db.PatientObservations(ctx, row.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load recorded observations")
	}
	if ctx, err = s.keys.Checked(ctx); err != nil {
		return nil, err
	}
	out := make([]VitalView, 0, len(obs))
	for i := len(obs) - 1; i >= 0; i-- {
		o := obs[i]
		if o.PracticeID != row.PracticeID || o.PatientID != row.ID {
			continue
		}
		var c haven.ObservationContent
		if err := s.openJSON(ctx, patientObservationAD(o), o.Content, &c); err != nil {
			return nil, err
		}
		out = append(out, VitalView{ID: o.ID, Name: c.Display, Value: strconv.FormatFloat(c.Value, 'f', -1, 64), Unit: c.Unit,
			Effective: c.Effective, Recorded: o.Recorded})
	}
	return out, nil
}
