package haven

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
	"time"
)

// Payments: visit fees a patient pays through a card processor. The
// processor is an outside system that may receive no PHI at all (it is
// not a business associate for care), so what crosses to it is made of
// types that cannot carry any: an amount, a currency from a fixed list and
// an opaque reference Haven made up. There is no string among them that a
// caller could fill with a name, an email or a visit's reason.

// Payment states, in the order a payment moves through them.
const (
	PaymentPending  = "pending"  // sent to the processor, waiting for its word
	PaymentPaid     = "paid"     // the processor took the money
	PaymentFailed   = "failed"   // the processor refused or the attempt lapsed
	PaymentRefunded = "refunded" // an administrator gave the money back
)

// Cents is an amount of money in its currency's smallest unit (cents,
// pence). Amounts are whole numbers: no rounding ever meets money.
type Cents int64

// MaxCents bounds every amount Haven charges: a visit fee, not a fortune.
const MaxCents Cents = 1_000_000 // 10,000.00

// Currency is an ISO 4217 currency Haven charges in. Its code is unexported,
// so the only currencies are the ones below (and ParseCurrency's answers).
type Currency struct{ code string }

// The currencies a practice may charge in.
var (
	USD = Currency{"usd"}
	EUR = Currency{"eur"}
	GBP = Currency{"gbp"}
	CAD = Currency{"cad"}
)

// Currencies lists them in the order pages offer them.
var Currencies = []Currency{USD, EUR, GBP, CAD}

// ParseCurrency returns the currency with the code s (any case), or
// EINVALID.
func ParseCurrency(s string) (Currency, error) {
	for _, c := range Currencies {
		if strings.EqualFold(s, c.code) {
			return c, nil
		}
	}
	return Currency{}, Errorf(EINVALID, "charge in one of USD, EUR, GBP or CAD")
}

// String is the currency's lower-case ISO code, as processors take it.
func (c Currency) String() string { return c.code }

// Valid reports whether c is one of Currencies (the zero value is not).
func (c Currency) Valid() bool { return c.code != "" }

// Format writes an amount in c the way a person reads it: "$40.00",
// "€12.50".
func (c Currency) Format(a Cents) string {
	sym := map[string]string{"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$"}[c.code]
	sign := ""
	if a < 0 {
		sign, a = "-", -a
	}
	return fmt.Sprintf("%s%s%d.%02d", sign, sym, a/100, a%100)
}

// PaymentRef is the opaque reference a payment is known by outside Haven:
// to the processor, on a receipt, to an administrator asked for a refund.
// It is random, so it says nothing about who paid or what for; the link
// to the patient and the visit stays in Haven, sealed. Its value is
// unexported: one is made by NewPaymentRef or read back by
// ParsePaymentRef, which accepts only what NewPaymentRef makes.
type PaymentRef struct{ v string }

// paymentRefPrefix marks Haven's references in a processor's dashboard.
const paymentRefPrefix = "hvp_"

// NewPaymentRef returns a fresh random reference.
func NewPaymentRef() PaymentRef {
	var b [15]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("haven: crypto/rand failed: " + err.Error())
	}
	return PaymentRef{paymentRefPrefix + strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))}
}

// ParsePaymentRef returns the reference s names, or EINVALID when s is not
// one NewPaymentRef could have made.
func ParsePaymentRef(s string) (PaymentRef, error) {
	body, ok := strings.CutPrefix(s, paymentRefPrefix)
	if !ok || len(body) != 24 {
		return PaymentRef{}, Errorf(EINVALID, "not a payment reference")
	}
	for i := 0; i < len(body); i++ {
		if c := body[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return PaymentRef{}, Errorf(EINVALID, "not a payment reference")
		}
	}
	return PaymentRef{s}, nil
}

// String is the reference as receipts print it.
func (r PaymentRef) String() string { return r.v }

// IsZero reports whether r is no reference.
func (r PaymentRef) IsZero() bool { return r.v == "" }

// Charge is everything a card processor is told about a payment: how
// much, in what, and the reference that brings its answer back to the
// payment. It has no field that could hold a person or a word about care.
type Charge struct {
	Amount   Cents
	Currency Currency
	Ref      PaymentRef
}

// Validate checks a charge before it leaves.
func (c Charge) Validate() error {
	switch {
	case c.Amount <= 0 || c.Amount > MaxCents:
		return Errorf(EINVALID, "an amount is more than 0 and at most %s", USD.Format(MaxCents))
	case !c.Currency.Valid():
		return Errorf(EINVALID, "a charge needs a currency")
	case c.Ref.IsZero():
		return Errorf(EINVALID, "a charge needs a reference")
	}
	return nil
}

// ProcessorID is the processor's own id for a payment (Stripe's
// PaymentIntent id), which refunds and its events name. Like PaymentRef
// its value is unexported and shape-checked, so no free text travels in it.
type ProcessorID struct{ v string }

// ParseProcessorID returns the id s names: a short prefix, an underscore
// and letters and digits (pi_3Nx…), at most 255 characters.
func ParseProcessorID(s string) (ProcessorID, error) {
	pre, body, ok := strings.Cut(s, "_")
	if !ok || len(pre) < 2 || len(pre) > 8 || len(body) < 4 || len(s) > 255 {
		return ProcessorID{}, Errorf(EINVALID, "not a processor payment id")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return ProcessorID{}, Errorf(EINVALID, "not a processor payment id")
		}
	}
	return ProcessorID{s}, nil
}

// String is the id as the processor wrote it.
func (p ProcessorID) String() string { return p.v }

// IsZero reports whether p is no id.
func (p ProcessorID) IsZero() bool { return p.v == "" }

// Checkout is the processor's hosted payment page for one charge: the
// patient enters her card there, on the processor's own site, never on
// Haven's, so no card number ever reaches Haven. ID is the processor's id
// for it (Stripe's Checkout Session), by which an unfinished one is
// closed; URL is where the patient's browser is sent.
type Checkout struct {
	ID  ProcessorID
	URL string
}

// ProcessorEvent is a notice the processor sent (a webhook) after its
// signature and age were checked: its own id (for idempotency), the
// payment it is about, by Haven's reference and the processor's ids, and
// the state it reports.
type ProcessorEvent struct {
	ID       string      // the event's id: a notice seen before changes nothing
	Payment  ProcessorID // the processor's payment (a PaymentIntent); may be zero
	Checkout ProcessorID // the hosted page it came through, when it names one
	Ref      PaymentRef
	State    string // a Payment* state, or "" for an event Haven ignores
	// Refunded is, for a refund notice, how much of the payment the
	// processor has refunded so far, by whoever asked.
	Refunded Cents
	Time     time.Time
}

// Processor is a card processor. Its methods take only the PHI-free types
// above; its adapter lives in its own package and reaches nothing of
// Haven's but this domain.
type Processor interface {
	// Vendor is the processor's name, for people.
	Vendor() string
	// Endpoint is where it is reached: its entry in the vendor registry
	// (a payment vendor with this endpoint) must allow every charge.
	Endpoint() string
	// CheckoutOrigin is the origin of its hosted payment pages, which
	// Haven's payment page lets its form lead to.
	CheckoutOrigin() string
	// Checkout opens a hosted payment page for c. The payment is settled
	// later, by the processor's notice that the patient paid there.
	Checkout(ctx context.Context, c Charge) (Checkout, error)
	// CloseCheckout closes a hosted payment page that has not taken the
	// money, so it never will; ECONFLICT when it already has.
	CloseCheckout(ctx context.Context, id ProcessorID) error
	// Refund gives back amount of the payment id, whole or in part; ref is
	// the refund's own reference, which makes a retried request one
	// refund.
	Refund(ctx context.Context, id ProcessorID, amount Cents, ref PaymentRef) error
	// Event checks a notice's signature and age and reads it; a forged,
	// stale or unreadable one is EUNAUTHORIZED or EINVALID.
	Event(payload []byte, signature string) (ProcessorEvent, error)
}

// Payment is a payment as storage holds it. Which visit it pays for is
// sealed under the patient's data key (Link); its amount, state and
// references are what the processor knows too.
type Payment struct {
	ID, PracticeID, PatientID string
	Ref                       PaymentRef
	Processor                 ProcessorID // the processor's payment; zero until its notice names it
	Checkout                  ProcessorID // the hosted page the patient pays on; zero before it opened
	Amount                    Cents
	Currency                  Currency
	State                     string // one of the Payment* states
	Link                      Sealed // a PaymentLink, sealed
	CreatedAt                 time.Time
	PaidAt, RefundedAt        *time.Time
	RefundedBy                string
	// Refunded is how much has been given back so far, in part or in
	// whole: the payment is PaymentRefunded once it is all of Amount.
	Refunded Cents
	Version  int // raised by every change, for compare-and-swap
}

// Remaining is what may still be refunded of a paid payment.
func (p *Payment) Remaining() Cents { return p.Amount - p.Refunded }

// PaymentRefund is one refund of a payment, whole or partial, as the
// ledger lists it: how much, when, by whom (a workforce user id) and its
// own reference at the processor. Like the payment's, none of it is PHI.
type PaymentRefund struct {
	ID, PaymentID, PracticeID string
	Ref                       PaymentRef
	Amount                    Cents
	CreatedAt                 time.Time
	CreatedBy                 string
}

// PaymentLink is what a payment is for, as the service seals it.
type PaymentLink struct {
	VisitID string `json:"visit_id"`
}

// Price is what a practice charges for a visit of one length (its visit
// type: a 15-minute check-in, a 60-minute first consultation). Prices are
// the practice's, not a patient's: not PHI.
type Price struct {
	PracticeID string
	Minutes    int
	Amount     Cents
	Currency   Currency
	UpdatedAt  time.Time
}

// Validate checks a price before it is stored.
func (p *Price) Validate() error {
	switch {
	case p.Minutes < 5 || p.Minutes > 240:
		return Errorf(EINVALID, "a visit type is 5 to 240 minutes long")
	case p.Amount < 0 || p.Amount > MaxCents:
		return Errorf(EINVALID, "a price is 0 to %s", USD.Format(MaxCents))
	case !p.Currency.Valid():
		return Errorf(EINVALID, "a price needs a currency")
	}
	return nil
}
