package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestEnrolmentOffersAPasskeyWhenPasskeysAreOn: a first sign-in's
// enrolment page offers a passkey beside the authenticator app (and only
// the app where passkeys are off); the options are for the pending
// sign-in's own account, and need one.
func TestEnrolmentOffersAPasskeyWhenPasskeysAreOn(t *testing.T) {
	t.Parallel()
	plain := newAuthStack(t, false)
	c := plain.client(firefox)
	expectRedirect(t, c.post("/login", url.Values{"email": {doctor}, "password": {stackPassword}}), "/login/mfa")
	if page := readAll(t, c.get("/login/mfa")); strings.Contains(page, `data-passkey="enrol"`) || !strings.Contains(page, `id="totp-qr"`) {
		t.Fatalf("the enrolment page without passkeys:\n%s", page)
	}

	st := newAuthStack(t, false)
	st.withPasskeys()
	c = st.client(firefox)
	expectRedirect(t, c.post("/login", url.Values{"email": {doctor}, "password": {stackPassword}}), "/login/mfa")
	page := readAll(t, c.get("/login/mfa"))
	for _, want := range []string{`id="passkey-enrol"`, `data-passkey="enrol"`, `src="/static/webauthn.js"`, `id="totp-qr"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("the enrolment page lacks %s:\n%s", want, page)
		}
	}
	r := c.postOptions("/login/enrol/passkey/options")
	expectStatus(t, r, http.StatusOK)
	var o struct {
		PublicKey struct {
			Challenge string              `json:"challenge"`
			RP        struct{ ID string } `json:"rp"`
			User      struct{ ID string } `json:"user"`
		} `json:"publicKey"`
	}
	if err := json.NewDecoder(r.Body).Decode(&o); err != nil || o.PublicKey.RP.ID != "localhost" || len(o.PublicKey.Challenge) < 43 {
		t.Fatalf("enrolment options %+v, %v", o, err)
	}
	// No pending sign-in, no options; a bad answer leaves the sign-in
	// pending and the page says so; another site cannot post either.
	expectStatus(t, st.client(firefox).postOptions("/login/enrol/passkey/options"), http.StatusUnauthorized)
	r = c.post("/login/enrol/passkey", url.Values{"credential": {`{"id":"x"}`}})
	expectStatus(t, r, http.StatusBadRequest)
	if page := readAll(t, r); !strings.Contains(page, `id="error"`) || !strings.Contains(page, `id="passkey-enrol"`) {
		t.Fatalf("the refused enrolment:\n%s", page)
	}
	if c.cookie("__Host-haven_session") != nil {
		t.Fatal("a session without a second factor")
	}
	for _, path := range []string{"/login/enrol/passkey/options", "/login/enrol/passkey"} {
		r := c.do("POST", path, strings.NewReader("credential=x"), map[string]string{
			"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
		expectStatus(t, r, http.StatusForbidden)
	}
}
