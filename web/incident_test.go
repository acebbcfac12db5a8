package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/internal/testkit"
	"haven/service"
)

// TestIncidentThroughTheAPI: the compliance officer opens an incident,
// scopes it to the front desk, reads the patient the desk opened by name,
// and contains it: the desk's live session is refused at once and its
// password no longer signs in. The desk itself may not touch incidents.
func TestIncidentThroughTheAPI(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			own := ts[0]
			desk := st.client(firefox)
			dAuth := desk.signInAny(own.emails[haven.RoleStaff])
			if r := desk.apiAs(dAuth, "GET", "/api/v1/patients/"+own.patient[1], ""); r.StatusCode != http.StatusOK {
				t.Fatalf("the desk reads a chart: %d", r.StatusCode)
			}
			co := st.client(firefox)
			cAuth := co.signInAny(own.emails[haven.RoleComplianceOfficer])
			r := co.apiAs(cAuth, "POST", "/api/v1/incidents", `{"title":"Front desk browsing"}`)
			var inc service.IncidentView
			if err := json.NewDecoder(r.Body).Decode(&inc); err != nil || r.StatusCode != http.StatusCreated {
				t.Fatalf("opening: %d %v", r.StatusCode, err)
			}
			now := st.clock.Now()
			scope := `{"accounts":["` + st.users[own.emails[haven.RoleStaff]] + `"],"since":"` + now.Add(-time.Hour).Format(time.RFC3339) +
				`","until":"` + now.Add(time.Hour).Format(time.RFC3339) + `"}`
			if r := co.apiAs(cAuth, "PUT", "/api/v1/incidents/"+inc.ID+"/scope", scope); r.StatusCode != http.StatusOK {
				t.Fatalf("scoping: %d %s", r.StatusCode, readAll(t, r))
			}
			r = co.apiAs(cAuth, "GET", "/api/v1/incidents/"+inc.ID+"/affected", "")
			if out := readAll(t, r); r.StatusCode != http.StatusOK || !strings.Contains(out, "Name"+own.marker+"1") {
				t.Fatalf("affected: %d %s", r.StatusCode, out)
			}
			for _, path := range []string{"/api/v1/incidents", "/api/v1/incidents/" + inc.ID} {
				if r := desk.apiAs(dAuth, "GET", path, ""); r.StatusCode != http.StatusForbidden {
					t.Errorf("the desk reads %s: %d", path, r.StatusCode)
				}
			}
			if r := desk.apiAs(dAuth, "POST", "/api/v1/incidents/"+inc.ID+"/contain", ""); r.StatusCode != http.StatusForbidden {
				t.Errorf("the desk contains: %d", r.StatusCode)
			}
			r = co.apiAs(cAuth, "POST", "/api/v1/incidents/"+inc.ID+"/contain", "")
			if out := readAll(t, r); r.StatusCode != http.StatusOK || !strings.Contains(out, `"disabled":true`) {
				t.Fatalf("containing: %d %s", r.StatusCode, out)
			}
			if r := desk.apiAs(dAuth, "GET", "/api/v1/patients/"+own.patient[1], ""); r.StatusCode != http.StatusUnauthorized {
				t.Errorf("the contained desk's session still answers: %d", r.StatusCode)
			}
			var res struct{ Stage, Token string }
			json.NewDecoder(desk.api("POST", "/api/v1/session", map[string]string{"email": own.emails[haven.RoleStaff], "password": stackPassword}).Body).Decode(&res)
			if res.Token != "" || res.Stage != "" {
				t.Errorf("the contained desk signs in again: %+v", res)
			}
		})
	}
}
