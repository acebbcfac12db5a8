package service

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"strings"
	"time"

	"haven"
	"haven/audit"
	"haven/hl7"
	"haven/policy"
	"haven/store/sqlstore"
)

// The lab outbox: an order waits in lab_outbox (written in the
// transaction that stores it) until a sender delivers it to the lab, so a
// lab that is down, a restart or an agreement that lapsed loses nothing.
// Any number of nodes may run the sender: each message is claimed in the
// database first.
//
// Before each attempt the sender asks the vendor registry (CheckEgress)
// whether the lab may receive the minimum necessary PHI now; a refusal is
// audited and the message waits. The transmission is audited, in the
// patient's access history, before her record is opened.
//
// A message is an HL7 v2.5.1 ORM^O01 framed in MLLP inside TLS 1.3 to the
// lab's endpoint (host:port, or mllps://host:port), with the practice
// server's client certificate when the lab asks for one. Its control id
// is the same on every attempt. The lab's acknowledgment sets the order's
// status: AA (or CA), sent; AE (or CE), rejected for good, with the
// lab's error code; AR (or CR), or no answer, tried again later.
//
// A clinician's cancellation of an order that may have reached the lab
// travels the same way, as an ORM^O01 whose ORC-1 is CA, with its own
// control id (beginning sqlstore.CancelControlPrefix). Its AA cancels
// the order; its AE leaves the order at the lab (the lab would not
// cancel it); AR or no answer, tried again later.

// LabActor is the audit log's actor for what the lab sender does.
const LabActor = "system:lab-outbox"

// LabActorName is how the lab sender appears in a patient's access history.
const LabActorName = "Haven (lab order sent to the lab)"

// LabSenderConfig is what NewLabSender needs beyond the Service.
type LabSenderConfig struct {
	// TLS is the client side: the practice server's client certificate
	// and the roots trusted for labs (nil: the system's).
	TLS *tls.Config
	// Retry is the first wait after a failed attempt; it doubles up to
	// MaxRetry. Defaults 10 s and 10 min.
	Retry, MaxRetry time.Duration
	// Timeout bounds one attempt; default 30 s.
	Timeout time.Duration
	// Application is MSH-3 of what Haven sends; default HAVEN.
	Application string
}

// LabSender delivers the lab outbox. Build it with NewLabSender.
type LabSender struct {
	svc *Service
	cfg LabSenderConfig
}

// NewLabSender returns the sender over svc.
func NewLabSender(svc *Service, cfg LabSenderConfig) *LabSender {
	if cfg.Retry <= 0 {
		cfg.Retry = 10 * time.Second
	}
	if cfg.MaxRetry <= 0 {
		cfg.MaxRetry = 10 * time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.TLS == nil {
		cfg.TLS = &tls.Config{}
	}
	if cfg.Application == "" {
		cfg.Application = "HAVEN"
	}
	return &LabSender{svc: svc, cfg: cfg}
}

// wakeLabs tells a running sender that an order was queued.
func (s *Service) wakeLabs() {
	select {
	case s.labs <- struct{}{}:
	default:
	}
}

// SendDue delivers every due message once and returns how many the lab
// answered. The first error is returned after the rest are tried.
func (l *LabSender) SendDue(ctx context.Context) (int, error) {
	due, err := l.svc.db.DueLabOutbox(ctx, l.svc.now().UnixMicro(), 100)
	if err != nil {
		return 0, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read the lab outbox")
	}
	sent := 0
	var first error
	for _, it := range due {
		ok, err := l.send(ctx, it)
		if err != nil && first == nil {
			first = err
		}
		if ok {
			sent++
		}
	}
	return sent, first
}

func (l *LabSender) send(ctx context.Context, it sqlstore.LabOutboxItem) (bool, error) {
	db, now := l.svc.db, l.svc.now()
	mine, err := db.ClaimLabOutbox(ctx, it.ID, now.UnixMicro(), now.Add(l.cfg.Timeout+time.Minute).UnixMicro())
	if err != nil || !mine {
		return false, err
	}
	retry := func(reason string) error {
		wait := l.cfg.Retry << min(it.Attempts, 16)
		if wait > l.cfg.MaxRetry || wait <= 0 {
			wait = l.cfg.MaxRetry
		}
		db.SetLabOrderReason(ctx, it.OrderID, reason)
		return db.RetryLabOutbox(ctx, it.ID, l.svc.now().Add(wait).UnixMicro(), reason)
	}
	o, err := db.FindLabOrder(ctx, it.OrderID)
	if err != nil {
		return false, retry("unreadable")
	}
	lab, err := l.svc.CheckEgress(ctx, o.PracticeID, o.LabID, haven.PHIMinimum)
	if err != nil {
		reason := "vendor_refused"
		if haven.ErrorCode(err) == haven.EUNAVAILABLE {
			reason = "registry_unavailable"
		}
		return false, retry(reason)
	}
	// A cancellation is known by its control id (sqlstore.CancelControlPrefix).
	cancel := strings.HasPrefix(it.ControlID, sqlstore.CancelControlPrefix)
	ev := audit.Event{LogID: o.PracticeID, ActorID: LabActor, Action: ActLabTransmit, ResourceKind: string(policy.KindLab),
		ResourceID: o.ID, PatientID: o.PatientID, Purpose: audit.PurposeTreatment, Decision: haven.DecisionAllow}
	if cancel {
		ev.Reason = "cancel"
	}
	if _, err := l.svc.record(ctx, ev); err != nil {
		return false, retry("audit_unavailable")
	}
	msg, err := l.svc.labORM(ctx, o, lab, it.ControlID, l.cfg.Application, cancel)
	if err != nil {
		if errKeyDestroyed(err) {
			return false, db.FinishLabOutbox(ctx, it.ID, "erased")
		}
		return false, retry("unreadable")
	}
	answer, err := l.exchange(ctx, lab.Endpoint, msg)
	clear(msg)
	if err != nil {
		slog.Warn("lab outbox: lab unreachable", "order", o.ID, "vendor", lab.ID, "attempt", it.Attempts+1, "err", err)
		return false, retry("lab_unreachable")
	}
	m, err := hl7.Parse(answer)
	if err != nil {
		return false, retry("ack_unreadable")
	}
	ack, err := hl7.ReadAck(m)
	if err != nil || ack.ControlID != it.ControlID {
		return false, retry("ack_unreadable")
	}
	code := strings.TrimPrefix(strings.TrimPrefix(string(ack.Code), "A"), "C") // A or E or R
	if cancel {
		switch code {
		case "A":
			if err := db.SetLabCancelAck(ctx, o.ID, string(ack.Code), 0, false, ""); err != nil {
				return true, err
			}
			return true, db.FinishLabOutbox(ctx, it.ID, "")
		case "E":
			// The lab would not cancel it (it may be testing already): the
			// order stands, and its result will come.
			reason := fmt.Sprintf("cancel_refused_%d", ack.ErrorCode)
			if err := db.SetLabCancelAck(ctx, o.ID, string(ack.Code), ack.ErrorCode, true, reason); err != nil {
				return true, err
			}
			return true, db.FinishLabOutbox(ctx, it.ID, reason)
		}
		return true, retry("lab_refused")
	}
	switch code {
	case "A":
		if err := db.SetLabOrderAck(ctx, o.ID, haven.LabSent, string(ack.Code), 0, ""); err != nil {
			return true, err
		}
		return true, db.FinishLabOutbox(ctx, it.ID, "")
	case "E":
		reason := fmt.Sprintf("lab_error_%d", ack.ErrorCode)
		if err := db.SetLabOrderAck(ctx, o.ID, haven.LabRejected, string(ack.Code), ack.ErrorCode, reason); err != nil {
			return true, err
		}
		return true, db.FinishLabOutbox(ctx, it.ID, reason)
	}
	db.SetLabOrderAck(ctx, o.ID, haven.LabQueued, string(ack.Code), ack.ErrorCode, "lab_refused")
	return true, retry("lab_refused")
}

// exchange sends one message to a lab's MLLP endpoint and returns its
// answer.
func (l *LabSender) exchange(ctx context.Context, endpoint string, msg []byte) ([]byte, error) {
	addr := endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		if u.Scheme != "mllps" && u.Scheme != "mllp+tls" {
			return nil, fmt.Errorf("the lab's endpoint is not MLLP over TLS")
		}
		addr = u.Host
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	c, err := hl7.Dial(ctx, addr, l.cfg.TLS)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Send(ctx, msg)
}

// Run delivers due messages about every interval, and at once when an
// order is queued on this node, until ctx ends.
func (l *LabSender) Run(ctx context.Context, every time.Duration, report func(sent int, err error)) {
	for {
		n, err := l.SendDue(ctx)
		if (n > 0 || err != nil) && report != nil && ctx.Err() == nil {
			report(n, err)
		}
		t := time.NewTimer(every + time.Duration(mrand.Int64N(int64(every)/5+1)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-l.svc.labs:
			t.Stop()
		case <-t.C:
		}
	}
}

// hl7Sex maps the chart's sex to HL7 table 0001.
func hl7Sex(sex string) string {
	switch strings.ToLower(strings.TrimSpace(sex)) {
	case "f", "female":
		return "F"
	case "m", "male":
		return "M"
	case "":
		return "U"
	}
	return "O"
}

// nameParticles are lower-case words that belong to the family name
// after them: "de la Cruz", "van der Berg", "bin Laden".
var nameParticles = map[string]bool{"de": true, "del": true, "della": true, "la": true, "le": true, "van": true, "von": true,
	"der": true, "den": true, "da": true, "di": true, "du": true, "dos": true, "das": true, "do": true, "ter": true, "ten": true,
	"bin": true, "ibn": true, "al": true, "el": true, "zu": true, "y": true}

// splitName cuts a chart's one-line name into family and given names, as
// HL7's XPN wants them. A chart keeps the name as one line, so this is a
// best effort: the last word is the family name, with the lower-case
// particles before it ("Maria de la Cruz": de la Cruz, Maria); the first
// word is always a given name. A lab matches its result back by the
// order number, the record number and the date of birth, never by name.
func splitName(name string) (family, given string) {
	f := strings.Fields(name)
	if len(f) == 0 {
		return "", ""
	}
	i := len(f) - 1
	for i > 1 && nameParticles[f[i-1]] {
		i--
	}
	return strings.Join(f[i:], " "), strings.Join(f[:i], " ")
}

// labORM opens the order, the patient's MRN, name, birth date and sex
// (the minimum a lab needs to test and report: no address, phone or
// email), and the orderer's name, and returns the ORM^O01 to send: a new
// order, or with cancel its cancellation (ORC-1 CA). Call it only after
// the transmission is audited.
func (s *Service) labORM(ctx context.Context, o *haven.LabOrder, lab *haven.Vendor, controlID, app string, cancel bool) ([]byte, error) {
	var c haven.LabOrderContent
	if err := s.openJSON(ctx, labOrderAD(o), o.Content, &c); err != nil {
		return nil, err
	}
	row, err := s.db.FindPatient(ctx, o.PatientID)
	if err != nil {
		return nil, err
	}
	chart, err := s.openChart(ctx, row)
	if err != nil {
		return nil, err
	}
	u, err := s.db.FindUserByID(ctx, o.OrdererID)
	if err != nil {
		return nil, err
	}
	prof, err := s.openUser(ctx, u)
	if err != nil {
		return nil, err
	}
	control := "NW"
	if cancel {
		control = "CA"
	}
	family, given := splitName(chart.Demographics.Name)
	pFamily, pGiven := splitName(prof.Name)
	ord := hl7.Order{
		SendingApplication: app, SendingFacility: o.PracticeID,
		ReceivingApplication: "LAB", ReceivingFacility: lab.ID,
		ControlID: controlID, At: s.now().UTC().Format("20060102150405") + "+0000",
		PatientID: chart.MRN, AssigningAuth: o.PracticeID, Family: family, Given: given,
		BirthDate: strings.ReplaceAll(chart.Demographics.DateOfBirth, "-", ""), Sex: hl7Sex(chart.Demographics.Sex),
		PlacerOrder: o.Number, Control: control, ProviderID: o.OrdererID, ProviderFamily: pFamily, ProviderGiven: pGiven, Note: c.Note,
	}
	for _, t := range c.Tests {
		ord.Tests = append(ord.Tests, hl7.OrderedTest{Code: t.LOINC, Name: t.Name})
	}
	return hl7.ORM(ord).Encode(), nil
}
