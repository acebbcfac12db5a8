package web_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/auth/outbox"
	"haven/auth/totp"
	"haven/identity"
	"haven/internal/testkit"
	"haven/internal/testkit/stack"
	"haven/service"
	"haven/smart"
	"haven/store/sqlstore"
	"haven/web"
)

// authStack is Haven's identity served over TLS on a real database, with a
// clock the test moves.
type authStack struct {
	t        *testing.T
	base     string
	srv      *web.Server // for tests that serve it again (passkeys, logs)
	web      web.Config  // what srv was built from
	db       *sqlstore.DB
	svc      *service.Service
	id       *identity.Service
	mail     *outbox.Memory
	clock    *stack.Clock
	practice string
	users    map[string]string // email → user id
	logs     *lockedBuffer     // the server's log, where a stack keeps it (newChartStack)
	smart    *smart.Service    // the SMART authorization server (newChartStack)
}

const (
	stackPassword = "harbor-lantern-clinic-2026"
	doctor        = "rivera@riverside.example"
	desk          = "frontdesk@riverside.example"
	admin         = "admin@riverside.example"
	patientEmail  = "maria.lopez@patients.example"
)

// newAuthStack serves a practice with a clinician, a front desk and a
// patient (with a password, without MFA). realClock uses the wall clock
// (for the browser); otherwise time stands still until the test moves it.
func newAuthStack(t *testing.T, realClock bool, opts ...func(*identity.Config)) *authStack {
	t.Helper()
	ctx := context.Background()
	clock := stack.At(time.Now().UTC().Truncate(time.Second))
	if realClock {
		clock = stack.WallClock()
	}
	stk := stack.New(t, testkit.SQLite(t), clock, stack.NoBlobs())
	db, svc, now := stk.DB, stk.Service, stk.Clock.Now
	mail := &outbox.Memory{}
	st := &authStack{t: t, db: db, svc: svc, mail: mail, clock: stk.Clock, users: map[string]string{}}

	ln, base := listener(t)
	st.base = base
	cfg := identity.Config{DB: db, Outbox: mail, BaseURL: base}
	for _, o := range opts {
		o(&cfg)
	}
	st.id = identity.New(svc.Gate(), cfg)
	t.Cleanup(st.id.Close)
	st.web = web.Config{Identity: st.id}
	st.srv = newWebServer(t, st.web)
	serveOn(t, st.srv, ln)

	pr, err := svc.CreatePractice(ctx, "Riverside Family Clinic")
	if err != nil {
		t.Fatal(err)
	}
	st.practice = pr.ID
	for email, role := range map[string]haven.Role{doctor: haven.RoleClinician, desk: haven.RoleStaff, admin: haven.RolePracticeAdmin} {
		u, err := svc.CreateUser(ctx, service.NewUser{PracticeID: pr.ID, Role: role, Email: email, Name: "Worker", Password: stackPassword})
		if err != nil {
			t.Fatal(err)
		}
		st.users[email] = u.ID
	}
	staff := haven.NewContextWithActor(ctx, haven.Actor{UserID: st.users[desk], PracticeID: pr.ID, Role: haven.RoleStaff,
		MFA: true, AuthTime: now(), SessionID: "seed", ClientAddr: "127.0.0.1", RequestID: "seed"})
	c, err := svc.RegisterPatient(staff, service.NewPatient{MRN: "RFC-1", Demographics: service.Demographics{Name: "Maria Lopez", DateOfBirth: "1980-02-03"},
		Contact: service.Contact{Email: patientEmail, Phone: "555-0101"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.ProvisionPassword(ctx, c.PatientID, stackPassword); err != nil {
		t.Fatal(err)
	}
	st.users[patientEmail] = c.PatientID
	return st
}

// client is one browser-like client: a cookie jar, a User-Agent, and no
// automatic redirects, so tests see each answer.
type client struct {
	st  *authStack
	hc  *http.Client
	ua  string
	jar *cookiejar.Jar
}

func (st *authStack) client(ua string) *client {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Timeout: 10 * time.Second, Jar: jar, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &client{st: st, hc: hc, ua: ua, jar: jar}
}

func (c *client) do(method, path string, body io.Reader, hdr map[string]string) *http.Response {
	c.st.t.Helper()
	req, err := http.NewRequest(method, c.st.base+path, body)
	if err != nil {
		c.st.t.Fatal(err)
	}
	req.Header.Set("User-Agent", c.ua)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.st.t.Fatal(err)
	}
	c.st.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (c *client) get(path string) *http.Response { return c.do("GET", path, nil, nil) }

// post submits a form the way a browser on the page would.
func (c *client) post(path string, form url.Values) *http.Response {
	return c.do("POST", path, strings.NewReader(form.Encode()), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-origin", "Origin": c.st.base})
}

func (c *client) api(method, path string, v any) *http.Response {
	var body io.Reader
	if v != nil {
		b, _ := json.Marshal(v)
		body = bytes.NewReader(b)
	}
	return c.do(method, path, body, map[string]string{"Content-Type": "application/json"})
}

func readAll(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func expectStatus(t *testing.T, r *http.Response, want int) {
	t.Helper()
	if r.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d", r.Request.Method, r.Request.URL.Path, r.StatusCode, want)
	}
}

func expectRedirect(t *testing.T, r *http.Response, prefix string) {
	t.Helper()
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), prefix) {
		t.Fatalf("%s %s: %d to %q, want a redirect to %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, r.Header.Get("Location"), prefix)
	}
}

var secretRE = regexp.MustCompile(`id="totp-secret"[^>]*>([A-Z2-7 ]+)<`)

// signIn signs a workforce member in through the pages: password, then
// (first time) enrolment with the secret scraped from the page, or a code.
// It returns the TOTP secret.
func (c *client) signIn(email, secret string) string {
	t := c.st.t
	t.Helper()
	expectRedirect(t, c.post("/login", url.Values{"email": {email}, "password": {stackPassword}}), "/login/mfa")
	if secret == "" {
		page := readAll(t, c.get("/login/mfa"))
		m := secretRE.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no secret on the enrolment page:\n%s", page)
		}
		secret = strings.ReplaceAll(m[1], " ", "")
		code, _ := totp.Code(secret, c.st.clock.Now())
		r := c.post("/login/enrol", url.Values{"code": {code}})
		expectStatus(t, r, http.StatusOK)
		if !strings.Contains(readAll(t, r), `id="recovery-codes"`) {
			t.Fatal("recovery codes were not shown after enrolment")
		}
	} else {
		code, _ := totp.Code(secret, c.st.clock.Now())
		expectRedirect(t, c.post("/login/mfa", url.Values{"kind": {"totp"}, "code": {code}}), "/app")
	}
	c.st.clock.Advance(30 * time.Second) // the next code is a new one
	return secret
}

func (c *client) cookie(name string) *http.Cookie {
	u, _ := url.Parse(c.st.base)
	for _, ck := range c.jar.Cookies(u) {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}

// setCookieHeader returns the Set-Cookie line for name in r.
func setCookieHeader(r *http.Response, name string) string {
	for _, l := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(l, name+"=") {
			return l
		}
	}
	return ""
}

const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"

func TestCookiesAreHostPrefixedSecureHttpOnlyAndSameSite(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	c := st.client(firefox)
	r := c.post("/login", url.Values{"email": {doctor}, "password": {stackPassword}})
	for name, same := range map[string]string{web.PendingCookie: "SameSite=Strict", web.DeviceCookie: "SameSite=Lax"} {
		line := setCookieHeader(r, name)
		checkCookie(t, name, line, same)
	}
	r = c.api("POST", "/api/v1/session", map[string]string{"email": patientEmail, "password": stackPassword})
	expectStatus(t, r, http.StatusOK)
	checkCookie(t, web.SessionCookie, setCookieHeader(r, web.SessionCookie), "SameSite=Lax")
	if !strings.HasPrefix(web.SessionCookie, "__Host-") {
		t.Fatalf("session cookie %q lacks the __Host- prefix", web.SessionCookie)
	}
}

func checkCookie(t *testing.T, name, line, same string) {
	t.Helper()
	if line == "" {
		t.Fatalf("no Set-Cookie for %s", name)
	}
	if !strings.HasPrefix(name, "__Host-") {
		t.Errorf("%s: no __Host- prefix", name)
	}
	for _, want := range []string{"Path=/", "Secure", "HttpOnly", same, "Max-Age="} {
		if !strings.Contains(line, want) {
			t.Errorf("%s: %q lacks %s", name, line, want)
		}
	}
	if strings.Contains(strings.ToLower(line), "domain=") {
		t.Errorf("%s: %q names a Domain", name, line)
	}
}

// TestCrossOriginPostIsRefused: a page on another site that makes a
// signed-in browser post a form gets 403, and nothing changes.
func TestCrossOriginPostIsRefused(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	c := st.client(firefox)
	c.signIn(doctor, "")
	evil := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
	form := url.Values{"current_password": {stackPassword}, "new_password": {"attacker chosen passphrase"}, "confirm": {"attacker chosen passphrase"}}
	r := c.do("POST", "/account/password", strings.NewReader(form.Encode()), evil)
	expectStatus(t, r, http.StatusForbidden)
	// Without Sec-Fetch-Site (older browsers), the Origin header decides.
	r = c.do("POST", "/account/sessions/revoke-others", nil, map[string]string{"Origin": "https://evil.example"})
	expectStatus(t, r, http.StatusForbidden)
	r = c.do("POST", "/login", strings.NewReader(url.Values{"email": {doctor}, "password": {stackPassword}}.Encode()), evil)
	expectStatus(t, r, http.StatusForbidden)
	// The password did not change; the session still works.
	expectStatus(t, c.get("/api/v1/session"), http.StatusOK)
	if _, err := st.id.Login(context.Background(), doctor, stackPassword, identity.Client{Addr: "127.0.0.1"}); err != nil {
		t.Fatalf("the password changed: %v", err)
	}
	// The same form from the same origin goes through.
	expectRedirect(t, c.post("/account/password", form), "/account")
}

// TestUnknownAndKnownEmailsGetTheSameResponse compares whole answers.
func TestUnknownAndKnownEmailsGetTheSameResponse(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	// Four attempts in all: every client here shares one address, whose
	// free allowance is five.
	var pages []string
	for _, email := range []string{"nobody@riverside.example", doctor} {
		r := st.client(firefox).post("/login", url.Values{"email": {email}, "password": {"not the password at all"}})
		expectStatus(t, r, http.StatusUnauthorized)
		pages = append(pages, readAll(t, r))
	}
	if pages[0] != pages[1] {
		t.Fatalf("sign-in pages differ for a known and an unknown email:\n%s\n---\n%s", pages[0], pages[1])
	}
	var apis []string
	for _, email := range []string{"nobody@patients.example", patientEmail} {
		r := st.client(firefox).api("POST", "/api/v1/session", map[string]string{"email": email, "password": "not the password at all"})
		expectStatus(t, r, http.StatusUnauthorized)
		var body struct {
			Error struct{ Code, Message string }
		}
		json.NewDecoder(r.Body).Decode(&body)
		apis = append(apis, body.Error.Code+"|"+body.Error.Message)
	}
	if apis[0] != apis[1] {
		t.Fatalf("API answers differ: %q vs %q", apis[0], apis[1])
	}
}

// TestWorkforcePasswordOnlyReachesNothingButEnrolment: between password
// and second factor there is no session, only the enrolment page.
func TestWorkforcePasswordOnlyReachesNothingButEnrolment(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	c := st.client(firefox)
	expectRedirect(t, c.post("/login", url.Values{"email": {doctor}, "password": {stackPassword}}), "/login/mfa")
	if c.cookie(web.SessionCookie) != nil {
		t.Fatal("a session cookie was set before the second factor")
	}
	expectRedirect(t, c.get("/app"), "/login")
	expectRedirect(t, c.get("/account"), "/login")
	expectStatus(t, c.get("/api/v1/session"), http.StatusUnauthorized)
	// The pending token is no session, even presented as one.
	pending := c.cookie(web.PendingCookie).Value
	r := c.do("GET", "/api/v1/session", nil, map[string]string{"Authorization": "Bearer " + pending})
	expectStatus(t, r, http.StatusUnauthorized)
	page := readAll(t, c.get("/login/mfa"))
	if !strings.Contains(page, `id="totp-qr"`) || !strings.Contains(page, "data:image/png;base64,") {
		t.Fatal("the enrolment page shows no QR code")
	}
}

// TestExpiredSessionIsRefusedByTheServer: the injected clock passes the
// idle timeout, and the next request is refused whatever the browser holds.
func TestExpiredSessionIsRefusedByTheServer(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	c := st.client(firefox)
	c.signIn(doctor, "")
	expectStatus(t, c.get("/api/v1/session"), http.StatusOK)
	token := c.cookie(web.SessionCookie).Value
	st.clock.Advance(15 * time.Minute)
	r := c.do("GET", "/api/v1/session", nil, map[string]string{"Authorization": "Bearer " + token})
	expectStatus(t, r, http.StatusUnauthorized)
	expectRedirect(t, c.get("/account"), "/login?ended=1")
}

// TestRevokedSessionIsRefusedOnItsNextRequest: revoking from the sessions
// page ends the other browser's session at once.
func TestRevokedSessionIsRefusedOnItsNextRequest(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	laptop, phone := st.client(firefox), st.client(firefox)
	secret := laptop.signIn(doctor, "")
	phone.signIn(doctor, secret)
	var who struct {
		SessionID string `json:"session_id"`
	}
	json.NewDecoder(phone.get("/api/v1/session").Body).Decode(&who)
	page := readAll(t, laptop.get("/account"))
	if !strings.Contains(page, "/account/sessions/"+who.SessionID+"/revoke") {
		t.Fatal("the sessions list does not offer to sign the other browser out")
	}
	expectRedirect(t, laptop.post("/account/sessions/"+who.SessionID+"/revoke", nil), "/account")
	expectStatus(t, phone.get("/api/v1/session"), http.StatusUnauthorized)
	expectStatus(t, laptop.get("/api/v1/session"), http.StatusOK)
}

func TestThrottlingAnswers429WithRetryAfterAndEnds(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	c := st.client(firefox)
	for range 5 {
		expectStatus(t, c.post("/login", url.Values{"email": {doctor}, "password": {"guess"}}), http.StatusUnauthorized)
	}
	r := c.post("/login", url.Values{"email": {doctor}, "password": {stackPassword}})
	expectStatus(t, r, http.StatusTooManyRequests)
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	st.clock.Advance(2 * time.Second)
	expectRedirect(t, c.post("/login", url.Values{"email": {doctor}, "password": {stackPassword}}), "/login/mfa")
}

// TestStepUpPageAndBack: a factor change after the step-up window sends
// the browser to confirm, then back to where it was going.
func TestStepUpPageAndBack(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	c := st.client(firefox)
	secret := c.signIn(doctor, "")
	st.clock.Advance(6 * time.Minute)
	expectRedirect(t, c.get("/account/totp"), "/account/step-up?next=%2Faccount%2Ftotp")
	code, _ := totp.Code(secret, st.clock.Now())
	expectStatus(t, c.post("/account/step-up", url.Values{"kind": {"totp"}, "code": {"123456"}, "next": {"/account/totp"}}), http.StatusUnauthorized)
	expectRedirect(t, c.post("/account/step-up", url.Values{"kind": {"totp"}, "code": {code}, "next": {"/account/totp"}}), "/account/totp")
	expectStatus(t, c.get("/account/totp"), http.StatusOK)
	// A step-up never sends anyone off the site.
	st.clock.Advance(6 * time.Minute)
	code, _ = totp.Code(secret, st.clock.Now())
	expectRedirect(t, c.post("/account/step-up", url.Values{"kind": {"totp"}, "code": {code}, "next": {"//evil.example/x"}}), "/app")
}

// TestChallengedSessionReachesOnlyItsStepUp: the same cookie from another
// device is sent to confirm; the API says step_up.
func TestChallengedSessionReachesOnlyItsStepUp(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	c := st.client(firefox)
	c.signIn(doctor, "")
	c.ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/140.0 Safari/537.36"
	expectRedirect(t, c.get("/account"), "/account/step-up")
	r := c.get("/api/v1/session")
	expectStatus(t, r, http.StatusForbidden)
	if !strings.Contains(readAll(t, r), `"step_up"`) {
		t.Fatal("the API did not ask for a step-up")
	}
	if page := readAll(t, c.get("/account/step-up")); !strings.Contains(page, `name="password"`) {
		t.Fatal("a challenged session's step-up does not ask for the password")
	}
}

var linkRE = regexp.MustCompile(`https://[^/\s]+(/reset/[A-Za-z0-9_-]{43})`)

func TestPasswordResetOverTheWebIsSingleUseAndEndsSessions(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	c := st.client(firefox)
	c.signIn(doctor, "")
	other := st.client(firefox)
	r := other.post("/reset", url.Values{"email": {doctor}})
	expectStatus(t, r, http.StatusOK)
	unknown := other.post("/reset", url.Values{"email": {"nobody@riverside.example"}})
	if a, b := readAll(t, r), readAll(t, unknown); a != b {
		t.Fatal("the reset answer differs for an unknown address")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := st.mail.Wait(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := linkRE.FindStringSubmatch(msgs[0].Text)
	if m == nil {
		t.Fatalf("no link in %q", msgs[0].Text)
	}
	expectStatus(t, other.get(m[1]), http.StatusOK)
	pw := url.Values{"password": {"a fresh lantern by the harbour"}, "confirm": {"a fresh lantern by the harbour"}}
	expectRedirect(t, other.post(m[1], pw), "/login?reset=1")
	expectStatus(t, c.get("/api/v1/session"), http.StatusUnauthorized)
	expectStatus(t, other.post(m[1], pw), http.StatusNotFound)
}

func TestAPIRefusesFormBodies(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	c := st.client(firefox)
	r := c.do("POST", "/api/v1/session", strings.NewReader(url.Values{"email": {patientEmail}, "password": {stackPassword}}.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	expectStatus(t, r, http.StatusBadRequest)
}

// TestAPIClientSignsInEnrolsAndSignsOut walks the JSON API end to end with
// a bearer token.
func TestAPIClientSignsInEnrolsAndSignsOut(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	c := st.client("haven-test-client/1")
	var login struct {
		Stage, Pending, Token string
		RecoveryCodes         []string `json:"recovery_codes"`
	}
	json.NewDecoder(c.api("POST", "/api/v1/session", map[string]string{"email": doctor, "password": stackPassword}).Body).Decode(&login)
	if login.Stage != "enrol" || login.Pending == "" {
		t.Fatalf("login: %+v", login)
	}
	var en struct{ Secret, URI string }
	json.NewDecoder(c.api("POST", "/api/v1/session/enrol", map[string]string{"pending": login.Pending}).Body).Decode(&en)
	code, _ := totp.Code(en.Secret, st.clock.Now())
	json.NewDecoder(c.api("POST", "/api/v1/session/enrol/confirm", map[string]string{"pending": login.Pending, "code": code}).Body).Decode(&login)
	if login.Stage != "done" || login.Token == "" || len(login.RecoveryCodes) != 10 {
		t.Fatalf("enrol: %+v", login)
	}
	bearer := map[string]string{"Authorization": "Bearer " + login.Token}
	c.jar, _ = cookiejar.New(nil) // the bearer token alone
	c.hc.Jar = c.jar
	var who struct {
		Role string
		MFA  bool
	}
	json.NewDecoder(c.do("GET", "/api/v1/session", nil, bearer).Body).Decode(&who)
	if who.Role != "clinician" || !who.MFA {
		t.Fatalf("whoami: %+v", who)
	}
	expectStatus(t, c.do("DELETE", "/api/v1/session", nil, bearer), http.StatusNoContent)
	expectStatus(t, c.do("GET", "/api/v1/session", nil, bearer), http.StatusUnauthorized)
}

// TestPagesCarryNoInlineScript: the CSP forbids inline script, and the
// pages do not need it; the idle warning is a static module.
func TestPagesCarryNoInlineScript(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	c := st.client(firefox)
	c.signIn(doctor, "")
	inline := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]|\son[a-z]+=`)
	for _, path := range []string{"/login", "/app", "/account", "/reset", "/account/totp"} {
		body := readAll(t, c.get(path))
		if inline.MatchString(body) {
			t.Errorf("%s carries inline script", path)
		}
	}
	page := readAll(t, c.get("/app"))
	if !strings.Contains(page, `src="/static/session.js"`) || !strings.Contains(page, "data-session-warn=") {
		t.Fatal("signed-in pages do not load the idle warning")
	}
	js := readAll(t, c.get("/static/session.js"))
	for _, want := range []string{"Your session is about to end", "/api/v1/session/keepalive", "replaceChildren"} {
		if !strings.Contains(js, want) {
			t.Errorf("session.js lacks %q", want)
		}
	}
}

// TestStatusDoesNotKeepTheSessionAlive: the page's timer may look at its
// session without extending it; the keep-alive button extends it.
func TestStatusDoesNotKeepTheSessionAlive(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	c := st.client(firefox)
	secret := c.signIn(doctor, "")
	st.clock.Advance(10 * time.Minute)
	expectStatus(t, c.get("/api/v1/session/status"), http.StatusOK)
	st.clock.Advance(5 * time.Minute)
	expectStatus(t, c.get("/api/v1/session/status"), http.StatusUnauthorized)

	c.signIn(doctor, secret)
	st.clock.Advance(10 * time.Minute)
	expectStatus(t, c.do("POST", "/api/v1/session/keepalive", nil, map[string]string{"Sec-Fetch-Site": "same-origin"}), http.StatusNoContent)
	st.clock.Advance(10 * time.Minute)
	expectStatus(t, c.get("/api/v1/session/status"), http.StatusOK)
}
