package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/auth/outbox"
	"haven/identity"
	"haven/internal/testkit"
	"haven/internal/testkit/stack"
	"haven/media/mediatest"
	"haven/service"
	"haven/smart"
	"haven/store/sqlstore"
	"haven/video/sfu"
	"haven/video/token"
	"haven/web"
)

// tenant is one seeded practice as the sweep sees it: who signs in, and
// the ids of everything its patients have.
type tenant struct {
	id      string
	emails  map[haven.Role]string // one workforce member per role
	doctor  string                // on patient A's care team
	patient [2]string             // patient ids: A, B
	pEmail  [2]string
	files   [2]string // a file id per patient
	grant   string    // a break-glass grant on patient B
	visits  [2]string // a booked visit per patient, with doc2 (not the swept clinician)
	alert   string    // an open alert
	// incident is a breach opened from the alert and scoped to the front
	// desk, who opened both charts; letters are its letters, per patient.
	incident string
	letters  [2]string
	threads  [2]string // a conversation of each patient with the care team
	vendor   string    // a pharmacy the practice registered
	notes    [2]string // the signed note of each patient's visit
	amends   [2]string // each patient's request to amend that note
	rx       [2]string // a signed prescription per patient, by doc2
	allergy  [2]string // an allergy per patient
	lab      string    // a lab the practice registered
	labs     [2]string // a lab order per patient, by doc2
	results  [2]string // the result of each order
	// unmatched is a result that matched no one, waiting for the front desk.
	unmatched string
	access    [2]string // a written request for a copy, per patient
	// payments are each patient's payment for her visit, when stripe-mock
	// is there to take them (always in CI); empty otherwise.
	payments [2]string
	marker   string // unique text in this practice's PHI
}

// newChartStack serves identity and the chart API over TLS on dsn with two
// practices seeded through the service layer.
func newChartStack(t *testing.T, dsn string) (*authStack, [2]*tenant) {
	t.Helper()
	ctx := context.Background()
	opts := []stack.Option{stack.At(time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC))}
	mock, paying := testkit.StripeMockIfAny(t)
	if paying {
		opts = append(opts, stack.Processor(stripeMock(t, mock, nil)))
	}
	stk := stack.New(t, dsn, opts...)
	db, svc, clock, vkey := stk.DB, stk.Service, stk.Clock, stk.Verifier
	ln, base := listener(t)
	logs := &lockedBuffer{}
	st := &authStack{t: t, base: base, db: db, svc: svc, mail: &outbox.Memory{}, clock: clock, users: map[string]string{}, logs: logs}
	st.id = identity.New(svc.Gate(), identity.Config{DB: db, Outbox: st.mail, BaseURL: base})
	t.Cleanup(st.id.Close)
	media, err := sfu.New(sfu.Config{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { media.Close() })
	st.web = web.Config{Logger: slog.New(slog.NewTextHandler(logs, nil)), Service: svc, Identity: st.id, AuditVerifierKey: vkey,
		Video: &web.VideoConfig{SFU: media, TokenKey: make([]byte, token.KeySize), Spent: db.SpentTokens(), Now: clock.Now}}
	apps, err := smart.New(ctx, svc.Gate(), db, base)
	if err != nil {
		t.Fatal(err)
	}
	st.web.SMART, st.smart = apps, apps
	st.srv = newWebServer(t, st.web)
	serveOn(t, st.srv, ln)

	var ts [2]*tenant
	for i, name := range []string{"riverside", "lakeshore"} {
		tn := &tenant{emails: map[haven.Role]string{}, marker: fmt.Sprintf("Qx%dMark", i)}
		pr, err := svc.CreatePractice(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		tn.id = pr.ID
		actors := map[haven.Role]haven.Actor{}
		for _, role := range []haven.Role{haven.RoleClinician, haven.RoleStaff, haven.RolePracticeAdmin, haven.RoleComplianceOfficer} {
			email := string(role) + "@" + name + ".example"
			u, err := svc.CreateUser(ctx, service.NewUser{PracticeID: pr.ID, Role: role, Email: email, Name: "Worker", Password: stackPassword})
			if err != nil {
				t.Fatal(err)
			}
			tn.emails[role], st.users[email] = email, u.ID
			actors[role] = haven.Actor{UserID: u.ID, PracticeID: pr.ID, Role: role, MFA: true, SessionID: "seed", RequestID: "seed", ClientAddr: "127.0.0.1"}
		}
		tn.doctor = actors[haven.RoleClinician].UserID
		as := func(role haven.Role) context.Context {
			a := actors[role]
			a.AuthTime = clock.Now()
			return haven.NewContextWithActor(ctx, a)
		}
		for j := range 2 {
			tn.pEmail[j] = fmt.Sprintf("patient%d@%s.example", j, name)
			c, err := svc.RegisterPatient(as(haven.RoleStaff), service.NewPatient{MRN: fmt.Sprintf("MRN-%s-%d", tn.marker, j),
				Demographics: service.Demographics{Name: fmt.Sprintf("Name%s%d", tn.marker, j), DateOfBirth: "1980-01-01"},
				Contact:      service.Contact{Email: tn.pEmail[j], Phone: "555" + tn.marker}})
			if err != nil {
				t.Fatal(err)
			}
			tn.patient[j] = c.PatientID
			if err := svc.ProvisionPassword(ctx, c.PatientID, stackPassword); err != nil {
				t.Fatal(err)
			}
			pa := haven.NewContextWithActor(ctx, haven.Actor{UserID: c.PatientID, PracticeID: pr.ID, Role: haven.RolePatient, SessionID: "seed", RequestID: "seed"})
			// A photo, so its renditions have ids to sweep; its name carries
			// the marker.
			f, err := svc.UploadFile(pa, c.PatientID, "File"+tn.marker+".jpg", bytes.NewReader(mediatest.JPEG(mediatest.Pattern(64, 48), mediatest.PhotoMarkers{Comment: "Exif" + tn.marker, GPS: true})))
			if err != nil {
				t.Fatal(err)
			}
			tn.files[j] = f.ID
		}
		if err := svc.AddToCareTeam(as(haven.RolePracticeAdmin), tn.patient[0], tn.doctor); err != nil {
			t.Fatal(err)
		}
		// The grant is another clinician's, so the swept clinician has no
		// path to patient B.
		doc2, err := svc.CreateUser(ctx, service.NewUser{PracticeID: pr.ID, Role: haven.RoleClinician, Email: "doc2@" + name + ".example", Name: "Worker", Password: stackPassword})
		if err != nil {
			t.Fatal(err)
		}
		st.users["doc2@"+name+".example"] = doc2.ID
		actors["doc2"] = haven.Actor{UserID: doc2.ID, PracticeID: pr.ID, Role: haven.RoleClinician, MFA: true, SessionID: "seed", RequestID: "seed", ClientAddr: "127.0.0.1"}
		g, err := svc.RequestBreakGlass(as("doc2"), tn.patient[1], "emergency: unconscious, allergies needed", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		tn.grant = g.ID
		// Each patient has a visit booked with doc2 this afternoon, so the
		// visit routes have ids to sweep; the swept clinician has none.
		if err := svc.SetAvailability(as("doc2"), []service.AvailabilityBlock{{Weekday: time.Wednesday, Start: "16:00", End: "18:00", SlotMinutes: 30, TimeZone: "UTC"}}); err != nil {
			t.Fatal(err)
		}
		for j := range 2 {
			v, err := svc.BookVisit(as(haven.RoleStaff), tn.patient[j], doc2.ID, time.Date(2026, 11, 25, 16, 30*j, 0, 0, time.UTC), "Reason"+tn.marker)
			if err != nil {
				t.Fatal(err)
			}
			tn.visits[j] = v.ID
		}
		// doc2 writes and signs each visit's note, and each patient asks
		// to amend hers; the texts carry the marker.
		for j := range 2 {
			soap := haven.SOAP{Subjective: "Note" + tn.marker, Plan: "Plan" + tn.marker}
			if _, err := svc.SaveNoteDraft(as("doc2"), tn.visits[j], soap); err != nil {
				t.Fatal(err)
			}
			nv, err := svc.SignNote(as("doc2"), tn.visits[j])
			if err != nil {
				t.Fatal(err)
			}
			tn.notes[j] = nv.ID
			pa := haven.NewContextWithActor(ctx, haven.Actor{UserID: tn.patient[j], PracticeID: pr.ID, Role: haven.RolePatient, SessionID: "seed", RequestID: "seed"})
			am, err := svc.RequestAmendment(pa, haven.AmendNote, nv.ID, "Amend"+tn.marker)
			if err != nil {
				t.Fatal(err)
			}
			tn.amends[j] = am.ID
		}
		// Each patient pays for her visit.
		if paying {
			if err := svc.SetPrice(as(haven.RolePracticeAdmin), 30, 4000, haven.USD); err != nil {
				t.Fatal(err)
			}
			for j := range 2 {
				pa := haven.NewContextWithActor(ctx, haven.Actor{UserID: tn.patient[j], PracticeID: pr.ID, Role: haven.RolePatient, SessionID: "seed", RequestID: "seed"})
				pay, err := svc.PayVisit(pa, tn.visits[j])
				if err != nil {
					t.Fatal(err)
				}
				tn.payments[j] = pay.ID
			}
		}
		// Each patient writes to the care team; the subject and body carry
		// the marker, so a leak would show.
		for j := range 2 {
			pa := haven.NewContextWithActor(ctx, haven.Actor{UserID: tn.patient[j], PracticeID: pr.ID, Role: haven.RolePatient, SessionID: "seed", RequestID: "seed"})
			th, err := svc.StartThread(pa, service.NewThread{Audience: haven.AudienceCareTeam, Subject: "Subject" + tn.marker, Body: "Body" + tn.marker})
			if err != nil {
				t.Fatal(err)
			}
			tn.threads[j] = th.ID
		}
		pharmacy := &haven.Vendor{Name: "Pharmacy" + tn.marker, Kind: haven.VendorPharmacy, Endpoint: "https://rx." + name + ".example/fhir",
			PHI: haven.PHIMinimum, BAASigned: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), BAAExpires: time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC)}
		if err := svc.AddVendor(as(haven.RolePracticeAdmin), pharmacy); err != nil {
			t.Fatal(err)
		}
		tn.vendor = pharmacy.ID
		// Each patient has an allergy and a signed prescription (by doc2,
		// whose visits relate them), so the prescription routes have ids
		// to sweep. Each signature needs its own step-up: the clock moves.
		if err := svc.SeedFormulary(ctx, pr.ID, strings.NewReader("rxnorm,name\n29046,Lisinopril\n")); err != nil {
			t.Fatal(err)
		}
		for j := range 2 {
			al, err := svc.AddAllergy(as(haven.RoleStaff), tn.patient[j], "Allergen"+tn.marker, "hives")
			if err != nil {
				t.Fatal(err)
			}
			tn.allergy[j] = al.ID
			clock.Advance(time.Second)
			d, err := svc.DraftPrescription(as("doc2"), service.NewPrescription{PatientID: tn.patient[j], RxNorm: "29046", Strength: "10 mg", Form: "tablet",
				Directions: "Directions" + tn.marker, Quantity: 30, DaysSupply: 30, PharmacyID: pharmacy.ID})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.SignPrescription(as("doc2"), d.ID, false); err != nil {
				t.Fatal(err)
			}
			tn.rx[j] = d.ID
			ar, err := svc.RecordAccessRequest(as(haven.RoleStaff), service.NewAccessRequest{PatientID: tn.patient[j],
				Received: clock.Now().Format(time.DateOnly), Recipient: "Recipient" + tn.marker})
			if err != nil {
				t.Fatal(err)
			}
			tn.access[j] = ar.ID
		}
		// Each patient has a lab order (by doc2) and its result, and one
		// result matched no one, so the lab routes have ids to sweep; the
		// order's note and the result's note carry the marker.
		lab := &haven.Vendor{Name: "Lab" + tn.marker, Kind: haven.VendorLab, Endpoint: "mllps://lab." + name + ".example:2575",
			PHI: haven.PHIMinimum, BAASigned: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), BAAExpires: time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC)}
		if err := svc.AddVendor(as(haven.RolePracticeAdmin), lab); err != nil {
			t.Fatal(err)
		}
		tn.lab = lab.ID
		if err := svc.SeedLabCatalogue(ctx, pr.ID, strings.NewReader("loinc,name\n2345-7,Glucose\n")); err != nil {
			t.Fatal(err)
		}
		for j := range 2 {
			o, err := svc.OrderLabs(as("doc2"), service.NewLabOrder{PatientID: tn.patient[j], LabID: lab.ID, Tests: []string{"2345-7"}, Note: "LabNote" + tn.marker})
			if err != nil {
				t.Fatal(err)
			}
			tn.labs[j] = o.ID
			oru := fmt.Sprintf("MSH|^~\\&|L|F|H|R|2026||ORU^R01|%s-%d|P|2.5.1\rPID|1||MRN-%s-%d^^^R^MR||N||19800101\rOBR|1|%s||2345-7^Glucose^LN\rOBX|1|NM|2345-7^Glucose^LN||99|mg/dL|70-99|N\rNTE|1||Result%s\r",
				tn.marker, j, tn.marker, j, o.Number, tn.marker)
			if ack := string(svc.ReceiveHL7(ctx, lab.ID, []byte(oru))); !strings.Contains(ack, "MSA|AA") {
				t.Fatalf("the result was answered %q", ack)
			}
			rs, err := svc.Results(as("doc2"), tn.patient[j])
			if err != nil || len(rs) != 1 {
				t.Fatalf("results %v %v", rs, err)
			}
			tn.results[j] = rs[0].ID
		}
		stray := fmt.Sprintf("MSH|^~\\&|L|F|H|R|2026||ORU^R01|%s-stray|P|2.5.1\rPID|1||NoOne%s||N||19800101\rOBR|1|X||2345-7^Glucose^LN\r", tn.marker, tn.marker)
		svc.ReceiveHL7(ctx, lab.ID, []byte(stray))
		queue, err := svc.UnmatchedResults(as(haven.RoleStaff))
		if err != nil || len(queue) != 1 {
			t.Fatalf("unmatched %v %v", queue, err)
		}
		tn.unmatched = queue[0].ID
		alerts, err := svc.Alerts(as(haven.RoleComplianceOfficer), false)
		if err != nil || len(alerts) == 0 {
			t.Fatalf("no alert to sweep: %v", err)
		}
		tn.alert = alerts[0].ID
		for j := range 2 {
			if _, err := svc.Chart(as(haven.RoleStaff), tn.patient[j]); err != nil {
				t.Fatal(err)
			}
		}
		co := as(haven.RoleComplianceOfficer)
		inc, err := svc.OpenIncident(co, service.NewIncident{AlertID: tn.alert})
		if err != nil {
			t.Fatal(err)
		}
		tn.incident = inc.ID
		sc := service.IncidentScope{Accounts: []string{actors[haven.RoleStaff].UserID}, Since: clock.Now().Add(-24 * time.Hour), Until: clock.Now().Add(time.Minute)}
		if _, err := svc.ScopeIncident(co, inc.ID, sc); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.AssessIncident(co, inc.ID, service.IncidentAssessment{Nature: "n", Person: "p", Acquired: "a", Mitigated: "m", Probability: "not_low"}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.DecideIncident(co, inc.ID, true, "viewed"); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.DraftIncidentLetters(co, inc.ID); err != nil {
			t.Fatal(err)
		}
		letters, err := svc.IncidentLetters(co, inc.ID)
		if err != nil || len(letters) < 2 {
			t.Fatalf("letters %v %v", letters, err)
		}
		for _, l := range letters {
			for j := range 2 {
				if l.PatientID == tn.patient[j] {
					tn.letters[j] = l.ID
				}
			}
		}
		ts[i] = tn
	}
	return st, ts
}

// signInAny signs email in through the JSON API: workforce enrol an
// authenticator, patients (no MFA required) are in after the password.
func (c *client) signInAny(email string) map[string]string {
	t := c.st.t
	t.Helper()
	var res struct{ Stage, Pending, Token string }
	json.NewDecoder(c.api("POST", "/api/v1/session", map[string]string{"email": email, "password": stackPassword}).Body).Decode(&res)
	if res.Stage == "enrol" {
		h, _ := c.apiSignIn(email)
		return h
	}
	if res.Token == "" {
		t.Fatalf("%s: stage %q and no session", email, res.Stage)
	}
	return map[string]string{"Authorization": "Bearer " + res.Token, "Content-Type": "application/json"}
}

// route is one id-taking API route and a body that passes validation, so
// the request reaches the gate.
type route struct {
	method, path string // %s is the id
	body         func(tn *tenant) string
	idOf         func(tn *tenant, j int) string
}

var patientID = func(tn *tenant, j int) string { return tn.patient[j] }

var sweepRoutes = []route{
	{"GET", "/api/v1/patients/%s", nil, patientID},
	{"PATCH", "/api/v1/patients/%s", func(*tenant) string { return `{"version":1,"contact":{"email":"x@evil.example"}}` }, patientID},
	{"GET", "/api/v1/patients/%s/care-team", nil, patientID},
	{"POST", "/api/v1/patients/%s/care-team", func(tn *tenant) string { return `{"user_id":"` + tn.doctor + `"}` }, patientID},
	{"DELETE", "/api/v1/patients/%s/care-team/" + "someone", nil, patientID},
	{"POST", "/api/v1/patients/%s/break-glass", func(*tenant) string { return `{"reason":"an emergency of some kind","minutes":30}` }, patientID},
	{"GET", "/api/v1/patients/%s/access-history", nil, patientID},
	{"GET", "/api/v1/patients/%s/export", nil, patientID},
	{"GET", "/api/v1/patients/%s/disclosures", nil, patientID},
	{"GET", "/api/v1/access-requests/%s/export", nil, func(tn *tenant, j int) string { return tn.access[j] }},
	{"GET", "/api/v1/patients/%s/files", nil, patientID},
	{"GET", "/api/v1/files/%s", nil, fileID},
	{"GET", "/api/v1/files/%s/renditions", nil, fileID},
	{"GET", "/api/v1/files/%s/renditions/thumbnail", nil, fileID},
	{"GET", "/api/v1/files/%s/renditions/preview", nil, fileID},
	{"POST", "/api/v1/break-glass/%s/review", func(*tenant) string { return `{"note":"looked fine"}` }, func(tn *tenant, j int) string { return tn.grant }},
	{"POST", "/api/v1/alerts/%s/close", nil, func(tn *tenant, j int) string { return tn.alert }},
	// Incidents and their letters.
	{"GET", "/api/v1/incidents/%s", nil, incidentID},
	{"PUT", "/api/v1/incidents/%s/scope", func(tn *tenant) string {
		return `{"accounts":["` + tn.doctor + `"],"since":"2026-11-24T00:00:00Z","until":"2026-11-25T00:00:00Z"}`
	}, incidentID},
	{"GET", "/api/v1/incidents/%s/affected", nil, incidentID},
	{"POST", "/api/v1/incidents/%s/contain", nil, incidentID},
	{"PUT", "/api/v1/incidents/%s/assessment", func(*tenant) string {
		return `{"nature":"n","person":"p","acquired":"a","mitigated":"m","probability":"low"}`
	}, incidentID},
	{"POST", "/api/v1/incidents/%s/decision", func(*tenant) string { return `{"breach":false,"reason":"mine now"}` }, incidentID},
	{"GET", "/api/v1/incidents/%s/letters", nil, incidentID},
	{"POST", "/api/v1/incidents/%s/letters", nil, incidentID},
	{"GET", "/api/v1/incident-letters/%s", nil, func(tn *tenant, j int) string { return tn.letters[j] }},
	{"POST", "/api/v1/incident-letters/%s/state", func(*tenant) string { return `{"state":"sent"}` }, func(tn *tenant, j int) string { return tn.letters[j] }},
	// Allergies and prescriptions.
	{"GET", "/api/v1/patients/%s/allergies", nil, patientID},
	{"POST", "/api/v1/patients/%s/allergies", func(*tenant) string { return `{"substance":"latex","reaction":"rash"}` }, patientID},
	{"GET", "/api/v1/patients/%s/prescriptions", nil, patientID},
	{"POST", "/api/v1/patients/%s/prescriptions", func(tn *tenant) string {
		return `{"rxnorm":"29046","strength":"10 mg","form":"tablet","directions":"daily","quantity":30,"days_supply":30,"pharmacy_id":"` + tn.vendor + `"}`
	}, patientID},
	{"GET", "/api/v1/prescriptions/%s", nil, rxID},
	{"POST", "/api/v1/prescriptions/%s/sign", func(*tenant) string { return `{"acknowledge":true}` }, rxID},
	{"POST", "/api/v1/prescriptions/%s/cancel", nil, rxID},
	{"POST", "/api/v1/prescriptions/%s/renewal-request", func(*tenant) string { return `{"note":"please"}` }, rxID},
	{"POST", "/api/v1/prescriptions/%s/renew", nil, rxID},
	// Lab orders and results.
	{"GET", "/api/v1/lab-orders/%s", nil, labOrderID},
	{"POST", "/api/v1/lab-orders/%s/cancel", nil, labOrderID},
	{"GET", "/api/v1/patients/%s/lab-orders", nil, patientID},
	{"GET", "/api/v1/patients/%s/results", nil, patientID},
	{"GET", "/api/v1/results/%s", nil, resultID},
	{"POST", "/api/v1/results/%s/review", func(*tenant) string { return `{"comment":"mine","release":true}` }, resultID},
	{"POST", "/api/v1/lab-unmatched/%s/match", func(tn *tenant) string { return `{"order_id":"` + tn.labs[0] + `"}` }, unmatchedID},
	// The practice's vendors: another practice's are unknown ids.
	{"GET", "/api/v1/vendors/%s", nil, vendorID},
	{"PUT", "/api/v1/vendors/%s", func(*tenant) string {
		return `{"name":"Hijacked","kind":"pharmacy","endpoint":"https://evil.example","phi":"full","baa_signed":"2026-01-01","baa_expires":"2030-01-01"}`
	}, vendorID},
	{"POST", "/api/v1/vendors/%s/retire", nil, vendorID},
	// The start is a free slot of the visit's clinician: a move that got
	// past the gate would succeed, not fail for some other reason.
	{"POST", "/api/v1/visits/%s/reschedule", func(*tenant) string { return `{"start":"2026-11-25T17:30:00Z"}` }, visitID},
	{"POST", "/api/v1/visits/%s/cancel", nil, visitID},
	{"POST", "/api/v1/visits/%s/check-in", nil, visitID},
	{"GET", "/api/v1/visits/%s/state", nil, visitID},
	{"POST", "/api/v1/visits/%s/admit", nil, visitID},
	{"POST", "/api/v1/visits/%s/end", nil, visitID},
	// join-token is not swept: this stack has no video key, so it answers
	// 503 before the gate; web/visit_test.go tries it across visits and
	// practices with video on.
	// A visit's id names its waiting-room thread. The swept visits are
	// booked: a message that got past the gate would be refused as too
	// early (409), which the sweep reports.
	{"GET", "/api/v1/threads/%s", nil, visitID},
	{"POST", "/api/v1/threads/%s/messages", func(*tenant) string { return `{"body":"hello there"}` }, visitID},
	// Each patient's conversation with the care team.
	{"GET", "/api/v1/threads/%s", nil, threadID},
	{"POST", "/api/v1/threads/%s/messages", func(*tenant) string { return `{"body":"hello there"}` }, threadID},
	{"GET", "/api/v1/threads/%s/watch", nil, threadID},
	{"GET", "/api/v1/threads/%s/assignees", nil, threadID},
	{"POST", "/api/v1/threads/%s/assign", func(tn *tenant) string { return `{"user_id":""}` }, threadID},
	{"POST", "/api/v1/threads/%s/done", func(*tenant) string { return `{"done":true}` }, threadID},
	// Visit notes (by the visit's id) and amendment requests. A request
	// that got past the gate would succeed, or be refused as conflicting
	// (a disagreement with a request not denied), which the sweep reports.
	{"GET", "/api/v1/visits/%s/note", nil, visitID},
	{"PUT", "/api/v1/visits/%s/note", func(*tenant) string { return `{"plan":"changed"}` }, visitID},
	{"POST", "/api/v1/visits/%s/note/sign", nil, visitID},
	{"POST", "/api/v1/visits/%s/note/addenda", func(*tenant) string { return `{"text":"an addendum"}` }, visitID},
	{"GET", "/api/v1/patients/%s/notes", nil, patientID},
	{"GET", "/api/v1/patients/%s/amendments", nil, patientID},
	{"GET", "/api/v1/amendments/%s", nil, amendmentID},
	{"POST", "/api/v1/amendments/%s/decision", func(*tenant) string { return `{"accept":false,"text":"denied"}` }, amendmentID},
	{"POST", "/api/v1/amendments/%s/extension", func(*tenant) string { return `{"text":"more time"}` }, amendmentID},
	{"POST", "/api/v1/amendments/%s/disagreement", func(*tenant) string { return `{"text":"I disagree"}` }, amendmentID},
	// The FHIR API: each read names the patient, in the path or the query.
	{"GET", "/fhir/R4/Patient/%s", nil, patientID},
	{"GET", "/fhir/R4/Patient/%s/$everything", nil, patientID},
	{"GET", "/fhir/R4/Patient?_id=%s", nil, patientID},
	{"GET", "/fhir/R4/MedicationRequest/%s", nil, rxID},
	{"GET", "/fhir/R4/DiagnosticReport/%s", nil, resultID},
	{"GET", "/fhir/R4/Appointment/%s", nil, visitID},
	{"GET", "/fhir/R4/DocumentReference/%s", nil, fileID},
	{"GET", "/fhir/R4/DocumentReference/%s", nil, func(tn *tenant, j int) string { return tn.notes[j] }},
	{"GET", "/fhir/R4/Observation?patient=%s", nil, patientID},
	{"GET", "/fhir/R4/DiagnosticReport?patient=%s&status=final", nil, patientID},
	{"GET", "/fhir/R4/MedicationRequest?patient=Patient/%s", nil, patientID},
	{"GET", "/fhir/R4/Appointment?patient=%s&date=ge2020-01-01", nil, patientID},
	{"GET", "/fhir/R4/Communication?patient=%s", nil, patientID},
	{"GET", "/fhir/R4/DocumentReference?patient=%s", nil, patientID},
	{"GET", "/fhir/R4/ServiceRequest/%s", nil, func(tn *tenant, j int) string { return tn.labs[j] + "-2345-7" }},
	{"GET", "/fhir/R4/ServiceRequest?patient=%s&_sort=-date", nil, patientID},
	{"GET", "/fhir/R4/AllergyIntolerance/%s", nil, func(tn *tenant, j int) string { return tn.allergy[j] }},
	{"GET", "/fhir/R4/AllergyIntolerance?patient=%s&_summary=count", nil, patientID},
	{"GET", "/fhir/R4/Encounter/%s", nil, visitID},
	{"GET", "/fhir/R4/Encounter?patient=%s&_summary=true", nil, patientID},
	// Each patient's payment for her visit (when stripe-mock took them).
	{"GET", "/api/v1/payments/%s", nil, paymentID},
	{"POST", "/api/v1/payments/%s/refund", nil, paymentID},
}

var amendmentID = func(tn *tenant, j int) string { return tn.amends[j] }

var incidentID = func(tn *tenant, j int) string { return tn.incident }

// bodyIDRoutes name the record in their body, not their path: the sweep
// tries them too (the probe tests, which vary the path's id, do not).
var bodyIDRoutes = []route{
	// Ordering labs for another's patient.
	{"POST", "/api/v1/lab-orders", func(tn *tenant) string {
		return `{"patient_id":"` + tn.patient[1] + `","lab_id":"` + tn.lab + `","tests":["2345-7"]}`
	}, patientID},
	// Recording a written request for another's record.
	{"POST", "/api/v1/access-requests", func(tn *tenant) string {
		return `{"patient_id":"` + tn.patient[1] + `","received":"2026-11-25"}`
	}, patientID},
	// Asking to amend another's note or details.
	{"POST", "/api/v1/amendments", func(tn *tenant) string {
		return `{"part":"note","record_id":"` + tn.notes[1] + `","reason":"mine now"}`
	}, patientID},
	{"POST", "/api/v1/amendments", func(tn *tenant) string {
		return `{"part":"chart","record_id":"` + tn.patient[1] + `","reason":"mine now"}`
	}, patientID},
	// A FHIR Communication into another's record.
	{"POST", "/fhir/R4/Communication", func(tn *tenant) string {
		return `{"resourceType":"Communication","status":"completed","subject":{"reference":"Patient/` + tn.patient[1] +
			`"},"payload":[{"contentString":"mine now"}]}`
	}, patientID},
	// A vital sign recorded in another's record.
	{"POST", "/fhir/R4/Observation", func(tn *tenant) string { return vitalBody(tn.patient[1], "8480-6", "http://loinc.org", "mm[Hg]", 120) }, patientID},
}

var rxID = func(tn *tenant, j int) string { return tn.rx[j] }

var labOrderID = func(tn *tenant, j int) string { return tn.labs[j] }

var resultID = func(tn *tenant, j int) string { return tn.results[j] }

var unmatchedID = func(tn *tenant, j int) string { return tn.unmatched }

var paymentID = func(tn *tenant, j int) string { return tn.payments[j] }

var fileID = func(tn *tenant, j int) string { return tn.files[j] }

var vendorID = func(tn *tenant, j int) string { return tn.vendor }

var threadID = func(tn *tenant, j int) string { return tn.threads[j] }

var visitID = func(tn *tenant, j int) string { return tn.visits[j] }

func denials(t *testing.T, db *sqlstore.DB, actorID string) int {
	var n int
	if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE actor_id = $1 AND decision = 'deny'`, actorID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSweepOtherPatientsAndPracticesIDs tries, as every role of each
// practice, every id-taking route with the ids of the other practice (and,
// for patients and the clinician, of a patient of their own practice they
// have no relationship with): every answer is a refusal, no body carries
// the other side's PHI, and every refusal is in the audit log.
func TestSweepOtherPatientsAndPracticesIDs(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			for i, own := range ts {
				other := ts[1-i]
				type who struct {
					label string
					email string
				}
				var people []who
				for _, role := range []haven.Role{haven.RoleClinician, haven.RoleStaff, haven.RolePracticeAdmin, haven.RoleComplianceOfficer} {
					people = append(people, who{string(role), own.emails[role]})
				}
				people = append(people, who{"patient", own.pEmail[0]})
				for _, p := range people {
					c := st.client(firefox)
					auth := c.signInAny(p.email)
					actorID := st.users[p.email]
					if actorID == "" {
						actorID = own.patient[0]
					}
					type target struct {
						tn *tenant
						j  int
					}
					targets := []target{{other, 0}, {other, 1}}
					if p.label == "patient" || p.label == string(haven.RoleClinician) {
						targets = append(targets, target{own, 1}) // no care team, no visit; B's grant is the clinician's own, so skip review
					}
					for _, tg := range targets {
						for _, rt := range append(append([]route{}, sweepRoutes...), bodyIDRoutes...) {
							if tg.tn == own && (strings.Contains(rt.path, "/alerts/") || strings.Contains(rt.path, "break-glass")) {
								// Practice-wide records of one's own practice are not another
								// patient's, and break-glass is the clinician's legitimate
								// emergency path (tested on its own).
								continue
							}
							id := rt.idOf(tg.tn, tg.j)
							if id == "" {
								continue // payments, without stripe-mock outside CI
							}
							path := rt.path
							if strings.Contains(path, "%s") {
								path = fmt.Sprintf(path, id)
							}
							body := ""
							if rt.body != nil {
								body = rt.body(tg.tn)
							}
							before := denials(t, st.db, actorID)
							r := c.apiAs(auth, rt.method, path, body)
							out := readAll(t, r)
							if r.StatusCode != http.StatusForbidden && r.StatusCode != http.StatusNotFound {
								t.Errorf("%s of %s: %s %s answered %d: %s", p.label, own.id, rt.method, path, r.StatusCode, out)
								continue
							}
							if strings.Contains(out, tg.tn.marker) {
								t.Errorf("%s: %s %s leaked PHI: %s", p.label, rt.method, path, out)
							}
							if after := denials(t, st.db, actorID); after <= before {
								t.Errorf("%s: %s %s refused (%d) without an audited denial", p.label, rt.method, path, r.StatusCode)
							}
						}
					}
				}
			}
		})
	}
}
