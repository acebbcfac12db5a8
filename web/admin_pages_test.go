package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"haven"
	"haven/auth/totp"
	"haven/identity"
	"haven/internal/testkit"
	"haven/service"
	"haven/web"
)

// adminStacks runs fn on the two-practice stack over SQLite and, when
// available (always in CI), PostgreSQL.
func adminStacks(t *testing.T, fn func(t *testing.T, st *authStack, ts [2]*tenant)) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			fn(t, st, ts)
		})
	}
}

var formTokenRE = regexp.MustCompile(`name="form_token" value="([A-Za-z0-9_-]{43})"`)

// adminPage GETs path, expects 200 and returns the body and the page's
// form token.
func (c *client) adminPage(path string) (string, string) {
	t := c.st.t
	t.Helper()
	r := c.get(path)
	body := readAll(t, r)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d\n%s", path, r.StatusCode, body)
	}
	m := formTokenRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("%s: no form token on the page", path)
	}
	return body, m[1]
}

// adminPost posts a form with token (none when "") from the page's origin.
func (c *client) adminPost(path, token string, form url.Values) *http.Response {
	if form == nil {
		form = url.Values{}
	}
	if token != "" {
		form.Set("form_token", token)
	}
	return c.post(path, form)
}

// forgeFormToken gives a client a form token of its own making, as an
// insider could in their own browser: the token proves the form came from
// this site, never that its sender may act.
func (c *client) forgeFormToken() string {
	u, _ := url.Parse(c.st.base)
	tok := strings.Repeat("A", 43)
	c.jar.SetCookies(u, []*http.Cookie{{Name: web.FormCookie, Value: tok, Path: "/", Secure: true}})
	return tok
}

// auditCount counts events in a practice's log matching the conditions.
func auditCount(t *testing.T, st *authStack, practice, actor, action, resource, decision string) int {
	t.Helper()
	var n int
	err := st.db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE log_id = $1 AND actor_id = $2 AND action = $3
		AND ($4 = '' OR resource_id = $4) AND decision = $5`, practice, actor, action, resource, decision).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func disabled(t *testing.T, st *authStack, userID string) bool {
	t.Helper()
	u, err := st.db.FindUserByID(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return u.Disabled
}

func hasTOTP(t *testing.T, st *authStack, userID string) bool {
	t.Helper()
	r, err := st.db.TOTP(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return r.Active()
}

// TestAdminPeoplePageListsTheWorkforceAndNoPatients: the admin sees their
// practice's workforce with role, status, second factor and last sign-in,
// and the pending invitations with their expiry; not another practice's
// people and not a single patient; the read is audited per list and per
// account; only the admin has the link.
func TestAdminPeoplePageListsTheWorkforceAndNoPatients(t *testing.T) {
	adminStacks(t, func(t *testing.T, st *authStack, ts [2]*tenant) {
		a, b := ts[0], ts[1]
		adm := st.client(firefox)
		adm.signIn(a.emails[haven.RolePracticeAdmin], "")
		signedInAt := st.clock.Now().Add(-30 * time.Second)
		if home := readAll(t, adm.get("/app")); !strings.Contains(home, `href="/app/admin/users"`) {
			t.Fatal("the admin's home page has no link to the people page")
		}
		body, tok := adm.adminPage("/app/admin/users")
		for _, role := range []haven.Role{haven.RoleClinician, haven.RoleStaff, haven.RolePracticeAdmin, haven.RoleComplianceOfficer} {
			if !strings.Contains(body, a.emails[role]) {
				t.Errorf("the list lacks the %s %s", role, a.emails[role])
			}
			if strings.Contains(body, b.emails[role]) {
				t.Errorf("the list shows another practice's %s", role)
			}
		}
		adminRow := rowOf(t, body, st.users[a.emails[haven.RolePracticeAdmin]])
		for _, want := range []string{"(you)", "practice_admin", "active", "authenticator app", signedInAt.Format("2 Jan 2006 15:04 MST")} {
			if !strings.Contains(adminRow, want) {
				t.Errorf("the admin's own row lacks %q: %s", want, adminRow)
			}
		}
		if strings.Contains(adminRow, "/disable") {
			t.Error("the admin's own row offers to disable it")
		}
		docRow := rowOf(t, body, a.doctor)
		for _, want := range []string{"clinician", "active", "none yet", "never", `/users/` + a.doctor + `/disable`} {
			if !strings.Contains(docRow, want) {
				t.Errorf("the clinician's row lacks %q: %s", want, docRow)
			}
		}
		for j := range 2 {
			if strings.Contains(body, a.pEmail[j]) || strings.Contains(body, "Name"+a.marker) {
				t.Fatal("the people page lists a patient")
			}
		}
		if !strings.Contains(body, `id="no-invitations"`) {
			t.Fatal("no invitations yet, but the page shows some")
		}

		expectRedirect(t, adm.adminPost("/app/admin/invitations", tok, url.Values{"email": {"new.doctor@riverside.example"}, "role": {"clinician"}}),
			"/app/admin/users?done=invited")
		body, _ = adm.adminPage("/app/admin/users?done=invited")
		expires := st.clock.Now().Add(identity.InvitationTTL).Format("2 Jan 2006 15:04 MST")
		if !strings.Contains(body, "new.doctor@riverside.example") || !strings.Contains(body, expires) || !strings.Contains(body, "The invitation is on its way") {
			t.Fatalf("the pending invitation and its expiry (%s) are not shown:\n%s", expires, body)
		}
		if sent := st.mail.Sent(); len(sent) != 1 || sent[0].To != "new.doctor@riverside.example" {
			t.Fatalf("invitation emails: %+v", sent)
		}

		admID := st.users[a.emails[haven.RolePracticeAdmin]]
		// The home page counts the work queues from the list once; the
		// people page read it twice.
		if n := auditCount(t, st, a.id, admID, "user.manage", "workforce", "allow"); n != 3 {
			t.Fatalf("%d audited list reads, want 3", n)
		}
		if n := auditCount(t, st, a.id, admID, "user.manage", a.doctor, "allow"); n != 3 {
			t.Fatalf("%d audited openings of the clinician's account, want 3", n)
		}

		for _, role := range []haven.Role{haven.RoleClinician, haven.RoleStaff, haven.RoleComplianceOfficer} {
			c := st.client(firefox)
			c.signIn(a.emails[role], "")
			if strings.Contains(readAll(t, c.get("/app")), "/app/admin/users") {
				t.Errorf("the %s's home page links to the people page", role)
			}
			if strings.Contains(readAll(t, c.get("/app/patients")), "/app/admin/users") {
				t.Errorf("the %s's navigation links to the people page", role)
			}
		}
	})
}

// rowOf returns the table row of userID in a people page.
func rowOf(t *testing.T, body, userID string) string {
	t.Helper()
	i := strings.Index(body, `<tr id="user-`+userID+`"`)
	if i < 0 {
		t.Fatalf("no row for %s", userID)
	}
	row, _, _ := strings.Cut(body[i:], "</tr>")
	return row
}

// TestAdminPeoplePagesRefuseOtherRolesAndPractices: the front desk,
// clinicians, the compliance officer and patients are refused the pages
// and every action, even with a form token of their own (a patient is
// told a named account is "not found", as for a random id); another
// practice's admin gets "not found" for this practice's ids, to read, to
// disable, to re-enable, to reset a factor or to send a setup link, and
// nothing changes. Every refusal that reaches the gate is audited.
func TestAdminPeoplePagesRefuseOtherRolesAndPractices(t *testing.T) {
	adminStacks(t, func(t *testing.T, st *authStack, ts [2]*tenant) {
		a, b := ts[0], ts[1]
		doc := st.client(firefox)
		doc.signIn(a.emails[haven.RoleClinician], "")
		target := st.users[a.emails[haven.RoleStaff]]

		type who struct{ email, id string }
		people := []who{{a.emails[haven.RoleClinician], a.doctor}, {a.emails[haven.RoleStaff], target},
			{a.emails[haven.RoleComplianceOfficer], st.users[a.emails[haven.RoleComplianceOfficer]]}, {a.pEmail[0], a.patient[0]}}
		for _, p := range people {
			c := st.client(firefox)
			if p.id == a.patient[0] {
				expectRedirect(t, c.post("/login", url.Values{"email": {p.email}, "password": {stackPassword}}), "/app")
			} else if p.id == a.doctor {
				c = doc
			} else {
				c.signIn(p.email, "")
			}
			tok := c.forgeFormToken()
			before := denials(t, st.db, p.id)
			expectStatus(t, c.get("/app/admin/users"), http.StatusForbidden)
			// A patient is told a workforce member's id is "not found", as
			// a random id is (the id would otherwise be confirmed real).
			named := http.StatusForbidden
			if p.id == a.patient[0] {
				named = http.StatusNotFound
			}
			expectStatus(t, c.get("/app/admin/users/"+target), named)
			for _, action := range []string{"disable", "mfa-reset"} {
				if r := c.adminPost("/app/admin/users/"+target+"/"+action, tok, nil); r.StatusCode != named {
					t.Errorf("%s: %s answered %d", p.email, action, r.StatusCode)
				}
			}
			r := c.adminPost("/app/admin/invitations", tok, url.Values{"email": {"mole@evil.example"}, "role": {"practice_admin"}})
			expectStatus(t, r, http.StatusForbidden)
			expectStatus(t, c.adminPost("/app/admin/patients/find", tok, url.Values{"email": {a.pEmail[1]}}), http.StatusForbidden)
			if after := denials(t, st.db, p.id); after < before+6 {
				t.Errorf("%s: %d refusals audited, want 6", p.email, after-before)
			}
		}

		// Practice B's admin, attacking with practice A's ids.
		other := st.client(firefox)
		other.signIn(b.emails[haven.RolePracticeAdmin], "")
		otherID := st.users[b.emails[haven.RolePracticeAdmin]]
		_, tok := other.adminPage("/app/admin/users")
		before := denials(t, st.db, otherID)
		for _, id := range []string{a.doctor, a.patient[0], st.users[a.emails[haven.RolePracticeAdmin]]} {
			if r := other.get("/app/admin/users/" + id); r.StatusCode != http.StatusNotFound {
				t.Fatalf("another practice's admin read an account: %d", r.StatusCode)
			}
			for _, action := range []string{"disable", "enable", "mfa-reset"} {
				if r := other.adminPost("/app/admin/users/"+id+"/"+action, tok, nil); r.StatusCode != http.StatusNotFound {
					t.Fatalf("another practice's admin: %s answered %d", action, r.StatusCode)
				}
			}
		}
		expectStatus(t, other.adminPost("/app/admin/users/"+a.patient[0]+"/account-setup", tok, nil), http.StatusNotFound)
		r := other.adminPost("/app/admin/patients/find", tok, url.Values{"email": {a.pEmail[0]}})
		if body := readAll(t, r); r.StatusCode != http.StatusNotFound || strings.Contains(body, "Name"+a.marker) {
			t.Fatalf("another practice's patient found by email: %d", r.StatusCode)
		}
		if after := denials(t, st.db, otherID); after < before+12 {
			t.Fatalf("%d cross-practice refusals audited, want 12", after-before)
		}

		// Nothing changed: the clinician is still signed in and enrolled.
		expectStatus(t, doc.get("/api/v1/session"), http.StatusOK)
		if disabled(t, st, a.doctor) || !hasTOTP(t, st, a.doctor) || disabled(t, st, target) {
			t.Fatal("a refused action changed an account")
		}
		if len(st.mail.Sent()) != 0 {
			t.Fatalf("a refused action sent email: %+v", st.mail.Sent())
		}
	})
}

// TestAdminDisablingEndsTheUsersSessions: disabling a clinician from the
// people list ends their session at once (their next request is signed
// out) and stops their sign-in; re-enabling lets them back in with the
// same authenticator. Both are audited.
func TestAdminDisablingEndsTheUsersSessions(t *testing.T) {
	adminStacks(t, func(t *testing.T, st *authStack, ts [2]*tenant) {
		a := ts[0]
		doc := st.client(firefox)
		secret := doc.signIn(a.emails[haven.RoleClinician], "")
		expectStatus(t, doc.get("/app"), http.StatusOK)

		adm := st.client(firefox)
		adm.signIn(a.emails[haven.RolePracticeAdmin], "")
		admID := st.users[a.emails[haven.RolePracticeAdmin]]
		_, tok := adm.adminPage("/app/admin/users")
		expectRedirect(t, adm.adminPost("/app/admin/users/"+a.doctor+"/disable", tok, url.Values{"from": {"list"}}), "/app/admin/users?done=disabled")

		expectRedirect(t, doc.get("/app"), "/login")
		expectStatus(t, doc.get("/api/v1/session"), http.StatusUnauthorized)
		r := st.client(firefox).post("/login", url.Values{"email": {a.emails[haven.RoleClinician]}, "password": {stackPassword}})
		expectStatus(t, r, http.StatusUnauthorized)
		body, tok := adm.adminPage("/app/admin/users?done=disabled")
		if row := rowOf(t, body, a.doctor); !strings.Contains(row, "disabled") || !strings.Contains(row, "/enable") {
			t.Fatalf("the disabled clinician's row: %s", row)
		}
		if auditCount(t, st, a.id, admID, "user.disable", a.doctor, "allow") != 1 {
			t.Fatal("the disable is not in the audit log")
		}

		expectRedirect(t, adm.adminPost("/app/admin/users/"+a.doctor+"/enable", tok, nil), "/app/admin/users/"+a.doctor+"?done=enabled")
		if auditCount(t, st, a.id, admID, "user.disable", a.doctor, "allow") != 2 {
			t.Fatal("the re-enable is not in the audit log")
		}
		again := st.client(firefox)
		again.signIn(a.emails[haven.RoleClinician], secret)
		expectStatus(t, again.get("/app"), http.StatusOK)
	})
}

// TestAdminFactorResetNeedsARecentStepUp: a reset asked for after the
// step-up window sends the admin to the step-up page and changes nothing;
// after the step-up the admin lands back on the account, confirms, and the
// clinician's authenticator is gone, their session ended, and they enrol
// afresh at their next sign-in. The refusal and the reset are audited.
func TestAdminFactorResetNeedsARecentStepUp(t *testing.T) {
	adminStacks(t, func(t *testing.T, st *authStack, ts [2]*tenant) {
		a := ts[0]
		doc := st.client(firefox)
		doc.signIn(a.emails[haven.RoleClinician], "")
		adm := st.client(firefox)
		admSecret := adm.signIn(a.emails[haven.RolePracticeAdmin], "")
		admID := st.users[a.emails[haven.RolePracticeAdmin]]

		st.clock.Advance(6 * time.Minute)
		page := "/app/admin/users/" + a.doctor
		body, tok := adm.adminPage(page)
		if !strings.Contains(body, `id="mfa-reset"`) {
			t.Fatal("no reset offered for an enrolled clinician")
		}
		next := page + "?confirm=mfa-reset"
		expectRedirect(t, adm.adminPost(page+"/mfa-reset", tok, nil), "/account/step-up?next="+url.QueryEscape(next))
		if !hasTOTP(t, st, a.doctor) {
			t.Fatal("the reset went through without a step-up")
		}
		expectStatus(t, doc.get("/api/v1/session"), http.StatusOK)
		if auditCount(t, st, a.id, admID, "mfa.reset", a.doctor, "deny") != 1 {
			t.Fatal("the refused reset is not in the audit log")
		}

		code, _ := totp.Code(admSecret, st.clock.Now())
		expectRedirect(t, adm.post("/account/step-up", url.Values{"kind": {"totp"}, "code": {code}, "next": {next}}), next)
		body, tok = adm.adminPage(next)
		if !strings.Contains(body, `id="confirm-mfa-reset"`) {
			t.Fatal("back from the step-up, the page does not offer to confirm the reset")
		}
		expectRedirect(t, adm.adminPost(page+"/mfa-reset", tok, nil), page+"?done=mfa-reset")
		if hasTOTP(t, st, a.doctor) {
			t.Fatal("the authenticator survived the reset")
		}
		expectStatus(t, doc.get("/api/v1/session"), http.StatusUnauthorized)
		if auditCount(t, st, a.id, admID, "mfa.reset", a.doctor, "allow") != 1 {
			t.Fatal("the reset is not in the audit log")
		}
		fresh := st.client(firefox)
		expectRedirect(t, fresh.post("/login", url.Values{"email": {a.emails[haven.RoleClinician]}, "password": {stackPassword}}), "/login/mfa")
		if page := readAll(t, fresh.get("/login/mfa")); !strings.Contains(page, `id="totp-secret"`) {
			t.Fatal("after the reset, the clinician is not asked to enrol again")
		}
	})
}

// TestAdminCannotDisableOrResetThemselves: the admin's own account offers
// neither action and the service refuses both; and the practice's last
// active admin is never disabled, even when two admins disable each other
// at the same moment.
func TestAdminCannotDisableOrResetThemselves(t *testing.T) {
	adminStacks(t, func(t *testing.T, st *authStack, ts [2]*tenant) {
		a := ts[0]
		adm := st.client(firefox)
		adm.signIn(a.emails[haven.RolePracticeAdmin], "")
		admID := st.users[a.emails[haven.RolePracticeAdmin]]
		self := "/app/admin/users/" + admID
		_, tok := adm.adminPage("/app/admin/users")
		r := adm.get(self)
		body := readAll(t, r)
		expectStatus(t, r, http.StatusOK)
		if !strings.Contains(body, `id="self-note"`) || strings.Contains(body, `id="disable"`) || strings.Contains(body, `id="mfa-reset"`) {
			t.Fatal("the admin's own page offers to disable or reset it")
		}
		r = adm.adminPost(self+"/disable", tok, nil)
		expectStatus(t, r, http.StatusBadRequest)
		if !strings.Contains(readAll(t, r), "your own account") {
			t.Fatal("the refusal does not say why")
		}
		expectStatus(t, adm.adminPost(self+"/mfa-reset", tok, nil), http.StatusForbidden) // within the step-up window
		if disabled(t, st, admID) || !hasTOTP(t, st, admID) {
			t.Fatal("the admin disabled or reset themselves")
		}
		expectStatus(t, adm.get("/app/admin/users"), http.StatusOK)

		// Two admins, each disabling the other at once, again and again.
		ctx := context.Background()
		second, err := st.svc.CreateUser(ctx, service.NewUser{PracticeID: a.id, Role: haven.RolePracticeAdmin, Email: "second.admin@riverside.example",
			Name: "Second", Password: stackPassword})
		if err != nil {
			t.Fatal(err)
		}
		as := func(id string) context.Context {
			return haven.NewContextWithActor(ctx, haven.Actor{UserID: id, PracticeID: a.id, Role: haven.RolePracticeAdmin, MFA: true,
				AuthTime: st.clock.Now(), SessionID: "s-" + id, ClientAddr: "127.0.0.1", RequestID: "race"})
		}
		for round := range 10 {
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, pair := range [][2]string{{admID, second.ID}, {second.ID, admID}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = st.id.SetDisabled(as(pair[0]), pair[1], true)
				}()
			}
			wg.Wait()
			active := 0
			for _, id := range []string{admID, second.ID} {
				if !disabled(t, st, id) {
					active++
				}
			}
			if active != 1 {
				t.Fatalf("round %d: %d admins active (%v)", round, active, errs)
			}
			for _, err := range errs {
				if err != nil && haven.ErrorCode(err) != haven.ECONFLICT {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			for _, id := range []string{admID, second.ID} {
				if err := st.db.SetUserDisabled(ctx, id, false); err != nil {
					t.Fatal(err)
				}
			}
		}
		if auditCount(t, st, a.id, admID, "user.disable", "", "deny")+auditCount(t, st, a.id, second.ID, "user.disable", "", "deny") != 10 {
			t.Fatal("the refused last-admin disables are not all in the audit log")
		}
	})
}

// TestAdminFormsWithoutTheirTokenAreRefused: a post to the admin forms
// without the form token, with another token, or from another site with
// the right one, is refused and changes nothing; the same form with its
// token goes through.
func TestAdminFormsWithoutTheirTokenAreRefused(t *testing.T) {
	adminStacks(t, func(t *testing.T, st *authStack, ts [2]*tenant) {
		a := ts[0]
		adm := st.client(firefox)
		adm.signIn(a.emails[haven.RolePracticeAdmin], "")
		_, tok := adm.adminPage("/app/admin/users")
		disable := "/app/admin/users/" + a.doctor + "/disable"
		invite := url.Values{"email": {"mole@evil.example"}, "role": {"practice_admin"}}

		expectStatus(t, adm.adminPost(disable, "", nil), http.StatusForbidden)
		expectStatus(t, adm.adminPost(disable, strings.Repeat("B", 43), nil), http.StatusForbidden)
		expectStatus(t, adm.adminPost("/app/admin/invitations", "", invite), http.StatusForbidden)
		expectStatus(t, adm.adminPost("/app/admin/patients/find", "", url.Values{"email": {a.pEmail[0]}}), http.StatusForbidden)
		// The right token, but the session's browser no longer holds the
		// cookie it must match (a token copied out of a page).
		u, _ := url.Parse(st.base)
		adm.jar.SetCookies(u, []*http.Cookie{{Name: web.FormCookie, Value: "", Path: "/", MaxAge: -1, Secure: true}})
		expectStatus(t, adm.adminPost(disable, tok, nil), http.StatusForbidden)
		_, tok = adm.adminPage("/app/admin/users")
		evil := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
		expectStatus(t, adm.do("POST", disable, strings.NewReader(url.Values{"form_token": {tok}}.Encode()), evil), http.StatusForbidden)

		if disabled(t, st, a.doctor) || len(st.mail.Sent()) != 0 {
			t.Fatal("a refused form changed something")
		}
		expectRedirect(t, adm.adminPost(disable, tok, nil), "/app/admin/users/"+a.doctor+"?done=disabled")
		if !disabled(t, st, a.doctor) {
			t.Fatal("the form with its token did not go through")
		}
	})
}

// TestAdminHelpsAPatientFoundByEmail: the admin reaches one patient's
// account only by the exact email the patient gives; opening it lands in
// the patient's access history; a patient registered without a password
// gets the account-setup link, one who has a password does not. Invitations
// are for roles policy lets the admin grant, and an admin's invitation
// needs a step-up.
func TestAdminHelpsAPatientFoundByEmail(t *testing.T) {
	adminStacks(t, func(t *testing.T, st *authStack, ts [2]*tenant) {
		a := ts[0]
		ctx := context.Background()
		desk := haven.NewContextWithActor(ctx, haven.Actor{UserID: st.users[a.emails[haven.RoleStaff]], PracticeID: a.id, Role: haven.RoleStaff,
			MFA: true, AuthTime: st.clock.Now(), SessionID: "seed", ClientAddr: "127.0.0.1", RequestID: "seed"})
		newcomer, err := st.svc.RegisterPatient(desk, service.NewPatient{MRN: "NEW-1", Demographics: service.Demographics{Name: "Nadia Newcomer", DateOfBirth: "1990-05-06"},
			Contact: service.Contact{Email: "nadia@patients.example"}})
		if err != nil {
			t.Fatal(err)
		}
		adm := st.client(firefox)
		admSecret := adm.signIn(a.emails[haven.RolePracticeAdmin], "")
		admID := st.users[a.emails[haven.RolePracticeAdmin]]
		_, tok := adm.adminPage("/app/admin/users")

		r := adm.adminPost("/app/admin/patients/find", tok, url.Values{"email": {"  Nadia@Patients.example "}})
		body := readAll(t, r)
		if r.StatusCode != http.StatusOK || !strings.Contains(body, "Nadia Newcomer") || !strings.Contains(body, "invited") || !strings.Contains(body, `id="send-setup"`) {
			t.Fatalf("the registered patient's account: %d\n%s", r.StatusCode, body)
		}
		if auditCount(t, st, a.id, admID, "user.manage", "patient-lookup", "allow") != 1 {
			t.Fatal("the lookup is not audited")
		}
		var inHistory int
		if err := st.db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE log_id = $1 AND patient_id = $2 AND actor_id = $3 AND decision = 'allow'`,
			a.id, newcomer.PatientID, admID).Scan(&inHistory); err != nil || inHistory != 1 {
			t.Fatalf("the opening is not in the patient's access history (%d, %v)", inHistory, err)
		}
		page := "/app/admin/users/" + newcomer.PatientID
		expectRedirect(t, adm.adminPost(page+"/account-setup", tok, nil), page+"?done=setup-sent")
		sent := st.mail.Sent()
		if len(sent) != 1 || sent[0].To != "nadia@patients.example" || !strings.Contains(sent[0].Text, "/reset/") {
			t.Fatalf("setup email: %+v", sent)
		}

		// A patient who has a password gets no setup link.
		r = adm.adminPost("/app/admin/patients/find", tok, url.Values{"email": {a.pEmail[0]}})
		if body := readAll(t, r); r.StatusCode != http.StatusOK || strings.Contains(body, `id="send-setup"`) || !strings.Contains(body, "active") {
			t.Fatalf("a patient with a password: %d\n%s", r.StatusCode, body)
		}
		expectStatus(t, adm.adminPost("/app/admin/users/"+a.patient[0]+"/account-setup", tok, nil), http.StatusConflict)
		r = adm.adminPost("/app/admin/patients/find", tok, url.Values{"email": {"nobody@patients.example"}})
		expectStatus(t, r, http.StatusNotFound)
		// Workforce addresses are not patients.
		expectStatus(t, adm.adminPost("/app/admin/patients/find", tok, url.Values{"email": {a.emails[haven.RoleClinician]}}), http.StatusNotFound)
		if len(st.mail.Sent()) != 1 {
			t.Fatal("a refused setup sent email")
		}

		// Invitations: only grantable roles are offered and accepted.
		body, tok = adm.adminPage("/app/admin/users")
		for _, role := range []string{"patient", "platform_operator"} {
			if strings.Contains(body, `<option value="`+role+`"`) {
				t.Errorf("the invitation form offers %s", role)
			}
			expectStatus(t, adm.adminPost("/app/admin/invitations", tok, url.Values{"email": {"x@riverside.example"}, "role": {role}}), http.StatusBadRequest)
		}
		// Inviting an admin after the step-up window asks for a step-up and sends nothing.
		st.clock.Advance(6 * time.Minute)
		invite := url.Values{"email": {"deputy@riverside.example"}, "role": {"practice_admin"}}
		next := "/app/admin/users?confirm=invite"
		expectRedirect(t, adm.adminPost("/app/admin/invitations", tok, invite), "/account/step-up?next="+url.QueryEscape(next))
		if len(st.mail.Sent()) != 1 {
			t.Fatal("an admin invitation went out without a step-up")
		}
		code, _ := totp.Code(admSecret, st.clock.Now())
		expectRedirect(t, adm.post("/account/step-up", url.Values{"kind": {"totp"}, "code": {code}, "next": {next}}), next)
		body, tok = adm.adminPage(next)
		if !strings.Contains(body, "Send the invitation again") {
			t.Fatal("back from the step-up, the page does not ask for the invitation again")
		}
		expectRedirect(t, adm.adminPost("/app/admin/invitations", tok, invite), "/app/admin/users?done=invited")
		if sent := st.mail.Sent(); len(sent) != 2 || sent[1].To != "deputy@riverside.example" {
			t.Fatalf("the admin invitation after the step-up: %+v", sent)
		}
	})
}
