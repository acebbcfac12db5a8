package service_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"haven"
	"haven/service"
)

// fhirValidator is the FHIR R4 JSON schema validator we did not write
// (node, installed by .ci/run) behind a function: "ok", or its errors.
func fhirValidator(t testing.TB) func(doc []byte) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join("testdata", "node", "node_modules", "@asymmetrik", "fhir-json-schema-validator")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the FHIR validator is not installed (%v): .ci/run installs it", err)
		}
		t.Skipf("the FHIR validator is not installed: npm install --no-save --prefix service/testdata/node @asymmetrik/fhir-json-schema-validator@0.9.8")
	}
	cmd := exec.Command("node", filepath.Join("testdata", "fhir_validate.js"))
	in, _ := cmd.StdinPipe()
	outPipe, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("node: %v", err)
	}
	t.Cleanup(func() { in.Close(); cmd.Wait() })
	out := bufio.NewScanner(outPipe)
	out.Buffer(make([]byte, 1<<20), 1<<26)
	var mu sync.Mutex
	validate := func(doc []byte) string {
		var compact bytes.Buffer
		if err := json.Compact(&compact, doc); err != nil {
			return "not JSON: " + err.Error()
		}
		mu.Lock()
		defer mu.Unlock()
		compact.WriteByte('\n')
		in.Write(compact.Bytes())
		if !out.Scan() {
			t.Fatalf("the validator stopped: %v", out.Err())
		}
		return out.Text()
	}
	// A validator that accepts anything would prove nothing.
	if validate([]byte(`{"resourceType":"Appointment","status":"maybe","participant":[]}`)) == "ok" {
		t.Fatal("the validator accepts an invalid Appointment")
	}
	return validate
}

// CheckRecordBundle checks a record export's Bundle as an outside system
// would: the Bundle and each of its resources valid FHIR R4 by the
// schema validator, every fullUrl unique, and every reference anywhere
// in it resolvable to an entry of the Bundle. It returns the resources
// by type.
func checkRecordBundle(t *testing.T, validate func([]byte) string, doc []byte) map[string][]map[string]any {
	t.Helper()
	if v := validate(doc); v != "ok" {
		t.Fatalf("the Bundle is not valid FHIR R4: %s", v)
	}
	var b struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Entry        []struct {
			FullURL  string          `json:"fullUrl"`
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(doc, &b); err != nil || b.ResourceType != "Bundle" {
		t.Fatalf("not a Bundle: %v", err)
	}
	urls := map[string]bool{}
	byType := map[string][]map[string]any{}
	for _, e := range b.Entry {
		if e.FullURL == "" || urls[e.FullURL] {
			t.Fatalf("an entry's fullUrl is empty or repeated: %q", e.FullURL)
		}
		urls[e.FullURL] = true
		if v := validate(e.Resource); v != "ok" {
			t.Errorf("a resource is not valid FHIR R4: %s\n%s", v, e.Resource)
		}
		var r map[string]any
		json.Unmarshal(e.Resource, &r)
		byType[r["resourceType"].(string)] = append(byType[r["resourceType"].(string)], r)
	}
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, y := range x {
				if s, ok := y.(string); ok && k == "reference" {
					refs = append(refs, s)
				}
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	var whole any
	json.Unmarshal(doc, &whole)
	walk(whole)
	if len(refs) == 0 {
		t.Fatal("the Bundle holds no reference: the check would prove nothing")
	}
	for _, r := range refs {
		if !urls[r] {
			t.Errorf("reference %q resolves to no entry of the Bundle", r)
		}
	}
	return byType
}

// exportZip runs a whole export as ctx's actor and returns the zip's
// entries.
func exportZip(t *testing.T, svc *service.Service, ctx context.Context, patientID string) map[string][]byte {
	t.Helper()
	x, err := svc.PrepareExport(ctx, patientID)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	return zipOf(t, ctx, x)
}

// zipOf writes x and returns the zip's entries.
func zipOf(t *testing.T, ctx context.Context, x *service.Export) map[string][]byte {
	t.Helper()
	var buf bytes.Buffer
	var last int64
	if err := x.WriteZip(ctx, &buf, func(n int64) { last = n }); err != nil {
		t.Fatal(err)
	}
	if last != int64(buf.Len()) {
		t.Fatalf("progress said %d bytes of %d", last, buf.Len())
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	return out
}

// TestPatientExportsHerWholeRecordAsValidFHIR: a patient with a signed
// note, messages with an attached file, a prescription delivered to a
// pharmacy, an allergy and a blood pressure she recorded from a device
// downloads one zip: a Bundle the FHIR R4 schema
// validator accepts, resource by resource, with every reference
// resolvable inside it; the readable summary, which lists her reading;
// her files, byte for byte.
// It is one audit event. Nothing of the other patient is in it.
func TestPatientExportsHerWholeRecordAsValidFHIR(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		validate := fhirValidator(t)
		sc := newRxScene(t, e, "Exportville", "EXM1")
		p := sc.p
		pa, pb := p.patientA, p.patientB
		v := e.signedNote(p)

		fileID := e.upload(pa, "scan-EXM1.pdf")
		tv, err := e.svc.StartThread(e.as(pa), service.NewThread{Audience: haven.AudienceCareTeam, Subject: "Rash question EXM1",
			Body: "It itches MessageEXM1", FileIDs: []string{fileID}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Reply(e.as(p.clinician), tv.ID, "Reply from the doctor ReplyEXM1", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.AddAllergy(e.as(p.clinician), pa.UserID, "Penicillin EXM1", "hives"); err != nil {
			t.Fatal(err)
		}
		rx := sc.draft(t, "29046", "Take one tablet every morning DirectionsEXM1")
		sc.signFresh(t, rx.ID, true)
		sc.deliver(t)

		// A reading she recorded from a device (the FHIR API's create).
		if _, err := e.svc.FHIRRecordObservation(e.as(pa), service.NewVitalSign{PatientID: pa.UserID, Status: "final", LOINC: "8480-6",
			Display: "Systolic blood pressure", Value: 123.5, Unit: "mm[Hg]", Effective: e.clock.Now().Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}

		// The other patient's record, which must not travel.
		if _, err := e.svc.FHIRRecordObservation(e.as(pb), service.NewVitalSign{PatientID: pb.UserID, Status: "final", LOINC: "29463-7",
			Display: "Body weight", Value: 77.7, Unit: "kg", Effective: e.clock.Now().Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
		e.upload(pb, "other-OTHERB9.pdf")
		e.write(pb, haven.AudienceCareTeam, "Subject OTHERB9", "Body OTHERB9")

		before := len(e.events(p.id))
		z := exportZip(t, e.svc, e.as(pa), pa.UserID)
		evs := e.events(p.id)
		if len(evs)-before != 1 || evs[0].Action != "export.patient" || evs[0].PatientID != pa.UserID || evs[0].Decision != haven.DecisionAllow {
			t.Fatalf("the export is not one audit event: %d new, newest %+v", len(evs)-before, evs[0])
		}

		doc, ok := z["record.json"]
		if !ok || z["summary.html"] == nil {
			t.Fatalf("the zip holds %v", keys(z))
		}
		res := checkRecordBundle(t, validate, doc)
		for typ, n := range map[string]int{"Patient": 1, "Appointment": 1, "Encounter": 1, "Communication": 2, "DocumentReference": 2,
			"Provenance": 1, "MedicationRequest": 1, "AllergyIntolerance": 1, "Organization": 1, "Observation": 1} {
			if len(res[typ]) != n {
				t.Errorf("%d %s, want %d", len(res[typ]), typ, n)
			}
		}
		if got := res["Patient"][0]["id"]; got != pa.UserID {
			t.Errorf("the Patient is %v", got)
		}
		if got := res["Encounter"][0]["id"]; got != v.ID {
			t.Errorf("the Encounter is %v, want the visit %s", got, v.ID)
		}
		if got := res["Organization"][0]["name"]; got != "Harbor Pharmacy" {
			t.Errorf("the pharmacy is %v", got)
		}
		if !bytes.Contains(z["summary.html"], []byte("Systolic blood pressure: 123.5 mm[Hg]")) {
			t.Errorf("the summary does not list the reading she recorded:\n%s", z["summary.html"])
		}
		for _, want := range []string{"NOTEMARKS", "MessageEXM1", "ReplyEXM1", "Penicillin EXM1", "DirectionsEXM1", "NameEXM1A", "scan-EXM1.pdf"} {
			if !bytes.Contains(doc, []byte(want)) && !strings.Contains(decodedNotes(res), want) {
				t.Errorf("the Bundle lacks %q", want)
			}
			if !bytes.Contains(z["summary.html"], []byte(want)) {
				t.Errorf("the summary lacks %q", want)
			}
		}
		// The file is in the zip where its DocumentReference says.
		var url string
		for _, d := range res["DocumentReference"] {
			att := d["content"].([]any)[0].(map[string]any)["attachment"].(map[string]any)
			if u, ok := att["url"].(string); ok {
				url = u
			}
		}
		if want := "%PDF-1.4\n% some text scan-EXM1.pdf"; string(z[url]) != want {
			t.Fatalf("the file at %q holds %q", url, z[url])
		}

		for name, b := range z {
			for _, m := range []string{"OTHERB9", "NameEXM1B", "MRN-EXM1B", "555EXM1B", "Body weight", "77.7"} {
				if bytes.Contains(bytes.ToLower(b), bytes.ToLower([]byte(m))) {
					t.Errorf("%s holds the other patient's %q", name, m)
				}
			}
		}
	})
}

// decodedNotes is the text of the Bundle's notes, which travel base64.
func decodedNotes(res map[string][]map[string]any) string {
	var sb strings.Builder
	for _, d := range res["DocumentReference"] {
		att := d["content"].([]any)[0].(map[string]any)["attachment"].(map[string]any)
		if s, ok := att["data"].(string); ok {
			b, _ := jsonBase64(s)
			sb.Write(b)
		}
	}
	return sb.String()
}

func jsonBase64(s string) ([]byte, error) {
	var b []byte
	err := json.Unmarshal([]byte(`"`+s+`"`), &b)
	return b, err
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestExportRefusesAnotherPatientAnotherPracticeAndAStaleSession: the
// export of another patient's record, of another practice's patient, of
// an id that exists nowhere, all answer the same "not found"; a clinician
// cannot take a patient's export; a session not recently authenticated is
// asked to step up. Each refusal is audited.
func TestExportRefusesAnotherPatientAnotherPracticeAndAStaleSession(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("exportville", "EXR1")
		q := e.seed("elsewhere", "EXR2")
		pa := e.as(p.patientA)
		for name, id := range map[string]string{"another patient": p.patientB.UserID, "another practice": q.patientA.UserID,
			"nowhere": haven.NewID(), "not an id": "../../etc"} {
			if _, err := e.svc.PrepareExport(pa, id); haven.ErrorCode(err) != haven.ENOTFOUND {
				t.Errorf("%s: %v, want %s", name, err, haven.ENOTFOUND)
			}
		}
		if _, err := e.svc.PrepareExport(e.as(p.clinician), p.patientA.UserID); err == nil {
			t.Error("a clinician took a patient's export")
		}
		if _, err := e.svc.PrepareExport(e.stale(p.patientA), p.patientA.UserID); haven.ErrorCode(err) != haven.ESTEPUP {
			t.Errorf("a stale session: %v, want %s", err, haven.ESTEPUP)
		}
		denied := 0
		for _, ev := range e.events(p.id) {
			if ev.Action == "export.patient" && ev.Decision == haven.DecisionDeny {
				denied++
			}
		}
		if denied != 6 {
			t.Errorf("%d refused exports audited, want 6", denied)
		}
		if _, err := e.svc.PrepareExport(pa, p.patientA.UserID); err != nil {
			t.Fatalf("her own: %v", err)
		}
	})
}

// TestDisclosuresListWhatLeftForThePharmacy: a prescription sent to the
// pharmacy and its cancellation are two disclosures in the patient's
// accounting, each with the date, the pharmacy's name, what was sent and
// why; the other patient's accounting is empty; another patient's or
// another practice's id is not found, and the workforce cannot read it.
func TestDisclosuresListWhatLeftForThePharmacy(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		sc := newRxScene(t, e, "Disclosville", "DSM1")
		p := sc.p
		q := e.seed("elsewhere", "DSM2")
		rx := sc.draft(t, "29046", "Take one tablet every morning")
		sc.signFresh(t, rx.ID, false)
		sc.deliver(t)
		e.clock.Advance(time.Hour)
		if err := e.svc.CancelPrescription(e.as(p.clinician), rx.ID); err != nil {
			t.Fatal(err)
		}
		sc.deliver(t)

		ds, err := e.svc.Disclosures(e.as(p.patientA), p.patientA.UserID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 2 {
			t.Fatalf("%d disclosures, want 2: %+v", len(ds), ds)
		}
		for i, want := range []string{"cancellation of your prescription for", "Your prescription for"} {
			d := ds[i]
			if d.Recipient != "Harbor Pharmacy" || d.RecipientKind != "pharmacy" || !strings.Contains(d.What, want) ||
				!strings.Contains(strings.ToLower(d.What), "lisinopril") || !strings.HasPrefix(d.Why, "Treatment") || d.Time.IsZero() {
				t.Errorf("disclosure %d: %+v, want %q", i, d, want)
			}
		}
		if !ds[0].Time.After(ds[1].Time) {
			t.Errorf("not newest first: %v then %v", ds[0].Time, ds[1].Time)
		}
		// A pharmacy that does not answer has received nothing; once it
		// does, the prescription is one disclosure, however many tries.
		e.clock.Advance(time.Hour)
		second := sc.draft(t, "29046", "Take two tablets every morning")
		sc.signFresh(t, second.ID, true)
		sc.server.answer(503)
		sc.deliver(t)
		if ds, err := e.svc.Disclosures(e.as(p.patientA), p.patientA.UserID); err != nil || len(ds) != 2 {
			t.Fatalf("after an unanswered try: %d disclosures (%v), want 2", len(ds), err)
		}
		sc.server.answer(201)
		e.clock.Advance(time.Minute)
		sc.deliver(t)
		if ds, err := e.svc.Disclosures(e.as(p.patientA), p.patientA.UserID); err != nil || len(ds) != 3 || !strings.Contains(ds[0].What, "Your prescription") {
			t.Fatalf("after delivery: %+v (%v), want 3", ds, err)
		}
		tries := 0
		for _, ev := range e.events(p.id) {
			if ev.Action == service.ActRxTransmit && ev.ResourceID == second.ID {
				tries++
			}
		}
		if tries != 2 {
			t.Fatalf("the second prescription was tried %d times, want 2", tries)
		}
		if ds, err := e.svc.Disclosures(e.as(p.patientB), p.patientB.UserID); err != nil || len(ds) != 0 {
			t.Errorf("the other patient's accounting: %+v %v", ds, err)
		}
		for name, id := range map[string]string{"another patient": p.patientB.UserID, "another practice": q.patientA.UserID, "nowhere": haven.NewID()} {
			if _, err := e.svc.Disclosures(e.as(p.patientA), id); haven.ErrorCode(err) != haven.ENOTFOUND {
				t.Errorf("%s: %v, want %s", name, err, haven.ENOTFOUND)
			}
		}
		if _, err := e.svc.Disclosures(e.as(p.clinician), p.patientA.UserID); err == nil {
			t.Error("a clinician read a patient's accounting")
		}
	})
}

// TestWrittenRequestIsTrackedAndAnsweredWithTheExport: the front desk
// records a patient's written request received five days ago; the
// compliance officer's list shows it due in 25 days, naming whose it is
// but not whom the copy goes to; 40 days on it is late. Answering it
// needs a fresh authentication, produces the same valid export, once, as
// one export.request event for the patient; the copy to another provider
// is then in her accounting of disclosures. A patient cannot record one,
// another practice's request is not found, and a request for another
// practice's patient is not found either.
func TestWrittenRequestIsTrackedAndAnsweredWithTheExport(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		validate := fhirValidator(t)
		p := e.seed("requestville", "WRM1")
		q := e.seed("elsewhere", "WRM2")
		received := e.clock.Now().AddDate(0, 0, -5).Format(time.DateOnly)
		v, err := e.svc.RecordAccessRequest(e.as(p.staff), service.NewAccessRequest{PatientID: p.patientA.UserID, Received: received,
			Recipient: "Dr. Jane Hill, Northside Clinic"})
		if err != nil {
			t.Fatal(err)
		}
		if v.DaysLeft != 25 && v.DaysLeft != 24 {
			t.Errorf("days left %d, want 25", v.DaysLeft)
		}
		list, err := e.svc.AccessRequests(e.as(p.compliance))
		if err != nil || len(list) != 1 || list[0].PatientName != "NameWRM1A" || list[0].Recipient != "" || !list[0].ToOther || list[0].Fulfilled != nil {
			t.Fatalf("the compliance officer's list: %+v %v", list, err)
		}
		if list, err := e.svc.AccessRequests(e.as(q.compliance)); err != nil || len(list) != 0 {
			t.Fatalf("the other practice's list: %+v %v", list, err)
		}
		for _, bad := range []string{"", "yesterday", e.clock.Now().AddDate(0, 0, 2).Format(time.DateOnly), e.clock.Now().AddDate(0, 0, -200).Format(time.DateOnly)} {
			if _, err := e.svc.RecordAccessRequest(e.as(p.staff), service.NewAccessRequest{PatientID: p.patientA.UserID, Received: bad}); haven.ErrorCode(err) != haven.EINVALID {
				t.Errorf("received %q: %v, want %s", bad, err, haven.EINVALID)
			}
		}
		if _, err := e.svc.RecordAccessRequest(e.as(p.patientA), service.NewAccessRequest{PatientID: p.patientA.UserID, Received: received}); err == nil {
			t.Error("a patient recorded a request")
		}
		if _, err := e.svc.RecordAccessRequest(e.as(p.staff), service.NewAccessRequest{PatientID: q.patientA.UserID, Received: received}); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Errorf("a request for another practice's patient: %v, want %s", err, haven.ENOTFOUND)
		}
		if _, err := e.svc.FulfilAccessRequest(e.as(q.staff), v.ID); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Errorf("another practice's request: %v, want %s", err, haven.ENOTFOUND)
		}
		if _, err := e.svc.FulfilAccessRequest(e.stale(p.staff), v.ID); haven.ErrorCode(err) != haven.ESTEPUP {
			t.Errorf("answering on a stale session: %v, want %s", err, haven.ESTEPUP)
		}
		if ds, err := e.svc.Disclosures(e.as(p.patientA), p.patientA.UserID); err != nil || len(ds) != 0 {
			t.Fatalf("before the copy is sent: %+v %v", ds, err)
		}

		if _, err := e.svc.AddAllergy(e.as(p.clinician), p.patientA.UserID, "Latex", "rash"); err != nil {
			t.Fatal(err)
		}
		before := len(e.events(p.id))
		x, err := e.svc.FulfilAccessRequest(e.as(p.staff), v.ID)
		if err != nil {
			t.Fatal(err)
		}
		z := zipOf(t, e.as(p.staff), x)
		evs := e.events(p.id)
		if len(evs)-before != 1 || evs[0].Action != "export.request" || evs[0].PatientID != p.patientA.UserID || evs[0].Purpose != "patient_request" {
			t.Fatalf("the answer is not one export.request event: %d new, newest %+v", len(evs)-before, evs[0])
		}
		checkRecordBundle(t, validate, z["record.json"])
		if !bytes.Contains(z["record.json"], []byte("NameWRM1A")) || bytes.Contains(z["record.json"], []byte("NameWRM1B")) {
			t.Error("the export is not patient A's alone")
		}
		if _, err := e.svc.FulfilAccessRequest(e.as(p.staff), v.ID); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Errorf("answering twice: %v, want %s", err, haven.ECONFLICT)
		}
		ds, err := e.svc.Disclosures(e.as(p.patientA), p.patientA.UserID)
		if err != nil || len(ds) != 1 || ds[0].Recipient != "Dr. Jane Hill, Northside Clinic" || !strings.Contains(ds[0].Why, "written request") {
			t.Fatalf("her accounting after the copy: %+v %v", ds, err)
		}
		e.clock.Advance(40 * 24 * time.Hour)
		if _, err := e.svc.RecordAccessRequest(e.as(p.staff), service.NewAccessRequest{PatientID: p.patientB.UserID,
			Received: e.clock.Now().AddDate(0, 0, -31).Format(time.DateOnly)}); err != nil {
			t.Fatal(err)
		}
		list, err = e.svc.AccessRequests(e.as(p.staff))
		if err != nil || len(list) != 2 || list[0].PatientName != "NameWRM1B" || list[0].DaysLeft >= 0 || list[1].Fulfilled == nil ||
			list[1].Recipient != "Dr. Jane Hill, Northside Clinic" {
			t.Fatalf("the front desk's list: %+v %v", list, err)
		}
		e.assertNotInTheClear(t, "access_requests", "Northside", "Jane Hill")
	})
}
