// Package stripe is Haven's card processor adapter: Stripe, through its Go
// SDK, with PaymentIntents. It implements haven.Processor, so all it is
// ever handed is a haven.Charge (an amount, a currency, an opaque
// reference) or the processor's own payment id: it has no way to send a
// name, an email or anything about care, and it must never grow one (no
// description, receipt email, customer, statement descriptor or metadata
// but the reference). It reaches nothing of Haven's but the domain.
package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
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
	// PaymentMethod confirms each PaymentIntent on the server; with a test
	// key, Stripe's test card pm_card_visa (the default). See README: a
	// live deployment collects the card with Stripe's own page instead.
	PaymentMethod string
	// Tolerance is the webhook age limit; zero means DefaultTolerance.
	Tolerance time.Duration
}

// Processor is Stripe as a haven.Processor.
type Processor struct {
	client    *sg.Client
	endpoint  string
	secret    string
	method    string
	tolerance time.Duration
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
		method: cfg.PaymentMethod, tolerance: cfg.Tolerance, endpoint: sg.APIURL}
	if cfg.URL != "" {
		p.endpoint = strings.TrimRight(cfg.URL, "/")
	}
	if p.method == "" {
		p.method = "pm_card_visa"
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

// Charge creates a PaymentIntent for c and confirms it. The reference is
// the idempotency key too, so a retried request never charges twice.
func (p *Processor) Charge(ctx context.Context, c haven.Charge) (haven.ProcessorPayment, error) {
	if err := c.Validate(); err != nil {
		return haven.ProcessorPayment{}, err
	}
	params := &sg.PaymentIntentCreateParams{
		Amount:             sg.Int64(int64(c.Amount)),
		Currency:           sg.String(c.Currency.String()),
		PaymentMethodTypes: []*string{sg.String("card")},
		PaymentMethod:      sg.String(p.method),
		Confirm:            sg.Bool(true),
	}
	params.Context = ctx
	params.AddMetadata(refKey, c.Ref.String())
	params.SetIdempotencyKey("charge-" + c.Ref.String())
	pi, err := p.client.V1PaymentIntents.Create(ctx, params)
	if err != nil {
		return haven.ProcessorPayment{}, processorError(err)
	}
	id, err := haven.ParseProcessorID(pi.ID)
	if err != nil {
		return haven.ProcessorPayment{}, haven.Wrap(haven.EUNAVAILABLE, err, "the card processor answered something unexpected")
	}
	return haven.ProcessorPayment{ID: id, State: intentState(pi.Status)}, nil
}

// Refund refunds amount of the PaymentIntent id.
func (p *Processor) Refund(ctx context.Context, id haven.ProcessorID, amount haven.Cents) error {
	if id.IsZero() || amount <= 0 || amount > haven.MaxCents {
		return haven.Errorf(haven.EINVALID, "a refund names a payment and an amount")
	}
	params := &sg.RefundCreateParams{PaymentIntent: sg.String(id.String()), Amount: sg.Int64(int64(amount))}
	params.Context = ctx
	params.SetIdempotencyKey("refund-" + id.String())
	if _, err := p.client.V1Refunds.Create(ctx, params); err != nil {
		return processorError(err)
	}
	return nil
}

// eventObject is the part of an event's object Haven reads: a
// PaymentIntent's or, for a refund, a Charge's.
type eventObject struct {
	ID            string            `json:"id"`
	Object        string            `json:"object"`
	Metadata      map[string]string `json:"metadata"`
	PaymentIntent json.RawMessage   `json:"payment_intent"` // an id, or the object when expanded
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
	switch ev.Type {
	case "payment_intent.succeeded":
		out.State = haven.PaymentPaid
	case "payment_intent.payment_failed", "payment_intent.canceled":
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
	piID := obj.ID
	if obj.Object == "charge" {
		var s string
		var o struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(obj.PaymentIntent, &s) != nil {
			json.Unmarshal(obj.PaymentIntent, &o)
			s = o.ID
		}
		piID = s
	}
	if out.Payment, err = haven.ParseProcessorID(piID); err != nil {
		return out, err
	}
	if r, ok := obj.Metadata[refKey]; ok {
		if out.Ref, err = haven.ParsePaymentRef(r); err != nil {
			return out, err
		}
	}
	return out, nil
}

// intentState maps a PaymentIntent's status to a payment's state: only
// succeeded is paid and only canceled has failed; every other status is
// still in the processor's hands.
func intentState(s sg.PaymentIntentStatus) string {
	switch s {
	case sg.PaymentIntentStatusSucceeded:
		return haven.PaymentPaid
	case sg.PaymentIntentStatusCanceled:
		return haven.PaymentFailed
	}
	return haven.PaymentPending
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
