package web_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"haven"
	"haven/internal/testkit"
)

// vitalBody is an Observation of a systolic blood pressure of the patient
// subject, as a cuff's app would post it.
func vitalBody(subject, code, system, unit string, value float64) string {
	return fmt.Sprintf(`{"resourceType":"Observation","status":"final",
 "category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
 "code":{"coding":[{"system":%q,"code":%q,"display":"Systolic blood pressure"}]},
 "subject":{"reference":"Patient/%s"},"effectiveDateTime":"2026-03-04T08:15:00+01:00",
 "valueQuantity":{"value":%v,"unit":%q,"system":"http://unitsofmeasure.org","code":%q}}`, system, code, subject, value, unit, unit)
}

func postFHIR(c *client, token, path, body string) *http.Response {
	return c.do("POST", path, strings.NewReader(body), map[string]string{"Authorization": "Bearer " + token,
		"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"})
}

// TestFHIRObservationCreateAsAnAttackerWouldTry: a patient's blood
// pressure app (v1 patient/Observation.write) records her systolic
// pressure on every database: 201 with Location and ETag, sealed in the
// database, audited naming the app, in her Observation search as
// vital-signs, readable by her care-team clinician and in her
// $everything. Then what an app would try beyond that: another patient's
// subject, in her practice and another (404), a device app without a
// create scope (403), and bodies that are not a vital sign (400).
func TestFHIRObservationCreateAsAnAttackerWouldTry(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			own, other := ts[0], ts[1]
			a, b := own.patient[0], own.patient[1]
			cuff := registerApp(t, st, own, "Cuff Reader", "launch/patient", "patient/Observation.write", "patient/Observation.read", "patient/Patient.read")
			counter := registerApp(t, st, own, "Step Counter", "launch/patient", "patient/Observation.rs")
			anon := st.client(firefox)
			pc := st.client(firefox)
			pc.pageSignIn(own.pEmail[0])
			v, ch := pkce()
			tok := redeem(t, anon, cuff, authorize(t, pc, cuff, "launch/patient patient/Observation.write patient/Observation.read patient/Patient.read", ch), v)
			v2, ch2 := pkce()
			ro := redeem(t, anon, counter, authorize(t, pc, counter, "launch/patient patient/Observation.rs", ch2), v2)
			if tok.AccessToken == "" || ro.AccessToken == "" || tok.Patient != a {
				t.Fatalf("tokens: %+v %+v", tok, ro)
			}

			// The CapabilityStatement says Observation may be created.
			meta := readAll(t, anon.get("/fhir/R4/metadata"))
			if i := strings.Index(meta, `"type":"Observation"`); i < 0 || !strings.Contains(meta[i:i+strings.Index(meta[i:], `"searchParam"`)], `"code":"create"`) {
				t.Fatalf("the CapabilityStatement offers no Observation create")
			}

			r := postFHIR(anon, tok.AccessToken, "/fhir/R4/Observation", vitalBody(a, "8480-6", "http://loinc.org", "mm[Hg]", 128.5))
			doc := fhirDoc(t, r, http.StatusCreated)
			id, _ := doc["id"].(string)
			if id == "" || r.Header.Get("Location") != st.base+"/fhir/R4/Observation/"+id || r.Header.Get("ETag") == "" {
				t.Fatalf("created: %v, Location %q, ETag %q", doc, r.Header.Get("Location"), r.Header.Get("ETag"))
			}
			q, _ := doc["valueQuantity"].(map[string]any)
			cat := fmt.Sprint(doc["category"])
			if q["value"] != 128.5 || q["code"] != "mm[Hg]" || !strings.Contains(cat, "vital-signs") || doc["effectiveDateTime"] != "2026-03-04T07:15:00Z" {
				t.Fatalf("read back: %v", doc)
			}
			// Sealed: the database holds no value, code or unit in the clear.
			var sealed []byte
			if err := st.db.SQL().QueryRow(`SELECT content_sealed FROM patient_observations WHERE id = $1 AND patient_id = $2 AND recorded_by = $3 AND source = $4`,
				id, a, a, cuff.id).Scan(&sealed); err != nil {
				t.Fatal(err)
			}
			for _, clear := range []string{"8480-6", "128.5", "mm[Hg]", "Systolic"} {
				if bytes.Contains(sealed, []byte(clear)) {
					t.Fatalf("%q in the clear in the database", clear)
				}
			}

			// In her search, to the app and to any app that reads hers.
			found := func(token, path string) bool {
				t.Helper()
				for _, e := range entries(t, fhirDoc(t, bearer(anon, token, path), http.StatusOK), -1) {
					if e["id"] == id {
						return true
					}
				}
				return false
			}
			if !found(tok.AccessToken, "/fhir/R4/Observation?patient="+a) || !found(ro.AccessToken, "/fhir/R4/Observation?code=8480-6") {
				t.Fatal("the recorded vital sign is not in her Observation search")
			}
			fhirDoc(t, bearer(anon, ro.AccessToken, "/fhir/R4/Observation/"+id), http.StatusOK)
			// Her care-team clinician reads it with her results.
			doctor := haven.NewContextWithActor(context.Background(), haven.Actor{UserID: own.doctor, PracticeID: own.id, Role: haven.RoleClinician,
				MFA: true, SessionID: "seed", RequestID: "seed", ClientAddr: "127.0.0.1", AuthTime: st.clock.Now()})
			if res, err := st.svc.FHIRResource(doctor, "Observation", id); err != nil || res["id"] != id {
				t.Fatalf("her clinician's read: %v %v", res, err)
			}
			// And it is in her record's download.
			if x, err := st.svc.PrepareExport(haven.NewContextWithActor(context.Background(), haven.Actor{UserID: a, PracticeID: own.id,
				Role: haven.RolePatient, MFA: true, SessionID: "seed", RequestID: "seed", ClientAddr: "127.0.0.1", AuthTime: st.clock.Now()}), a); err != nil ||
				!strings.Contains(string(x.Bundle()), `"Observation/`+id+`"`) && !strings.Contains(string(x.Bundle()), id) {
				t.Fatalf("her export: %v", err)
			}

			// Another patient's record, in her practice and in another.
			for _, p := range []string{b, other.patient[0], "nosuchpatientatall"} {
				outcome(t, postFHIR(anon, tok.AccessToken, "/fhir/R4/Observation", vitalBody(p, "8480-6", "http://loinc.org", "mm[Hg]", 120)),
					http.StatusNotFound, "not-found")
			}
			// A device app that may read but not create.
			outcome(t, postFHIR(anon, ro.AccessToken, "/fhir/R4/Observation", vitalBody(a, "8480-6", "http://loinc.org", "mm[Hg]", 120)),
				http.StatusForbidden, "forbidden")
			// Not a vital sign as recorded here.
			for what, body := range map[string]string{
				"a code of another system": vitalBody(a, "8480-6", "http://snomed.info/sct", "mm[Hg]", 120),
				"a code not a vital sign":  vitalBody(a, "2345-7", "http://loinc.org", "mm[Hg]", 120),
				"a unit of another sign":   vitalBody(a, "8480-6", "http://loinc.org", "kg", 120),
				"a value no one has":       vitalBody(a, "8480-6", "http://loinc.org", "mm[Hg]", 9000),
				"an id of its choosing":    strings.Replace(vitalBody(a, "8480-6", "http://loinc.org", "mm[Hg]", 120), `"status"`, `"id":"mine","status"`, 1),
				"no time":                  strings.Replace(vitalBody(a, "8480-6", "http://loinc.org", "mm[Hg]", 120), `"effectiveDateTime":"2026-03-04T08:15:00+01:00",`, "", 1),
				"a time in the future":     strings.Replace(vitalBody(a, "8480-6", "http://loinc.org", "mm[Hg]", 120), "2026-03-04T08:15:00+01:00", "2999-01-01T00:00:00Z", 1),
				"no subject":               strings.Replace(vitalBody(a, "8480-6", "http://loinc.org", "mm[Hg]", 120), `"subject":{"reference":"Patient/`+a+`"},`, "", 1),
			} {
				r := postFHIR(anon, tok.AccessToken, "/fhir/R4/Observation", body)
				if r.StatusCode != http.StatusBadRequest {
					t.Errorf("%s: %d %s", what, r.StatusCode, readAll(t, r))
				}
			}
			var n int
			if err := st.db.SQL().QueryRow(`SELECT COUNT(*) FROM patient_observations`).Scan(&n); err != nil || n != 1 {
				t.Fatalf("%d observations stored (%v), want the one", n, err)
			}

			st.svc.Wait()
			for _, want := range []struct {
				query string
				args  []any
			}{
				{`session_id = $1 AND actor_id = $2 AND action = 'observation.record' AND patient_id = $2 AND decision = 'allow'`, []any{"smart:" + cuff.id, a}},
				{`session_id = $1 AND action = 'observation.record' AND decision = 'deny'`, []any{"smart:" + cuff.id}},
			} {
				if err := st.db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE `+want.query, want.args...).Scan(&n); err != nil || n == 0 {
					t.Errorf("no audit event where %s (%v)", want.query, err)
				}
			}
		})
	}
}
