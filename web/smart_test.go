package web_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"haven"
	"haven/internal/testkit"
	"haven/smart"
)

// smartApp is a registered app as a test drives it.
type smartApp struct {
	id, redirect string
}

// registerApp registers a public app for the tenant, as its admin.
func registerApp(t *testing.T, st *authStack, tn *tenant, name string, scopes ...string) smartApp {
	t.Helper()
	return registerAppAt(t, st, tn, name, "http://127.0.0.1:9/"+strings.ReplaceAll(strings.ToLower(name), " ", "-")+"/callback", scopes...)
}

// registerAppAt registers a public app with its redirect address.
func registerAppAt(t *testing.T, st *authStack, tn *tenant, name, redirect string, scopes ...string) smartApp {
	t.Helper()
	a := haven.Actor{UserID: st.users[tn.emails[haven.RolePracticeAdmin]], PracticeID: tn.id, Role: haven.RolePracticeAdmin,
		MFA: true, AuthTime: st.clock.Now(), SessionID: "seed", RequestID: "seed", ClientAddr: "127.0.0.1"}
	reg, err := st.smart.AddClient(haven.NewContextWithActor(context.Background(), a), smart.NewClient{Name: name,
		RedirectURIs: []string{redirect}, Public: true, Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return smartApp{id: reg.Client.ID, redirect: redirect}
}

// pkce returns a fresh verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	b := make([]byte, 32)
	rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// pageSignIn signs a patient in through the sign-in page, so her browser
// holds a session cookie.
func (c *client) pageSignIn(email string) {
	t := c.st.t
	t.Helper()
	r := c.post("/login", url.Values{"email": {email}, "password": {stackPassword}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", r.StatusCode, readAll(t, r))
	}
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// authorize walks the authorization endpoint as the signed-in browser c:
// the consent page, then Allow. It returns the code.
func authorize(t *testing.T, c *client, app smartApp, scope, challenge string) string {
	t.Helper()
	q := url.Values{"response_type": {"code"}, "client_id": {app.id}, "redirect_uri": {app.redirect}, "scope": {scope},
		"state": {"state-123456789"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}, "aud": {c.st.base + "/fhir/R4"}}
	r := c.get("/oauth2/authorize?" + q.Encode())
	page := readAll(t, r)
	if r.StatusCode != http.StatusOK || !strings.Contains(page, `id="smart-consent"`) {
		t.Fatalf("authorize: %d %s %s", r.StatusCode, r.Header.Get("Location"), page)
	}
	form := url.Values{"decision": {"allow"}}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		form.Add(m[1], htmlUnescape(m[2]))
	}
	r = c.post("/oauth2/authorize", form)
	loc, err := url.Parse(r.Header.Get("Location"))
	if err != nil || r.StatusCode/100 != 3 || !strings.HasPrefix(loc.String(), app.redirect) {
		t.Fatalf("consent: %d to %q: %s", r.StatusCode, r.Header.Get("Location"), readAll(t, r))
	}
	if loc.Query().Get("state") != "state-123456789" || loc.Query().Get("code") == "" {
		t.Fatalf("redirect %s has no code or the wrong state", loc)
	}
	return loc.Query().Get("code")
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'", "&quot;", `"`, "&#43;", "+").Replace(s)
}

// tokenAnswer is the token endpoint's answer.
type tokenAnswer struct {
	Status       int
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	Patient      string `json:"patient"`
	Error        string `json:"error"`
}

func tokenCall(t *testing.T, c *client, form url.Values) tokenAnswer {
	t.Helper()
	// As an app on another origin posts it, with no cookie of Haven's.
	r := c.do("POST", "/oauth2/token", strings.NewReader(form.Encode()), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://127.0.0.1:9", "Sec-Fetch-Site": "cross-site"})
	var a tokenAnswer
	body := readAll(t, r)
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("token: %d %s", r.StatusCode, body)
	}
	a.Status = r.StatusCode
	return a
}

func redeem(t *testing.T, c *client, app smartApp, code, verifier string) tokenAnswer {
	t.Helper()
	return tokenCall(t, c, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {app.redirect},
		"client_id": {app.id}, "code_verifier": {verifier}})
}

// bearer reads path with an access token, as an app would.
func bearer(c *client, token, path string) *http.Response {
	return c.do("GET", path, nil, map[string]string{"Authorization": "Bearer " + token, "Accept": "application/fhir+json"})
}

// TestSMARTPatientAppAsAnAttackerWouldTry walks a patient's standalone
// launch with a public app over HTTP on every database (sign-in, consent,
// code with PKCE, token with her patient in context, reads) and then what
// an attacker holding one of the pieces would try: another patient's and
// another practice's ids, a type beyond the token's scopes, a wrong PKCE
// verifier, a replayed code, a reused refresh token, a revoked token. The
// token's reads are in the audit log naming the app.
func TestSMARTPatientAppAsAnAttackerWouldTry(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			own, other := ts[0], ts[1]
			a, b := own.patient[0], own.patient[1]
			app := registerApp(t, st, own, "Pocket Health", "launch/patient", "patient/*.rs", "offline_access", "openid", "fhirUser")
			narrow := registerApp(t, st, own, "Step Counter", "launch/patient", "patient/Patient.rs")
			elsewhere := registerApp(t, st, other, "Lakeshore App", "launch/patient", "patient/*.rs")
			anon := st.client(firefox)

			// The configuration is public and names the endpoints.
			r := anon.get("/fhir/R4/.well-known/smart-configuration")
			var conf map[string]any
			json.NewDecoder(r.Body).Decode(&conf)
			if r.StatusCode != 200 || conf["token_endpoint"] != st.base+"/oauth2/token" || conf["authorization_endpoint"] != st.base+"/oauth2/authorize" {
				t.Fatalf("smart-configuration: %d %v", r.StatusCode, conf)
			}

			// Without a session, the authorization endpoint is Haven's sign-in.
			r = anon.get("/oauth2/authorize?client_id=" + app.id)
			expectRedirect(t, r, "/login?")

			pc := st.client(firefox)
			pc.pageSignIn(own.pEmail[0])
			verifier, challenge := pkce()
			code := authorize(t, pc, app, "launch/patient patient/*.rs offline_access", challenge)

			// A stolen code without its verifier gets nothing, and the
			// attempt spends it: not even the right verifier redeems it then.
			wrong, _ := pkce()
			if got := redeem(t, anon, app, code, wrong); got.Status != http.StatusBadRequest || got.AccessToken != "" {
				t.Fatalf("a wrong PKCE verifier: %+v", got)
			}
			if got := redeem(t, anon, app, code, verifier); got.Status != http.StatusBadRequest || got.AccessToken != "" {
				t.Fatalf("a code after a wrong verifier: %+v", got)
			}
			code = authorize(t, pc, app, "launch/patient patient/*.rs offline_access", challenge)
			tok := redeem(t, anon, app, code, verifier)
			if tok.Status != 200 || tok.AccessToken == "" || tok.RefreshToken == "" || tok.Patient != a {
				t.Fatalf("token: %+v, want tokens and patient %s", tok, a)
			}
			if strings.Contains(readAll(t, anon.get("/fhir/R4/metadata")), tok.AccessToken) {
				t.Fatal("the token shows up where it should not")
			}

			// Her own record, read with the token.
			doc := fhirDoc(t, bearer(anon, tok.AccessToken, "/fhir/R4/Patient/"+a), http.StatusOK)
			if doc["id"] != a {
				t.Fatalf("Patient read %v", doc)
			}
			entries(t, fhirDoc(t, bearer(anon, tok.AccessToken, "/fhir/R4/Observation"), http.StatusOK), -1)
			entries(t, fhirDoc(t, bearer(anon, tok.AccessToken, "/fhir/R4/Observation?patient="+a), http.StatusOK), -1)

			// Another patient's ids, in her practice and in another, are
			// nowhere.
			for _, p := range []string{"/fhir/R4/Patient/" + b, "/fhir/R4/Observation?patient=" + b, "/fhir/R4/Patient?_id=" + b,
				"/fhir/R4/Patient/" + other.patient[0], "/fhir/R4/Observation?patient=" + other.patient[0],
				"/fhir/R4/Patient/" + b + "/$everything"} {
				outcome(t, bearer(anon, tok.AccessToken, p), http.StatusNotFound, "not-found")
			}

			// The token's session row: every use names the app.
			var n int
			if err := st.db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE session_id = $1 AND actor_id = $2 AND decision = 'allow'`,
				"smart:"+app.id, a).Scan(&n); err != nil || n < 3 {
				t.Fatalf("audit events naming the app: %d, %v", n, err)
			}
			if err := st.db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE session_id = $1 AND decision = 'deny'`,
				"smart:"+app.id).Scan(&n); err != nil || n < 3 {
				t.Fatalf("refusals naming the app: %d, %v", n, err)
			}

			// A narrower app reads what it was granted, and nothing beyond.
			v2, c2 := pkce()
			small := redeem(t, anon, narrow, authorize(t, pc, narrow, "launch/patient patient/Patient.rs", c2), v2)
			fhirDoc(t, bearer(anon, small.AccessToken, "/fhir/R4/Patient/"+a), http.StatusOK)
			outcome(t, bearer(anon, small.AccessToken, "/fhir/R4/Observation"), http.StatusForbidden, "forbidden")
			outcome(t, bearer(anon, small.AccessToken, "/fhir/R4/Patient/"+a+"/$everything"), http.StatusForbidden, "forbidden")
			// Nor may it ask for more than it was registered for.
			q := url.Values{"response_type": {"code"}, "client_id": {narrow.id}, "redirect_uri": {narrow.redirect},
				"scope": {"launch/patient patient/*.rs"}, "state": {"state-123456789"}, "code_challenge": {c2}, "code_challenge_method": {"S256"}}
			if r := pc.get("/oauth2/authorize?" + q.Encode()); r.StatusCode/100 != 3 || !strings.Contains(r.Header.Get("Location"), "error=invalid_scope") {
				t.Fatalf("a scope beyond the registration: %d %s", r.StatusCode, r.Header.Get("Location"))
			}
			// Nor without PKCE, nor with plain.
			q.Set("scope", "patient/Patient.rs")
			q.Set("code_challenge_method", "plain")
			if r := pc.get("/oauth2/authorize?" + q.Encode()); r.StatusCode/100 != 3 || !strings.Contains(r.Header.Get("Location"), "error=") {
				t.Fatalf("a plain PKCE challenge: %d %s", r.StatusCode, r.Header.Get("Location"))
			}
			// Another practice's app is not hers to authorize.
			q = url.Values{"response_type": {"code"}, "client_id": {elsewhere.id}, "redirect_uri": {elsewhere.redirect},
				"scope": {"patient/*.rs"}, "state": {"state-123456789"}, "code_challenge": {c2}, "code_challenge_method": {"S256"}}
			if r := pc.get("/oauth2/authorize?" + q.Encode()); r.StatusCode/100 != 3 || !strings.Contains(r.Header.Get("Location"), "error=access_denied") {
				t.Fatalf("another practice's app: %d %s", r.StatusCode, r.Header.Get("Location"))
			}

			// Refresh rotates: the new pair works, the old refresh token is
			// refused, and its reuse ends the family it was stolen from.
			ref := tokenCall(t, anon, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {app.id}})
			if ref.Status != 200 || ref.AccessToken == "" || ref.RefreshToken == "" || ref.RefreshToken == tok.RefreshToken || ref.Patient != a {
				t.Fatalf("refresh: %+v", ref)
			}
			outcome(t, bearer(anon, tok.AccessToken, "/fhir/R4/Patient/"+a), http.StatusUnauthorized, "login")
			fhirDoc(t, bearer(anon, ref.AccessToken, "/fhir/R4/Patient/"+a), http.StatusOK)
			again := tokenCall(t, anon, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {app.id}})
			if again.Status == 200 || again.AccessToken != "" {
				t.Fatalf("a reused refresh token: %+v", again)
			}
			outcome(t, bearer(anon, ref.AccessToken, "/fhir/R4/Patient/"+a), http.StatusUnauthorized, "login")

			// A replayed code gives nothing, and ends what the code gave.
			v3, c3 := pkce()
			code3 := authorize(t, pc, app, "launch/patient patient/*.rs", c3)
			first := redeem(t, anon, app, code3, v3)
			if first.Status != 200 {
				t.Fatalf("redeem: %+v", first)
			}
			if replay := redeem(t, anon, app, code3, v3); replay.Status == 200 || replay.AccessToken != "" {
				t.Fatalf("a replayed code: %+v", replay)
			}
			outcome(t, bearer(anon, first.AccessToken, "/fhir/R4/Patient/"+a), http.StatusUnauthorized, "login")

			// A revoked token is refused on the next request.
			v4, c4 := pkce()
			live := redeem(t, anon, app, authorize(t, pc, app, "launch/patient patient/*.rs", c4), v4)
			fhirDoc(t, bearer(anon, live.AccessToken, "/fhir/R4/Patient/"+a), http.StatusOK)
			r = anon.do("POST", "/oauth2/revoke", strings.NewReader(url.Values{"token": {live.AccessToken}, "client_id": {app.id}}.Encode()),
				map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://127.0.0.1:9", "Sec-Fetch-Site": "cross-site"})
			expectStatus(t, r, http.StatusOK)
			outcome(t, bearer(anon, live.AccessToken, "/fhir/R4/Patient/"+a), http.StatusUnauthorized, "login")

			// Her password changed, every app she authorized with the old
			// one is out: its access token at once, its refresh token too.
			v5, c5 := pkce()
			held := redeem(t, anon, app, authorize(t, pc, app, "launch/patient patient/*.rs offline_access", c5), v5)
			fhirDoc(t, bearer(anon, held.AccessToken, "/fhir/R4/Patient/"+a), http.StatusOK)
			r = pc.post("/account/password", url.Values{"current_password": {stackPassword}, "new_password": {"a new passphrase for pocket health"},
				"confirm": {"a new passphrase for pocket health"}})
			if r.StatusCode != http.StatusSeeOther {
				t.Fatalf("password change: %d %s", r.StatusCode, readAll(t, r))
			}
			outcome(t, bearer(anon, held.AccessToken, "/fhir/R4/Patient/"+a), http.StatusUnauthorized, "login")
			if got := tokenCall(t, anon, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {held.RefreshToken}, "client_id": {app.id}}); got.Status == 200 || got.AccessToken != "" {
				t.Fatalf("a refresh token from before the password change: %+v", got)
			}

			// A forged token, and no token at all, are refused alike.
			outcome(t, bearer(anon, "ory_at_forged.forged", "/fhir/R4/Patient/"+a), http.StatusUnauthorized, "login")

			// The token secret is stored sealed (header, nonce, tag
			// around it), never as the 32 bytes that sign tokens, and
			// every node reads the same one.
			var sealedSecret []byte
			if err := st.db.SQL().QueryRow(`SELECT secret FROM smart_secret WHERE id = 1`).Scan(&sealedSecret); err != nil || len(sealedSecret) < 32+28 {
				t.Fatalf("the stored token secret (%d bytes, %v) is not sealed", len(sealedSecret), err)
			}

			// The grants table holds no token in the clear.
			rows, err := st.db.SQL().Query(`SELECT data FROM smart_grants`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var data string
				rows.Scan(&data)
				for _, secret := range []string{tok.AccessToken, tok.RefreshToken, live.AccessToken, verifier, code} {
					if strings.Contains(data, secret) || strings.Contains(data, secret[strings.LastIndexByte(secret, '.')+1:]) {
						t.Fatalf("a token or verifier is stored in the clear: %s", data)
					}
				}
			}
		})
	}
}

// TestSMARTEHRLaunchFromTheChart: a clinician opens a patient's chart in
// an app ("Open in app"): the launch id stands for that patient, the token
// carries her and reaches no other; the launch id is hers alone and is
// spent once; a chart she may not read launches nothing.
func TestSMARTEHRLaunchFromTheChart(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			own := ts[0]
			a, b := own.patient[0], own.patient[1]
			admin := haven.Actor{UserID: st.users[own.emails[haven.RolePracticeAdmin]], PracticeID: own.id, Role: haven.RolePracticeAdmin,
				MFA: true, AuthTime: st.clock.Now(), SessionID: "seed", RequestID: "seed", ClientAddr: "127.0.0.1"}
			reg, err := st.smart.AddClient(haven.NewContextWithActor(context.Background(), admin), smart.NewClient{Name: "Growth Charts",
				RedirectURIs: []string{"https://charts.example/app"}, LaunchURL: "https://charts.example/launch", Public: true,
				Scopes: []string{"launch", "patient/*.rs"}})
			if err != nil {
				t.Fatal(err)
			}
			app := smartApp{id: reg.Client.ID, redirect: "https://charts.example/app"}

			doc := st.client(firefox)
			doc.signIn(own.emails[haven.RoleClinician], "")
			chart := readAll(t, doc.get("/app/patients/"+a))
			link := "/app/patients/" + a + "/apps/" + app.id
			if !strings.Contains(chart, `href="`+link+`"`) || !strings.Contains(chart, "Open in Growth Charts") {
				t.Fatalf("the chart has no Open in app link")
			}
			r := doc.get(link)
			to, err := url.Parse(r.Header.Get("Location"))
			if r.StatusCode != http.StatusSeeOther || err != nil || !strings.HasPrefix(to.String(), "https://charts.example/launch?") ||
				to.Query().Get("iss") != st.base+"/fhir/R4" || to.Query().Get("launch") == "" {
				t.Fatalf("Open in app: %d to %q", r.StatusCode, r.Header.Get("Location"))
			}
			launch := to.Query().Get("launch")
			// The launch id is the clinician's: a patient holding it gets nothing.
			pc := st.client(firefox)
			pc.pageSignIn(own.pEmail[1])
			_, ch := pkce()
			q := url.Values{"response_type": {"code"}, "client_id": {app.id}, "redirect_uri": {app.redirect}, "scope": {"launch patient/*.rs"},
				"state": {"state-123456789"}, "code_challenge": {ch}, "code_challenge_method": {"S256"}, "launch": {launch}}
			if r := pc.get("/oauth2/authorize?" + q.Encode()); r.StatusCode/100 != 3 || !strings.Contains(r.Header.Get("Location"), "error=access_denied") {
				t.Fatalf("another user's launch id: %d %s", r.StatusCode, r.Header.Get("Location"))
			}

			v, c := pkce()
			q.Set("code_challenge", c)
			page := readAll(t, doc.get("/oauth2/authorize?"+q.Encode()))
			if !strings.Contains(page, "whose chart you opened it from") {
				t.Fatalf("the consent page does not say which record: %s", page)
			}
			form := url.Values{"decision": {"allow"}}
			for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
				form.Add(m[1], htmlUnescape(m[2]))
			}
			r = doc.post("/oauth2/authorize", form)
			loc, _ := url.Parse(r.Header.Get("Location"))
			tok := redeem(t, st.client(firefox), app, loc.Query().Get("code"), v)
			if tok.Status != 200 || tok.Patient != a {
				t.Fatalf("token after an EHR launch: %+v, want patient %s", tok, a)
			}
			anon := st.client(firefox)
			fhirDoc(t, bearer(anon, tok.AccessToken, "/fhir/R4/Patient/"+a), http.StatusOK)
			entries(t, fhirDoc(t, bearer(anon, tok.AccessToken, "/fhir/R4/Observation"), http.StatusOK), -1)
			// Patient B is on no care team of hers: not through the app either.
			outcome(t, bearer(anon, tok.AccessToken, "/fhir/R4/Patient/"+b), http.StatusNotFound, "not-found")
			// The launch id is spent.
			if r := doc.get("/oauth2/authorize?" + q.Encode()); r.StatusCode/100 != 3 || !strings.Contains(r.Header.Get("Location"), "error=access_denied") {
				t.Fatalf("a spent launch id: %d %s", r.StatusCode, r.Header.Get("Location"))
			}
			// A chart she may not read launches nothing.
			if r := doc.get("/app/patients/" + b + "/apps/" + app.id); r.StatusCode == http.StatusSeeOther {
				t.Fatalf("a launch of a chart she may not read: to %s", r.Header.Get("Location"))
			}
		})
	}
}
