package web_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"haven"
	"haven/internal/testkit"
)

// TestPracticeSettingsOverTheAPI: the admin (freshly signed in) changes
// the detection thresholds; a clinician may read but not change them; a
// patient may not read them; bad input changes nothing.
func TestPracticeSettingsOverTheAPI(t *testing.T) {
	st, ts := newChartStack(t, testkit.SQLite(t))
	p := ts[0]
	adm := st.client(firefox)
	admAuth := adm.signInAny(p.emails[haven.RolePracticeAdmin])
	r := adm.apiAs(admAuth, "GET", "/api/v1/practice/settings", "")
	expectStatus(t, r, http.StatusOK)
	var got map[string]any
	json.NewDecoder(r.Body).Decode(&got)
	if got["bulk_access_patients"] != float64(20) {
		t.Fatalf("defaults %v", got)
	}
	body := `{"patients_require_mfa":false,"bulk_access_patients":5,"bulk_access_window":"5m0s","denials_threshold":4,"denials_window":"10m0s","workday_start_hour":8,"workday_end_hour":18,"time_zone":"America/Chicago","workforce_idle":"10m0s"}`
	expectStatus(t, adm.apiAs(admAuth, "PUT", "/api/v1/practice/settings", body), http.StatusOK)
	expectStatus(t, adm.apiAs(admAuth, "PUT", "/api/v1/practice/settings", `{"bulk_access_patients":1,"bulk_access_window":"5m0s","denials_threshold":4,"denials_window":"10m0s","workday_start_hour":8,"workday_end_hour":18,"time_zone":"UTC"}`), http.StatusBadRequest)
	doc := st.client(firefox)
	docAuth := doc.signInAny(p.emails[haven.RoleClinician])
	r = doc.apiAs(docAuth, "GET", "/api/v1/practice/settings", "")
	expectStatus(t, r, http.StatusOK)
	json.NewDecoder(r.Body).Decode(&got)
	if got["bulk_access_patients"] != float64(5) || got["time_zone"] != "America/Chicago" {
		t.Fatalf("settings not stored, or the bad update changed them: %v", got)
	}
	expectStatus(t, doc.apiAs(docAuth, "PUT", "/api/v1/practice/settings", body), http.StatusForbidden)
	pt := st.client(firefox)
	expectStatus(t, pt.apiAs(pt.signInAny(p.pEmail[0]), "GET", "/api/v1/practice/settings", ""), http.StatusForbidden)
}
