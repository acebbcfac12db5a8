package web_test

import (
	"archive/zip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"haven"
	"haven/service"
)

// TestBrowserPatientDownloadsHerRecordAndPrintsHerDisclosures: Maria
// Lopez, after a prescription of hers reached her pharmacy, signs in,
// opens "Download my record" by its link and, once she has confirmed it
// is her (her sign-in is too old), downloads it: the browser
// saves health-record.zip, a zip whose record.json is her FHIR Bundle
// with the prescription, and the page's progress bar is full. On her
// phone (390 px) she opens "Where my record was sent": the pharmacy, the
// drug and why, and her download in her access history; printed, the page
// is its content without the navigation or the print button.
func TestBrowserPatientDownloadsHerRecordAndPrintsHerDisclosures(t *testing.T) {
	st := newDemoStack(t)
	pharmacy := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(pharmacy.Close)

	// A step-up lasts ten seconds here, so her download asks for one.
	settings, err := st.svc.Settings(st.demoActor("Riverside Family Clinic", haven.RolePracticeAdmin))
	if err != nil {
		t.Fatal(err)
	}
	settings.StepUpMaxAge = service.Duration(10 * time.Second)
	if err := st.svc.UpdateSettings(st.demoActor("Riverside Family Clinic", haven.RolePracticeAdmin), settings); err != nil {
		t.Fatal(err)
	}
	w := newWalker(t, st.base)
	dir := t.TempDir()
	if _, err := chromedp.Call(w.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir}); err != nil {
		t.Fatal(err)
	}
	w.start()
	w.signIn(patientEmail, "")
	signedIn := time.Now()
	w.follow("#nav-record")
	w.follow("#record-export")
	patientID, err := chromedp.Run(w.ctx, chromedp.Evaluate[string](`document.getElementById('export-box').dataset.patient`))
	if err != nil || patientID == "" {
		t.Fatalf("the page names no record: %v", err)
	}

	// The scene: her pharmacy answers at the test server, her clinician
	// prescribes, and the prescription is delivered.
	admin := st.demoActor("Riverside Family Clinic", haven.RolePracticeAdmin)
	vs, err := st.svc.Vendors(admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Name == "Main Street Pharmacy" {
			v.Endpoint = pharmacy.URL + "/fhir"
			if err := st.svc.UpdateVendor(admin, v); err != nil {
				t.Fatal(err)
			}
			var rx *haven.PrescriptionView
			for _, doc := range st.demoClinicians("Riverside Family Clinic") {
				if rx, err = st.svc.DraftPrescription(doc, service.NewPrescription{PatientID: patientID, RxNorm: "29046", Strength: "10 mg", Form: "tablet",
					Directions: "One tablet every morning", Quantity: 30, DaysSupply: 30, PharmacyID: v.ID}); err == nil {
					if _, err := st.svc.SignPrescription(doc, rx.ID, true); err != nil {
						t.Fatal(err)
					}
					break
				}
			}
			if rx == nil {
				t.Fatalf("no clinician could prescribe for her: %v", err)
			}
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(pharmacy.Certificate())
	if n, err := service.NewRxSender(st.svc, service.RxSenderConfig{TLS: &tls.Config{RootCAs: pool}}).SendDue(st.demoActor("Riverside Family Clinic", haven.RolePracticeAdmin)); err != nil || n != 1 {
		t.Fatalf("delivered %d prescriptions: %v", n, err)
	}

	// Her sign-in is now too old: the page sends her to confirm it is
	// her, and brings her back.
	time.Sleep(time.Until(signedIn.Add(11 * time.Second)))
	click(t, w.ctx, "#export-start")
	waitFor(t, w.ctx, "the step-up page", `location.pathname === '/account/step-up' && document.readyState === 'complete' ? 1 : 0`)
	w.mu.Lock()
	w.refused = nil // the export's 403 step_up, which sent her here
	w.mu.Unlock()
	w.check()
	w.fill(map[string]string{"password": stackPassword})
	w.press("#confirm")
	if got := w.at(); got != "/app/export" {
		t.Fatalf("after the step-up, at %s", got)
	}
	click(t, w.ctx, "#export-start")
	waitFor(t, w.ctx, "the download to finish", `document.getElementById('export-status').textContent.includes('Your record is downloaded') ? 1 : 0`)
	if full, _ := chromedp.Run(w.ctx, chromedp.Evaluate[float64](`document.getElementById('export-progress').value`)); full != 100 {
		t.Errorf("the progress bar ends at %v", full)
	}
	var zipPath string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "health-record.zip")); err == nil {
			zipPath = filepath.Join(dir, "health-record.zip")
			break
		}
		if time.Now().After(deadline) {
			entries, _ := os.ReadDir(dir)
			t.Fatalf("no health-record.zip arrived: %v", entries)
		}
	}
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatalf("the download is not a zip: %v", err)
	}
	defer zr.Close()
	var bundle struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Resource map[string]any `json:"resource"`
		} `json:"entry"`
	}
	for _, f := range zr.File {
		if f.Name == "record.json" {
			rc, _ := f.Open()
			err = json.NewDecoder(rc).Decode(&bundle)
			rc.Close()
		}
	}
	if err != nil || bundle.ResourceType != "Bundle" {
		t.Fatalf("record.json is not a Bundle: %v", err)
	}
	found := map[string]bool{}
	for _, e := range bundle.Entry {
		found[e.Resource["resourceType"].(string)] = true
		if e.Resource["resourceType"] == "Patient" && !strings.Contains(mustJSON(t, e.Resource["name"]), "Maria Lopez") {
			t.Errorf("the Patient is %v", e.Resource["name"])
		}
	}
	if !found["Patient"] || !found["MedicationRequest"] {
		t.Errorf("the Bundle holds %v", found)
	}

	w.use(phone)
	w.follow("#nav-export")
	w.follow("#export-disclosures")
	if got := w.text("#disclosures"); !strings.Contains(got, "Main Street Pharmacy") || !strings.Contains(strings.ToLower(got), "lisinopril") ||
		!strings.Contains(got, "Treatment") {
		t.Errorf("her disclosures: %q", got)
	}
	if got := w.text("#access"); !strings.Contains(got, "You downloaded your whole record") {
		t.Errorf("her access history does not show her download: %q", got)
	}
	if _, err := chromedp.Call(w.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"}); err != nil {
		t.Fatal(err)
	}
	if shown, _ := chromedp.Run(w.ctx, chromedp.Evaluate[[]string](`['.nav', '#print-disclosures', '#disclosures'].map((s) => getComputedStyle(document.querySelector(s)).display)`)); len(shown) != 3 ||
		shown[0] != "none" || shown[1] != "none" || shown[2] == "none" {
		t.Errorf("printed, the navigation, the print button and the list show as %v", shown)
	}
}

// demoClinicians are contexts signed in as each clinician of the demo
// practice named.
func (st *visitStack) demoClinicians(practice string) []context.Context {
	st.t.Helper()
	ctx := context.Background()
	names, err := st.svc.PracticeNames(ctx)
	if err != nil {
		st.t.Fatal(err)
	}
	users, err := st.db.ListUsers(ctx, names[practice])
	if err != nil {
		st.t.Fatal(err)
	}
	var out []context.Context
	for _, u := range users {
		if u.Role == haven.RoleClinician {
			out = append(out, haven.NewContextWithActor(ctx, haven.Actor{UserID: u.ID, PracticeID: u.PracticeID, Role: u.Role, MFA: true,
				AuthTime: time.Now(), SessionID: "scene", ClientAddr: "127.0.0.1", RequestID: "scene"}))
		}
	}
	return out
}

// TestBrowserFrontDeskAnswersAWrittenRequest: the front desk records
// Maria Lopez's written request from her chart, by links; the list shows
// it due in 30 days; on a phone (390 px) the desk produces the copy and
// the browser saves the zip; the request is then answered. The
// compliance officer sees it in the practice's list without whom the copy
// went to, and Maria sees the copy to her new doctor in her accounting.
func TestBrowserFrontDeskAnswersAWrittenRequest(t *testing.T) {
	st := newDemoStack(t)
	w := newWalker(t, st.base)
	dir := t.TempDir()
	if _, err := chromedp.Call(w.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir}); err != nil {
		t.Fatal(err)
	}
	w.start()
	w.signIn(desk, "")
	w.follow("#nav-patients")
	if err := chromedp.Do(w.ctx, chromedp.Evaluate[chromedp.Void](`(() => {
		const a = Array.from(document.querySelectorAll('main a')).find((e) => e.textContent.trim() === 'Maria Lopez');
		if (a) a.id = 'open-maria';
	})()`)); err != nil {
		t.Fatal(err)
	}
	w.follow("#open-maria")
	w.fill(map[string]string{"access-received": time.Now().UTC().Format(time.DateOnly), "access-recipient": "Dr. Jane Hill, Northside Clinic"})
	w.press("#access-record")
	if got := w.text("#access-requests"); !strings.Contains(got, "Maria Lopez") || !strings.Contains(got, "Dr. Jane Hill") ||
		!strings.Contains(got, "29") && !strings.Contains(got, "30") {
		t.Errorf("the list after recording: %q", got)
	}
	w.use(phone)
	w.follow("#nav-access-requests")
	click(t, w.ctx, "#access-requests button[id^=answer-]")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if zr, err := zip.OpenReader(filepath.Join(dir, "health-record.zip")); err == nil {
			names := map[string]bool{}
			for _, f := range zr.File {
				names[f.Name] = true
			}
			zr.Close()
			if !names["record.json"] || !names["summary.html"] {
				t.Fatalf("the copy holds %v", names)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no health-record.zip arrived")
		}
	}
	w.follow("#nav-access-requests")
	if got := w.text("#access-requests"); !strings.Contains(got, "Answered") {
		t.Errorf("after the copy, the list says %q", got)
	}
	w.signOut()

	// Another request of hers, received 31 days ago, is late.
	deskCtx := st.demoActor("Riverside Family Clinic", haven.RoleStaff)
	ps, err := st.svc.Patients(deskCtx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Name == "Maria Lopez" {
			if _, err := st.svc.RecordAccessRequest(deskCtx, service.NewAccessRequest{PatientID: p.PatientID,
				Received: time.Now().UTC().AddDate(0, 0, -31).Format(time.DateOnly)}); err != nil {
				t.Fatal(err)
			}
		}
	}

	w.use(desktop)
	w.start()
	w.signIn("compliance@riverside.example", "")
	if open, late := w.text("#count-copies"), w.text("#count-late-copies"); open != "1" || late != "1 late" {
		t.Errorf("the compliance officer's home counts %q open, %q", open, late)
	}
	w.follow("#home-copies")
	if got := w.text("#access-requests"); !strings.Contains(got, "Maria Lopez") || strings.Contains(got, "Jane Hill") || w.has("#access-requests button") ||
		!strings.Contains(got, "Late") || !strings.Contains(got, "Answered") {
		t.Errorf("the compliance officer's list: %q", got)
	}
	w.signOut()

	w.start()
	w.signIn(patientEmail, "")
	w.follow("#nav-disclosures")
	if got := w.text("#disclosures"); !strings.Contains(got, "Dr. Jane Hill, Northside Clinic") || !strings.Contains(got, "written request") {
		t.Errorf("her accounting: %q", got)
	}
}
