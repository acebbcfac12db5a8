package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"haven/internal/testkit"
	"haven/smart"
)

// fhirClientJS is the browser build of fhirclient, the SMART on FHIR
// JavaScript client we did not write, installed by .ci/run into a folder
// git ignores.
var fhirClientJS = filepath.Join("testdata", "node", "node_modules", "fhirclient", "build", "fhir-client.js")

// The test app: a launch page that hands the user to Haven to authorize,
// and a page that reads her Patient and Observations with the token
// fhirclient gets. It is served from an origin of its own, as an app is.
const smartLaunchPage = `<!doctype html><html><head><title>Launch</title><script src="/fhir-client.js"></script></head><body>
<p>Launching…</p><script>
FHIR.oauth2.authorize({iss: ISS, clientId: CLIENT, scope: "launch/patient openid fhirUser patient/*.rs offline_access", redirectUri: "app.html"})
  .catch(e => { document.body.innerHTML = '<p id="error">' + e + '</p>'; });
</script></body></html>`

const smartAppPage = `<!doctype html><html><head><title>App</title><script src="/fhir-client.js"></script></head><body>
<p>Loading…</p><script>
FHIR.oauth2.ready().then(client => Promise.all([client.patient.read(), client.request("Observation?patient=" + client.patient.id),
    client.request("Patient/" + OTHER).then(() => "read", e => "refused " + (e.status || e)), client.getFhirUser()]))
  .then(([p, obs, other, me]) => {
    document.body.innerHTML = '<p id="patient-id">' + p.id + '</p><p id="patient-name">' + (p.name && p.name[0] && (p.name[0].text || p.name[0].family)) +
      '</p><p id="observations">' + obs.resourceType + ' ' + obs.total + '</p><p id="other">' + other + '</p><p id="fhir-user">' + me + '</p>';
  })
  .catch(e => { document.body.innerHTML = '<p id="error">' + e + '</p>'; });
</script></body></html>`

// TestBrowserFHIRClientLaunchesAndReads: fhirclient, in Chromium, does a
// standalone launch against Haven: it finds the endpoints in the SMART
// configuration, sends the patient to Haven's sign-in and consent page,
// redeems the code with PKCE and reads her Patient and Observations with
// the token, and finds her as fhirUser in the id_token; another patient's
// record is refused to it.
func TestBrowserFHIRClientLaunchesAndReads(t *testing.T) {
	js, err := os.ReadFile(fhirClientJS)
	if err != nil {
		if testkit.InCI() {
			t.Fatalf("fhirclient is not installed (.ci/run installs it): %v", err)
		}
		t.Skip("fhirclient not installed; run .ci/run")
	}
	st, ts := newChartStack(t, testkit.SQLite(t))
	own := ts[0]
	a, b := own.patient[0], own.patient[1]

	mux := http.NewServeMux()
	// Over https, as an app is served: Chromium stops a form's redirect
	// from an https page to http at a warning.
	appSrv := httptest.NewTLSServer(mux)
	t.Cleanup(appSrv.Close)
	app := smartApp{redirect: appSrv.URL + "/app.html"}
	registered := registerAppAt(t, st, own, "Pocket Health", app.redirect, "launch/patient", "openid", "fhirUser", "patient/*.rs", "offline_access")
	page := func(body string) http.HandlerFunc {
		body = strings.NewReplacer("ISS", `"`+st.base+`/fhir/R4"`, "CLIENT", `"`+registered.id+`"`, "OTHER", `"`+b+`"`).Replace(body)
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(body))
		}
	}
	mux.HandleFunc("/launch.html", page(smartLaunchPage))
	mux.HandleFunc("/app.html", page(smartAppPage))
	mux.HandleFunc("/favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/fhir-client.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		w.Write(js)
	})

	w := newWalker(t, st.base)
	w.use(phone) // the consent page at 390 px
	if err := chromedp.Do(w.ctx, chromedp.Navigate(appSrv.URL+"/launch.html")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w.ctx, "Haven's sign-in", `document.querySelector('#sign-in') ? 1 : 0`)
	w.check()
	w.fill(map[string]string{"email": own.pEmail[0], "password": stackPassword})
	w.press("#sign-in")
	if got := w.text("#smart-asks"); !strings.Contains(got, "Read the patient's lab results") && !strings.Contains(got, "Read the patient's all of the record") {
		t.Errorf("the consent page lists %q", got)
	}
	if !strings.Contains(w.text("h1"), "Pocket Health") {
		t.Errorf("the consent page does not name the app: %q", w.text("h1"))
	}
	click(t, w.ctx, "#smart-allow")
	waitFor(t, w.ctx, "the app's reads", `(document.querySelector('#patient-id') || document.querySelector('#error')) ? 1 : 0`)
	if w.has("#error") {
		t.Fatalf("the app failed: %s", w.text("#error"))
	}
	if got := w.text("#patient-id"); got != a {
		t.Fatalf("the app read patient %q, want %s", got, a)
	}
	if got := w.text("#observations"); !strings.HasPrefix(got, "Bundle ") {
		t.Fatalf("the app's Observation search: %q", got)
	}
	if got := w.text("#other"); !strings.HasPrefix(got, "refused 404") {
		t.Fatalf("another patient's record, read by the app: %q", got)
	}
	// fhirclient found who she is in the id_token (openid fhirUser).
	if got := w.text("#fhir-user"); got != "Patient/"+a {
		t.Fatalf("fhirclient's fhirUser: %q, want Patient/%s", got, a)
	}
	var n int
	if err := st.db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE session_id = $1 AND actor_id = $2`, "smart:"+registered.id, a).Scan(&n); err != nil || n < 3 {
		t.Fatalf("the app's reads in the audit log: %d, %v", n, err)
	}
}

// TestBrowserAdminRegistersAndRevokesAnApp: the practice admin, on a
// phone, from her home by links: registers a patient app on the Apps
// page, sees it listed by name, and revokes it; both changes are in the
// audit log as hers. She registers a backend system with its client
// certificate, shown by its subject.
func TestBrowserAdminRegistersAndRevokesAnApp(t *testing.T) {
	st := newAuthStack(t, true)
	apps, err := smart.New(context.Background(), st.svc.Gate(), st.db, "")
	if err != nil {
		t.Fatal(err)
	}
	ln, base := listener(t)
	st.base = base
	st.web.Service, st.web.SMART = st.svc, apps
	st.srv = newWebServer(t, st.web)
	serveOn(t, st.srv, ln)

	w := newWalker(t, st.base)
	w.use(phone)
	w.start()
	w.signIn(admin, "")
	w.follow("#home-apps")
	if !w.has("#no-apps") {
		t.Fatal("a new practice lists apps")
	}
	w.fill(map[string]string{"app-name": "Pocket Health", "app-redirects": "https://app.example/callback", "app-scopes": "launch/patient patient/*.rs offline_access"})
	w.press("#app-submit")
	if got := w.text(".flash"); !strings.Contains(got, "Pocket Health is registered") {
		t.Fatalf("after registering: %q", got)
	}
	cs, err := st.db.ListSMARTClients(context.Background(), st.practice)
	if err != nil || len(cs) != 1 || cs[0].Name != "Pocket Health" || !cs[0].Public {
		t.Fatalf("registered: %+v, %v", cs, err)
	}
	row := "#app-" + cs[0].ID
	if got := w.text(row + " .name"); !strings.HasPrefix(got, "Pocket Health") {
		t.Fatalf("the list shows %q", got)
	}
	// A backend system with its client certificate (mutual TLS).
	cert := newClientCert(t, "Harbor Pharmacy Gateway", time.Now())
	click(t, w.ctx, "#app-kind-backend")
	w.fill(map[string]string{"app-name": "Harbor Pharmacy", "app-scopes": "system/Patient.rs", "app-cert": cert.pem})
	w.press("#app-submit")
	if got := w.text(".flash"); !strings.Contains(got, "Harbor Pharmacy is registered") || w.has("#app-secret") {
		t.Fatalf("after registering the system: %q", got)
	}
	cs, err = st.db.ListSMARTClients(context.Background(), st.practice)
	if err != nil || len(cs) != 2 || cs[1].CertThumbprint != smart.Thumbprint(cert.tls.Certificate[0]) {
		t.Fatalf("registered: %+v, %v", cs, err)
	}
	if got := w.text("#app-" + cs[1].ID + " .cert"); !strings.Contains(got, "CN=Harbor Pharmacy Gateway") {
		t.Fatalf("the system's certificate is shown as %q", got)
	}
	w.press("#revoke-" + cs[0].ID)
	if !w.has(row + `[data-revoked="true"]`) {
		t.Fatalf("the app is not shown revoked")
	}
	for _, act := range []string{"smart.client.add", "smart.client.revoke"} {
		var n int
		if err := st.db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE action = $1 AND actor_id = $2 AND resource_id = $3`,
			act, st.users[admin], cs[0].ID).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%s in the audit log: %d, %v", act, n, err)
		}
	}
}
