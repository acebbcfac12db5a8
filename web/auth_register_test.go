package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"haven"
	"haven/identity"
	"haven/service"
)

// openRegistration sets the stack's practice's self-registration (and
// whether it requires MFA of patients), as its admin does.
func (st *authStack) openRegistration(practiceID string, open, patientsMFA bool) {
	st.t.Helper()
	adminID := st.users[admin]
	if practiceID != st.practice {
		u, err := st.svc.CreateUser(context.Background(), service.NewUser{PracticeID: practiceID, Role: haven.RolePracticeAdmin,
			Email: "admin-" + practiceID + "@clinic.example", Name: "Admin", Password: stackPassword})
		if err != nil {
			st.t.Fatal(err)
		}
		adminID = u.ID
	}
	ctx := haven.NewContextWithActor(context.Background(), haven.Actor{UserID: adminID, PracticeID: practiceID,
		Role: haven.RolePracticeAdmin, MFA: true, AuthTime: st.clock.Now(), SessionID: "seed", ClientAddr: "127.0.0.1", RequestID: "seed"})
	ps := service.DefaultSettings()
	ps.SelfRegistration, ps.PatientsRequireMFA = open, patientsMFA
	if err := st.svc.UpdateSettings(ctx, ps); err != nil {
		st.t.Fatal(err)
	}
}

var registerLinkRE = regexp.MustCompile(`https://[^/\s]+(/register/[a-z0-9]+/([A-Za-z0-9_-]{43}))\b`)

// registerLink waits for n emails and returns the path and token of the
// registration link in the latest one to to.
func (st *authStack) registerLink(n int, to string) (path, token string) {
	st.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := st.mail.Wait(ctx, n)
	if err != nil {
		st.t.Fatalf("no email %d: %v", n, err)
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].To == to {
			m := registerLinkRE.FindStringSubmatch(msgs[i].Text)
			if m == nil {
				st.t.Fatalf("no registration link in %q", msgs[i].Text)
			}
			return m[1], m[2]
		}
	}
	st.t.Fatalf("no email to %s", to)
	return "", ""
}

// accounts counts a practice's accounts.
func (st *authStack) accounts(practiceID string) int {
	st.t.Helper()
	us, err := st.db.ListUsers(context.Background(), practiceID)
	if err != nil {
		st.t.Fatal(err)
	}
	return len(us)
}

// lockedBuffer collects the server's log lines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// withLog serves st's identity again, from a server whose log the test
// reads, and returns st as seen through it.
func (st *authStack) withLog() (*authStack, *lockedBuffer) {
	st.t.Helper()
	logs := &lockedBuffer{}
	cfg := st.web
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := newWebServer(st.t, cfg)
	base, _, _ := startServer(st.t, srv)
	seen := *st
	seen.base, seen.srv, seen.web = base, srv, cfg
	return &seen, logs
}

var registration = url.Values{"name": {"Rowan Selfreg"}, "date_of_birth": {"1990-04-05"},
	"password": {"a lantern over the quiet harbour"}, "confirm": {"a lantern over the quiet harbour"}}

// TestPatientRegistersOverHTTP walks the pages end to end: the practice's
// page, "check your email", the emailed link, the details form, and a
// signed-in patient; the link then works no more, and neither the token
// nor the address reached the request log.
func TestPatientRegistersOverHTTP(t *testing.T) {
	t.Parallel()
	st, logs := newAuthStack(t, false).withLog()
	st.openRegistration(st.practice, true, false)
	c := st.client(firefox)
	page := readAll(t, c.get("/register/"+st.practice))
	if !strings.Contains(page, "Riverside Family Clinic") || !strings.Contains(page, `action="/register/`+st.practice+`"`) {
		t.Fatalf("the registration page:\n%s", page)
	}
	r := c.post("/register/"+st.practice, url.Values{"email": {"Rowan@Patients.example"}})
	expectStatus(t, r, http.StatusOK)
	if body := readAll(t, r); !strings.Contains(body, `id="register-sent"`) || strings.Contains(body, "Riverside") {
		t.Fatalf("the answer to a request:\n%s", body)
	}
	path, token := st.registerLink(1, "rowan@patients.example")
	page = readAll(t, c.get(path))
	if !strings.Contains(page, "rowan@patients.example") || !strings.Contains(page, `id="create-account"`) {
		t.Fatalf("the link's page:\n%s", page)
	}
	before := st.accounts(st.practice)
	r = c.post(path, registration)
	expectRedirect(t, r, "/app")
	if c.cookie("__Host-haven_session") == nil {
		t.Fatal("no session after registering")
	}
	var who struct {
		Role       string
		PracticeID string `json:"practice_id"`
		MFA        bool
	}
	json.NewDecoder(c.get("/api/v1/session").Body).Decode(&who)
	if who.Role != "patient" || who.PracticeID != st.practice || who.MFA {
		t.Fatalf("signed in as %+v", who)
	}
	if n := st.accounts(st.practice); n != before+1 {
		t.Fatalf("%d accounts, want %d", n, before+1)
	}
	// The link is used up: its page and its form both say so, and offer
	// to send a new one.
	replay := st.client(firefox)
	r = replay.get(path)
	expectStatus(t, r, http.StatusNotFound)
	if body := readAll(t, r); !strings.Contains(body, "expired or was already used") || !strings.Contains(body, `id="send-link"`) {
		t.Fatalf("a used link's page:\n%s", body)
	}
	expectStatus(t, replay.post(path, registration), http.StatusNotFound)
	if n := st.accounts(st.practice); n != before+1 {
		t.Fatalf("%d accounts after the replay, want %d", n, before+1)
	}
	out := logs.String()
	if !strings.Contains(out, "/register/{practice}/{token}") {
		t.Fatalf("the log has no registration requests (the search would prove nothing):\n%s", out)
	}
	for _, secret := range []string{token, "rowan@patients.example", "Rowan Selfreg", "1990-04-05"} {
		if strings.Contains(strings.ToLower(out), strings.ToLower(secret)) {
			t.Errorf("%q reached the request log", secret)
		}
	}
}

// TestRegistrationAnswersKnownAndUnknownEmailsIdentically compares whole
// answers: status, cookies and body, for an address that has an account
// at the practice and one that does not; only the emails differ.
func TestRegistrationAnswersKnownAndUnknownEmailsIdentically(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	st.openRegistration(st.practice, true, false)
	type answer struct {
		status  int
		cookies string
		body    string
	}
	var answers []answer
	for _, email := range []string{patientEmail, "nobody@patients.example"} {
		r := st.client(firefox).post("/register/"+st.practice, url.Values{"email": {email}})
		answers = append(answers, answer{r.StatusCode, strings.Join(r.Header.Values("Set-Cookie"), "\n"), readAll(t, r)})
	}
	if answers[0] != answers[1] {
		t.Fatalf("the answers differ for a known and an unknown address:\n%+v\n---\n%+v", answers[0], answers[1])
	}
	if answers[0].status != http.StatusOK {
		t.Fatalf("status %d", answers[0].status)
	}
	st.id.Close()
	sent := st.mail.Sent()
	if len(sent) != 2 {
		t.Fatalf("%d emails, want 2", len(sent))
	}
	for _, m := range sent {
		link := registerLinkRE.MatchString(m.Text)
		if (m.To == patientEmail) == link {
			t.Fatalf("email to %s: link %v in %q", m.To, link, m.Text)
		}
	}
}

// TestRegistrationClosedAnswersTheSameAndSendsNothing: with the setting
// off, the page is not there, and a post gets the very answer an open
// practice gives, while nothing is sent and nothing created.
func TestRegistrationClosedAnswersTheSameAndSendsNothing(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	post := func() (int, string) {
		r := st.client(firefox).post("/register/"+st.practice, url.Values{"email": {"new.person@patients.example"}})
		return r.StatusCode, readAll(t, r)
	}
	expectStatus(t, st.client(firefox).get("/register/"+st.practice), http.StatusNotFound)
	expectStatus(t, st.client(firefox).get("/register/no-such-practice"), http.StatusNotFound)
	before := st.accounts(st.practice)
	closedStatus, closedBody := post()
	st.openRegistration(st.practice, true, false)
	openStatus, openBody := post()
	if closedStatus != openStatus || closedBody != openBody {
		t.Fatalf("closed and open practices answer differently: %d vs %d\n%s\n---\n%s", closedStatus, openStatus, closedBody, openBody)
	}
	st.openRegistration(st.practice, false, false)
	post()
	st.id.Close()
	if n := len(st.mail.Sent()); n != 1 {
		t.Fatalf("%d emails, want only the one sent while open", n)
	}
	if st.accounts(st.practice) != before {
		t.Fatal("an account was created")
	}
}

// TestRegistrationIsThrottledPerAddress: a few requests from one address
// go through; then 429 with Retry-After.
func TestRegistrationIsThrottledPerAddress(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	st.openRegistration(st.practice, true, false)
	c := st.client(firefox)
	for i := range 5 {
		expectStatus(t, c.post("/register/"+st.practice, url.Values{"email": {"inbox" + string(rune('a'+i)) + "@patients.example"}}), http.StatusOK)
	}
	r := c.post("/register/"+st.practice, url.Values{"email": {"inboxz@patients.example"}})
	expectStatus(t, r, http.StatusTooManyRequests)
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	st.id.Close()
	if n := len(st.mail.Sent()); n != 5 {
		t.Fatalf("%d emails, want 5", n)
	}
}

// TestRegistrationLinkRefusedAtAnotherPracticeExpiredOrWithAWeakPassword:
// each refusal changes nothing, and the link still works where it belongs
// until it expires.
func TestRegistrationLinkRefusedAtAnotherPracticeExpiredOrWithAWeakPassword(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	st.openRegistration(st.practice, true, false)
	other, err := st.svc.CreatePractice(context.Background(), "Lakeshore Pediatrics")
	if err != nil {
		t.Fatal(err)
	}
	st.openRegistration(other.ID, true, false)
	c := st.client(firefox)
	expectStatus(t, c.post("/register/"+st.practice, url.Values{"email": {"careful@patients.example"}}), http.StatusOK)
	path, token := st.registerLink(1, "careful@patients.example")
	here, there := st.accounts(st.practice), st.accounts(other.ID)

	// Another practice's page.
	elsewhere := "/register/" + other.ID + "/" + token
	expectStatus(t, c.get(elsewhere), http.StatusNotFound)
	expectStatus(t, c.post(elsewhere, registration), http.StatusNotFound)

	// A breached password, and two that differ.
	weak := url.Values{"name": {"Careful Person"}, "date_of_birth": {"1990-04-05"}, "password": {"password"}, "confirm": {"password"}}
	r := c.post(path, weak)
	expectStatus(t, r, http.StatusBadRequest)
	if body := readAll(t, r); !strings.Contains(body, `id="error"`) || !strings.Contains(body, `value="Careful Person"`) {
		t.Fatalf("the refused form:\n%s", body)
	}
	differ := url.Values{"name": {"Careful Person"}, "date_of_birth": {"1990-04-05"}, "password": {"a lantern over the quiet harbour"}, "confirm": {"another"}}
	expectStatus(t, c.post(path, differ), http.StatusBadRequest)
	if st.accounts(st.practice) != here || st.accounts(other.ID) != there {
		t.Fatal("a refused registration created an account")
	}
	expectStatus(t, c.get(path), http.StatusOK) // still good

	// A day later it is not.
	st.clock.Advance(identity.VerifyTTL + time.Second)
	expectStatus(t, c.get(path), http.StatusNotFound)
	expectStatus(t, c.post(path, registration), http.StatusNotFound)
	if st.accounts(st.practice) != here || st.accounts(other.ID) != there {
		t.Fatal("an expired link created an account")
	}
}

// TestRegistrationLeadsIntoEnrolmentWhenPatientsNeedMFA: no session yet,
// only the authenticator enrolment.
func TestRegistrationLeadsIntoEnrolmentWhenPatientsNeedMFA(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	st.openRegistration(st.practice, true, true)
	c := st.client(firefox)
	expectStatus(t, c.post("/register/"+st.practice, url.Values{"email": {"secure@patients.example"}}), http.StatusOK)
	path, _ := st.registerLink(1, "secure@patients.example")
	expectRedirect(t, c.post(path, registration), "/login/mfa")
	if c.cookie("__Host-haven_session") != nil {
		t.Fatal("a session before the second factor")
	}
	if page := readAll(t, c.get("/login/mfa")); !strings.Contains(page, `id="totp-secret"`) {
		t.Fatalf("no enrolment after registering:\n%s", page)
	}
}

// TestRegistrationPagesRefuseCrossSitePostsAndCarryNoInlineScript.
func TestRegistrationPagesRefuseCrossSitePostsAndCarryNoInlineScript(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	st.openRegistration(st.practice, true, false)
	c := st.client(firefox)
	evil := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
	r := c.do("POST", "/register/"+st.practice, strings.NewReader(url.Values{"email": {"victim@patients.example"}}.Encode()), evil)
	expectStatus(t, r, http.StatusForbidden)
	expectStatus(t, c.post("/register/"+st.practice, url.Values{"email": {"me@patients.example"}}), http.StatusOK)
	path, _ := st.registerLink(1, "me@patients.example")
	r = c.do("POST", path, strings.NewReader(registration.Encode()), evil)
	expectStatus(t, r, http.StatusForbidden)
	inline := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]|\son[a-z]+=|\sstyle=`)
	for _, p := range []string{"/register/" + st.practice, path} {
		if body := readAll(t, c.get(p)); inline.MatchString(body) {
			t.Errorf("%s carries inline script or style", p)
		}
	}
	st.id.Close()
	if n := len(st.mail.Sent()); n != 1 {
		t.Fatalf("%d emails, want 1 (the cross-site post sent one)", n)
	}
}
