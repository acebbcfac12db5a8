package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/internal/testkit"
)

// TestSettingsPageAsksForAFreshSignIn: the administrator's settings page
// shows the upload limit; saving it after the step-up window has passed
// sends her to the step-up page and changes nothing; a number out of
// range is refused saying the range; a clinician is not shown the form.
func TestSettingsPageAsksForAFreshSignIn(t *testing.T) {
	st, ts := newChartStack(t, testkit.SQLite(t))
	p := ts[0]
	email := p.emails[haven.RolePracticeAdmin]
	_, secret := st.client(firefox).apiSignIn(email)
	adm := st.client(firefox)
	adm.signIn(email, secret)
	r := adm.get("/app/admin/settings")
	if body := readAll(t, r); r.StatusCode != http.StatusOK || !strings.Contains(body, `id="max-upload"`) {
		t.Fatalf("the settings page: %d", r.StatusCode)
	}
	form := url.Values{"max_upload_mib": {"5000"}}
	r = adm.post("/app/admin/settings", form)
	if body := readAll(t, r); r.StatusCode != http.StatusBadRequest || !strings.Contains(body, "between 1 and 2048 MiB") {
		t.Errorf("a limit out of range: %d", r.StatusCode)
	}
	st.clock.Advance(6 * time.Minute)
	r = adm.post("/app/admin/settings", url.Values{"max_upload_mib": {"5"}})
	if loc := r.Header.Get("Location"); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/account/step-up") {
		t.Errorf("saving without a fresh sign-in: %d to %q", r.StatusCode, loc)
	}
	if doc, err := st.db.PracticeSettings(context.Background(), p.id); err != nil || strings.Contains(doc, "max_upload_mib") {
		t.Errorf("the limit changed without a step-up: %q %v", doc, err)
	}
	_, docSecret := st.client(firefox).apiSignIn(p.emails[haven.RoleClinician])
	doc := st.client(firefox)
	doc.signIn(p.emails[haven.RoleClinician], docSecret)
	if r := doc.get("/app/admin/settings"); r.StatusCode != http.StatusForbidden {
		t.Errorf("a clinician's settings page: %d", r.StatusCode)
	}
}
