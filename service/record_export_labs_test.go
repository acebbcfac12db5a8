package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/hl7"
	"haven/service"
)

// TestPatientExportsHerLabOrdersAndReleasedResults: a patient with two
// glucose orders, one result released by her clinician and one still
// waiting for review, downloads her record. The Bundle (valid FHIR R4,
// every reference resolvable) holds both orders as ServiceRequests coded
// in LOINC, the released result as a DiagnosticReport based on its order
// and holding its Observation (the value as a quantity, the reference
// range, the critical flag as an interpretation); the result waiting for
// review is in neither the Bundle nor the summary, and its order does not
// say it is complete.
func TestPatientExportsHerLabOrdersAndReleasedResults(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		validate := fhirValidator(t)
		sc := newLabScene(t, e, "Exportlab", "EXL1")
		pa := sc.p.patientA
		first, mrn, dob := sc.sentOrder(t)
		if a := ackOf(t, e.svc.ReceiveHL7(context.Background(), sc.lab.ID, oru("EXL-1", mrn, dob, first.Number, "412", "HH", "RELEASEDNOTE hemolysed"))); a.Code != hl7.Accept {
			t.Fatalf("first result: %+v", a)
		}
		queue, err := e.svc.ResultsToReview(e.as(sc.p.clinician))
		if err != nil || len(queue) != 1 {
			t.Fatalf("review queue: %d, %v", len(queue), err)
		}
		if _, err := e.svc.ReviewResult(e.as(sc.p.clinician), queue[0].ID, "REVIEWEXL1 please repeat fasting", true); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Hour)
		second, _, _ := sc.sentOrder(t)
		if a := ackOf(t, e.svc.ReceiveHL7(context.Background(), sc.lab.ID, oru("EXL-2", mrn, dob, second.Number, "31", "LL", "UNREVIEWEDEXL1"))); a.Code != hl7.Accept {
			t.Fatalf("second result: %+v", a)
		}

		z := exportZip(t, e.svc, e.as(pa), pa.UserID)
		doc := z["record.json"]
		res := checkRecordBundle(t, validate, doc)
		for typ, n := range map[string]int{"ServiceRequest": 2, "DiagnosticReport": 1, "Observation": 1} {
			if len(res[typ]) != n {
				t.Fatalf("%d %s, want %d", len(res[typ]), typ, n)
			}
		}
		// Which entry is which, by fullUrl.
		var bundle struct {
			Entry []struct {
				FullURL  string         `json:"fullUrl"`
				Resource map[string]any `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(doc, &bundle); err != nil {
			t.Fatal(err)
		}
		byURL := map[string]map[string]any{}
		for _, en := range bundle.Entry {
			byURL[en.FullURL] = en.Resource
		}
		status := map[string]string{}
		for _, sr := range res["ServiceRequest"] {
			code := sr["code"].(map[string]any)["coding"].([]any)[0].(map[string]any)
			if code["system"] != "http://loinc.org" || code["code"] != "2345-7" || sr["intent"] != "order" {
				t.Errorf("ServiceRequest %v", sr)
			}
			status[sr["requisition"].(map[string]any)["value"].(string)] = sr["status"].(string)
		}
		if status[first.Number] != "completed" || status[second.Number] != "active" {
			t.Errorf("order statuses %v: the first is resulted and released, the second's result waits for review", status)
		}

		dr := res["DiagnosticReport"][0]
		based := byURL[dr["basedOn"].([]any)[0].(map[string]any)["reference"].(string)]
		if based["resourceType"] != "ServiceRequest" || based["requisition"].(map[string]any)["value"] != first.Number {
			t.Errorf("the report is based on %v, want the first order", based)
		}
		results := dr["result"].([]any)
		if len(results) != 1 {
			t.Fatalf("the report holds %d results", len(results))
		}
		obs := byURL[results[0].(map[string]any)["reference"].(string)]
		if obs["resourceType"] != "Observation" {
			t.Fatalf("the report's result is %v", obs)
		}
		q := obs["valueQuantity"].(map[string]any)
		rr := obs["referenceRange"].([]any)[0].(map[string]any)
		interp := obs["interpretation"].([]any)[0].(map[string]any)["coding"].([]any)[0].(map[string]any)
		if q["value"] != 412.0 || q["unit"] != "mg/dL" || rr["text"] != "70-99" || rr["low"].(map[string]any)["value"] != 70.0 ||
			rr["high"].(map[string]any)["value"] != 99.0 || interp["code"] != "HH" {
			t.Errorf("the Observation %v", obs)
		}
		if !strings.Contains(dr["conclusion"].(string), "REVIEWEXL1") {
			t.Errorf("the report's conclusion %v lacks the clinician's comment", dr["conclusion"])
		}

		for _, want := range []string{"Glucose", "412", "70-99", "RELEASEDNOTE", "REVIEWEXL1", "Harbor Lab", "critical"} {
			if !bytes.Contains(z["summary.html"], []byte(want)) {
				t.Errorf("the summary lacks %q", want)
			}
		}
		for name, b := range z {
			for _, m := range []string{"UNREVIEWEDEXL1", `"31"`, ">31 mg/dL", ": 31 "} {
				if bytes.Contains(b, []byte(m)) {
					t.Errorf("%s holds the unreviewed result's %q", name, m)
				}
			}
		}
	})
}

// TestDisclosuresListLabOrdersSentToTheLab: a lab order is a disclosure
// once the lab has it, listed once however many tries it took; an order
// still waiting for a lab that cannot be reached is not; the other
// patient's accounting holds none of it.
func TestDisclosuresListLabOrdersSentToTheLab(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		sc := newLabScene(t, e, "Disclolab", "DSL1")
		p := sc.p
		disclosures := func(who haven.Actor) []haven.Disclosure {
			t.Helper()
			ds, err := e.svc.Disclosures(e.as(who), who.UserID)
			if err != nil {
				t.Fatal(err)
			}
			return ds
		}
		v := sc.order(t, "2345-7", "4548-4")
		if ds := disclosures(p.patientA); len(ds) != 0 {
			t.Fatalf("a queued order is disclosed: %+v", ds)
		}
		// Tried, but the lab never had it: not disclosed.
		bare := service.NewLabSender(e.svc, service.LabSenderConfig{TLS: sc.server.noCert, Retry: time.Millisecond, MaxRetry: time.Millisecond})
		e.clock.Advance(time.Second)
		bare.SendDue(context.Background())
		if ds := disclosures(p.patientA); len(ds) != 0 {
			t.Fatalf("an order the lab never received is disclosed: %+v", ds)
		}
		// The lab refuses it once, then takes it: one disclosure.
		sc.server.answer(hl7.Reject, hl7.CodeInternal)
		sc.deliver(t)
		sc.server.answer(hl7.Accept, 0)
		e.clock.Advance(time.Minute)
		sc.deliver(t)
		if after := sc.status(t, v.ID); after.Status != haven.LabSent {
			t.Fatalf("the order is %s", after.Status)
		}
		ds := disclosures(p.patientA)
		if len(ds) != 1 {
			t.Fatalf("%d disclosures, want 1: %+v", len(ds), ds)
		}
		d := ds[0]
		if d.Recipient != "Harbor Lab" || d.RecipientKind != "lab" || !strings.Contains(d.What, "Glucose") ||
			!strings.Contains(d.What, "Hemoglobin A1c") || !strings.HasPrefix(d.Why, "Treatment") || d.Time.IsZero() || d.Seq == 0 {
			t.Errorf("disclosure %+v", d)
		}
		tries := 0
		for _, ev := range e.events(p.id) {
			if ev.Action == service.ActLabTransmit && ev.ResourceID == v.ID {
				tries++
			}
		}
		if tries != 3 {
			t.Fatalf("the order was tried %d times, want 3", tries)
		}
		if ds := disclosures(p.patientB); len(ds) != 0 {
			t.Errorf("the other patient's accounting: %+v", ds)
		}
	})
}
