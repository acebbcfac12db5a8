package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"haven"
	"haven/internal/testkit"
	"haven/store/sqlstore"
)

// fhirDoc reads a FHIR answer: its status, media type and body.
func fhirDoc(t *testing.T, r *http.Response, status int) map[string]any {
	t.Helper()
	body := readAll(t, r)
	if r.StatusCode != status {
		t.Fatalf("%s %s: %d, want %d: %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, body)
	}
	if status == http.StatusNotModified {
		return nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/fhir+json" {
		t.Errorf("%s: content type %q", r.Request.URL, ct)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("%s: %v: %s", r.Request.URL, err, body)
	}
	return doc
}

// outcome checks an OperationOutcome's status and issue code.
func outcome(t *testing.T, r *http.Response, status int, code string) {
	t.Helper()
	doc := fhirDoc(t, r, status)
	issues, _ := doc["issue"].([]any)
	if doc["resourceType"] != "OperationOutcome" || len(issues) != 1 || issues[0].(map[string]any)["code"] != code {
		t.Errorf("%s: %v, want an OperationOutcome %q", r.Request.URL, doc, code)
	}
}

// entries returns a searchset's resources, checking its type and total
// (any when total is negative).
func entries(t *testing.T, doc map[string]any, total int) []map[string]any {
	t.Helper()
	if doc["resourceType"] != "Bundle" || doc["type"] != "searchset" || (total >= 0 && doc["total"] != float64(total)) {
		t.Fatalf("searchset %v, want total %d", doc, total)
	}
	var out []map[string]any
	es, _ := doc["entry"].([]any)
	for _, e := range es {
		out = append(out, e.(map[string]any)["resource"].(map[string]any))
	}
	return out
}

// TestFHIRReadAndSearchThroughTheGate walks the FHIR API over HTTP on
// every database: the capability statement for anyone; a patient's own
// Patient by bearer token, with its ETag answering 304; searches of each
// type with date prefixes, code, status, _id and paging links; a
// clinician by session cookie; OperationOutcome for a missing session,
// another patient's id, an unknown type or parameter and a method not
// served; $everything, the export's Bundle. Each read is an audited
// decision, and nothing of the other patient or practice is in any answer.
func TestFHIRReadAndSearchThroughTheGate(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			own, other := ts[0], ts[1]
			a, b := own.patient[0], own.patient[1]
			anon := st.client(firefox)

			// Anyone may read what the server does; nothing without a session.
			r := anon.get("/fhir/R4/metadata")
			cs := fhirDoc(t, r, http.StatusOK)
			if cs["resourceType"] != "CapabilityStatement" || cs["fhirVersion"] != "4.0.1" {
				t.Fatalf("metadata %v", cs)
			}
			fhirDoc(t, anon.do("GET", "/fhir/R4/metadata", nil, map[string]string{"If-None-Match": r.Header.Get("ETag")}), http.StatusNotModified)
			for _, p := range []string{"/fhir/R4/Patient/" + a, "/fhir/R4/Observation?patient=" + a, "/fhir/R4/Patient/" + a + "/$everything"} {
				r := anon.get(p)
				outcome(t, r, http.StatusUnauthorized, "login")
				if r.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s: no WWW-Authenticate", p)
				}
			}

			pc := st.client(firefox)
			auth := pc.signInAny(own.pEmail[0])
			get := func(p string) *http.Response { return pc.apiAs(auth, "GET", p, "") }

			// Her Patient, decided and recorded; its ETag.
			before := allows(t, st.db, a)
			r = get("/fhir/R4/Patient/" + a)
			pat := fhirDoc(t, r, http.StatusOK)
			if pat["resourceType"] != "Patient" || pat["id"] != a {
				t.Fatalf("Patient %v", pat)
			}
			if allows(t, st.db, a) != before+1 {
				t.Error("the read is not one audited decision")
			}
			etag := r.Header.Get("ETag")
			if !strings.HasPrefix(etag, `W/"`) {
				t.Fatalf("ETag %q", etag)
			}
			fhirDoc(t, pc.apiAs(map[string]string{"Authorization": auth["Authorization"], "If-None-Match": etag}, "GET", "/fhir/R4/Patient/"+a, ""), http.StatusNotModified)
			fhirDoc(t, pc.apiAs(map[string]string{"Authorization": auth["Authorization"], "If-None-Match": `W/"other"`}, "GET", "/fhir/R4/Patient/"+a, ""), http.StatusOK)
			if got := entries(t, fhirDoc(t, get("/fhir/R4/Patient"), http.StatusOK), 1); got[0]["id"] != a {
				t.Errorf("her own Patient search: %v", got)
			}
			if got := entries(t, fhirDoc(t, get("/fhir/R4/Patient?_id="+a), http.StatusOK), 1); got[0]["id"] != a {
				t.Errorf("Patient?_id: %v", got)
			}

			// Her signed prescription (one), searched every way.
			for q, n := range map[string]int{"": 1, "?patient=" + a: 1, "?patient=Patient/" + a: 1, "?code=29046": 1,
				"?code=http://www.nlm.nih.gov/research/umls/rxnorm|29046": 1, "?code=1": 0, "?status=active": 1, "?status=stopped": 0,
				"?date=ge2000-01-01": 1, "?date=lt2000-01-01": 0, "?date=gt2100": 0, "?date=le2100-01-01T00:00:00Z": 1,
				"?_id=" + own.rx[0]: 1, "?_id=" + own.rx[1]: 0} {
				got := entries(t, fhirDoc(t, get("/fhir/R4/MedicationRequest"+q), http.StatusOK), n)
				if n == 1 && (len(got) != 1 || got[0]["id"] != own.rx[0]) {
					t.Errorf("MedicationRequest%s: %v", q, got)
				}
			}
			// Her visit, conversations, note and file; each read by its id,
			// with its ETag.
			for typ, n := range map[string]int{"Appointment": 1, "DocumentReference": 2, "MedicationRequest": 1, "Communication": -1} {
				doc := fhirDoc(t, get("/fhir/R4/"+typ), http.StatusOK)
				if n < 0 {
					n = countOf(t, doc)
				}
				got := entries(t, doc, n)
				for _, res := range got {
					if res["resourceType"] != typ {
						t.Errorf("%s search holds %v", typ, res["resourceType"])
					}
					p := "/fhir/R4/" + typ + "/" + res["id"].(string)
					r := get(p)
					one := fhirDoc(t, r, http.StatusOK)
					if one["id"] != res["id"] || one["resourceType"] != typ {
						t.Errorf("%s: %v", p, one)
					}
					fhirDoc(t, pc.apiAs(map[string]string{"Authorization": auth["Authorization"], "If-None-Match": r.Header.Get("ETag")}, "GET", p, ""), http.StatusNotModified)
					// The other patient of her practice may not read it.
					if typ != "Communication" {
						continue
					}
					pb := st.client(firefox)
					outcome(t, pb.apiAs(pb.signInAny(own.pEmail[1]), "GET", p, ""), http.StatusNotFound, "not-found")
				}
			}
			msgs := entries(t, fhirDoc(t, get("/fhir/R4/Communication"), http.StatusOK), countOf(t, fhirDoc(t, get("/fhir/R4/Communication?_count=0"), http.StatusOK)))
			if len(msgs) == 0 {
				t.Fatal("no Communication")
			}
			// Paging: one a page, next links to the end.
			seen := map[any]bool{}
			next := "/fhir/R4/Communication?_count=1"
			for range 20 {
				doc := fhirDoc(t, get(next), http.StatusOK)
				for _, e := range entries(t, doc, len(msgs)) {
					seen[e["id"]] = true
				}
				next = ""
				for _, l := range doc["link"].([]any) {
					if l := l.(map[string]any); l["relation"] == "next" {
						u, _ := url.Parse(l["url"].(string))
						next = u.RequestURI()
					}
				}
				if next == "" {
					break
				}
			}
			if len(seen) != len(msgs) {
				t.Errorf("paging saw %d of %d messages", len(seen), len(msgs))
			}
			// _sort and _summary: newest first; the summary without the
			// message's words, tagged; the count alone.
			sorted := entries(t, fhirDoc(t, get("/fhir/R4/Communication?_sort=-date"), http.StatusOK), len(msgs))
			for i := 1; i < len(sorted); i++ {
				if sorted[i-1]["sent"].(string) < sorted[i]["sent"].(string) {
					t.Errorf("_sort=-date: %v before %v", sorted[i-1]["sent"], sorted[i]["sent"])
				}
			}
			for _, res := range entries(t, fhirDoc(t, get("/fhir/R4/Communication?_summary=true&_sort=date"), http.StatusOK), len(msgs)) {
				tags, _ := res["meta"].(map[string]any)["tag"].([]any)
				if res["payload"] != nil || res["status"] == nil || len(tags) != 1 || tags[0].(map[string]any)["code"] != "SUBSETTED" {
					t.Errorf("_summary=true: %v", res)
				}
			}
			if doc := fhirDoc(t, get("/fhir/R4/Communication?_summary=count"), http.StatusOK); countOf(t, doc) != len(msgs) || doc["entry"] != nil {
				t.Errorf("_summary=count: %v", doc)
			}
			outcome(t, get("/fhir/R4/Communication?_sort=status"), http.StatusBadRequest, "invalid")
			outcome(t, get("/fhir/R4/Communication?_summary=text"), http.StatusBadRequest, "invalid")
			// Her lab order (one test), her allergy, and no Encounter: her
			// visit is only booked.
			if got := entries(t, fhirDoc(t, get("/fhir/R4/ServiceRequest?code=2345-7&_sort=-date"), http.StatusOK), 1); got[0]["id"] != own.labs[0]+"-2345-7" {
				t.Errorf("ServiceRequest: %v", got)
			}
			if got := fhirDoc(t, get("/fhir/R4/ServiceRequest/"+own.labs[0]+"-2345-7"), http.StatusOK); got["resourceType"] != "ServiceRequest" {
				t.Errorf("ServiceRequest read: %v", got)
			}
			if got := entries(t, fhirDoc(t, get("/fhir/R4/AllergyIntolerance"), http.StatusOK), 1); got[0]["id"] != own.allergy[0] {
				t.Errorf("AllergyIntolerance: %v", got)
			}
			if got := fhirDoc(t, get("/fhir/R4/AllergyIntolerance/"+own.allergy[0]), http.StatusOK); got["id"] != own.allergy[0] {
				t.Errorf("AllergyIntolerance read: %v", got)
			}
			entries(t, fhirDoc(t, get("/fhir/R4/Encounter"), http.StatusOK), 0)
			outcome(t, get("/fhir/R4/Encounter/"+own.visits[0]), http.StatusNotFound, "not-found")
			// The practice's clinicians, by name alone; another practice's
			// are none of hers, and no patient is a Practitioner.
			docID, otherDoc := st.users[own.emails[haven.RoleClinician]], st.users[other.emails[haven.RoleClinician]]
			pracs := entries(t, fhirDoc(t, get("/fhir/R4/Practitioner?_sort=_id"), http.StatusOK), countOf(t, fhirDoc(t, get("/fhir/R4/Practitioner?_summary=count"), http.StatusOK)))
			found := false
			for _, pr := range pracs {
				found = found || pr["id"] == docID
				if pr["id"] == otherDoc || pr["telecom"] != nil || pr["address"] != nil {
					t.Errorf("Practitioner %v", pr)
				}
			}
			if !found || len(pracs) < 2 {
				t.Errorf("Practitioners %v lack her practice's clinician", pracs)
			}
			if got := fhirDoc(t, get("/fhir/R4/Practitioner/"+docID), http.StatusOK); got["id"] != docID {
				t.Errorf("Practitioner read: %v", got)
			}
			name := pracs[0]["name"].([]any)[0].(map[string]any)["text"].(string)
			if got := entries(t, fhirDoc(t, get("/fhir/R4/Practitioner?name="+url.QueryEscape(strings.Fields(name)[0])), http.StatusOK), -1); len(got) == 0 {
				t.Errorf("Practitioner?name=%s found none", strings.Fields(name)[0])
			}
			entries(t, fhirDoc(t, get("/fhir/R4/Practitioner?name=zzzznobody"), http.StatusOK), 0)
			for _, id := range []string{otherDoc, a, haven.NewID()} {
				r := get("/fhir/R4/Practitioner/" + id)
				if body := readAll(t, r); r.StatusCode != http.StatusNotFound || strings.Contains(body, other.marker) {
					t.Errorf("Practitioner/%s: %d %s", id, r.StatusCode, body)
				}
			}
			// She writes to her care team from an app: 201, its Location
			// reads it back, it is in her conversations (sealed: the page's
			// own sending), and the denial of anything else is an outcome.
			fhirPost := func(cl *client, h map[string]string, ct, body string) *http.Response {
				hh := map[string]string{}
				for k, v := range h {
					hh[k] = v
				}
				hh["Content-Type"] = ct
				return cl.do("POST", "/fhir/R4/Communication", strings.NewReader(body), hh)
			}
			msg := `{"resourceType":"Communication","status":"completed","subject":{"reference":"Patient/` + a +
				`"},"topic":{"text":"From my app"},"payload":[{"contentString":"APPMESSAGE` + own.marker + `"}]}`
			threadsBefore := len(readAll(t, get("/api/v1/threads")))
			r = fhirPost(pc, auth, "application/fhir+json", msg)
			created := fhirDoc(t, r, http.StatusCreated)
			loc := r.Header.Get("Location")
			if created["resourceType"] != "Communication" || !strings.HasSuffix(loc, "/fhir/R4/Communication/"+created["id"].(string)) ||
				!strings.Contains(readJSON(created), "APPMESSAGE") || !strings.Contains(readJSON(created), `"Patient/`+a+`"`) {
				t.Fatalf("created %v at %q", created, loc)
			}
			lu, _ := url.Parse(loc)
			if got := fhirDoc(t, get(lu.Path), http.StatusOK); got["id"] != created["id"] {
				t.Errorf("its Location reads %v", got)
			}
			if n := len(entries(t, fhirDoc(t, get("/fhir/R4/Communication"), http.StatusOK), len(msgs)+1)); n != min(len(msgs)+1, 50) {
				t.Errorf("%d Communications after the create", n)
			}
			if after := readAll(t, get("/api/v1/threads")); len(after) <= threadsBefore || !strings.Contains(after, "From my app") {
				t.Errorf("the conversation is not on her list: %s", after)
			}
			// Without a subject it is hers too.
			fhirDoc(t, fhirPost(pc, auth, "application/json", `{"resourceType":"Communication","status":"completed","payload":[{"contentString":"Bare"}]}`), http.StatusCreated)
			// Into the other patient's record: refused as unknown, audited.
			before = denials(t, st.db, a)
			outcome(t, fhirPost(pc, auth, "application/fhir+json", strings.ReplaceAll(msg, a, b)), http.StatusNotFound, "not-found")
			if denials(t, st.db, a) <= before {
				t.Error("the create in another's record is not audited")
			}
			outcome(t, fhirPost(pc, auth, "application/fhir+json", strings.Replace(msg, `"completed"`, `"in-progress"`, 1)), http.StatusBadRequest, "invalid")
			outcome(t, fhirPost(pc, auth, "application/fhir+json", strings.Replace(msg, `"payload"`, `"recipient":[],"payload"`, 1)), http.StatusBadRequest, "invalid")
			outcome(t, fhirPost(pc, auth, "text/plain", msg), http.StatusBadRequest, "invalid")
			outcome(t, fhirPost(st.client(firefox), nil, "application/fhir+json", msg), http.StatusUnauthorized, "login")
			outcome(t, pc.apiAs(auth, "POST", "/fhir/R4/DiagnosticReport", msg), http.StatusNotFound, "not-supported")
			outcome(t, pc.apiAs(auth, "PUT", "/fhir/R4/Communication/"+created["id"].(string), msg), http.StatusNotFound, "not-supported")

			// Her results are not released: none to her.
			entries(t, fhirDoc(t, get("/fhir/R4/Observation"), http.StatusOK), 0)
			entries(t, fhirDoc(t, get("/fhir/R4/DiagnosticReport"), http.StatusOK), 0)

			// $everything is the export's Bundle.
			ev := fhirDoc(t, get("/fhir/R4/Patient/"+a+"/$everything"), http.StatusOK)
			if ev["resourceType"] != "Bundle" || ev["type"] != "collection" || len(ev["entry"].([]any)) < 5 {
				t.Errorf("$everything %v", ev["type"])
			}

			// Another patient's ids and another practice's: not found,
			// audited; errors are OperationOutcomes.
			for _, p := range []string{"/fhir/R4/Patient/" + b, "/fhir/R4/Patient?_id=" + b, "/fhir/R4/Observation?patient=" + b,
				"/fhir/R4/MedicationRequest?patient=" + b, "/fhir/R4/Patient/" + b + "/$everything", "/fhir/R4/Patient/" + other.patient[0],
				"/fhir/R4/DocumentReference?patient=" + other.patient[0], "/fhir/R4/Patient/" + haven.NewID(),
				"/fhir/R4/MedicationRequest/" + own.rx[1], "/fhir/R4/Appointment/" + own.visits[1], "/fhir/R4/DocumentReference/" + own.notes[1],
				"/fhir/R4/DiagnosticReport/" + own.results[0], "/fhir/R4/Observation/" + own.results[0] + "-1",
				"/fhir/R4/DiagnosticReport/" + other.results[0], "/fhir/R4/Communication/" + haven.NewID(),
				"/fhir/R4/ServiceRequest/" + own.labs[1] + "-2345-7", "/fhir/R4/AllergyIntolerance/" + own.allergy[1],
				"/fhir/R4/AllergyIntolerance/" + other.allergy[0], "/fhir/R4/Encounter/" + own.visits[1], "/fhir/R4/ServiceRequest?patient=" + b} {
				before := denials(t, st.db, a)
				outcome(t, get(p), http.StatusNotFound, "not-found")
				if denials(t, st.db, a) <= before {
					t.Errorf("%s: the refusal is not audited", p)
				}
			}
			outcome(t, get("/fhir/R4/Observation?subject="+a), http.StatusBadRequest, "invalid")
			outcome(t, get("/fhir/R4/Observation?date=soon"), http.StatusBadRequest, "invalid")
			outcome(t, get("/fhir/R4/Binary"), http.StatusNotFound, "not-supported")
			outcome(t, get("/fhir/R4/Observation/x1/_history"), http.StatusNotFound, "not-supported")
			outcome(t, get("/fhir/R4/Binary/"+own.files[0]), http.StatusNotFound, "not-supported")
			outcome(t, pc.apiAs(auth, "POST", "/fhir/R4/Patient", `{"resourceType":"Patient"}`), http.StatusNotFound, "not-supported")

			// A clinician by session cookie: she names the patient.
			doc := st.client(firefox)
			doc.signIn(own.emails[haven.RoleClinician], "")
			outcome(t, doc.get("/fhir/R4/Observation"), http.StatusBadRequest, "invalid")
			if got := fhirDoc(t, doc.get("/fhir/R4/Patient/"+a), http.StatusOK); got["id"] != a {
				t.Errorf("the clinician's read %v", got)
			}
			outcome(t, doc.get("/fhir/R4/Patient/"+other.patient[0]), http.StatusNotFound, "not-found")
			outcome(t, doc.get("/fhir/R4/Patient/"+a+"/$everything"), http.StatusForbidden, "forbidden")
			// The workforce writes on the message pages, not here.
			outcome(t, doc.do("POST", "/fhir/R4/Communication", strings.NewReader(`{"resourceType":"Communication","status":"completed","subject":{"reference":"Patient/`+a+
				`"},"payload":[{"contentString":"x"}]}`), map[string]string{"Content-Type": "application/fhir+json"}), http.StatusForbidden, "forbidden")
			// Her cookie from another device is challenged, and reads nothing.
			doc.ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/140.0 Safari/537.36"
			outcome(t, doc.get("/fhir/R4/Patient/"+a), http.StatusForbidden, "security")

			// Her token once she signed out: refused, as no session.
			defer func() {
				expectStatus(t, pc.apiAs(auth, "DELETE", "/api/v1/session", ""), http.StatusNoContent)
				outcome(t, get("/fhir/R4/Patient/"+a), http.StatusUnauthorized, "login")
				outcome(t, get("/fhir/R4/Observation"), http.StatusUnauthorized, "login")
			}()

			// Nothing of the other patient or practice in what she read.
			for _, p := range []string{"/fhir/R4/Patient/" + a, "/fhir/R4/Communication", "/fhir/R4/DocumentReference", "/fhir/R4/MedicationRequest", "/fhir/R4/Appointment"} {
				body := readAll(t, get(p))
				for _, m := range []string{b, other.marker, other.patient[0]} {
					if strings.Contains(body, m) {
						t.Errorf("%s holds %q", p, m)
					}
				}
			}
		})
	}
}

func readJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func countOf(t *testing.T, doc map[string]any) int {
	t.Helper()
	n, _ := doc["total"].(float64)
	return int(n)
}

// allows counts actorID's allowed events.
func allows(t *testing.T, db *sqlstore.DB, actorID string) int {
	t.Helper()
	var n int
	if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE actor_id = $1 AND decision = 'allow'`, actorID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
