package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"haven"
	"haven/internal/testkit"
)

// TestSettingsPageSetsWorkforceNetworks: the administrator sees the
// networks field with the address she is connected from; a mistyped
// network is refused naming it, with what she typed kept to correct; a
// list leaving out her own address is refused as a lock-out; neither
// changes anything; a good list is saved and shown again.
func TestSettingsPageSetsWorkforceNetworks(t *testing.T) {
	t.Parallel()
	st, ts := newChartStack(t, testkit.SQLite(t))
	p := ts[0]
	email := p.emails[haven.RolePracticeAdmin]
	_, secret := st.client(firefox).apiSignIn(email)
	adm := st.client(firefox)
	adm.signIn(email, secret)
	r := adm.get("/app/admin/settings")
	if body := readAll(t, r); r.StatusCode != http.StatusOK || !strings.Contains(body, `id="workforce-networks"`) ||
		!strings.Contains(body, "connected from 127.0.0.1") {
		t.Fatalf("the settings page: %d\n%s", r.StatusCode, body)
	}
	stored := func() string {
		doc, err := st.db.PracticeSettings(context.Background(), p.id)
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	for _, c := range []struct{ typed, want string }{
		{"127.0.0.0/8\n10.0.0.0/33", "&#34;10.0.0.0/33&#34; is not a network"},
		{"198.51.100.0/24", "lock you out"},
	} {
		r := adm.post("/app/admin/settings", url.Values{"workforce_networks": {c.typed}, "note_release_days": {"0"}})
		body := readAll(t, r)
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(body, c.want) || !strings.Contains(body, strings.Split(c.typed, "\n")[0]) {
			t.Fatalf("%q: %d, want 400 saying %q\n%s", c.typed, r.StatusCode, c.want, body)
		}
		if doc := stored(); strings.Contains(doc, "workforce_networks") {
			t.Fatalf("a refused list was stored: %s", doc)
		}
	}
	r = adm.post("/app/admin/settings", url.Values{"workforce_networks": {"127.0.0.0/8\r\n203.0.113.0/24, 2001:db8::/48"}, "note_release_days": {"0"}})
	if loc := r.Header.Get("Location"); r.StatusCode != http.StatusSeeOther || loc != "/app/admin/settings?done=saved" {
		t.Fatalf("a good list: %d to %q\n%s", r.StatusCode, loc, readAll(t, r))
	}
	if doc := stored(); !strings.Contains(doc, `"workforce_networks":["127.0.0.0/8","203.0.113.0/24","2001:db8::/48"]`) {
		t.Fatalf("stored: %s", doc)
	}
	if body := readAll(t, adm.get("/app/admin/settings")); !strings.Contains(body, "203.0.113.0/24") {
		t.Fatal("the saved list is not shown")
	}
}
