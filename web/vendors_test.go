package web_test

import (
	"net/http"
	"strings"
	"testing"

	"haven/internal/testkit"
)

// TestVendorsPageOffersChangesToTheAdminOnly: the compliance officer
// reads the registry (from her navigation) but is offered no form to
// change it; the admin is; a clinician is refused the page.
func TestVendorsPageOffersChangesToTheAdminOnly(t *testing.T) {
	st, ts := newChartStack(t, testkit.SQLite(t))
	own := ts[0]
	co := st.client(firefox)
	co.signIn(own.emails["compliance_officer"], "")
	if home := readAll(t, co.get("/app")); !strings.Contains(home, `href="/app/admin/vendors"`) {
		t.Fatal("the compliance officer has no link to the vendors page")
	}
	body := readAll(t, co.get("/app/admin/vendors"))
	if !strings.Contains(body, "Pharmacy"+own.marker) || strings.Contains(body, `id="vendor-save"`) || strings.Contains(body, `id="retire-`) {
		t.Fatalf("the compliance officer's vendors page:\n%s", body)
	}
	adm := st.client(firefox)
	adm.signIn(own.emails["practice_admin"], "")
	if body := readAll(t, adm.get("/app/admin/vendors")); !strings.Contains(body, `id="vendor-save"`) || !strings.Contains(body, `id="retire-`+own.vendor) {
		t.Fatalf("the admin's vendors page offers no changes:\n%s", body)
	}
	doc := st.client(firefox)
	doc.signIn(own.emails["clinician"], "")
	if r := doc.get("/app/admin/vendors"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("a clinician opening the vendors page: %d", r.StatusCode)
	}
}
