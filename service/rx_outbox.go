package service

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"time"

	"haven"
	"haven/audit"
	"haven/policy"
	"haven/store/sqlstore"
)

// The prescription outbox: signed prescriptions and cancellations wait in
// rx_outbox (written in the transaction that signs or cancels) until a
// sender delivers them to the pharmacy, so a pharmacy that is down, a
// restart or an agreement that lapsed loses nothing. Any number of nodes
// may run the sender: each message is claimed in the database first.
//
// Before each attempt the sender asks the vendor registry (CheckEgress)
// whether the pharmacy may receive the minimum necessary PHI now: a
// retired pharmacy, or one whose agreement ended, gets nothing (the
// refusal is audited and alerted, and the message waits; renewing the
// agreement lets the next attempt deliver). The transmission itself is
// audited, in the patient's access history, before her record is opened.
//
// A message is a FHIR R4 Bundle (a MedicationRequest with its Patient and
// Practitioner, and the practice's signature) POSTed over HTTPS with
// mutual TLS to the pharmacy's endpoint. The answer sets the status the
// clinician and the patient see: 200 or 201, accepted; 202, sent (the
// pharmacy has it and will decide); another 4xx, rejected for good;
// anything else (a 5xx, no answer) is tried again later.

// RxActor is the audit log's actor for what the prescription sender
// does: no person and no session sends a prescription on.
const RxActor = "system:rx-outbox"

// RxActorName is how the prescription sender appears in a patient's
// access history.
const RxActorName = "Haven (prescription sent to your pharmacy)"

// RxSenderConfig is what NewRxSender needs beyond the Service.
type RxSenderConfig struct {
	// TLS is the client side of the mutual TLS: the practice server's
	// client certificate, and the roots trusted for pharmacies (nil: the
	// system's). TLS 1.2 at least; 1.3 is preferred.
	TLS *tls.Config
	// Retry is the first wait after a failed attempt; it doubles up to
	// MaxRetry. Defaults 10 s and 10 min.
	Retry, MaxRetry time.Duration
	// Timeout bounds one attempt; default 30 s.
	Timeout time.Duration
}

// RxSender delivers the prescription outbox. Build it with NewRxSender.
type RxSender struct {
	svc    *Service
	cfg    RxSenderConfig
	client *http.Client
}

// NewRxSender returns the sender over svc.
func NewRxSender(svc *Service, cfg RxSenderConfig) *RxSender {
	if cfg.Retry <= 0 {
		cfg.Retry = 10 * time.Second
	}
	if cfg.MaxRetry <= 0 {
		cfg.MaxRetry = 10 * time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLS != nil {
		tc = cfg.TLS.Clone()
		if tc.MinVersion < tls.VersionTLS12 {
			tc.MinVersion = tls.VersionTLS12
		}
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}
	return &RxSender{svc: svc, cfg: cfg, client: &http.Client{Transport: tr, Timeout: cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// wakeRx tells a running sender that something was queued.
func (s *Service) wakeRx() {
	select {
	case s.rx <- struct{}{}:
	default:
	}
}

// SendDue delivers every due message once and returns how many reached
// their pharmacy. The first error is returned after the rest are tried.
func (r *RxSender) SendDue(ctx context.Context) (int, error) {
	now := r.svc.now()
	due, err := r.svc.db.DueRxOutbox(ctx, now.UnixMicro(), 100)
	if err != nil {
		return 0, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read the prescription outbox")
	}
	sent := 0
	var first error
	for _, it := range due {
		ok, err := r.send(ctx, it)
		if err != nil && first == nil {
			first = err
		}
		if ok {
			sent++
		}
	}
	return sent, first
}

// send claims and delivers one message; it reports whether the pharmacy
// answered (accepted, sent or rejected).
func (r *RxSender) send(ctx context.Context, it sqlstore.RxOutboxItem) (bool, error) {
	db, now := r.svc.db, r.svc.now()
	mine, err := db.ClaimRxOutbox(ctx, it.ID, now.UnixMicro(), now.Add(r.cfg.Timeout+time.Minute).UnixMicro())
	if err != nil || !mine {
		return false, err
	}
	retry := func(reason string) error {
		wait := r.cfg.Retry << min(it.Attempts, 16)
		if wait > r.cfg.MaxRetry || wait <= 0 {
			wait = r.cfg.MaxRetry
		}
		db.SetPrescriptionReason(ctx, it.PrescriptionID, reason)
		return db.RetryRxOutbox(ctx, it.ID, r.svc.now().Add(wait).UnixMicro(), reason)
	}
	p, err := db.FindPrescription(ctx, it.PrescriptionID)
	if err != nil {
		return false, retry("unreadable")
	}
	if it.Kind == "new" && p.Status == haven.RxCancelled {
		return false, db.FinishRxOutbox(ctx, it.ID, "cancelled")
	}
	pharmacy, err := r.svc.CheckEgress(ctx, p.PracticeID, p.PharmacyID, haven.PHIMinimum)
	if err != nil {
		reason := "vendor_refused"
		if haven.ErrorCode(err) == haven.EUNAVAILABLE {
			reason = "registry_unavailable"
		}
		return false, retry(reason)
	}
	// The disclosure is on record before the patient's record is opened.
	ev := audit.Event{LogID: p.PracticeID, ActorID: RxActor, Action: ActRxTransmit, ResourceKind: string(policy.KindPrescription),
		ResourceID: p.ID, PatientID: p.PatientID, Purpose: audit.PurposeTreatment, Decision: haven.DecisionAllow, Reason: it.Kind}
	if _, err := r.svc.record(ctx, ev); err != nil {
		return false, retry("audit_unavailable")
	}
	bundle, err := r.svc.rxBundle(ctx, p, it.Kind == "cancel")
	if err != nil {
		if errKeyDestroyed(err) {
			return false, db.FinishRxOutbox(ctx, it.ID, "erased")
		}
		return false, retry("unreadable")
	}
	code, err := r.post(ctx, pharmacy.Endpoint, bundle)
	clear(bundle)
	if err != nil {
		slog.Warn("prescription outbox: pharmacy unreachable", "prescription", p.ID, "vendor", pharmacy.ID, "attempt", it.Attempts+1, "err", err)
		return false, retry("pharmacy_unreachable")
	}
	if it.Kind == "cancel" {
		switch {
		case code >= 200 && code < 300:
			return true, db.FinishRxOutbox(ctx, it.ID, "")
		case code >= 400 && code < 500:
			return true, db.FinishRxOutbox(ctx, it.ID, fmt.Sprintf("pharmacy_%d", code))
		}
		return false, retry(fmt.Sprintf("pharmacy_%d", code))
	}
	var status haven.PrescriptionStatus
	switch {
	case code == http.StatusAccepted:
		status = haven.RxSent
	case code >= 200 && code < 300:
		status = haven.RxAccepted
	case code >= 400 && code < 500 && code != http.StatusTooManyRequests && code != http.StatusRequestTimeout:
		status = haven.RxRejected
	default:
		return false, retry(fmt.Sprintf("pharmacy_%d", code))
	}
	reason := ""
	if status == haven.RxRejected {
		reason = fmt.Sprintf("pharmacy_%d", code)
	}
	if err := db.SetPrescriptionStatus(ctx, p.ID, status, reason); err != nil {
		return true, err
	}
	return true, db.FinishRxOutbox(ctx, it.ID, reason)
}

// post sends a Bundle and returns the pharmacy's status code. Only an
// https:// endpoint is spoken to.
func (r *RxSender) post(ctx context.Context, endpoint string, body []byte) (int, error) {
	if !strings.HasPrefix(endpoint, "https://") {
		return 0, fmt.Errorf("the pharmacy's endpoint is not https://")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/fhir+json; fhirVersion=4.0")
	req.Header.Set("Accept", "application/fhir+json")
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Run delivers due messages about every interval, and at once when
// something is queued on this node, until ctx ends. Runs that sent
// something or failed are passed to report.
func (r *RxSender) Run(ctx context.Context, every time.Duration, report func(sent int, err error)) {
	for {
		n, err := r.SendDue(ctx)
		if (n > 0 || err != nil) && report != nil && ctx.Err() == nil {
			report(n, err)
		}
		wait := every + time.Duration(mrand.Int64N(int64(every)/5+1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-r.svc.rx:
			t.Stop()
		case <-t.C:
		}
	}
}

// The FHIR R4 message. Only what the pharmacy needs to dispense, the
// minimum necessary: the patient's name, birth date and sex (no address,
// phone, email or record number), the drug, directions and amounts, and
// the prescriber.

type fhirRef struct {
	Reference string `json:"reference"`
}

type fhirCoding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

type fhirName struct {
	Text string `json:"text"`
}

type fhirIdentifier struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

type fhirEntry struct {
	FullURL  string `json:"fullUrl"`
	Resource any    `json:"resource"`
}

type fhirSignature struct {
	Type         []fhirCoding `json:"type"`
	When         string       `json:"when"`
	Who          fhirRef      `json:"who"`
	TargetFormat string       `json:"targetFormat"`
	SigFormat    string       `json:"sigFormat"`
	Data         string       `json:"data"`
}

type fhirBundle struct {
	ResourceType string         `json:"resourceType"`
	ID           string         `json:"id"`
	Identifier   fhirIdentifier `json:"identifier"`
	Type         string         `json:"type"`
	Timestamp    string         `json:"timestamp"`
	Entry        []fhirEntry    `json:"entry"`
	Signature    *fhirSignature `json:"signature,omitempty"`
}

// FHIR systems Haven names.
const (
	fhirRxNorm          = "http://www.nlm.nih.gov/research/umls/rxnorm"
	fhirHavenRx         = "urn:haven:prescription"
	fhirHavenUser       = "urn:haven:user"
	fhirUCUM            = "http://unitsofmeasure.org"
	fhirSignatureSystem = "urn:iso-astm:E1762-95:2013"
)

func urnUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b[:])
	return "urn:uuid:" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// fhirGender maps the chart's sex to FHIR's administrative gender.
func fhirGender(sex string) string {
	switch strings.ToLower(strings.TrimSpace(sex)) {
	case "f", "female":
		return "female"
	case "m", "male":
		return "male"
	case "":
		return "unknown"
	}
	return "other"
}

// rxBundle opens the prescription, its patient's name, birth date and
// sex, and its prescriber's name, and returns the Bundle to send: the
// MedicationRequest (cancelled, for a cancellation) with its Patient and
// Practitioner, and the practice's signature over the canonical content.
// Call it only after the transmission is audited.
func (s *Service) rxBundle(ctx context.Context, p *haven.Prescription, cancel bool) ([]byte, error) {
	var c haven.PrescriptionContent
	if err := s.openJSON(ctx, rxAD(p), p.Content, &c); err != nil {
		return nil, err
	}
	row, err := s.db.FindPatient(ctx, p.PatientID)
	if err != nil {
		return nil, err
	}
	chart, err := s.openChart(ctx, row)
	if err != nil {
		return nil, err
	}
	u, err := s.db.FindUserByID(ctx, p.PrescriberID)
	if err != nil {
		return nil, err
	}
	prof, err := s.openUser(ctx, u)
	if err != nil {
		return nil, err
	}
	patientURL, practitionerURL, rxURL := urnUUID(), urnUUID(), urnUUID()
	patient := map[string]any{"resourceType": "Patient", "id": p.PatientID, "name": []fhirName{{Text: chart.Demographics.Name}},
		"gender": fhirGender(chart.Demographics.Sex)}
	if _, err := time.Parse(time.DateOnly, chart.Demographics.DateOfBirth); err == nil {
		patient["birthDate"] = chart.Demographics.DateOfBirth
	}
	practitioner := map[string]any{"resourceType": "Practitioner", "id": p.PrescriberID,
		"identifier": []fhirIdentifier{{System: fhirHavenUser, Value: p.PrescriberID}}, "name": []fhirName{{Text: prof.Name}}}
	status := "active"
	if cancel {
		status = "cancelled"
	}
	med := map[string]any{
		"resourceType": "MedicationRequest",
		"id":           p.ID,
		"identifier":   []fhirIdentifier{{System: fhirHavenRx, Value: p.ID}},
		"status":       status,
		"intent":       "order",
		"medicationCodeableConcept": map[string]any{
			"coding": []fhirCoding{{System: fhirRxNorm, Code: c.RxNorm, Display: c.Drug}},
			"text":   strings.TrimSpace(c.Drug + " " + c.Strength + " " + c.Form),
		},
		"subject":           fhirRef{Reference: patientURL},
		"authoredOn":        p.Signed.UTC().Format(time.RFC3339),
		"requester":         fhirRef{Reference: practitionerURL},
		"dosageInstruction": []map[string]any{{"text": c.Directions}},
		"dispenseRequest": map[string]any{
			"numberOfRepeatsAllowed": c.Refills,
			"quantity":               map[string]any{"value": c.Quantity, "unit": c.Form},
			"expectedSupplyDuration": map[string]any{"value": c.DaysSupply, "unit": "days", "system": fhirUCUM, "code": "d"},
		},
		"substitution": map[string]any{"allowedBoolean": c.Substitution},
	}
	now := s.now().UTC().Format(time.RFC3339)
	b := fhirBundle{ResourceType: "Bundle", ID: haven.NewID(), Identifier: fhirIdentifier{System: fhirHavenRx, Value: p.ID}, Type: "collection", Timestamp: now,
		Entry: []fhirEntry{{FullURL: rxURL, Resource: med}, {FullURL: patientURL, Resource: patient}, {FullURL: practitionerURL, Resource: practitioner}},
		Signature: &fhirSignature{Type: []fhirCoding{{System: fhirSignatureSystem, Code: "1.2.840.10065.1.12.1.1", Display: "Author's Signature"}},
			When: p.Signed.UTC().Format(time.RFC3339), Who: fhirRef{Reference: practitionerURL}, TargetFormat: "application/octet-stream",
			SigFormat: "application/octet-stream", Data: base64.StdEncoding.EncodeToString(p.Signature)}}
	return json.Marshal(b)
}
