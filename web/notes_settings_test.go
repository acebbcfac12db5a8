package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"haven"
)

// TestAdminSetsTheNotesRelease: the practice's administrator sets from
// the settings page how many days after signing a patient sees her visit
// note; a value out of range is refused in words, the page shows what is
// stored, and a clinician cannot change it.
func TestAdminSetsTheNotesRelease(t *testing.T) {
	adminStacks(t, func(t *testing.T, st *authStack, ts [2]*tenant) {
		adm := st.client(firefox)
		adm.signIn(ts[0].emails[haven.RolePracticeAdmin], "")
		body := readAll(t, adm.get("/app/admin/settings"))
		if !strings.Contains(body, `name="note_release_days"`) || !strings.Contains(body, `value="0"`) {
			t.Fatalf("the settings page has no release control at 0:\n%s", body)
		}
		r := adm.post("/app/admin/settings", url.Values{"max_upload_mib": {""}, "note_release_days": {"400"}})
		if out := readAll(t, r); r.StatusCode != http.StatusBadRequest || !strings.Contains(out, "days after signing") {
			t.Fatalf("400 days: %d\n%s", r.StatusCode, out)
		}
		r = adm.post("/app/admin/settings", url.Values{"max_upload_mib": {""}, "note_release_days": {"3"}})
		readAll(t, r)
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("3 days: %d", r.StatusCode)
		}
		r = adm.get(r.Header.Get("Location"))
		if out := readAll(t, r); r.StatusCode != http.StatusOK || !strings.Contains(out, "The settings are saved") || !strings.Contains(out, `id="note-release-days" min="0" max="90" step="1" inputmode="numeric" value="3"`) {
			t.Fatalf("after saving 3 days: %d\n%s", r.StatusCode, out)
		}
		doc := st.client(firefox)
		doc.signIn(ts[0].emails[haven.RoleClinician], "")
		r = doc.post("/app/admin/settings", url.Values{"note_release_days": {"0"}})
		if readAll(t, r); r.StatusCode != http.StatusForbidden {
			t.Fatalf("a clinician changes the notes' release: %d", r.StatusCode)
		}
	})
}
