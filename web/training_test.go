package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/internal/testkit"
	"haven/policy"
)

// quizForm is module m's quiz answered rightly, or wrongly.
func quizForm(m haven.TrainingModule, right bool) url.Values {
	f := url.Values{}
	for i, q := range m.Questions {
		a := q.Answer
		if !right {
			a = (a + 1) % len(q.Choices)
		}
		f.Set("q"+strconv.Itoa(i), strconv.Itoa(a))
	}
	return f
}

// lastDecision is the newest audited decision of actorID on action.
func lastDecision(t *testing.T, st *authStack, actorID, action string) (decision, reason string) {
	t.Helper()
	if err := st.db.SQL().QueryRow(`SELECT decision, reason FROM audit_events WHERE actor_id = $1 AND action = $2 ORDER BY seq DESC LIMIT 1`,
		actorID, action).Scan(&decision, &reason); err != nil {
		t.Fatal(err)
	}
	return decision, reason
}

// TestTrainingRequiredRefusesThenRecovers, on both databases: the
// administrator requires training (no grace) on the settings page; the
// clinician, untrained, is refused her patient's chart, as a page that
// links to the training and in the API with a message naming it, each
// refusal audited; a failed quiz changes nothing; passing every module on
// her pages opens the chart again. The administrator's report names her
// current and the others overdue; a patient has no training pages.
func TestTrainingRequiredRefusesThenRecovers(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			p := ts[0]
			docEmail := p.emails[haven.RoleClinician]
			docAuth, docSecret := st.client(firefox).apiSignIn(docEmail)
			doc := st.client(firefox)
			doc.signIn(docEmail, docSecret)
			api := st.client(firefox)
			chartPath := "/app/patients/" + p.patient[0]
			expectStatus(t, doc.get(chartPath), http.StatusOK)

			r := doc.get("/app/training")
			body := readAll(t, r)
			if r.StatusCode != http.StatusOK || strings.Count(body, `id="take-`) != len(haven.TrainingModules) || !strings.Contains(body, "/app/training/devices") {
				t.Fatalf("the training page: %d %s", r.StatusCode, body)
			}
			if strings.Contains(body, `id="training-report"`) {
				t.Errorf("a clinician is offered the report")
			}

			admEmail := p.emails[haven.RolePracticeAdmin]
			_, admSecret := st.client(firefox).apiSignIn(admEmail)
			adm := st.client(firefox)
			adm.signIn(admEmail, admSecret)
			if body := readAll(t, adm.get("/app/admin/settings")); !strings.Contains(body, `id="training-required"`) {
				t.Fatalf("the settings page has no training setting")
			}
			r = adm.post("/app/admin/settings", url.Values{"max_upload_mib": {""}, "note_release_days": {"0"}, "training_required": {"1"}, "training_grace_days": {"400"}})
			if body := readAll(t, r); r.StatusCode != http.StatusBadRequest || !strings.Contains(body, "0 to 90") {
				t.Fatalf("a grace out of range: %d", r.StatusCode)
			}
			expectRedirect(t, adm.post("/app/admin/settings", url.Values{"max_upload_mib": {""}, "note_release_days": {"0"}, "training_required": {"1"}, "training_grace_days": {"0"}}),
				"/app/admin/settings?done=saved")

			// Refused: the page links to the training, the API names it.
			r = doc.get(chartPath)
			body = readAll(t, r)
			if r.StatusCode != http.StatusForbidden || !strings.Contains(body, `id="go-training"`) || strings.Contains(body, p.marker) {
				t.Fatalf("the chart page with training lapsed: %d %s", r.StatusCode, body)
			}
			r = api.apiAs(docAuth, "GET", "/api/v1/patients/"+p.patient[0], "")
			var e struct {
				Error struct{ Code, Message string }
			}
			json.Unmarshal([]byte(readAll(t, r)), &e)
			if r.StatusCode != http.StatusForbidden || !strings.Contains(e.Error.Message, policy.TrainingPage) {
				t.Fatalf("the chart API with training lapsed: %d %+v", r.StatusCode, e)
			}
			if d, why := lastDecision(t, st, p.doctor, string(policy.ChartRead)); d != haven.DecisionDeny || why != string(policy.ReasonTrainingLapsed) {
				t.Fatalf("the refusal's audit: %s %s", d, why)
			}
			var status struct {
				Blocked bool
				State   string
			}
			json.NewDecoder(api.apiAs(docAuth, "GET", "/api/v1/training", "").Body).Decode(&status)
			if !status.Blocked || status.State != "overdue" {
				t.Fatalf("her training in the API: %+v", status)
			}

			// A failed quiz is shown and changes nothing.
			m := haven.TrainingModules[0]
			r = doc.post("/app/training/"+m.ID, quizForm(m, false))
			if body := readAll(t, r); r.StatusCode != http.StatusOK || !strings.Contains(body, "Not passed") || !strings.Contains(body, `data-wrong="1"`) {
				t.Fatalf("a failed quiz: %d", r.StatusCode)
			}
			expectStatus(t, doc.get(chartPath), http.StatusForbidden)
			// Half a quiz is refused saying so.
			half := quizForm(m, true)
			half.Del("q1")
			if r := doc.post("/app/training/"+m.ID, half); r.StatusCode != http.StatusBadRequest {
				t.Fatalf("half a quiz: %d", r.StatusCode)
			}
			for _, m := range haven.TrainingModules {
				expectStatus(t, doc.get("/app/training/"+m.ID), http.StatusOK)
				expectRedirect(t, doc.post("/app/training/"+m.ID, quizForm(m, true)), "/app/training?done=passed")
			}
			if body := readAll(t, doc.get("/app/training")); !strings.Contains(body, `data-state="current"`) {
				t.Fatalf("after passing: %s", body)
			}
			expectStatus(t, doc.get(chartPath), http.StatusOK)
			expectStatus(t, api.apiAs(docAuth, "GET", "/api/v1/patients/"+p.patient[0], ""), http.StatusOK)

			// The report: by name, overdue first, the clinician current.
			r = adm.get("/app/training/report")
			body = readAll(t, r)
			if r.StatusCode != http.StatusOK || !strings.Contains(body, `id="person-`+p.doctor+`" data-state="current"`) ||
				!strings.Contains(body, `data-state="overdue"`) || strings.Contains(body, ts[1].id) {
				t.Fatalf("the report: %d %s", r.StatusCode, body)
			}
			for _, other := range ts[1].emails {
				if u := st.users[other]; u != "" && strings.Contains(body, u) {
					t.Fatalf("the report shows another practice's member")
				}
			}
			if i, j := strings.Index(body, `data-state="overdue"`), strings.Index(body, `data-state="current"`); i < 0 || i > j {
				t.Errorf("the overdue are not first")
			}
			// Patients have no training; the clinician no report.
			patient := st.client(firefox)
			pAuth := patient.signInAny(p.pEmail[0])
			for _, path := range []string{"/api/v1/training", "/api/v1/training/report"} {
				if r := patient.apiAs(pAuth, "GET", path, ""); r.StatusCode != http.StatusForbidden {
					t.Errorf("a patient's %s: %d", path, r.StatusCode)
				}
			}
			expectStatus(t, api.apiAs(docAuth, "GET", "/api/v1/training/report", ""), http.StatusForbidden)
			if r := api.apiAs(docAuth, "POST", "/api/v1/training/nonesuch", `{"answers":[0]}`); r.StatusCode != http.StatusNotFound {
				t.Errorf("an unknown module: %d", r.StatusCode)
			}
		})
	}
}

var codeRE = regexp.MustCompile(`Verification code: ([0-9A-Z]{4}-[0-9A-Z]{4})`)

// resetCode asks for a password reset of email and returns the
// verification code its email carries.
func resetCode(t *testing.T, st *authStack, email string) string {
	t.Helper()
	before := len(st.mail.Sent())
	expectStatus(t, st.client(firefox).post("/reset", url.Values{"email": {email}}), http.StatusOK)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := st.mail.Wait(ctx, before+1)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[len(msgs)-1]
	got := codeRE.FindStringSubmatch(m.Text)
	if m.To != email || got == nil {
		t.Fatalf("the reset email to %s carries no code: %q", m.To, m.Text)
	}
	return got[1]
}

// TestContactCodesAcrossPatientsAndPractices, on both databases: the code
// in a patient's reset email answers "genuine, a reset link" to her, on
// the API and her page, and "not from us" to the other patient of her
// practice and to a patient of another practice; the workforce may not
// check codes. Her report raises an alert her compliance officer sees,
// and the other practice's does not. Her checklist shows her second
// factor off with the way to turn it on.
func TestContactCodesAcrossPatientsAndPractices(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			p, q := ts[0], ts[1]
			code := resetCode(t, st, p.pEmail[0])
			check := func(email, code string) (int, map[string]any) {
				c := st.client(firefox)
				auth := c.signInAny(email)
				r := c.apiAs(auth, "POST", "/api/v1/contact-codes/check", fmt.Sprintf(`{"code":%q}`, code))
				var out map[string]any
				json.NewDecoder(r.Body).Decode(&out)
				return r.StatusCode, out
			}
			if s, out := check(p.pEmail[0], strings.ToLower(code)); s != http.StatusOK || out["genuine"] != true || out["kind"] != "password_reset" || out["sent_at"] == nil {
				t.Fatalf("her own code: %d %v", s, out)
			}
			for _, email := range []string{p.pEmail[1], q.pEmail[0]} {
				if s, out := check(email, code); s != http.StatusOK || out["genuine"] != false || out["kind"] != nil || out["sent_at"] != nil {
					t.Fatalf("%s checking her code: %d %v", email, s, out)
				}
			}
			if s, out := check(p.pEmail[0], "not-a-code"); s != http.StatusOK || out["genuine"] != false {
				t.Fatalf("a malformed code: %d %v", s, out)
			}
			docAuth, docSecret := st.client(firefox).apiSignIn(p.emails[haven.RoleClinician])
			for _, path := range []string{"/api/v1/contact-codes/check", "/api/v1/contact-codes/report"} {
				if r := st.client(firefox).apiAs(docAuth, "POST", path, `{"code":"`+code+`"}`); r.StatusCode != http.StatusForbidden {
					t.Errorf("a clinician's %s: %d", path, r.StatusCode)
				}
			}

			// Her pages: the checklist from her navigation, the check, the report.
			pt := st.client(firefox)
			expectRedirect(t, pt.post("/login", url.Values{"email": {p.pEmail[0]}, "password": {stackPassword}}), "/app")
			home := readAll(t, pt.get("/app"))
			if !strings.Contains(home, `href="/app/security"`) {
				t.Fatalf("the checklist is not reachable from her home")
			}
			r := pt.get("/app/security")
			body := readAll(t, r)
			if r.StatusCode != http.StatusOK || !strings.Contains(body, `id="turn-on-second-factor"`) || !strings.Contains(body, "VPN") ||
				strings.Count(body, `<li id="check-`) != 6 {
				t.Fatalf("the checklist: %d %s", r.StatusCode, body)
			}
			r = pt.post("/account/check-message", url.Values{"code": {code}})
			if body := readAll(t, r); r.StatusCode != http.StatusOK || !strings.Contains(body, `data-genuine="1"`) || !strings.Contains(body, "reset your password") {
				t.Fatalf("her check page: %d %s", r.StatusCode, body)
			}
			r = pt.post("/account/report-message", url.Values{"code": {"WXYZ-2345"}})
			if body := readAll(t, r); r.StatusCode != http.StatusOK || !strings.Contains(body, `id="reported"`) {
				t.Fatalf("her report: %d %s", r.StatusCode, body)
			}
			alertsOf := func(email string) string {
				c := st.client(firefox)
				auth, _ := c.apiSignIn(email)
				return readAll(t, c.apiAs(auth, "GET", "/api/v1/alerts", ""))
			}
			if got := alertsOf(p.emails[haven.RoleComplianceOfficer]); !strings.Contains(got, "suspicious_message") || strings.Contains(got, "WXYZ") {
				t.Fatalf("her compliance officer's alerts: %s", got)
			}
			if got := alertsOf(q.emails[haven.RoleComplianceOfficer]); strings.Contains(got, "suspicious_message") {
				t.Fatalf("another practice's compliance officer sees her report: %s", got)
			}
			// The workforce has no checklist or check page.
			doc := st.client(firefox)
			doc.signIn(p.emails[haven.RoleClinician], docSecret)
			for _, path := range []string{"/app/security", "/account/check-message"} {
				if r := doc.get(path); r.StatusCode != http.StatusForbidden {
					t.Errorf("a clinician's %s: %d", path, r.StatusCode)
				}
			}
		})
	}
}
