package service

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"haven"
	"haven/audit"
	"haven/keyring"
	"haven/policy"
)

// Payments: visit fees. The practice's administrator sets a price per
// visit type (a visit's length); a patient pays for her visits, before or
// after them, through the card processor (haven.Processor), which is told
// an amount, a currency and a random reference and nothing else. Which
// visit a payment is for is sealed under the patient's key; a keyed blind
// index of that visit lets the database refuse paying one visit twice.
// The administrator works the practice's ledger by reference, amount and
// state (no names, no visits) and refunds with a recent step-up. The
// processor's notices (webhooks) settle payments, each applied once.

// Audit actions of the processor's notices, which no person takes.
const (
	// ActPaymentNotice is a processor notice applied to a payment.
	ActPaymentNotice = "payment.notice"
	// ActPaymentEgress is a payment refused because its processor may not
	// be sent anything.
	ActPaymentEgress = "payment.egress"
	// ActPaymentRefunded is a refund the processor accepted, whole or in
	// part; its reason is "whole" or "part".
	ActPaymentRefunded = "payment.refunded"
	// PaymentActor is the audit log's actor id for the processor's notices.
	PaymentActor = "system:payment-processor"
)

// maxLedger bounds the administrator's ledger page.
const maxLedger = 200

// PaymentView is a payment as its patient or the administrator sees it:
// what a receipt says (amount, dates, the practice, the reference) and
// its state. Nothing in it names the patient or the visit.
type PaymentView struct {
	ID           string     `json:"id"`
	Ref          string     `json:"reference"`
	Amount       int64      `json:"amount"` // in the currency's smallest unit
	Currency     string     `json:"currency"`
	AmountText   string     `json:"amount_text"` // "$40.00"
	State        string     `json:"state"`
	CreatedAt    time.Time  `json:"created_at"`
	PaidAt       *time.Time `json:"paid_at,omitempty"`
	RefundedAt   *time.Time `json:"refunded_at,omitempty"`
	PracticeName string     `json:"practice_name"`
	// Refunded is how much was given back so far, in part or in whole.
	Refunded      int64  `json:"refunded"`
	RefundedText  string `json:"refunded_text,omitempty"`  // "$10.00", when something was
	RemainingText string `json:"remaining_text,omitempty"` // what may still be refunded of a paid payment
	// CheckoutURL is, right after PayVisit, the processor's hosted page
	// the patient is sent to, to enter her card there.
	CheckoutURL string `json:"checkout_url,omitempty"`
	// Refunds are its refunds, oldest first, on the administrator's page
	// of one payment.
	Refunds []RefundView `json:"refunds,omitempty"`
}

// RefundView is one refund of a payment as the ledger shows it.
type RefundView struct {
	Ref        string    `json:"reference"`
	Amount     int64     `json:"amount"`
	AmountText string    `json:"amount_text"`
	CreatedAt  time.Time `json:"created_at"`
	ByName     string    `json:"by_name"`
}

func (s *Service) paymentView(ctx context.Context, p *haven.Payment) *PaymentView {
	v := &PaymentView{ID: p.ID, Ref: p.Ref.String(), Amount: int64(p.Amount), Currency: p.Currency.String(),
		AmountText: p.Currency.Format(p.Amount), State: p.State, CreatedAt: p.CreatedAt, PaidAt: p.PaidAt, RefundedAt: p.RefundedAt}
	if pr, err := s.db.FindPracticeByID(ctx, p.PracticeID); err == nil {
		v.PracticeName = pr.Name
	}
	v.Refunded = int64(p.Refunded)
	if p.Refunded > 0 {
		v.RefundedText = p.Currency.Format(p.Refunded)
	}
	if p.State == haven.PaymentPaid {
		v.RemainingText = p.Currency.Format(p.Remaining())
	}
	return v
}

// VisitFee is one of a patient's visits with what it costs and how it
// stands: owed, being paid, paid or refunded.
type VisitFee struct {
	VisitID       string       `json:"visit_id"`
	Start         time.Time    `json:"start"`
	Minutes       int          `json:"minutes"`
	ClinicianName string       `json:"clinician_name"`
	Amount        int64        `json:"amount"`
	Currency      string       `json:"currency"`
	AmountText    string       `json:"amount_text"`
	Owed          bool         `json:"owed"`              // priced, not paid nor being paid
	Payment       *PaymentView `json:"payment,omitempty"` // the visit's live or last payment
}

// Fees is what a patient owes and has paid, visit by visit.
type Fees struct {
	Visits   []VisitFee `json:"visits"`
	OwedText string     `json:"owed_text,omitempty"` // the total owed, when something is; in one currency each
	// Other are payments whose visit is no longer listed (cancelled).
	Other []*PaymentView `json:"other,omitempty"`
}

// PriceView is what the practice charges for a visit of Minutes.
type PriceView struct {
	Minutes    int    `json:"minutes"`
	Amount     int64  `json:"amount"` // in the currency's smallest unit
	Currency   string `json:"currency"`
	AmountText string `json:"amount_text"`
}

// PriceList is a practice's prices and the visit lengths its clinicians
// offer, for the administrator's page.
type PriceList struct {
	Prices  []PriceView `json:"prices"`
	Lengths []int       `json:"lengths"` // offered lengths, priced or not
}

// Price returns the price of a visit of minutes, if one is set.
func (l *PriceList) Price(minutes int) *PriceView {
	for i := range l.Prices {
		if l.Prices[i].Minutes == minutes {
			return &l.Prices[i]
		}
	}
	return nil
}

// Prices returns the practice's prices (payment.prices, audited).
func (s *Service) Prices(ctx context.Context) (*PriceList, error) {
	a, err := s.practiceAct(ctx, policy.PaymentPrices)
	if err != nil {
		return nil, err
	}
	ps, err := s.db.Prices(ctx, a.PracticeID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load prices")
	}
	ls, err := s.db.VisitLengths(ctx, a.PracticeID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load visit lengths")
	}
	out := &PriceList{Prices: []PriceView{}}
	for _, p := range ps {
		if !slices.Contains(ls, p.Minutes) {
			ls = append(ls, p.Minutes)
		}
		out.Prices = append(out.Prices, PriceView{Minutes: p.Minutes, Amount: int64(p.Amount), Currency: p.Currency.String(), AmountText: p.Currency.Format(p.Amount)})
	}
	slices.Sort(ls)
	out.Lengths = ls
	return out, nil
}

// SetPrice sets what the practice charges for a visit of minutes
// (payment.prices, audited). A price of nothing removes it: such visits
// cost nothing.
func (s *Service) SetPrice(ctx context.Context, minutes int, amount haven.Cents, cur haven.Currency) error {
	p := &haven.Price{Minutes: minutes, Amount: amount, Currency: cur}
	if err := p.Validate(); err != nil {
		return err
	}
	a, err := s.practiceAct(ctx, policy.PaymentPrices)
	if err != nil {
		return err
	}
	p.PracticeID = a.PracticeID
	if amount == 0 {
		return s.db.DeletePrice(ctx, a.PracticeID, minutes)
	}
	return s.db.PutPrice(ctx, p)
}

// practiceAct passes the gate for a practice-level act of the actor's own
// practice.
func (s *Service) practiceAct(ctx context.Context, act policy.Action) (haven.Actor, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return a, err
	}
	_, _, err = s.authorize(ctx, act, policy.Resource{Kind: policy.KindPayment, PracticeID: a.PracticeID})
	return a, err
}

// VisitFees returns a patient's visits with their fees (payment.read on
// her record, audited): what she owes, visit by visit, and what she paid.
func (s *Service) VisitFees(ctx context.Context, patientID string) (*Fees, error) {
	row, err := s.patientRow(ctx, policy.PaymentRead, policy.KindPayment, patientID)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.PaymentRead, chartResource(policy.KindPayment, row), patientID); err != nil {
		return nil, err
	}
	visits, err := s.db.PatientVisits(ctx, row.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load visits")
	}
	prices, err := s.db.Prices(ctx, row.PracticeID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load prices")
	}
	pays, err := s.db.PatientPayments(ctx, row.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load payments")
	}
	// The payment that stands for each visit: a live one (pending, paid,
	// refunded) before a failed one, the newest of each.
	byVisit := map[string]*haven.Payment{}
	for _, p := range pays {
		var l haven.PaymentLink
		if err := s.openJSON(ctx, paymentAD(p), p.Link, &l); err != nil {
			return nil, err
		}
		if cur, ok := byVisit[l.VisitID]; !ok || cur.State == haven.PaymentFailed && p.State != haven.PaymentFailed {
			byVisit[l.VisitID] = p
		}
	}
	out := &Fees{Visits: []VisitFee{}}
	owed := map[haven.Currency]haven.Cents{}
	listed := map[string]bool{}
	for _, v := range visits {
		if v.State == haven.VisitCancelled {
			continue
		}
		f := VisitFee{VisitID: v.ID, Start: v.Start, Minutes: visitMinutes(v), ClinicianName: s.workforceName(ctx, v.PracticeID, v.ClinicianID)}
		if pr := priceFor(prices, f.Minutes); pr != nil {
			f.Amount, f.Currency, f.AmountText = int64(pr.Amount), pr.Currency.String(), pr.Currency.Format(pr.Amount)
		}
		if p := byVisit[v.ID]; p != nil {
			f.Payment = s.paymentView(ctx, p)
			listed[p.ID] = true
		}
		f.Owed = f.Amount > 0 && (f.Payment == nil || f.Payment.State == haven.PaymentFailed)
		if f.Owed {
			pr := priceFor(prices, f.Minutes)
			owed[pr.Currency] += pr.Amount
		}
		out.Visits = append(out.Visits, f)
	}
	for _, c := range haven.Currencies {
		if owed[c] > 0 {
			if out.OwedText != "" {
				out.OwedText += " and "
			}
			out.OwedText += c.Format(owed[c])
		}
	}
	for _, p := range byVisit {
		if !listed[p.ID] && p.State != haven.PaymentFailed {
			out.Other = append(out.Other, s.paymentView(ctx, p))
		}
	}
	return out, nil
}

func visitMinutes(v *haven.Visit) int { return int(v.End.Sub(v.Start) / time.Minute) }

func priceFor(ps []*haven.Price, minutes int) *haven.Price {
	for _, p := range ps {
		if p.Minutes == minutes {
			return p
		}
	}
	return nil
}

// paymentAD binds a payment's sealed link to the payment and its patient.
func paymentAD(p *haven.Payment) keyring.AD {
	return keyring.AD{PracticeID: p.PracticeID, PatientID: p.PatientID, Kind: "payment", RecordID: p.ID, Field: "link"}
}

// CheckoutOrigin is the origin of the processor's hosted payment pages,
// or "" when card payments are off.
func (s *Service) CheckoutOrigin() string {
	if s.processor == nil {
		return ""
	}
	return s.processor.CheckoutOrigin()
}

// errPaymentsOff answers every payment when no processor is configured.
var errPaymentsOff = haven.Errorf(haven.EUNAVAILABLE, "card payments are not set up at this practice yet; the front desk can take payment")

// PayVisit opens the processor's hosted payment page for one of the
// patient's visits (payment.pay, audited): its price, which the processor
// is told with the currency and the payment's random reference and
// nothing else. The answer's CheckoutURL is where she enters her card, on
// the processor's site; the payment is pending until the processor's
// notice says she paid. Paying again a visit whose page she left unpaid
// closes that page first; a visit paid, or whose page took the money, is
// ECONFLICT; one without a price, or cancelled, is EINVALID.
func (s *Service) PayVisit(ctx context.Context, visitID string) (*PaymentView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if !haven.PlausibleID(visitID) {
		return nil, s.refuseUnknown(ctx, a, policy.PaymentPay, policy.KindPayment, visitID)
	}
	v, err := s.db.FindVisit(ctx, visitID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return nil, s.refuseUnknown(ctx, a, policy.PaymentPay, policy.KindPayment, visitID)
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the visit")
	}
	res := policy.Resource{Kind: policy.KindPayment, ID: v.ID, PracticeID: v.PracticeID, PatientID: v.PatientID}
	if _, _, err := s.authorizeRecord(ctx, policy.PaymentPay, res, visitID); err != nil {
		return nil, err
	}
	if s.processor == nil {
		return nil, errPaymentsOff
	}
	if v.State == haven.VisitCancelled {
		return nil, haven.Errorf(haven.EINVALID, "this visit was cancelled; there is nothing to pay")
	}
	prices, err := s.db.Prices(ctx, v.PracticeID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load prices")
	}
	pr := priceFor(prices, visitMinutes(v))
	if pr == nil || pr.Amount == 0 {
		return nil, haven.Errorf(haven.EINVALID, "this visit has no fee to pay")
	}
	idx, err := s.keys.BlindIndex(ctx, v.PracticeID, "payment_visit", []byte(v.ID))
	if err != nil {
		return nil, err
	}
	p := &haven.Payment{ID: haven.NewID(), PracticeID: v.PracticeID, PatientID: v.PatientID, Ref: haven.NewPaymentRef(),
		Amount: pr.Amount, Currency: pr.Currency, State: haven.PaymentPending}
	if p.Link, err = s.sealJSON(ctx, paymentAD(p), haven.PaymentLink{VisitID: v.ID}); err != nil {
		return nil, err
	}
	err = s.db.CreatePayment(ctx, p, idx)
	if haven.ErrorCode(err) == haven.ECONFLICT && s.closeAbandonedCheckout(ctx, idx) {
		err = s.db.CreatePayment(ctx, p, idx)
	}
	if err != nil {
		return nil, err
	}
	if err := s.processorEgress(ctx, p); err != nil {
		s.failPayment(ctx, p)
		return nil, err
	}
	got, err := s.processor.Checkout(ctx, haven.Charge{Amount: p.Amount, Currency: p.Currency, Ref: p.Ref})
	if err != nil {
		s.failPayment(ctx, p)
		return nil, err
	}
	p.Checkout = got.ID
	if err := s.db.UpdatePayment(ctx, p); err != nil {
		// A notice may have settled it meanwhile; what is stored stands.
		if cur, ferr := s.db.FindPayment(ctx, p.ID); ferr == nil {
			return s.paymentView(ctx, cur), nil
		}
		return nil, err
	}
	view := s.paymentView(ctx, p)
	view.CheckoutURL = got.URL
	return view, nil
}

// closeAbandonedCheckout frees a visit whose payment is pending on a
// hosted page the patient left (she came back without paying, or lost
// the tab): the page is closed at the processor, so it can never take
// the money too, and the payment marked failed. It reports whether the
// visit is free to be paid again: not when it is paid, or when the
// processor says its page already took the money.
func (s *Service) closeAbandonedCheckout(ctx context.Context, visitIndex []byte) bool {
	p, err := s.db.FindLivePaymentByVisit(ctx, visitIndex)
	if err != nil || p.State != haven.PaymentPending || p.Checkout.IsZero() {
		return false
	}
	if err := s.processorEgress(ctx, p); err != nil {
		return false
	}
	if err := s.processor.CloseCheckout(ctx, p.Checkout); err != nil {
		return false
	}
	p.State = haven.PaymentFailed
	return s.db.UpdatePayment(ctx, p) == nil
}

// failPayment marks a payment that never reached the processor failed, so
// the visit can be paid again.
func (s *Service) failPayment(ctx context.Context, p *haven.Payment) {
	p.State = haven.PaymentFailed
	if err := s.db.UpdatePayment(context.WithoutCancel(ctx), p); err != nil {
		slog.Error("cannot mark a payment failed", "payment", p.ID, "err", err)
	}
}

// settle moves p to state, as far as a payment may move: a refunded
// payment stays refunded, a paid one is only ever refunded.
func (s *Service) settle(p *haven.Payment, state string) bool {
	now := s.now()
	switch {
	case state == p.State:
		return false
	case state == haven.PaymentPaid && (p.State == haven.PaymentPending || p.State == haven.PaymentFailed):
		p.State, p.PaidAt = state, &now
	case state == haven.PaymentFailed && p.State == haven.PaymentPending:
		p.State = state
	case state == haven.PaymentRefunded && p.State == haven.PaymentPaid:
		p.State, p.RefundedAt = state, &now
	default:
		return false
	}
	return true
}

// processorEgress asks the vendor registry whether the processor may be
// sent this payment, before anything leaves: the payment vendor whose
// endpoint is the processor's, the practice's own or the platform's, may
// receive PHI level none (service.CheckEgress). An unregistered, retired
// or expired one gets nothing; CheckEgress audits the refusal and alerts
// the practice.
func (s *Service) processorEgress(ctx context.Context, p *haven.Payment) error {
	vs, err := s.db.Vendors(ctx, p.PracticeID, true)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot read the vendor registry")
	}
	// A live entry before a retired one, the practice's before the
	// platform's; a retired one is still found, so its refusal says so.
	rank := func(v *haven.Vendor) int {
		r := 0
		if v.Retired.IsZero() {
			r += 2
		}
		if v.PracticeID == p.PracticeID {
			r++
		}
		return r
	}
	var pick *haven.Vendor
	for _, v := range vs {
		if v.Kind == haven.VendorPayment && v.Endpoint == s.processor.Endpoint() && (pick == nil || rank(v) > rank(pick)) {
			pick = v
		}
	}
	id := ""
	if pick != nil {
		id = pick.ID
	}
	if _, err := s.CheckEgress(ctx, p.PracticeID, id, haven.PHINone); err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "card payments are paused at this practice; nothing was charged. The practice has been told")
	}
	return nil
}

// Receipt returns one of the patient's payments as its receipt
// (payment.read on her record, audited): amount, dates, the practice and
// the reference; nothing about the visit.
func (s *Service) Receipt(ctx context.Context, paymentID string) (*PaymentView, error) {
	p, err := s.paymentFor(ctx, policy.PaymentRead, paymentID, true)
	if err != nil {
		return nil, err
	}
	return s.paymentView(ctx, p), nil
}

// paymentFor loads a payment and passes the gate for act: for a patient's
// act the resource is her record, for the administrator's the practice's
// ledger line.
func (s *Service) paymentFor(ctx context.Context, act policy.Action, id string, patientScoped bool) (*haven.Payment, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if !haven.PlausibleID(id) {
		return nil, s.refuseUnknown(ctx, a, act, policy.KindPayment, id)
	}
	p, err := s.db.FindPayment(ctx, id)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return nil, s.refuseUnknown(ctx, a, act, policy.KindPayment, id)
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the payment")
	}
	res := policy.Resource{Kind: policy.KindPayment, ID: p.ID, PracticeID: p.PracticeID}
	if patientScoped {
		res.PatientID = p.PatientID
	}
	if _, _, err := s.authorizeRecord(ctx, act, res, id); err != nil {
		return nil, err
	}
	return p, nil
}

// Ledger returns the practice's newest payments for its administrator
// (payment.list, audited): references, amounts, states and dates, and no
// patient or visit.
func (s *Service) Ledger(ctx context.Context) ([]*PaymentView, error) {
	a, err := s.practiceAct(ctx, policy.PaymentList)
	if err != nil {
		return nil, err
	}
	ps, err := s.db.PracticePayments(ctx, a.PracticeID, maxLedger)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load payments")
	}
	out := make([]*PaymentView, 0, len(ps))
	for _, p := range ps {
		out = append(out, s.paymentView(ctx, p))
	}
	return out, nil
}

// LedgerPayment returns one payment of the ledger (payment.list,
// audited), for the administrator's refund page.
func (s *Service) LedgerPayment(ctx context.Context, id string) (*PaymentView, error) {
	p, err := s.paymentFor(ctx, policy.PaymentList, id, false)
	if err != nil {
		return nil, err
	}
	return s.ledgerView(ctx, p), nil
}

// RefundPayment gives back amount of a paid payment, all of what remains
// when amount is 0 (payment.refund: the administrator, with a recent
// step-up; audited), through the processor. A payment may be refunded in
// parts, never beyond what was paid; it is refunded once all of it is.
// The refund is recorded before the processor is asked (so two racing
// refunds cannot give back more than was paid) and taken back if the
// processor refuses it.
func (s *Service) RefundPayment(ctx context.Context, id string, amount haven.Cents) (*PaymentView, error) {
	p, err := s.paymentFor(ctx, policy.PaymentRefund, id, false)
	if err != nil {
		return nil, err
	}
	a, _ := haven.SignedIn(ctx)
	if s.processor == nil {
		return nil, errPaymentsOff
	}
	if p.State != haven.PaymentPaid || p.Processor.IsZero() {
		return nil, haven.Errorf(haven.ECONFLICT, "only a paid payment can be refunded; this one is %s", p.State)
	}
	if amount == 0 {
		amount = p.Remaining()
	}
	if amount < 0 || amount > p.Remaining() {
		return nil, haven.Errorf(haven.EINVALID, "a refund is more than 0 and at most %s, what remains of this payment", p.Currency.Format(p.Remaining()))
	}
	if err := s.processorEgress(ctx, p); err != nil {
		return nil, err
	}
	before := *p
	r := &haven.PaymentRefund{ID: haven.NewID(), PaymentID: p.ID, PracticeID: p.PracticeID, Ref: haven.NewPaymentRef(), Amount: amount, CreatedBy: a.UserID}
	p.Refunded += amount
	if p.Refunded == p.Amount {
		s.settle(p, haven.PaymentRefunded)
		p.RefundedBy = a.UserID
	}
	if err := s.db.AddPaymentRefund(ctx, p, r); err != nil {
		return nil, err
	}
	if err := s.processor.Refund(ctx, p.Processor, amount, r.Ref); err != nil {
		before.Version = p.Version
		if uerr := s.db.RemovePaymentRefund(context.WithoutCancel(ctx), &before, r.ID); uerr != nil {
			slog.Error("cannot take back a refund the processor refused", "payment", p.ID, "refund", r.ID, "err", uerr)
		}
		return nil, err
	}
	part := "part"
	if p.State == haven.PaymentRefunded {
		part = "whole"
	}
	if _, err := s.record(context.WithoutCancel(ctx), audit.Event{LogID: p.PracticeID, ActorID: a.UserID, ActorRole: string(a.Role), Action: ActPaymentRefunded,
		ResourceKind: string(policy.KindPayment), ResourceID: p.ID, Purpose: string(policy.PurposeOperations), Decision: haven.DecisionAllow, Reason: part}); err != nil {
		// The money went back and the ledger says so; the log line says
		// the record of it is missing.
		slog.Error("cannot audit a refund", "payment", p.ID, "refund", r.ID, "err", err)
	}
	return s.ledgerView(ctx, p), nil
}

// ledgerView is a payment with its refunds, for the administrator.
func (s *Service) ledgerView(ctx context.Context, p *haven.Payment) *PaymentView {
	v := s.paymentView(ctx, p)
	rs, err := s.db.PaymentRefunds(ctx, p.ID)
	if err != nil {
		slog.Error("cannot load a payment's refunds", "payment", p.ID, "err", err)
	}
	for _, r := range rs {
		v.Refunds = append(v.Refunds, RefundView{Ref: r.Ref.String(), Amount: int64(r.Amount), AmountText: p.Currency.Format(r.Amount),
			CreatedAt: r.CreatedAt, ByName: s.workforceName(ctx, p.PracticeID, r.CreatedBy)})
	}
	return v
}

// PaymentNotice applies a notice the processor sent (a webhook): checked
// by its signature and age (a forged or stale one is EUNAUTHORIZED and
// changes nothing), applied once (a notice seen before changes nothing),
// and recorded in the payment's practice log. A notice about a payment
// Haven does not know is acknowledged and ignored.
func (s *Service) PaymentNotice(ctx context.Context, payload []byte, signature string) error {
	if s.processor == nil {
		return errPaymentsOff
	}
	ev, err := s.processor.Event(payload, signature)
	if err != nil || ev.State == "" {
		return err
	}
	// Haven's own reference names the payment first: a processor id is
	// only known once a notice named it.
	var p *haven.Payment
	if !ev.Ref.IsZero() {
		p, err = s.db.FindPaymentByRef(ctx, ev.Ref)
	} else {
		p, err = s.db.FindPaymentByProcessor(ctx, ev.Payment)
	}
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return nil
	}
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the payment")
	}
	fresh, err := s.db.ClaimPaymentEvent(ctx, ev.ID)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot record the notice")
	}
	if !fresh {
		return nil
	}
	if err := s.applyNotice(ctx, p, ev); err != nil {
		if rerr := s.db.ReleasePaymentEvent(context.WithoutCancel(ctx), ev.ID); rerr != nil {
			slog.Error("cannot release a payment notice", "payment", p.ID, "err", rerr)
		}
		return err
	}
	return nil
}

// applyNotice records the notice and moves the payment, retrying once on a
// payment that changed meanwhile (a charge answered as the notice came).
func (s *Service) applyNotice(ctx context.Context, p *haven.Payment, ev haven.ProcessorEvent) error {
	for try := 0; ; try++ {
		named := p.Processor.IsZero() && !ev.Payment.IsZero()
		if named {
			p.Processor = ev.Payment
		}
		state := ev.State
		if state == haven.PaymentRefunded {
			// Refunds made from Haven are in its ledger already; one the
			// processor reports beyond them (made in its dashboard)
			// refunds the payment only once it covers all of it.
			if ev.Refunded < p.Amount {
				state = p.State
			} else {
				p.Refunded = p.Amount
			}
		}
		moved := s.settle(p, state)
		reason := "unchanged"
		if moved {
			reason = ev.State
		}
		if _, err := s.record(ctx, audit.Event{LogID: p.PracticeID, ActorID: PaymentActor, Action: ActPaymentNotice,
			ResourceKind: string(policy.KindPayment), ResourceID: p.ID, PatientID: p.PatientID,
			Purpose: string(policy.PurposeOperations), Decision: haven.DecisionAllow, Reason: reason}); err != nil {
			return err
		}
		if !moved && !named {
			return nil
		}
		err := s.db.UpdatePayment(ctx, p)
		if haven.ErrorCode(err) != haven.ECONFLICT || try > 0 {
			return err
		}
		if p, err = s.db.FindPayment(ctx, p.ID); err != nil {
			return err
		}
	}
}
