package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"haven"
	"haven/internal/testkit"
)

// TestChartPagesRenderForTheirRoles signs each role in through the pages
// and opens its screens: each renders with the seeded content it should
// show, and a role's page refuses the wrong role.
func TestChartPagesRenderForTheirRoles(t *testing.T) {
	st, ts := newChartStack(t, testkit.SQLite(t))
	p := ts[0]
	page := func(c *client, path string, want ...string) string {
		t.Helper()
		r := c.get(path)
		body := readAll(t, r)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d\n%s", path, r.StatusCode, body)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Fatalf("%s lacks %q:\n%s", path, w, body)
			}
		}
		return body
	}

	doc := st.client(firefox)
	doc.signIn(p.emails[haven.RoleClinician], "")
	page(doc, "/app/patients", "Name"+p.marker+"0")
	page(doc, "/app/patients/"+p.patient[0], "Name"+p.marker+"0", "MRN-"+p.marker+"-0", "Care team")
	body := page(doc, "/app/patients/"+p.patient[1], "break-glass")
	if strings.Contains(body, "Name"+p.marker+"1") {
		t.Fatal("the break-glass offer showed the chart it guards")
	}
	if strings.Contains(page(doc, "/app/patients/"+p.patient[0]), "break-glass-banner") {
		t.Fatal("a chart opened through the care team claims emergency access")
	}
	// The clinician breaks the glass from the offer: the chart opens with a
	// banner saying so and when the access ends.
	expectRedirect(t, doc.post("/app/patients/"+p.patient[1]+"/break-glass", url.Values{"reason": {"found collapsed in the waiting room"}, "minutes": {"30"}}), "/app/patients/"+p.patient[1])
	page(doc, "/app/patients/"+p.patient[1], `id="break-glass-banner"`, "Emergency access", "which ends", "Name"+p.marker+"1")
	if r := doc.get("/app/compliance"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("clinician reached the compliance screen: %d", r.StatusCode)
	}

	co := st.client(firefox)
	co.signIn(p.emails[haven.RoleComplianceOfficer], "")
	page(co, "/app/compliance", "Open alerts", "Emergency access (break-glass)", "Break-glass uses to review", "emergency: unconscious", "opened the patient&#39;s record")
	page(co, "/app/compliance?patient="+p.patient[1]+"&decision=allow", "opened the patient&#39;s record in an emergency (break-glass)", "Name"+p.marker+"1")
	r := co.post("/app/compliance/break-glass/"+p.grant+"/review", url.Values{"note": {"checked with the ER"}})
	expectRedirect(t, r, "/app/compliance")
	if body := page(co, "/app/compliance"); strings.Contains(body, "emergency: unconscious") {
		t.Fatal("a reviewed grant is still in the queue")
	}

	adm := st.client(firefox)
	adm.signIn(p.emails[haven.RolePracticeAdmin], "")
	page(adm, "/app/care-teams?patient="+p.patient[1], "Add to care team")
	expectRedirect(t, adm.post("/app/care-teams", url.Values{"patient": {p.patient[1]}, "user": {p.doctor}}), "/app/care-teams")
	if body := page(adm, "/app/care-teams?patient="+p.patient[1]); strings.Contains(body, "Name"+p.marker) {
		t.Fatal("the admin's care-team page showed chart content")
	}
	if r := adm.get("/app/patients/" + p.patient[1]); r.StatusCode != http.StatusForbidden {
		t.Fatalf("admin opened a chart: %d", r.StatusCode)
	}
	// Now on the care team, the clinician sees patient B's chart.
	page(doc, "/app/patients/"+p.patient[1], "Name"+p.marker+"1")

	pt := st.client(firefox)
	expectRedirect(t, pt.post("/login", url.Values{"email": {p.pEmail[0]}, "password": {stackPassword}}), "/app")
	page(pt, "/app/history", "Who saw my record", "opened your record")
	if r := pt.get("/app/patients/" + p.patient[1]); r.StatusCode != http.StatusNotFound {
		t.Fatalf("a patient opened another patient's chart page: %d", r.StatusCode)
	}
}
