// Package stripe is Haven's card processor adapter: Stripe, through its Go
// SDK, with hosted Checkout. The patient enters her card on Stripe's own
// page, never on Haven's, and comes back to Haven's payment page; the
// payment settles by Stripe's signed notice. It implements
// haven.Processor, so all it is ever handed is a haven.Charge (an amount,
// a currency, an opaque reference) or the processor's own ids: it has no
// way to send a name, an email or anything about care, and it must never
// grow one (no description, receipt or customer email, customer,
// statement descriptor, or metadata but the reference; the one line item
// is named ProductName, which says nothing about care). It reaches
// nothing of Haven's but the domain.
package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	sg "github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"

	"haven"
)

// Vendor is Stripe's name.
const Vendor = "Stripe"

// DefaultTolerance is how old a webhook's signed timestamp may be before it
// is refused as stale (a replay of a captured notice): Stripe's own
// default.
const DefaultTolerance = webhook.DefaultTolerance

// refKey is the one metadata key Haven sets: the payment's reference.
const refKey = "haven_ref"

// ProductName is the one line item's name on Stripe's page and the
// patient's statement: a fee, with no word about what care it paid for.
const ProductName = "Visit fee"

// CheckoutOrigin is where Stripe's hosted payment pages are.
const CheckoutOrigin = "https://checkout.stripe.com"

// checkoutLife is how long a hosted page stays open: Stripe's shortest.
// One left open is closed by the next attempt to pay the same visit.
const checkoutLife = 30 * time.Minute

// Config is what New needs.
type Config struct {
	// Key is the secret API key (sk_live_… or sk_test_…).
	Key string
	// WebhookSecret is the endpoint's signing secret (whsec_…).
	WebhookSecret string
	// URL is the API's base address; empty means Stripe's. Tests point it
	// at stripe-mock.
	URL string
	// HTTPClient carries every request; nil means a client with a 30 s
	// timeout. Tests put a recorder in its transport.
	HTTPClient *http.Client
	// ReturnURL is Haven's public address (https://clinic.example):
	// Stripe's page sends the patient back to its payment page there,
	// whether she paid or gave up. The address names no payment and no
	// patient.
	ReturnURL string
	// Tolerance is the webhook age limit; zero means DefaultTolerance.
	Tolerance time.Duration
}

// Processor is Stripe as a haven.Processor.
type Processor struct {
	client    *sg.Client
	endpoint  string
	secret    string
	back      string
	tolerance time.Duration
	now       func() time.Time
}

// New returns a Processor. It refuses a key that is not a Stripe secret
// key and a missing webhook secret: notices are how payments settle.
func New(cfg Config) (*Processor, error) {
	if !strings.HasPrefix(cfg.Key, "sk_") && !strings.HasPrefix(cfg.Key, "rk_") {
		return nil, haven.Errorf(haven.EINVALID, "the Stripe key must be a secret key (sk_… or rk_…)")
	}
	if !strings.HasPrefix(cfg.WebhookSecret, "whsec_") {
		return nil, haven.Errorf(haven.EINVALID, "the Stripe webhook secret must start with whsec_")
	}
	back, err := url.Parse(cfg.ReturnURL)
	if err != nil || back.Scheme != "https" || back.Host == "" || back.User != nil || strings.Trim(back.Path, "/") != "" || back.RawQuery != "" {
		return nil, haven.Errorf(haven.EINVALID, "Stripe needs Haven's public https:// address to send patients back to")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	bc := &sg.BackendConfig{HTTPClient: hc, LeveledLogger: &sg.LeveledLogger{Level: sg.LevelNull}, EnableTelemetry: sg.Bool(false)}
	if cfg.URL != "" {
		bc.URL = sg.String(strings.TrimRight(cfg.URL, "/"))
	}
	backends := &sg.Backends{
		API:         sg.GetBackendWithConfig(sg.APIBackend, bc),
		Connect:     sg.GetBackendWithConfig(sg.ConnectBackend, bc),
		Uploads:     sg.GetBackendWithConfig(sg.UploadsBackend, bc),
		MeterEvents: sg.GetBackendWithConfig(sg.MeterEventsBackend, bc),
	}
	p := &Processor{client: sg.NewClient(cfg.Key, sg.WithBackends(backends)), secret: cfg.WebhookSecret,
		back: "https://" + back.Host, tolerance: cfg.Tolerance, endpoint: sg.APIURL, now: time.Now}
	if cfg.URL != "" {
		p.endpoint = strings.TrimRight(cfg.URL, "/")
	}
	if p.tolerance <= 0 {
		p.tolerance = DefaultTolerance
	}
	return p, nil
}

// Vendor names the processor, for people.
func (p *Processor) Vendor() string { return Vendor }

// Endpoint is the API's base address, the processor's endpoint in the
// vendor registry.
func (p *Processor) Endpoint() string { return p.endpoint }

// CheckoutOrigin is where the patient is sent to pay.
func (p *Processor) CheckoutOrigin() string { return CheckoutOrigin }

// Checkout opens a Checkout Session for c: one line item named
// ProductName at c's amount, the reference as client_reference_id and as
// the PaymentIntent's one metadata key (so its notices carry it too), and
// Haven's payment page to come back to. The reference is the idempotency
// key too, so a retried request opens one page.
func (p *Processor) Checkout(ctx context.Context, c haven.Charge) (haven.Checkout, error) {
	if err := c.Validate(); err != nil {
		return haven.Checkout{}, err
	}
	params := &sg.CheckoutSessionCreateParams{
		Mode: sg.String(string(sg.CheckoutSessionModePayment)),
		LineItems: []*sg.CheckoutSessionCreateLineItemParams{{
			Quantity: sg.Int64(1),
			PriceData: &sg.CheckoutSessionCreateLineItemPriceDataParams{
				Currency:    sg.String(c.Currency.String()),
				UnitAmount:  sg.Int64(int64(c.Amount)),
				ProductData: &sg.CheckoutSessionCreateLineItemPriceDataProductDataParams{Name: sg.String(ProductName)},
			},
		}},
		PaymentMethodTypes: []*string{sg.String("card")},
		ClientReferenceID:  sg.String(c.Ref.String()),
		PaymentIntentData:  &sg.CheckoutSessionCreatePaymentIntentDataParams{Metadata: map[string]string{refKey: c.Ref.String()}},
		SuccessURL:         sg.String(p.back + "/app/payments?done=sent"),
		CancelURL:          sg.String(p.back + "/app/payments?done=cancelled"),
		ExpiresAt:          sg.Int64(p.now().Add(checkoutLife + time.Minute).Unix()),
	}
	params.Context = ctx
	params.SetIdempotencyKey("checkout-" + c.Ref.String())
	cs, err := p.client.V1CheckoutSessions.Create(ctx, params)
	if err != nil {
		return haven.Checkout{}, processorError(err)
	}
	id, err := haven.ParseProcessorID(cs.ID)
	if err != nil {
		return haven.Checkout{}, haven.Wrap(haven.EUNAVAILABLE, err, "the card processor answered something unexpected")
	}
	// The browser is sent only to Stripe's own pages.
	if u, err := url.Parse(cs.URL); err != nil || u.Scheme+"://"+u.Host != CheckoutOrigin {
		return haven.Checkout{}, haven.Errorf(haven.EUNAVAILABLE, "the card processor answered something unexpected")
	}
	return haven.Checkout{ID: id, URL: cs.URL}, nil
}

// CloseCheckout expires the Checkout Session id. Stripe refuses to expire
// one that is complete: that is ECONFLICT, the money was taken.
func (p *Processor) CloseCheckout(ctx context.Context, id haven.ProcessorID) error {
	if id.IsZero() {
		return haven.Errorf(haven.EINVALID, "no hosted payment page to close")
	}
	params := &sg.CheckoutSessionExpireParams{}
	params.Context = ctx
	cs, err := p.client.V1CheckoutSessions.Expire(ctx, id.String(), params)
	var se *sg.Error
	switch {
	case errors.As(err, &se) && se.HTTPStatusCode == http.StatusBadRequest:
		return haven.Wrap(haven.ECONFLICT, err, "this visit's payment has already gone through")
	case err != nil:
		return processorError(err)
	case cs.Status == sg.CheckoutSessionStatusComplete:
		return haven.Errorf(haven.ECONFLICT, "this visit's payment has already gone through")
	}
	return nil
}

// Refund refunds amount of the PaymentIntent id; the refund's reference is
// its idempotency key, so a retried request refunds once and two partial
// refunds of the same amount are two.
func (p *Processor) Refund(ctx context.Context, id haven.ProcessorID, amount haven.Cents, ref haven.PaymentRef) error {
	if id.IsZero() || amount <= 0 || amount > haven.MaxCents || ref.IsZero() {
		return haven.Errorf(haven.EINVALID, "a refund names a payment, an amount and its reference")
	}
	params := &sg.RefundCreateParams{PaymentIntent: sg.String(id.String()), Amount: sg.Int64(int64(amount))}
	params.Context = ctx
	params.AddMetadata(refKey, ref.String())
	params.SetIdempotencyKey("refund-" + ref.String())
	if _, err := p.client.V1Refunds.Create(ctx, params); err != nil {
		return processorError(err)
	}
	return nil
}

// eventObject is the part of an event's object Haven reads: a Checkout
// Session's, a PaymentIntent's or, for a refund, a Charge's.
type eventObject struct {
	ID                string            `json:"id"`
	Object            string            `json:"object"`
	Metadata          map[string]string `json:"metadata"`
	PaymentIntent     json.RawMessage   `json:"payment_intent"` // an id, or the object when expanded
	ClientReferenceID string            `json:"client_reference_id"`
	PaymentStatus     string            `json:"payment_status"`
	AmountRefunded    int64             `json:"amount_refunded"`
}

// Event checks a webhook's Stripe-Signature against the secret and its
// timestamp against the tolerance, and reads it. Events Haven does not act
// on come back with an empty State.
func (p *Processor) Event(payload []byte, signature string) (haven.ProcessorEvent, error) {
	// The API version is not checked: Haven reads only an event's id, type
	// and its object's id, metadata and payment_intent, which every
	// version carries alike.
	ev, err := webhook.ConstructEventWithOptions(payload, signature, p.secret,
		webhook.ConstructEventOptions{Tolerance: p.tolerance, IgnoreAPIVersionMismatch: true})
	switch {
	case errors.Is(err, webhook.ErrTooOld):
		return haven.ProcessorEvent{}, haven.Wrap(haven.EUNAUTHORIZED, err, "stale notice: its signature is too old")
	case errors.Is(err, webhook.ErrNotSigned), errors.Is(err, webhook.ErrInvalidHeader), errors.Is(err, webhook.ErrNoValidSignature):
		return haven.ProcessorEvent{}, haven.Wrap(haven.EUNAUTHORIZED, err, "the notice's signature does not verify")
	case err != nil:
		return haven.ProcessorEvent{}, haven.Wrap(haven.EINVALID, err, "unreadable notice")
	}
	out := haven.ProcessorEvent{ID: ev.ID, Time: time.Unix(ev.Created, 0).UTC()}
	if ev.ID == "" || len(ev.ID) > 255 {
		return out, haven.Errorf(haven.EINVALID, "a notice without an id")
	}
	// A card declined on Stripe's page (payment_intent.payment_failed)
	// fails nothing: the patient may try another card on the same page.
	// The page failing is its expiry.
	switch ev.Type {
	case "checkout.session.completed", "checkout.session.async_payment_succeeded", "payment_intent.succeeded":
		out.State = haven.PaymentPaid
	case "checkout.session.expired", "checkout.session.async_payment_failed", "payment_intent.canceled":
		out.State = haven.PaymentFailed
	case "charge.refunded":
		out.State = haven.PaymentRefunded
	default:
		return out, nil
	}
	var obj eventObject
	if ev.Data == nil || json.Unmarshal(ev.Data.Raw, &obj) != nil {
		return out, haven.Errorf(haven.EINVALID, "a notice without its object")
	}
	piID, ref := "", obj.Metadata[refKey]
	switch obj.Object {
	case "checkout.session":
		if out.Checkout, err = haven.ParseProcessorID(obj.ID); err != nil {
			return out, err
		}
		ref = obj.ClientReferenceID
		piID = intentID(obj.PaymentIntent)
		// A completed page whose payment is still on its way (a bank
		// debit) is not paid yet: async_payment_succeeded will say so.
		if ev.Type == "checkout.session.completed" && obj.PaymentStatus != "paid" {
			out.State = ""
			return out, nil
		}
	case "charge":
		piID = intentID(obj.PaymentIntent)
		out.Refunded = haven.Cents(obj.AmountRefunded)
	default:
		piID = obj.ID
	}
	if piID != "" {
		if out.Payment, err = haven.ParseProcessorID(piID); err != nil {
			return out, err
		}
	}
	if ref != "" {
		if out.Ref, err = haven.ParsePaymentRef(ref); err != nil {
			return out, err
		}
	}
	if out.Payment.IsZero() && out.Ref.IsZero() {
		return out, haven.Errorf(haven.EINVALID, "a notice that names no payment")
	}
	return out, nil
}

// intentID reads a payment_intent field: an id, an expanded object, or
// null.
func intentID(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		ID string `json:"id"`
	}
	json.Unmarshal(raw, &o)
	return o.ID
}

// processorError turns the SDK's error into Haven's: a declined card is the
// patient's to fix (EINVALID), anything else is the processor being
// unavailable. The cause (Stripe's message, which never holds PHI because
// Haven never sends any) goes to the log only.
func processorError(err error) error {
	var se *sg.Error
	if errors.As(err, &se) && se.Type == sg.ErrorTypeCard {
		return haven.Wrap(haven.EINVALID, err, "the card was declined; try another card")
	}
	return haven.Wrap(haven.EUNAVAILABLE, err, "the card processor did not answer; nothing was charged, try again in a few minutes")
}
