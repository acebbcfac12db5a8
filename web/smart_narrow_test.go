package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"haven"
	"haven/internal/testkit"
)

// TestSMARTNarrowedScopesAsAnAttackerWouldTry: a patient's lab viewer
// holds SMART 2's patient/Observation.rs?category=laboratory, on every
// database. It finds her released lab results and reads one, but the
// blood pressure she recorded (category vital-signs) is in none of its
// searches, whatever it searches by (code, _id, _summary=count), and is
// 403 when read by its id, audited naming the app. What it would try
// beyond: $everything, a create, another type (403); asking at the
// authorization endpoint for the whole type, or another category, than
// it is registered for (refused there); the consent page names the
// category.
func TestSMARTNarrowedScopesAsAnAttackerWouldTry(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			own := ts[0]
			a := own.patient[0]
			ctx := context.Background()
			// Her result, reviewed and released by the ordering clinician.
			doc2 := haven.NewContextWithActor(ctx, haven.Actor{UserID: st.users["doc2@riverside.example"], PracticeID: own.id, Role: haven.RoleClinician,
				MFA: true, SessionID: "seed", RequestID: "seed", ClientAddr: "127.0.0.1", AuthTime: st.clock.Now()})
			if _, err := st.svc.ReviewResult(doc2, own.results[0], "", true); err != nil {
				t.Fatal(err)
			}
			const narrowed = "patient/Observation.rs?category=laboratory"
			cuff := registerApp(t, st, own, "Cuff Reader", "launch/patient", "patient/Observation.write")
			viewer := registerApp(t, st, own, "Lab Viewer", "launch/patient", narrowed)
			anon := st.client(firefox)
			pc := st.client(firefox)
			pc.pageSignIn(own.pEmail[0])
			v, ch := pkce()
			ct := redeem(t, anon, cuff, authorize(t, pc, cuff, "launch/patient patient/Observation.write", ch), v)
			r := postFHIR(anon, ct.AccessToken, "/fhir/R4/Observation", vitalBody(a, "8480-6", "http://loinc.org", "mm[Hg]", 131))
			vital, _ := fhirDoc(t, r, http.StatusCreated)["id"].(string)

			// Consent names the category.
			v, ch = pkce()
			q := url.Values{"response_type": {"code"}, "client_id": {viewer.id}, "redirect_uri": {viewer.redirect}, "scope": {"launch/patient " + narrowed},
				"state": {"state-123456789"}, "code_challenge": {ch}, "code_challenge_method": {"S256"}, "aud": {st.base + "/fhir/R4"}}
			if page := readAll(t, pc.get("/oauth2/authorize?"+q.Encode())); !strings.Contains(page, "only those of category laboratory") {
				t.Fatalf("the consent page does not name the category:\n%s", page)
			}
			tok := redeem(t, anon, viewer, authorize(t, pc, viewer, "launch/patient "+narrowed, ch), v)
			if tok.AccessToken == "" || !strings.Contains(tok.Scope, narrowed) || tok.Patient != a {
				t.Fatalf("token: %+v", tok)
			}
			// Wider than registered: the whole type, or another category.
			for _, wider := range []string{"launch/patient patient/Observation.rs", "launch/patient patient/Observation.rs?category=vital-signs",
				"launch/patient patient/*.rs?category=laboratory"} {
				q.Set("scope", wider)
				r := pc.get("/oauth2/authorize?" + q.Encode())
				if loc := r.Header.Get("Location"); r.StatusCode/100 != 3 || !strings.Contains(loc, "error=invalid_scope") {
					t.Errorf("asking for %q: %d %s", wider, r.StatusCode, loc)
				}
			}

			// Her lab results, and nothing else, in every search.
			labs := entries(t, fhirDoc(t, bearer(anon, tok.AccessToken, "/fhir/R4/Observation?patient="+a), http.StatusOK), -1)
			if len(labs) == 0 {
				t.Fatal("no lab result in the narrowed search")
			}
			for _, o := range labs {
				if !strings.Contains(fmt.Sprint(o["category"]), "laboratory") || o["id"] == vital {
					t.Errorf("beyond the narrowing in a search: %v", o)
				}
			}
			for _, path := range []string{"/fhir/R4/Observation?code=8480-6", "/fhir/R4/Observation?_id=" + vital,
				"/fhir/R4/Observation?patient=" + a + "&_sort=-date&_count=1000"} {
				for _, o := range entries(t, fhirDoc(t, bearer(anon, tok.AccessToken, path), http.StatusOK), -1) {
					if o["id"] == vital {
						t.Errorf("%s: the vital sign is in the narrowed search", path)
					}
				}
			}
			if n := fhirDoc(t, bearer(anon, tok.AccessToken, "/fhir/R4/Observation?_summary=count"), http.StatusOK)["total"]; n != float64(len(labs)) {
				t.Errorf("_summary=count says %v, want %d", n, len(labs))
			}
			labID, _ := labs[0]["id"].(string)
			fhirDoc(t, bearer(anon, tok.AccessToken, "/fhir/R4/Observation/"+labID), http.StatusOK)
			outcome(t, bearer(anon, tok.AccessToken, "/fhir/R4/Observation/"+vital), http.StatusForbidden, "forbidden")
			// Beyond its scopes altogether.
			outcome(t, bearer(anon, tok.AccessToken, "/fhir/R4/Patient/"+a+"/$everything"), http.StatusForbidden, "forbidden")
			outcome(t, bearer(anon, tok.AccessToken, "/fhir/R4/DiagnosticReport?patient="+a), http.StatusForbidden, "forbidden")
			outcome(t, postFHIR(anon, tok.AccessToken, "/fhir/R4/Observation", vitalBody(a, "8480-6", "http://loinc.org", "mm[Hg]", 120)),
				http.StatusForbidden, "forbidden")

			st.svc.Wait()
			var n int
			if err := st.db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE log_id = $1 AND session_id = $2 AND action = 'smart.fhir'
				AND reason = 'scope_narrowed' AND decision = 'deny'`, own.id, "smart:"+viewer.id).Scan(&n); err != nil || n == 0 {
				t.Errorf("no refusal of the narrowed read naming the app in the audit log (%v)", err)
			}
		})
	}
}
