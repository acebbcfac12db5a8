package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
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

// TestIncidentPagesRefuseAnotherPractices: the compliance officer of each
// practice, signed in on the pages, is refused the other practice's
// incident and letters (their page, and every form that acts on them),
// sees none of the other side's patients, and changes nothing there.
func TestIncidentPagesRefuseAnotherPractices(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			for i, own := range ts {
				other := ts[1-i]
				_, secret := st.client(firefox).apiSignIn(own.emails[haven.RoleComplianceOfficer])
				co := st.client(firefox)
				co.signIn(own.emails[haven.RoleComplianceOfficer], secret)
				if r := co.get("/app/incidents/" + own.incident); r.StatusCode != http.StatusOK {
					t.Fatalf("own incident page: %d", r.StatusCode)
				}
				gets := []string{"/app/incidents/" + other.incident, "/app/incident-letters/" + other.letters[0], "/app/incident-letters/" + other.letters[1]}
				for _, path := range gets {
					r := co.get(path)
					body := readAll(t, r)
					if r.StatusCode != http.StatusNotFound {
						t.Errorf("%s: GET %s answered %d", own.id, path, r.StatusCode)
					}
					if strings.Contains(body, other.marker) {
						t.Errorf("GET %s shows the other side's patients", path)
					}
				}
				posts := map[string]url.Values{
					"/app/incidents/" + other.incident + "/scope":          {"account": {own.doctor}, "since": {"2026-11-24T10:00"}, "until": {"2026-11-25T10:00"}},
					"/app/incidents/" + other.incident + "/contain":        {},
					"/app/incidents/" + other.incident + "/assessment":     {"nature": {"n"}, "person": {"p"}, "acquired": {"a"}, "mitigated": {"m"}, "probability": {"low"}},
					"/app/incidents/" + other.incident + "/decision":       {"decision": {"no_breach"}, "reason": {"mine"}},
					"/app/incidents/" + other.incident + "/letters":        {},
					"/app/incident-letters/" + other.letters[0] + "/state": {"state": {"sent"}},
				}
				for path, form := range posts {
					if r := co.post(path, form); r.StatusCode != http.StatusNotFound && r.StatusCode != http.StatusForbidden {
						t.Errorf("%s: POST %s answered %d", own.id, path, r.StatusCode)
					}
				}
			}
			for _, tn := range ts {
				var sent int
				if err := st.db.SQL().QueryRow(`SELECT COUNT(*) FROM incident_letters WHERE practice_id = $1 AND state <> 'drafted'`, tn.id).Scan(&sent); err != nil || sent != 0 {
					t.Errorf("%s: %d letters moved by the other practice (%v)", tn.id, sent, err)
				}
				var state string
				if err := st.db.SQL().QueryRow(`SELECT state FROM incidents WHERE id = $1`, tn.incident).Scan(&state); err != nil || state != haven.IncidentDecided {
					t.Errorf("%s: incident state %q (%v)", tn.id, state, err)
				}
			}
		})
	}
}
