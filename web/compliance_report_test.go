package web_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"haven"
	"haven/internal/testkit"
)

// TestComplianceReportPageAndDownloads: the compliance officer reaches the
// evidence report from her home page and the compliance page, sees it as
// a page and downloads it as HTML, Markdown and JSON, and reads it from
// the API: always her own practice's, whatever another practice's id is
// added to the address; no patient's details in any form; other roles are
// refused every form of it; an unknown format is a bad request.
func TestComplianceReportPageAndDownloads(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			for i, own := range ts {
				other := ts[1-i]
				api := st.client(firefox)
				auth, secret := api.apiSignIn(own.emails[haven.RoleComplianceOfficer])
				co := st.client(firefox)
				co.signIn(own.emails[haven.RoleComplianceOfficer], secret)
				home := readAll(t, co.get("/app"))
				if !strings.Contains(home, `href="/app/compliance/report" id="home-report"`) || !strings.Contains(home, `id="nav-report"`) {
					t.Fatalf("the compliance home has no link to the report:\n%s", home)
				}
				if !strings.Contains(readAll(t, co.get("/app/compliance")), `id="to-report"`) {
					t.Fatal("the compliance page has no link to the report")
				}
				forms := map[string]string{
					"/app/compliance/report":                           "text/html",
					"/app/compliance/report?practice=" + other.id:      "text/html",
					"/app/compliance/report/html":                      "text/html",
					"/app/compliance/report/md":                        "text/markdown",
					"/app/compliance/report/json":                      "application/json",
					"/app/compliance/report/json?practice=" + other.id: "application/json",
				}
				for path, ctype := range forms {
					r := co.get(path)
					body := readAll(t, r)
					if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), ctype) {
						t.Fatalf("%s: %d %q", path, r.StatusCode, r.Header.Get("Content-Type"))
					}
					if strings.Contains(path, "/report/") && !strings.HasPrefix(r.Header.Get("Content-Disposition"), "attachment") {
						t.Errorf("%s is not a download: %q", path, r.Header.Get("Content-Disposition"))
					}
					if !strings.Contains(body, "164.312(d)") || !strings.Contains(body, "TestAuditVerifyCatchesTampering") {
						t.Errorf("%s lacks a control or its tests", path)
					}
					for _, leak := range []string{own.marker, other.marker, other.id, own.patient[0], own.patient[1], own.pEmail[0]} {
						if strings.Contains(body, leak) {
							t.Errorf("%s holds %q", path, leak)
						}
					}
					if ctype == "application/json" {
						var rep struct {
							PracticeID string `json:"practice_id"`
						}
						if err := json.Unmarshal([]byte(body), &rep); err != nil || rep.PracticeID != own.id {
							t.Errorf("%s: the report of %q (%v), want %s", path, rep.PracticeID, err, own.id)
						}
					}
				}
				if r := co.get("/app/compliance/report/pdf"); r.StatusCode != http.StatusBadRequest {
					t.Errorf("an unknown format: %d, want 400", r.StatusCode)
				}
				m := getObject(t, api, auth, "/api/v1/compliance/report?practice_id="+other.id)
				controls := listField(t, m, "controls")
				if m["practice_id"] != own.id || len(controls) < 20 {
					t.Errorf("the API's report: %v", m["practice_id"])
				}
				// The answer has exactly the fields the OpenAPI document names.
				schema := openAPIDoc(t)["components"].(map[string]any)["schemas"].(map[string]any)["ComplianceReport"].(map[string]any)
				props := schema["properties"].(map[string]any)
				expectKeys(t, "the API's report", m, slices.Collect(maps.Keys(props))...)
				item := props["controls"].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any)
				for _, c := range controls {
					expectKeys(t, "a control", c, slices.Collect(maps.Keys(item))...)
				}

				// Every other role: refused, and nothing of the report said.
				for _, role := range []haven.Role{haven.RoleClinician, haven.RoleStaff, haven.RolePracticeAdmin} {
					a := st.client(firefox)
					roleAuth, roleSecret := a.apiSignIn(own.emails[role])
					c := st.client(firefox)
					c.signIn(own.emails[role], roleSecret)
					for _, path := range []string{"/app/compliance/report", "/app/compliance/report/json", "/app/compliance/report/md"} {
						r := c.get(path)
						if body := readAll(t, r); r.StatusCode != http.StatusForbidden || strings.Contains(body, "164.312") {
							t.Errorf("%s: %s answered %d", role, path, r.StatusCode)
						}
					}
					if r := a.apiAs(roleAuth, "GET", "/api/v1/compliance/report", ""); r.StatusCode != http.StatusForbidden {
						t.Errorf("%s: the API answered %d", role, r.StatusCode)
					}
				}
				pat := st.client(firefox)
				if r := pat.apiAs(pat.signInAny(own.pEmail[0]), "GET", "/api/v1/compliance/report", ""); r.StatusCode != http.StatusForbidden {
					t.Errorf("a patient: the API answered %d", r.StatusCode)
				}
			}
		})
	}
}
