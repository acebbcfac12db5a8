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
		HTTPClient: &http.Client{Transport: rec, Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return p, rec
}

func TestChargeSendsAnAmountACurrencyAndTheReferenceOnly(t *testing.T) {
	p, rec := newProcessor(t)
	ref := haven.NewPaymentRef()
	got, err := p.Charge(context.Background(), haven.Charge{Amount: 4000, Currency: haven.USD, Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID.IsZero() || got.State == "" {
		t.Fatalf("charge answered %+v", got)
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
	want := map[string]string{"amount": "4000", "currency": "usd", "metadata[haven_ref]": ref.String(),
		"confirm": "true", "payment_method": "pm_card_visa", "payment_method_types[0]": "card"}
	for k, v := range want {
		if form.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, form.Get(k), v)
		}
	}
	for k := range form {
		if _, ok := want[k]; !ok {
			t.Errorf("the processor was sent %s, which Haven never sends", k)
		}
	}
	if !strings.Contains(string(reqs[0]), "Idempotency-Key: charge-"+ref.String()) {
		t.Errorf("no idempotency key in\n%s", reqs[0])
	}
}

func TestChargeRefusesAnIncompleteCharge(t *testing.T) {
	p, rec := newProcessor(t)
	for _, c := range []haven.Charge{
		{Amount: 0, Currency: haven.USD, Ref: haven.NewPaymentRef()},
		{Amount: 100, Ref: haven.NewPaymentRef()},
		{Amount: 100, Currency: haven.USD},
		{Amount: haven.MaxCents + 1, Currency: haven.USD, Ref: haven.NewPaymentRef()},
	} {
		if _, err := p.Charge(context.Background(), c); haven.ErrorCode(err) != haven.EINVALID {
			t.Errorf("charge %+v: %v, want invalid", c, err)
		}
	}
	if n := len(rec.Requests()); n != 0 {
		t.Errorf("%d requests left for invalid charges", n)
	}
}

func TestRefund(t *testing.T) {
	p, rec := newProcessor(t)
	id, _ := haven.ParseProcessorID("pi_123456789")
	if err := p.Refund(context.Background(), id, 2500); err != nil {
		t.Fatal(err)
	}
	if r := rec.Requests(); len(r) != 1 || !strings.Contains(string(r[0]), "payment_intent=pi_123456789") || !strings.Contains(string(r[0]), "amount=2500") {
		t.Errorf("refund sent %q", r)
	}
}

func TestUnreachableProcessorIsUnavailable(t *testing.T) {
	p, err := stripe.New(stripe.Config{Key: "sk_test_123", WebhookSecret: testSecret, URL: "http://127.0.0.1:1",
		HTTPClient: &http.Client{Timeout: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Charge(context.Background(), haven.Charge{Amount: 100, Currency: haven.USD, Ref: haven.NewPaymentRef()})
	if haven.ErrorCode(err) != haven.EUNAVAILABLE {
		t.Fatalf("unreachable: %v", err)
	}
}

func TestNewRefusesMissingSecrets(t *testing.T) {
	for _, c := range []stripe.Config{{Key: "pk_test_1", WebhookSecret: testSecret}, {Key: "sk_test_1"}} {
		if _, err := stripe.New(c); haven.ErrorCode(err) != haven.EINVALID {
			t.Errorf("%+v: %v", c, err)
		}
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

	body, sig = signed(t, testSecret, now, "evt_2", "charge.refunded", `{"id":"ch_1234","object":"charge","payment_intent":"pi_abc12345","metadata":{}}`)
	if ev, err := p.Event(body, sig); err != nil || ev.State != haven.PaymentRefunded || ev.Payment.String() != "pi_abc12345" {
		t.Errorf("refund notice: %+v, %v", ev, err)
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
