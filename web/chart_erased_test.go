package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"haven"
	"haven/internal/testkit"
)

// A crypto-shredded patient is a line saying when they were erased in the
// practice's patient list (API and page), absent from the clinician's
// care-team list, and never an error for the whole list.
func TestErasedPatientIsALineInTheListNotAnError(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			p := ts[0]
			if err := st.svc.ErasePatient(context.Background(), p.patient[0]); err != nil {
				t.Fatal(err)
			}
			list := func(auth map[string]string) []map[string]any {
				t.Helper()
				r := st.client(firefox).apiAs(auth, "GET", "/api/v1/patients", "")
				defer r.Body.Close()
				var body struct{ Patients []map[string]any }
				if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.StatusCode != http.StatusOK {
					t.Fatalf("GET /api/v1/patients: %d %v", r.StatusCode, err)
				}
				return body.Patients
			}
			deskAuth, secret := st.client(firefox).apiSignIn(p.emails[haven.RoleStaff])
			desk := list(deskAuth)
			if len(desk) != 2 {
				t.Fatalf("front desk list: %+v", desk)
			}
			for _, line := range desk {
				switch line["patient_id"] {
				case p.patient[0]:
					if line["erased"] != true || !strings.HasPrefix(line["erased_at"].(string), "2026-11-25") || line["name"] != nil || line["mrn"] != nil {
						t.Fatalf("erased line: %+v", line)
					}
				case p.patient[1]:
					if line["name"] != "Name"+p.marker+"1" {
						t.Fatalf("other line: %+v", line)
					}
				}
			}
			if doc := list(st.client(firefox).signInAny(p.emails[haven.RoleClinician])); len(doc) != 0 {
				t.Fatalf("the clinician's care-team list holds the erased patient: %+v", doc)
			}

			c := st.client(firefox)
			c.signIn(p.emails[haven.RoleStaff], secret)
			r := c.get("/app/patients")
			body := readAll(t, r)
			if r.StatusCode != http.StatusOK || !strings.Contains(body, "erased on <time datetime=\"2026-11-25\">") ||
				!strings.Contains(body, "Name"+p.marker+"1") || strings.Contains(body, "Name"+p.marker+"0") {
				t.Fatalf("/app/patients: %d\n%s", r.StatusCode, body)
			}
		})
	}
}
