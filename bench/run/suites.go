package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"haven/auth/totp"
	"haven/demo"
)

// A loadSuite is one row of the HTTPS load table: a request that loadgen
// drives at the running haven with the same connections, duration and
// warm-up as the baseline row, so the two can be divided. To add a row,
// append to loadSuites; Setup can sign in and return the headers (a session
// cookie, say) every request must carry.
type loadSuite struct {
	Name string // shown in the table
	// Server names the haven instance the row runs against (see
	// instances in main.go): "sqlite" when empty.
	Server string
	// Path is the request path on haven; "{patient}" in it stands for the
	// demo patient's id (Maria Lopez of Riverside Family Clinic), and
	// "{thread}" for a new conversation of hers with her care team, one
	// per row (see newThread).
	Path   string
	Method string // GET when empty
	// Body is sent with every request (JSON); each {{n}} in it is unique
	// per request (see bench/internal/load).
	Body  string
	Setup func(ctx context.Context, havenURL string) (http.Header, error)
	// Flood, if set, is driven by a second loadgen while this row is
	// measured: the row then shows the request's latency under that load.
	Flood *flood
	// Audited rows wait for a durable audit commit before answering: they
	// are also divided by their database's durable floor (floor.go).
	Audited bool
}

// flood is background load for a row.
type flood struct {
	Path, Method, Body string
	Connections        int
}

// loadSuites are the rows measured against haven. The baseline row, a bare
// Go TLS 1.3 server answering GET /healthz, is always measured first and
// is not listed here.
var loadSuites = []loadSuite{
	{Name: "haven: GET /healthz", Path: "/healthz"},
	{Name: "haven: GET /api/v1/session, signed in", Path: "/api/v1/session", Setup: signInFrontDesk},
	{Name: "haven: GET /api/v1/session, signed in, during a login flood", Path: "/api/v1/session", Setup: signInFrontDesk,
		Flood: &flood{Path: "/api/v1/session", Method: "POST", Connections: 16,
			Body: `{"email":"maria.lopez@patients.example","password":"` + demo.Password + `"}`}},
}

// chartRows are the audited chart read on one instance: the demo patient
// reading her own chart, and the clinician on her care team reading it.
// Each is decided by policy, appended to the audit log (durably, before
// the answer) and decrypted, like every chart read.
func chartRows(server, label string) []loadSuite {
	return []loadSuite{
		{Name: "haven (" + label + "): GET /api/v1/patients/{id}, the patient's own chart", Server: server,
			Path: "/api/v1/patients/{patient}", Setup: signInPatient, Audited: true},
		{Name: "haven (" + label + "): GET /api/v1/patients/{id}, her clinician reading it", Server: server,
			Path: "/api/v1/patients/{patient}", Setup: signInClinician, Audited: true},
	}
}

// fhirRows are the FHIR API's Patient read and search on one instance,
// by the demo patient's session token as a bearer token: each the chart
// read's gate (decided, audited, opened), then mapped to FHIR by the
// export's builder and written as application/fhir+json. Read them
// against the chart rows above (the same gate without the mapping) and
// the bare TLS baseline of the same run.
func fhirRows(server, label string) []loadSuite {
	return []loadSuite{
		{Name: "haven (" + label + "): GET /fhir/R4/Patient/{id}, the patient's own", Server: server,
			Path: "/fhir/R4/Patient/{patient}", Setup: signInPatient},
		{Name: "haven (" + label + "): GET /fhir/R4/Patient?_id={id}, the patient's own", Server: server,
			Path: "/fhir/R4/Patient?_id={patient}", Setup: signInPatient},
	}
}

// createRow is the front desk registering a new patient (account and
// chart, every field sealed under the patient's new data key, audited):
// each request a new MRN and email address.
func createRow(server, label string) loadSuite {
	return loadSuite{Name: "haven (" + label + "): POST /api/v1/patients, the front desk registering a patient", Server: server,
		Path: "/api/v1/patients", Method: "POST", Setup: signInFrontDesk,
		Body: `{"mrn":"B-{{n}}","demographics":{"name":"Bench Patient","date_of_birth":"1980-02-03"},` +
			`"contact":{"email":"bench-{{n}}@patients.example"}}`}
}

// growthRows are the patient's own chart read on a database seeded with
// a new clinic's log (1k audit events) and with a busy one's (1M events,
// 100k patients; see instances.go): the read must not slow as they grow.
func growthRows(db, label string) []loadSuite {
	return []loadSuite{
		{Name: "haven (" + label + ", 1k events): GET /api/v1/patients/{id}, the patient's own chart", Server: db + "-1k",
			Path: "/api/v1/patients/{patient}", Setup: signInPatient, Audited: true},
		{Name: "haven (" + label + ", 1M events, 100k patients): GET /api/v1/patients/{id}, the patient's own chart", Server: db + "-1m",
			Path: "/api/v1/patients/{patient}", Setup: signInPatient, Audited: true},
	}
}

// messageRows are secure messaging on one instance: the demo patient
// reading a conversation with her care team (decided, audited once, every
// message opened under her key, her read mark written) and sending a
// message to her care team (a new conversation each time, since one holds
// a bounded number of messages: sealed, audited, the thread's unread state
// and the practice's notice queue written). Issue 13 reads them against the
// signed-in session row of the same run.
func messageRows(server, label string) []loadSuite {
	return []loadSuite{
		{Name: "haven (" + label + "): GET /api/v1/threads/{id}, the patient reading a conversation", Server: server,
			Path: "/api/v1/threads/{thread}", Setup: signInPatient},
		{Name: "haven (" + label + "): POST /api/v1/threads, the patient sending a message to her care team", Server: server,
			Path: "/api/v1/threads", Method: "POST", Setup: signInPatient,
			Body: `{"audience":"care_team","subject":"A question","body":"A question for the bench, number {{n}}"}`},
	}
}

func init() {
	loadSuites = append(loadSuites, chartRows("sqlite", "SQLite")...)
	loadSuites = append(loadSuites, chartRows("postgres", "PostgreSQL")...)
	loadSuites = append(loadSuites, chartRows("postgres-3nodes", "PostgreSQL, 3 nodes behind HAProxy")...)
	loadSuites = append(loadSuites, fhirRows("sqlite", "SQLite")...)
	loadSuites = append(loadSuites, fhirRows("postgres", "PostgreSQL")...)
	loadSuites = append(loadSuites, messageRows("sqlite", "SQLite")...)
	loadSuites = append(loadSuites, messageRows("postgres", "PostgreSQL")...)
	loadSuites = append(loadSuites, createRow("sqlite", "SQLite"), createRow("postgres", "PostgreSQL"))
	loadSuites = append(loadSuites, growthRows("sqlite", "SQLite")...)
	loadSuites = append(loadSuites, growthRows("postgres", "PostgreSQL")...)
}

// signedIn caches sessions per haven URL and email: an account's
// authenticator is enrolled at its first sign-in, so rows share one session.
var signedIn = map[string]http.Header{}

// signInFrontDesk signs the demo front desk in.
func signInFrontDesk(ctx context.Context, havenURL string) (http.Header, error) {
	return signIn(ctx, havenURL, "frontdesk@riverside.example")
}

// signInPatient signs the demo patient in (patients need no second factor
// unless their practice requires one).
func signInPatient(ctx context.Context, havenURL string) (http.Header, error) {
	return signIn(ctx, havenURL, demoPatient)
}

// signInClinician signs in the clinician on the demo patient's care team.
func signInClinician(ctx context.Context, havenURL string) (http.Header, error) {
	return signIn(ctx, havenURL, "rivera@riverside.example")
}

// demoPatient is the patient whose chart the chart rows read.
const demoPatient = "maria.lopez@patients.example"

// patientID returns the demo patient's id on havenURL.
func patientID(ctx context.Context, havenURL string) (string, error) {
	h, err := signInPatient(ctx, havenURL)
	if err != nil {
		return "", err
	}
	c := insecureClient()
	defer c.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, havenURL+"/api/v1/session", nil)
	req.Header = h.Clone()
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var who struct {
		UserID string `json:"user_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&who); err != nil || who.UserID == "" {
		return "", fmt.Errorf("GET /api/v1/session as the demo patient: %s, %v", resp.Status, err)
	}
	return who.UserID, nil
}

// newThread starts a conversation of the demo patient with her care team
// on havenURL and returns its id.
func newThread(ctx context.Context, havenURL string) (string, error) {
	h, err := signInPatient(ctx, havenURL)
	if err != nil {
		return "", err
	}
	c := insecureClient()
	defer c.CloseIdleConnections()
	body := `{"audience":"care_team","subject":"A question","body":"The first message of a bench conversation."}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, havenURL+"/api/v1/threads", strings.NewReader(body))
	req.Header = h.Clone()
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var th struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&th); err != nil || resp.StatusCode != http.StatusCreated || th.ID == "" {
		return "", fmt.Errorf("POST /api/v1/threads as the demo patient: %s, %v", resp.Status, err)
	}
	return th.ID, nil
}

// signIn signs a demo account in through the JSON API, enrolling an
// authenticator with a code the harness computes when the account must
// have one, and returns the bearer header.
func signIn(ctx context.Context, havenURL, email string) (http.Header, error) {
	if h, ok := signedIn[havenURL+" "+email]; ok {
		return h, nil
	}
	c := insecureClient()
	defer c.CloseIdleConnections()
	post := func(path string, body, out any) error {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, havenURL+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(out)
	}
	var res struct{ Stage, Pending, Token string }
	if err := post("/api/v1/session", map[string]string{"email": email, "password": demo.Password}, &res); err != nil {
		return nil, err
	}
	switch res.Stage {
	case "enrol":
		var en struct{ Secret string }
		if err := post("/api/v1/session/enrol", map[string]string{"pending": res.Pending}, &en); err != nil {
			return nil, err
		}
		code, err := totp.Code(en.Secret, time.Now())
		if err != nil {
			return nil, err
		}
		if err := post("/api/v1/session/enrol/confirm", map[string]string{"pending": res.Pending, "code": code}, &res); err != nil {
			return nil, err
		}
	case "done", "":
	default:
		return nil, fmt.Errorf("sign-in of %s: stage %q: sign in once per run (the authenticator is enrolled at the first)", email, res.Stage)
	}
	if res.Token == "" {
		return nil, fmt.Errorf("no session for %s", email)
	}
	h := http.Header{"Authorization": {"Bearer " + res.Token}}
	signedIn[havenURL+" "+email] = h
	return h, nil
}

// goBenchPackages are the packages whose Go benchmarks bench/run runs and
// prints. Each benchmark should have a same-run baseline sibling named
// "baseline" (BenchmarkPut/baseline beside BenchmarkPut/store), or a
// top-level BenchmarkXBaseline beside BenchmarkX, so a ratio can be given.
// To add rows, add a package here (or pass -pkgs).
var goBenchPackages = []string{
	"./blob/dir",
	"./blob/s3",
	"./keyring",              // field seal/open and stream throughput vs raw AES-256-GCM
	"./internal/conformance", // field open over the SQL key store (key-state read per use) vs the in-memory store
	"./audit/memlog",         // verify per event vs SHA-256; group commit vs one commit per event
	"./store/sqlstore",       // audit group commit vs one commit per event on SQLite
	"./service",              // audited chart read vs the same read without the audit append; lab results through MLLP vs parsing alone
	"./identity",             // sign-in and session resume vs a bare hash and a bare lookup; passkey sign-in vs bare ECDSA
	"./video/sfu",            // admission to first RTP packet (p50/p95) vs direct pion peers; CPU per forwarded packet
	"./video/livekit",        // CPU per forwarded packet through a real livekit-server (its process, from /proc), 1 and 3 subscribers
	"./media",                // DICOM read, preview and de-identified copy per MiB vs a bare PNG encode of the same pixel count
	"./backup",               // backup create and restore MiB/s (age, SHA-256 per part, signed manifest) vs a plain copy of the same files
}

// The file benchmarks: an upload through Haven's real HTTPS server
// against the same bytes through the blob store alone
// (web/files_bench_test.go). They run apart from the Go benchmarks
// because ./web also holds the browser benchmarks, which must not run at
// the Go benchmarks' -benchtime.
var (
	fileBenchPackages = []string{"./web"}
	fileBenchPattern  = "UploadHTTPS"
)

// The browser benchmarks: admission to the first decoded video frame in two
// headless Chromiums with fake cameras (web/visit_bench_test.go), beside
// the browser's own floor for the same thing without Haven. Six visits
// fit the check-in window (each takes the clinician's next 5-minute slot).
var (
	browserBenchPackages = []string{"./web"}
	browserBenchPattern  = "BrowserAdmissionToFirstFrame"
	browserBenchTime     = "6x"
)
