package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"haven/auth/totp"
)

// apiSignIn signs email in through the JSON API (enrolling an
// authenticator the first time) and returns the bearer header and secret.
func (c *client) apiSignIn(email string) (map[string]string, string) {
	t := c.st.t
	t.Helper()
	var res struct{ Stage, Pending, Token string }
	json.NewDecoder(c.api("POST", "/api/v1/session", map[string]string{"email": email, "password": stackPassword}).Body).Decode(&res)
	if res.Stage != "enrol" {
		t.Fatalf("%s: stage %q", email, res.Stage)
	}
	var en struct{ Secret string }
	json.NewDecoder(c.api("POST", "/api/v1/session/enrol", map[string]string{"pending": res.Pending}).Body).Decode(&en)
	code, _ := totp.Code(en.Secret, c.st.clock.Now())
	json.NewDecoder(c.api("POST", "/api/v1/session/enrol/confirm", map[string]string{"pending": res.Pending, "code": code}).Body).Decode(&res)
	if res.Token == "" {
		t.Fatalf("%s: no session after enrolment", email)
	}
	c.st.clock.Advance(30 * time.Second)
	return map[string]string{"Authorization": "Bearer " + res.Token, "Content-Type": "application/json"}, en.Secret
}

func (c *client) apiAs(auth map[string]string, method, path, body string) *http.Response {
	return c.do(method, path, strings.NewReader(body), auth)
}

var inviteRE = regexp.MustCompile(`https://[^/\s]+(/invite/[A-Za-z0-9_-]{43})`)

// TestAdminDisablesResetsAndInvites: only the practice admin may manage
// accounts; disabling ends sessions at once; a factor reset needs the
// admin's own fresh step-up; an invitation becomes an account that must
// enrol an authenticator.
func TestAdminDisablesResetsAndInvites(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	adm := st.client("haven-admin-tool/1")
	adminAuth, adminSecret := adm.apiSignIn(admin)
	doc := st.client(firefox)
	doc.signIn(doctor, "")

	// A clinician may not disable anyone.
	docToken := doc.cookie("__Host-haven_session").Value
	r := doc.apiAs(map[string]string{"Authorization": "Bearer " + docToken}, "POST", "/api/v1/users/"+st.users[desk]+"/disable", "")
	expectStatus(t, r, http.StatusForbidden)

	expectStatus(t, adm.apiAs(adminAuth, "POST", "/api/v1/users/"+st.users[doctor]+"/disable", ""), http.StatusNoContent)
	expectStatus(t, doc.get("/api/v1/session"), http.StatusUnauthorized)
	expectStatus(t, adm.apiAs(adminAuth, "POST", "/api/v1/users/"+st.users[doctor]+"/enable", ""), http.StatusNoContent)

	// A factor reset after the step-up window asks for a step-up first.
	st.clock.Advance(6 * time.Minute)
	r = adm.apiAs(adminAuth, "POST", "/api/v1/users/"+st.users[doctor]+"/mfa/reset", "")
	expectStatus(t, r, http.StatusForbidden)
	if !strings.Contains(readAll(t, r), `"step_up"`) {
		t.Fatal("the reset did not ask for a step-up")
	}
	code, _ := totp.Code(adminSecret, st.clock.Now())
	expectStatus(t, adm.apiAs(adminAuth, "POST", "/api/v1/session/step-up", `{"code":"`+code+`"}`), http.StatusNoContent)
	expectStatus(t, adm.apiAs(adminAuth, "POST", "/api/v1/users/"+st.users[doctor]+"/mfa/reset", ""), http.StatusNoContent)
	res := doc.post("/login", url.Values{"email": {doctor}, "password": {stackPassword}})
	expectRedirect(t, res, "/login/mfa")
	if page := readAll(t, doc.get("/login/mfa")); !strings.Contains(page, `id="totp-secret"`) {
		t.Fatal("after the reset, the clinician is not asked to enrol again")
	}

	// An invitation, accepted once, leads to enrolment.
	expectStatus(t, adm.apiAs(adminAuth, "POST", "/api/v1/invitations", `{"email":"nurse@riverside.example","role":"staff"}`), http.StatusAccepted)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := st.mail.Wait(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := inviteRE.FindStringSubmatch(msgs[0].Text)
	if m == nil || msgs[0].To != "nurse@riverside.example" {
		t.Fatalf("invitation email: %+v", msgs[0])
	}
	nurse := st.client(firefox)
	if page := readAll(t, nurse.get(m[1])); !strings.Contains(page, "nurse@riverside.example") {
		t.Fatal("the invitation page does not say who is invited")
	}
	form := url.Values{"name": {"Nia Nurse"}, "password": {"lanterns along the quay"}, "confirm": {"lanterns along the quay"}}
	expectRedirect(t, nurse.post(m[1], form), "/login/mfa")
	expectStatus(t, st.client(firefox).post(m[1], form), http.StatusNotFound)
}
