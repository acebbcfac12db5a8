package stripe_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	sg "github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"

	"haven"
	"haven/internal/testkit"
	"haven/stripe"
)

const testSecret = "whsec_test_secret_for_signed_fixtures"

// newProcessor returns the adapter talking to stripe-mock through a
// recorder.
func newProcessor(t *testing.T) (*stripe.Processor, *testkit.Recorder) {
	t.Helper()
	rec := &testkit.Recorder{}
	p, err := stripe.New(stripe.Config{Key: "sk_test_123", WebhookSecret: testSecret, URL: testkit.StripeMock(t),
		ReturnURL: "https://clinic.example", HTTPClient: &http.Client{Transport: rec, Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return p, rec
}

// TestCheckoutSendsAnAmountACurrencyAndTheReferenceOnly: the hosted page
// is opened with one "Visit fee" line at the amount, the reference and
// Haven's payment page to come back to, and not one field more.
func TestCheckoutSendsAnAmountACurrencyAndTheReferenceOnly(t *testing.T) {
	p, rec := newProcessor(t)
	ref := haven.NewPaymentRef()
	got, err := p.Checkout(context.Background(), haven.Charge{Amount: 4000, Currency: haven.USD, Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.ID.String(), "cs_") || !strings.HasPrefix(got.URL, stripe.CheckoutOrigin+"/") {
		t.Fatalf("checkout answered %+v", got)
	}
	reqs := rec.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	_, body, _ := strings.Cut(string(reqs[0]), "\r\n\r\n")
	form, err := url.ParseQuery(body)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"mode": "payment", "line_items[0][quantity]": "1",
		"line_items[0][price_data][currency]": "usd", "line_items[0][price_data][unit_amount]": "4000",
		"line_items[0][price_data][product_data][name]": "Visit fee", "payment_method_types[0]": "card",
		"client_reference_id": ref.String(), "payment_intent_data[metadata][haven_ref]": ref.String(),
		"success_url": "https://clinic.example/app/payments?done=sent", "cancel_url": "https://clinic.example/app/payments?done=cancelled"}
	for k, v := range want {
		if form.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, form.Get(k), v)
		}
	}
	for k := range form {
		if _, ok := want[k]; !ok && k != "expires_at" {
			t.Errorf("the processor was sent %s, which Haven never sends", k)
		}
	}
	if !strings.Contains(string(reqs[0]), "Idempotency-Key: checkout-"+ref.String()) {
		t.Errorf("no idempotency key in\n%s", reqs[0])
	}
	if err := p.CloseCheckout(context.Background(), got.ID); err != nil {
		t.Fatalf("closing the page: %v", err)
	}
	if r := rec.Requests(); len(r) != 2 || !strings.Contains(string(r[1]), "/v1/checkout/sessions/"+got.ID.String()+"/expire") {
		t.Errorf("closing sent %q", r[1:])
	}
}

func TestCheckoutRefusesAnIncompleteCharge(t *testing.T) {
	p, rec := newProcessor(t)
	for _, c := range []haven.Charge{
		{Amount: 0, Currency: haven.USD, Ref: haven.NewPaymentRef()},
		{Amount: 100, Ref: haven.NewPaymentRef()},
		{Amount: 100, Currency: haven.USD},
		{Amount: haven.MaxCents + 1, Currency: haven.USD, Ref: haven.NewPaymentRef()},
	} {
		if _, err := p.Checkout(context.Background(), c); haven.ErrorCode(err) != haven.EINVALID {
			t.Errorf("charge %+v: %v, want invalid", c, err)
		}
	}
	if n := len(rec.Requests()); n != 0 {
		t.Errorf("%d requests left for invalid charges", n)
	}
}

// TestPartialRefundsAreEachTheirOwn: two refunds of the same amount are
// two refunds (each keyed by its own reference), not one retried.
func TestPartialRefundsAreEachTheirOwn(t *testing.T) {
	p, rec := newProcessor(t)
	id, _ := haven.ParseProcessorID("pi_123456789")
	r1, r2 := haven.NewPaymentRef(), haven.NewPaymentRef()
	for _, r := range []haven.PaymentRef{r1, r2} {
		if err := p.Refund(context.Background(), id, 1000, r); err != nil {
			t.Fatal(err)
		}
	}
	reqs := rec.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	for i, r := range []haven.PaymentRef{r1, r2} {
		s := string(reqs[i])
		if !strings.Contains(s, "payment_intent=pi_123456789") || !strings.Contains(s, "amount=1000") || !strings.Contains(s, "Idempotency-Key: refund-"+r.String()) {
			t.Errorf("refund %d sent %q", i, s)
		}
	}
	if err := p.Refund(context.Background(), id, 1000, haven.PaymentRef{}); haven.ErrorCode(err) != haven.EINVALID {
		t.Errorf("a refund without its reference: %v", err)
	}
}

func TestUnreachableProcessorIsUnavailable(t *testing.T) {
	p, err := stripe.New(stripe.Config{Key: "sk_test_123", WebhookSecret: testSecret, URL: "http://127.0.0.1:1",
		ReturnURL: "https://clinic.example", HTTPClient: &http.Client{Timeout: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Checkout(context.Background(), haven.Charge{Amount: 100, Currency: haven.USD, Ref: haven.NewPaymentRef()})
	if haven.ErrorCode(err) != haven.EUNAVAILABLE {
		t.Fatalf("unreachable: %v", err)
	}
}

func TestNewRefusesMissingSecrets(t *testing.T) {
	for _, c := range []stripe.Config{{Key: "pk_test_1", WebhookSecret: testSecret, ReturnURL: "https://clinic.example"},
		{Key: "sk_test_1", ReturnURL: "https://clinic.example"}, {Key: "sk_live_1", WebhookSecret: testSecret},
		{Key: "sk_live_1", WebhookSecret: testSecret, ReturnURL: "http://clinic.example"},
		{Key: "sk_live_1", WebhookSecret: testSecret, ReturnURL: "https://clinic.example/app?x=1"}} {
		if _, err := stripe.New(c); haven.ErrorCode(err) != haven.EINVALID {
			t.Errorf("%+v: %v", c, err)
		}
	}
	// A live key works: the card is entered on Stripe's page.
	if _, err := stripe.New(stripe.Config{Key: "sk_live_1", WebhookSecret: testSecret, ReturnURL: "https://clinic.example/"}); err != nil {
		t.Errorf("a live key: %v", err)
	}
}

// signed returns a notice as Stripe would send it, signed with secret at t.
func signed(t *testing.T, secret string, at time.Time, id, typ, object string) ([]byte, string) {
	t.Helper()
	payload := fmt.Sprintf(`{"id":%q,"object":"event","api_version":%q,"created":%d,"type":%q,"data":{"object":%s}}`,
		id, sg.APIVersion, at.Unix(), typ, object)
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(payload), Secret: secret, Timestamp: at})
	return sp.Payload, sp.Header
}

func TestEventIsVerifiedAndRead(t *testing.T) {
	p, _ := newProcessor(t)
	ref := haven.NewPaymentRef()
	intent := fmt.Sprintf(`{"id":"pi_abc12345","object":"payment_intent","status":"succeeded","metadata":{"haven_ref":%q}}`, ref)
	now := time.Now()

	body, sig := signed(t, testSecret, now, "evt_1", "payment_intent.succeeded", intent)
	ev, err := p.Event(body, sig)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != "evt_1" || ev.State != haven.PaymentPaid || ev.Payment.String() != "pi_abc12345" || ev.Ref != ref {
		t.Errorf("read %+v", ev)
	}

	body, sig = signed(t, testSecret, now, "evt_2", "charge.refunded", `{"id":"ch_1234","object":"charge","payment_intent":"pi_abc12345","amount_refunded":1500,"metadata":{}}`)
	if ev, err := p.Event(body, sig); err != nil || ev.State != haven.PaymentRefunded || ev.Payment.String() != "pi_abc12345" || ev.Refunded != 1500 {
		t.Errorf("refund notice: %+v, %v", ev, err)
	}

	session := fmt.Sprintf(`{"id":"cs_test_abc123","object":"checkout.session","client_reference_id":%q,"payment_intent":"pi_abc12345","payment_status":"paid","metadata":{}}`, ref)
	body, sig = signed(t, testSecret, now, "evt_4", "checkout.session.completed", session)
	if ev, err := p.Event(body, sig); err != nil || ev.State != haven.PaymentPaid || ev.Checkout.String() != "cs_test_abc123" || ev.Payment.String() != "pi_abc12345" || ev.Ref != ref {
		t.Errorf("completed page: %+v, %v", ev, err)
	}
	unpaid := strings.Replace(session, `"paid"`, `"unpaid"`, 1)
	body, sig = signed(t, testSecret, now, "evt_5", "checkout.session.completed", unpaid)
	if ev, err := p.Event(body, sig); err != nil || ev.State != "" {
		t.Errorf("completed page still unpaid: %+v, %v", ev, err)
	}
	expired := fmt.Sprintf(`{"id":"cs_test_abc123","object":"checkout.session","client_reference_id":%q,"payment_intent":null,"payment_status":"unpaid"}`, ref)
	body, sig = signed(t, testSecret, now, "evt_6", "checkout.session.expired", expired)
	if ev, err := p.Event(body, sig); err != nil || ev.State != haven.PaymentFailed || !ev.Payment.IsZero() || ev.Ref != ref {
		t.Errorf("expired page: %+v, %v", ev, err)
	}
	declined := `{"id":"pi_abc12345","object":"payment_intent","status":"requires_payment_method","metadata":{}}`
	body, sig = signed(t, testSecret, now, "evt_7", "payment_intent.payment_failed", declined)
	if ev, err := p.Event(body, sig); err != nil || ev.State != "" {
		t.Errorf("a declined card on the page failed the payment: %+v, %v", ev, err)
	}

	body, sig = signed(t, testSecret, now, "evt_3", "customer.created", `{"id":"cus_1234","object":"customer"}`)
	if ev, err := p.Event(body, sig); err != nil || ev.State != "" {
		t.Errorf("ignored notice: %+v, %v", ev, err)
	}
}

func TestEventRefusesForgedAndStaleNotices(t *testing.T) {
	p, _ := newProcessor(t)
	intent := `{"id":"pi_abc12345","object":"payment_intent","status":"succeeded","metadata":{}}`
	now := time.Now()
	body, sig := signed(t, "whsec_someone_else", now, "evt_1", "payment_intent.succeeded", intent)
	if _, err := p.Event(body, sig); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
		t.Errorf("wrong secret: %v", err)
	}
	body, sig = signed(t, testSecret, now.Add(-stripe.DefaultTolerance-time.Minute), "evt_1", "payment_intent.succeeded", intent)
	if _, err := p.Event(body, sig); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
		t.Errorf("stale: %v", err)
	}
	body, sig = signed(t, testSecret, now, "evt_1", "payment_intent.succeeded", intent)
	tampered := []byte(strings.Replace(string(body), "succeeded", "succeeded ", 1))
	if _, err := p.Event(tampered, sig); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
		t.Errorf("tampered: %v", err)
	}
	if _, err := p.Event(body, ""); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
		t.Errorf("unsigned: %v", err)
	}
}
