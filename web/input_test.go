package web_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"haven"
	"haven/internal/testkit"
	"haven/service"
)

// unsized hides a body's length from the HTTP client, so it is sent
// chunked (HTTP/1.1) or without a content-length (HTTP/2).
type unsized struct{ r io.Reader }

func (u unsized) Read(p []byte) (int, error) { return u.r.Read(p) }

// TestBadInputIsRefusedAndChangesNothing sends what a careless client or
// an attacker would: a NUL inside an email (invitation, new patient,
// self-registration), dates of birth far in the future or before 1900,
// file names that are paths or invisible tricks, enum values no query
// knows, practice settings that switch detection off, and a body larger
// than the limit sent without a length. Each is refused with a message
// that says what is wrong, and nothing is stored or sent.
func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			own := ts[0]
			desk := st.client(firefox)
			deskAuth := desk.signInAny(own.emails[haven.RoleStaff])
			adm := st.client(firefox)
			admAuth := adm.signInAny(own.emails[haven.RolePracticeAdmin])
			pat := st.client(firefox)
			patAuth := pat.signInAny(own.pEmail[0])
			co := st.client(firefox)
			coAuth := co.signInAny(own.emails[haven.RoleComplianceOfficer])
			refused := func(r *http.Response, status int, says string) {
				t.Helper()
				a := answerOf(t, r)
				if a.Status != status || !strings.Contains(a.Message, says) {
					t.Errorf("%s %s: %+v, want %d saying %q", r.Request.Method, r.Request.URL, a, status, says)
				}
			}
			patients := func() int {
				r := desk.apiAs(deskAuth, "GET", "/api/v1/patients", "")
				var res struct{ Patients []any }
				json.NewDecoder(r.Body).Decode(&res)
				return len(res.Patients)
			}
			before := patients()

			// A control character inside an email address, wherever one is taken.
			for _, bad := range []string{"nul\x00@evil.example", "bell\x07@evil.example", "del\x7f@evil.example", "zw\u200b@evil.example", "a@evil.example\u202e"} {
				np, _ := json.Marshal(service.NewPatient{MRN: "MRN-BAD", Demographics: service.Demographics{Name: "Bad Email", DateOfBirth: "1980-01-01"},
					Contact: service.Contact{Email: bad}})
				refused(desk.apiAs(deskAuth, "POST", "/api/v1/patients", string(np)), http.StatusBadRequest, "email")
				inv, _ := json.Marshal(map[string]string{"email": bad, "role": "staff"})
				refused(adm.apiAs(admAuth, "POST", "/api/v1/invitations", string(inv)), http.StatusBadRequest, "email")
			}
			// Self-registration, opened for the practice.
			ps := service.DefaultSettings()
			ps.SelfRegistration = true
			r := adm.apiAs(admAuth, "PUT", "/api/v1/practice/settings", mustJSON(t, ps))
			expectStatus(t, r, http.StatusOK)
			anon := st.client(firefox)
			r = anon.post("/register/"+own.id, url.Values{"email": {"nul\x00@evil.example"}})
			if r.StatusCode != http.StatusBadRequest {
				t.Errorf("self-registration with a NUL in the email: %d, want 400", r.StatusCode)
			}
			st.id.Close() // background sends have finished
			for _, m := range st.mail.Sent() {
				if strings.ContainsFunc(m.To, func(r rune) bool { return r < 0x20 || r == 0x7f }) || strings.Contains(m.To, "evil.example") {
					t.Errorf("an email went to %q", m.To)
				}
			}

			// Dates of birth: a sane range, said in the message.
			for _, dob := range []string{"9999-12-31", "1800-01-01", "1899-12-31", "2026-11-27", "0000-01-01"} {
				np, _ := json.Marshal(service.NewPatient{MRN: "MRN-DOB", Demographics: service.Demographics{Name: "Bad Date", DateOfBirth: dob},
					Contact: service.Contact{Email: "dob@riverside.example"}})
				refused(desk.apiAs(deskAuth, "POST", "/api/v1/patients", string(np)), http.StatusBadRequest, service.EarliestDateOfBirth)
				up := fmt.Sprintf(`{"version":1,"demographics":{"name":"Name","date_of_birth":%q}}`, dob)
				refused(desk.apiAs(deskAuth, "PATCH", "/api/v1/patients/"+own.patient[1], up), http.StatusBadRequest, service.EarliestDateOfBirth)
			}
			np, _ := json.Marshal(service.NewPatient{MRN: "MRN-OK", Demographics: service.Demographics{Name: "Born Today", DateOfBirth: st.clock.Now().Format("2006-01-02")},
				Contact: service.Contact{Email: "today@riverside.example"}})
			expectStatus(t, desk.apiAs(deskAuth, "POST", "/api/v1/patients", string(np)), http.StatusCreated)
			if after := patients(); after != before+1 {
				t.Errorf("%d patients after the refusals and one good registration, want %d", after, before+1)
			}

			// File names.
			files := func() int {
				r := pat.apiAs(patAuth, "GET", "/api/v1/patients/"+own.patient[0]+"/files", "")
				var res struct{ Files []any }
				json.NewDecoder(r.Body).Decode(&res)
				return len(res.Files)
			}
			nFiles := files()
			for _, name := range []string{".", "..", " .. ", "", "a/b", `a\b`, "a%00b", "a%0Ab", "report%E2%80%AEfdp.exe", strings.Repeat("n", 256)} {
				hdr := map[string]string{"Authorization": patAuth["Authorization"], "Content-Type": "text/plain", "Haven-File-Name": name}
				r := pat.do("POST", "/api/v1/patients/"+own.patient[0]+"/files", strings.NewReader("hello"), hdr)
				refused(r, http.StatusBadRequest, "file name")
			}
			if n := files(); n != nFiles {
				t.Errorf("%d files after refused uploads, want %d", n, nFiles)
			}

			// Enum values a query does not know.
			refused(co.apiAs(coAuth, "GET", "/api/v1/audit/events?decision=maybe", ""), http.StatusBadRequest, "decision")
			refused(co.apiAs(coAuth, "GET", "/api/v1/alerts?all=maybe", ""), http.StatusBadRequest, "all")
			refused(pat.apiAs(patAuth, "GET", "/api/v1/visits/"+own.visits[0]+"/state?seen=exploded", ""), http.StatusBadRequest, "seen")
			// A known state other than the visit's answers at once.
			expectStatus(t, pat.apiAs(patAuth, "GET", "/api/v1/visits/"+own.visits[0]+"/state?seen=admitted", ""), http.StatusOK)

			// Practice settings out of range.
			r = adm.apiAs(admAuth, "GET", "/api/v1/practice/settings", "")
			kept := readAll(t, r)
			for _, change := range []func(*service.PracticeSettings){
				func(p *service.PracticeSettings) { p.BulkAccessPatients = 1 << 62 },
				func(p *service.PracticeSettings) { p.DenialsThreshold = 1 << 40 },
				func(p *service.PracticeSettings) { p.BulkAccessWindow = service.Duration(1 << 62) },
				func(p *service.PracticeSettings) { p.DenialsWindow = service.Duration(1) },
				func(p *service.PracticeSettings) { p.WorkforceIdle = service.Duration(1 << 50) },
				func(p *service.PracticeSettings) { p.ClinicalAccess = []string{"\x00"} },
				func(p *service.PracticeSettings) { p.TimeZone = "Local" },
			} {
				p := ps
				change(&p)
				refused(adm.apiAs(admAuth, "PUT", "/api/v1/practice/settings", mustJSON(t, p)), http.StatusBadRequest, "")
			}
			if now := readAll(t, adm.apiAs(admAuth, "GET", "/api/v1/practice/settings", "")); now != kept {
				t.Errorf("settings changed by refused updates:\n%s\nwas\n%s", now, kept)
			}

			// A body over the limit sent without a length: a form and a
			// JSON route both answer 413, and the form's request (a reset
			// email for a real address) is not carried out.
			st.id.Close()
			sent := len(st.mail.Sent())
			big := "email=" + url.QueryEscape(own.pEmail[0]) + "&pad=" + strings.Repeat("x", 11<<20)
			r = anon.do("POST", "/reset", unsized{strings.NewReader(big)}, map[string]string{
				"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-origin", "Origin": st.base})
			if r.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("an 11 MB chunked form to /reset: %d, want 413", r.StatusCode)
			}
			bigJSON := `{"email":"` + own.pEmail[0] + `","password":"` + strings.Repeat("x", 11<<20) + `"}`
			r = anon.do("POST", "/api/v1/session", unsized{strings.NewReader(bigJSON)}, map[string]string{"Content-Type": "application/json"})
			if r.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("an 11 MB chunked JSON body: %d, want 413", r.StatusCode)
			}
			// Under the limit, a chunked form is read whole (from a new
			// connection: the refused ones were left unread).
			anon = st.client(firefox)
			r = anon.do("POST", "/reset", unsized{strings.NewReader("email=" + url.QueryEscape(own.pEmail[0]))}, map[string]string{
				"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-origin", "Origin": st.base})
			expectStatus(t, r, http.StatusOK)
			st.id.Close()
			if n := len(st.mail.Sent()); n != sent+1 {
				t.Errorf("%d reset emails sent, want 1 (for the small form only)", n-sent)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
