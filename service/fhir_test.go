package service_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/fhir"
	"haven/hl7"
	"haven/service"
)

// TestFHIRResourcesAreTheExportsMappingValidAndGated: the FHIR API's
// reads of a patient's record, type by type, are the export's resources
// (the same ids), each one the FHIR R4 schema validator accepts, with
// references relative (Patient/[id]), never a urn:uuid; a searchset
// Bundle, the CapabilityStatement and an OperationOutcome are valid too.
// Each read is one audited decision of the type's own action; another
// patient's record and an unknown id are refused alike (not found),
// audited, and the other patient's data is in no answer.
func TestFHIRResourcesAreTheExportsMappingValidAndGated(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		validate := fhirValidator(t)
		sc := newLabScene(t, e, "Fhirville", "FHR1")
		p := sc.p
		pa, pb := p.patientA, p.patientB
		first, mrn, dob := sc.sentOrder(t)
		if a := ackOf(t, e.svc.ReceiveHL7(context.Background(), sc.lab.ID, oru("FHR-1", mrn, dob, first.Number, "412", "HH", "NOTEFHR1"))); a.Code != hl7.Accept {
			t.Fatalf("result: %+v", a)
		}
		queue, err := e.svc.ResultsToReview(e.as(p.clinician))
		if err != nil || len(queue) != 1 {
			t.Fatalf("review queue: %d, %v", len(queue), err)
		}
		if _, err := e.svc.ReviewResult(e.as(p.clinician), queue[0].ID, "REVIEWFHR1", true); err != nil {
			t.Fatal(err)
		}
		e.signedNote(p)
		fileID := e.upload(pa, "scan-FHR1.pdf")
		if _, err := e.svc.StartThread(e.as(pa), service.NewThread{Audience: haven.AudienceCareTeam, Subject: "Question FHR1",
			Body: "MessageFHR1", FileIDs: []string{fileID}}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.AddAllergy(e.as(p.clinician), pa.UserID, "Penicillin", "Rash"); err != nil {
			t.Fatal(err)
		}
		e.upload(pb, "other-OTHERFHR.pdf")
		e.write(pb, haven.AudienceCareTeam, "Subject OTHERFHR", "Body OTHERFHR")

		// The export's ids, by type, to hold the API's against.
		z := exportZip(t, e.svc, e.as(pa), pa.UserID)
		exported := checkRecordBundle(t, validate, z["record.json"])

		want := map[string]int{"Patient": 1, "Observation": 1, "DiagnosticReport": 1, "Appointment": 1, "Communication": 1, "DocumentReference": 2,
			"ServiceRequest": len(first.Tests), "AllergyIntolerance": 1, "Encounter": 1}
		for _, typ := range fhir.TypeNames() {
			if typ == "Practitioner" {
				continue // the practice's, below
			}
			before := len(e.events(p.id))
			res, err := e.svc.FHIRResources(e.as(pa), typ, pa.UserID)
			if err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			evs := e.events(p.id)
			gates := 1
			if typ == "DocumentReference" {
				gates = 2 // a note and a file
			}
			if len(evs)-before != gates || evs[0].Decision != haven.DecisionAllow || evs[0].PatientID != pa.UserID {
				t.Errorf("%s: %d new events, newest %+v; want %d allowed", typ, len(evs)-before, evs[0], gates)
			}
			if len(res) != want[typ] {
				t.Errorf("%d %s, want %d", len(res), typ, want[typ])
			}
			ids := map[any]bool{}
			for _, x := range exported[typ] {
				ids[x["id"]] = true
			}
			var entries []fhir.Entry
			for _, r := range res {
				b, _ := json.Marshal(r)
				if v := validate(b); v != "ok" {
					t.Errorf("%s: %s\n%s", typ, v, b)
				}
				if !ids[r["id"]] {
					t.Errorf("%s/%v is not in the export", typ, r["id"])
				}
				if strings.Contains(string(b), "urn:uuid:") || strings.Contains(string(b), "OTHERFHR") {
					t.Errorf("%s: %s", typ, b)
				}
				if typ == "Communication" && !strings.Contains(string(b), `"DocumentReference/`+fileID+`"`) {
					t.Errorf("the message does not refer to its file: %s", b)
				}
				if typ != "Patient" && !strings.Contains(string(b), `"Patient/`+pa.UserID+`"`) {
					t.Errorf("%s does not refer to Patient/%s: %s", typ, pa.UserID, b)
				}
				entries = append(entries, fhir.Entry{Type: typ, ID: r["id"].(string), JSON: b})
				// Read by its id: the same resource; refused to the other
				// patient as an unknown id is, and recorded with the id sent.
				one, err := e.svc.FHIRResource(e.as(pa), typ, r["id"].(string))
				if err != nil || one["id"] != r["id"] {
					t.Errorf("read %s/%v: %v, %v", typ, r["id"], one["id"], err)
				}
				before := len(e.events(p.id))
				if _, err := e.svc.FHIRResource(e.as(pb), typ, r["id"].(string)); haven.ErrorCode(err) != haven.ENOTFOUND {
					t.Errorf("the other patient reads %s/%v: %v", typ, r["id"], err)
				}
				if evs := e.events(p.id); len(evs) != before+1 || evs[0].Decision != haven.DecisionDeny || evs[0].PatientID != pa.UserID {
					t.Errorf("the other patient's read of %s/%v is recorded as %+v", typ, r["id"], evs[0])
				}
				if _, err := e.svc.FHIRResource(e.as(pa), typ, haven.NewID()); haven.ErrorCode(err) != haven.ENOTFOUND {
					t.Errorf("an unknown %s: %v", typ, err)
				}
			}
			srch, err := fhir.ParseSearch(typ, url.Values{"_count": {"1"}})
			if err != nil {
				t.Fatal(err)
			}
			from, to := srch.Page(len(entries))
			bundle, err := fhir.SearchSet("https://haven.example/fhir/R4", srch, len(entries), from, entries[from:to])
			if err != nil {
				t.Fatal(err)
			}
			if v := validate(bundle); v != "ok" {
				t.Errorf("%s searchset: %s\n%s", typ, v, bundle)
			}
		}

		// Another patient's record, an unknown id and a malformed one:
		// the same refusal, each audited.
		for _, id := range []string{pb.UserID, haven.NewID(), "NOT-AN-ID"} {
			before := len(e.events(p.id))
			if _, err := e.svc.FHIRResources(e.as(pa), "Observation", id); haven.ErrorCode(err) != haven.ENOTFOUND {
				t.Errorf("Observation of %q: %v, want not found", id, err)
			}
			if evs := e.events(p.id); len(evs) != before+1 || evs[0].Decision != haven.DecisionDeny {
				t.Errorf("the refusal of %q is not audited", id)
			}
		}
		// The front desk reads the chart, not the results.
		if _, err := e.svc.FHIRResources(e.as(p.staff), "Patient", pa.UserID); err != nil {
			t.Errorf("the front desk reads the Patient: %v", err)
		}
		if _, err := e.svc.FHIRResources(e.as(p.staff), "Observation", pa.UserID); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Errorf("the front desk reads results: %v", err)
		}

		// A patient's app writes to her care team: the resource read back
		// is valid and hers; a clinician is refused, and recorded; her
		// message into the other patient's record is refused as unknown.
		sent, err := e.svc.FHIRSendMessage(e.as(pa), "", "From the app", "CREATEDFHR1")
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := json.Marshal(sent); validate(b) != "ok" || !strings.Contains(string(b), "CREATEDFHR1") || !strings.Contains(string(b), `"Patient/`+pa.UserID+`"`) {
			t.Errorf("the created Communication: %s: %s", validate(b), b)
		}
		before := len(e.events(p.id))
		if _, err := e.svc.FHIRSendMessage(e.as(p.clinician), pa.UserID, "", "x"); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Errorf("a clinician creates a Communication: %v", err)
		}
		if evs := e.events(p.id); len(evs) != before+1 || evs[0].Decision != haven.DecisionDeny {
			t.Error("the clinician's create is not recorded as refused")
		}
		if _, err := e.svc.FHIRSendMessage(e.as(pa), pb.UserID, "", "INTOOTHER"); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Errorf("her message into the other patient's record: %v", err)
		}

		// Practitioners: the practice's two clinicians, by name alone, to
		// each of its patients and its workforce; valid; another practice's
		// clinician is none of them, and a patient's id is no Practitioner.
		other := e.seed("Otherfhir", "OTHPRAC")
		for _, who := range []haven.Actor{pa, pb, p.staff} {
			docs, err := e.svc.FHIRResources(e.as(who), "Practitioner", "")
			if err != nil || len(docs) != 2 {
				t.Fatalf("Practitioners to %s: %d, %v", who.Role, len(docs), err)
			}
			for _, d := range docs {
				b, _ := json.Marshal(d)
				if v := validate(b); v != "ok" {
					t.Errorf("Practitioner: %s\n%s", v, b)
				}
				if d["id"] != p.clinician.UserID && d["id"] != p.otherClinician.UserID {
					t.Errorf("Practitioner %v is not a clinician of the practice", d["id"])
				}
				for k := range d {
					if k != "resourceType" && k != "id" && k != "active" && k != "identifier" && k != "name" {
						t.Errorf("Practitioner holds %s: %s", k, b)
					}
				}
			}
		}
		if d, err := e.svc.FHIRResource(e.as(pa), "Practitioner", p.clinician.UserID); err != nil || d["id"] != p.clinician.UserID {
			t.Errorf("read her clinician: %v, %v", d, err)
		}
		for _, id := range []string{other.clinician.UserID, pa.UserID, p.staff.UserID, haven.NewID()} {
			if _, err := e.svc.FHIRResource(e.as(pa), "Practitioner", id); haven.ErrorCode(err) != haven.ENOTFOUND {
				t.Errorf("Practitioner/%s: %v, want not found", id, err)
			}
		}

		cs, err := fhir.Capability("https://haven.example/fhir/R4", "Haven", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		// The validator's schema is R4's first publication, whose version
		// list stops at 4.0.0; the statement says 4.0.1 (R4's technical
		// correction, what clients expect), and is checked as 4.0.0.
		if !strings.Contains(string(cs), `"fhirVersion":"4.0.1"`) {
			t.Errorf("the statement does not say R4: %s", cs)
		}
		if v := validate([]byte(strings.Replace(string(cs), `"fhirVersion":"4.0.1"`, `"fhirVersion":"4.0.0"`, 1))); v != "ok" {
			t.Errorf("CapabilityStatement: %s\n%s", v, cs)
		}
		if v := validate(fhir.Outcome(fhir.IssueNotFound, "not found")); v != "ok" {
			t.Errorf("OperationOutcome: %s", v)
		}
	})
}
