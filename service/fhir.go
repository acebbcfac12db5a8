package service

import (
	"context"
	"encoding/json"
	"strings"

	"haven"
	"haven/audit"
	"haven/policy"
)

// The FHIR API's reads (web/fhir.go serves them at /fhir/R4): a type of
// resource from one patient's record, mapped by the record export's own
// builder (one mapping of the record to FHIR), references relative. Each
// read passes the gate as the pages' reads of the same records do: the
// type's own action on that patient, decided and audited before anything
// is opened, so a caller reads through FHIR exactly what her role reads
// on the pages, and an id of another patient or practice is refused as
// one that exists nowhere.

// fhirGate is an action a type's read needs, on the patient's record.
type fhirGate struct {
	act  policy.Action
	kind policy.Kind
}

// fhirGates is what each served type is decided as: every gate must
// allow (a DocumentReference is a note or a file).
var fhirGates = map[string][]fhirGate{
	"Patient":           {{policy.ChartRead, policy.KindChart}},
	"Observation":       {{policy.LabRead, policy.KindLab}},
	"DiagnosticReport":  {{policy.LabRead, policy.KindLab}},
	"MedicationRequest": {{policy.PrescriptionRead, policy.KindPrescription}},
	"Appointment":       {{policy.VisitRead, policy.KindVisit}},
	"Communication":     {{policy.MessageRead, policy.KindMessage}},
	"DocumentReference": {{policy.NoteRead, policy.KindNote}, {policy.FileRead, policy.KindFile}},
	// Lab orders, as the patient's lab page reads them.
	"ServiceRequest": {{policy.LabRead, policy.KindLab}},
	// The allergy list is the chart's, as Allergies reads it.
	"AllergyIntolerance": {{policy.ChartRead, policy.KindChart}},
	// A visit once it began.
	"Encounter": {{policy.VisitRead, policy.KindVisit}},
}

// FHIRServes reports whether FHIRResources serves typ.
func FHIRServes(typ string) bool { _, ok := fhirGates[typ]; return ok || typ == "Practitioner" }

// FHIRPractitioners returns the clinicians of the caller's practice as
// Practitioners: the roster the booking page lists (Clinicians), their
// names and nothing else (no PHI; the listing is not audited, as the
// roster's is not). The clinician is the role of every one of them.
func (s *Service) FHIRPractitioners(ctx context.Context) ([]map[string]any, error) {
	cls, err := s.Clinicians(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, len(cls))
	for _, c := range cls {
		out = append(out, map[string]any{"resourceType": "Practitioner", "id": fhirID(c.UserID), "active": true,
			"identifier": []any{map[string]any{"system": fhirHavenUser, "value": c.UserID}},
			"name":       []any{map[string]any{"text": c.Name}}})
	}
	return out, nil
}

// FHIRResources returns the resources of type typ in patientID's record,
// oldest first, as JSON decodes them, once the read is decided and
// recorded. What the export leaves out of a patient's record (drafts,
// unreleased results, unsigned notes) is left out here too.
//
// Practitioners are the practice's, not a patient's: patientID is
// ignored for them (see FHIRPractitioners).
func (s *Service) FHIRResources(ctx context.Context, typ, patientID string) ([]map[string]any, error) {
	if typ == "Practitioner" {
		return s.FHIRPractitioners(ctx)
	}
	return s.fhirResources(ctx, typ, patientID, patientID)
}

// FHIRResource returns the resource of type typ with id, once its
// patient's read is decided and recorded. An id that names nothing, names
// another practice's record, or one the caller may not read is refused as
// not found, the refusal recorded with the id sent.
func (s *Service) FHIRResource(ctx context.Context, typ, id string) (map[string]any, error) {
	if typ == "Practitioner" {
		all, err := s.FHIRPractitioners(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range all {
			if r["id"] == id {
				return r, nil
			}
		}
		return nil, errNotFound
	}
	gates, ok := fhirGates[typ]
	if !ok {
		return nil, haven.Errorf(haven.EINVALID, "resource type not supported")
	}
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	patientID := id
	if typ != "Patient" {
		if !haven.PlausibleID(id) {
			return nil, s.refuseUnknown(ctx, a, gates[0].act, gates[0].kind, id)
		}
		if patientID, err = s.fhirOwner(ctx, a, typ, id); haven.ErrorCode(err) == haven.ENOTFOUND {
			return nil, s.refuseUnknown(ctx, a, gates[0].act, gates[0].kind, id)
		} else if err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the record")
		}
	}
	all, err := s.fhirResources(ctx, typ, patientID, id)
	if err != nil {
		return nil, err
	}
	for _, r := range all {
		if r["id"] == id {
			return r, nil
		}
	}
	return nil, errNotFound
}

// FHIRSendMessage is the FHIR API's create of a Communication: the
// signed-in patient's message to her care team, a new conversation
// through StartThread (the thread pages' own: decided, sealed, audited,
// the care team told), returned as FHIRResource reads it back. Only a
// patient creates one, and only in her own record: another patient's id
// is refused by the gate as one that exists nowhere, and recorded.
func (s *Service) FHIRSendMessage(ctx context.Context, patientID, subject, body string) (map[string]any, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if a.Role != haven.RolePatient {
		// Refused before any record is looked up, and recorded: the id
		// sent, never whether it names a patient.
		ev := audit.ForActor(a, string(policy.MessageSend))
		ev.ResourceKind, ev.Decision, ev.Reason = string(policy.KindMessage), haven.DecisionDeny, "fhir_create_patient_only"
		if haven.PlausibleID(patientID) {
			ev.ResourceID = patientID
		}
		if _, err := s.record(ctx, ev); err != nil {
			return nil, err
		}
		return nil, haven.Errorf(haven.EFORBIDDEN, "only a patient creates a Communication here, a message to her care team; the workforce writes on the message pages")
	}
	if subject == "" {
		subject = "A message from an app"
	}
	tv, err := s.StartThread(ctx, NewThread{Audience: haven.AudienceCareTeam, PatientID: patientID, Subject: subject, Body: body})
	if err != nil {
		return nil, err
	}
	msgs, err := s.db.ThreadMessages(ctx, tv.ID)
	if err != nil || len(msgs) == 0 {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "the message is sent but cannot be read back")
	}
	return s.FHIRResource(ctx, "Communication", msgs[0].ID)
}

// fhirOwner returns the patient of the record a FHIR id names (one
// primary-key read), or ENOTFOUND.
//
// A result not yet released is unknown to a patient, as LabResult answers
// her.
func (s *Service) fhirOwner(ctx context.Context, a haven.Actor, typ, id string) (string, error) {
	switch typ {
	case "Observation": // [result id]-[n], or a vital sign she recorded: [id]
		i := strings.LastIndexByte(id, '-')
		if i < 0 {
			return s.db.PatientObservationOwner(ctx, id)
		}
		if i == 0 {
			return "", errNotFound
		}
		return s.fhirOwner(ctx, a, "DiagnosticReport", id[:i])
	case "DiagnosticReport":
		r, err := s.db.FindLabResult(ctx, id)
		if err != nil {
			return "", err
		}
		if a.Role == haven.RolePatient && r.Status != haven.ResultReleased {
			return "", errNotFound
		}
		return r.PatientID, nil
	case "MedicationRequest":
		p, err := s.db.FindPrescription(ctx, id)
		if err != nil {
			return "", err
		}
		return p.PatientID, nil
	case "ServiceRequest": // [order id]-[LOINC code], which has a '-' of its own
		i := strings.IndexByte(id, '-')
		if i <= 0 {
			return "", errNotFound
		}
		o, err := s.db.FindLabOrder(ctx, id[:i])
		if err != nil {
			return "", err
		}
		return o.PatientID, nil
	case "AllergyIntolerance":
		return s.db.AllergyOwner(ctx, id)
	case "Appointment", "Encounter":
		v, err := s.db.FindVisit(ctx, id)
		if err != nil {
			return "", err
		}
		return v.PatientID, nil
	case "Communication":
		_, p, err := s.db.MessageOwner(ctx, id)
		return p, err
	case "DocumentReference": // a note or a file
		if n, err := s.db.FindNote(ctx, id); err == nil {
			return n.PatientID, nil
		} else if haven.ErrorCode(err) != haven.ENOTFOUND {
			return "", err
		}
		f, err := s.db.FindFile(ctx, id)
		if err != nil {
			return "", err
		}
		return f.PatientID, nil
	}
	return "", errNotFound
}

// fhirResources is FHIRResources for a request that named sentID.
func (s *Service) fhirResources(ctx context.Context, typ, patientID, sentID string) ([]map[string]any, error) {
	gates, ok := fhirGates[typ]
	if !ok {
		return nil, haven.Errorf(haven.EINVALID, "resource type not supported")
	}
	if only, ok := PatientContext(ctx); ok && patientID != only {
		a, err := haven.SignedIn(ctx)
		if err != nil {
			return nil, err
		}
		return nil, s.refuseUnknown(ctx, a, gates[0].act, gates[0].kind, sentID)
	}
	var row *haven.Patient
	for _, g := range gates {
		var err error
		// The gate's context carries the key state read with its facts.
		if ctx, row, _, _, _, err = s.gatePatientKeys(ctx, g.act, g.kind, patientID, sentID); err != nil {
			return nil, err
		}
	}
	ctx, err := s.keys.Checked(ctx)
	if err != nil {
		return nil, err
	}
	b := &recordBuilder{s: s, row: row, refs: map[string]string{}, relative: true}
	pref := fhirRef{Reference: "Patient/" + row.ID}
	b.refs["Patient/"+row.ID] = pref.Reference
	switch typ {
	case "Patient":
		_, err = b.addPatient(ctx)
	case "Observation":
		if err = b.addLabs(ctx, pref); err == nil {
			err = b.addVitals(ctx, pref)
		}
	case "DiagnosticReport", "ServiceRequest":
		err = b.addLabs(ctx, pref)
	case "AllergyIntolerance":
		err = b.addAllergies(ctx, pref)
	case "MedicationRequest":
		err = b.addPrescriptions(ctx, pref)
	case "Appointment", "Encounter":
		err = b.addVisits(ctx, pref)
	case "Communication":
		err = b.addMessages(ctx, pref)
	case "DocumentReference":
		if err = b.addFiles(ctx, pref); err == nil {
			err = b.addNotes(ctx, pref)
		}
	}
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for _, e := range b.entries {
		if res, ok := e.Resource.(map[string]any); ok && res["resourceType"] == typ {
			// As JSON decodes it, so that a search reads every element alike.
			b, err := json.Marshal(res)
			if err != nil {
				return nil, haven.Wrap(haven.EINTERNAL, err, "cannot write the resource")
			}
			var doc map[string]any
			if err := json.Unmarshal(b, &doc); err != nil {
				return nil, haven.Wrap(haven.EINTERNAL, err, "cannot write the resource")
			}
			out = append(out, doc)
		}
	}
	return out, nil
}

// Bundle is the export's FHIR Bundle (record.json in the zip).
func (x *Export) Bundle() []byte { return x.bundle }

type patientContextKey struct{}

// WithPatientContext narrows the FHIR reads made with ctx to one patient's
// record: a SMART token launched for a patient reaches no other, even when
// its user (a clinician) could. Another patient's record is refused as one
// that exists nowhere, and the refusal recorded, before anything is read.
func WithPatientContext(ctx context.Context, patientID string) context.Context {
	return context.WithValue(ctx, patientContextKey{}, patientID)
}

// PatientContext returns the patient ctx is narrowed to, if any.
func PatientContext(ctx context.Context) (string, bool) {
	p, ok := ctx.Value(patientContextKey{}).(string)
	return p, ok && p != ""
}
