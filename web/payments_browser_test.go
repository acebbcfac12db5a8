package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"haven/demo"
	"haven/internal/testkit"
	"haven/internal/testkit/stack"
)

// TestBrowserPatientPaysForAVisit: the demo practice's administrator sets
// the price of a 15-minute visit from her home; Maria Lopez sees what she
// owes for her demo visit on her payments page, pays it (the processor is
// stripe-mock: the PaymentIntent is confirmed on the server with the test
// card, see README), the processor's signed notice settles it, and her
// receipt says so without a word about her care; the administrator finds
// the payment in the ledger by its number and refunds it. Pages are
// reached by links, on a desktop and on a phone. Every request the
// processor received is searched for her name, email and visit reason.
func TestBrowserPatientPaysForAVisit(t *testing.T) {
	mock := testkit.StripeMock(t)
	rec := &testkit.Recorder{}
	st := newVideoStack(t, true, stack.Processor(stripeMock(t, mock, rec)))
	if _, err := demo.Seed(context.Background(), st.svc); err != nil {
		t.Fatal(err)
	}
	w := newWalker(t, st.base)

	// The administrator sets the price of the demo's 15-minute visits.
	w.start()
	secret := w.signIn(admin, "")
	w.follow("#home-payments")
	if got := w.text("#price-15"); got != "No fee set" {
		t.Errorf("the 15-minute visit's price before one is set: %q", got)
	}
	w.fill(map[string]string{"price-minutes": "15", "price-amount": "40", "price-currency": "USD"})
	w.press("#save-price")
	if got := w.text("#price-15"); got != "$40.00" {
		t.Fatalf("the 15-minute visit's price: %q", got)
	}
	w.signOut()

	// Maria pays, on her phone.
	w.use(phone)
	w.start()
	w.signIn(patientEmail, "")
	w.follow("#home-payments")
	if got := w.text("#owed"); !strings.Contains(got, "You owe $40.00") {
		t.Errorf("her payments page says %q", got)
	}
	if got := w.text("#fees tbody tr"); !strings.Contains(got, "Dr. Rosa Rivera") || !strings.Contains(got, "Not paid yet") {
		t.Errorf("her visit's line: %q", got)
	}
	w.press(`#fees button[id^="pay-"]`)
	if got := w.text("#receipt-state"); got != "Being confirmed by the card processor" {
		t.Errorf("the receipt right after paying says %q", got)
	}
	ref := w.text("#receipt-reference")

	// The processor confirms, by its signed notice.
	body, sig := signedNotice(stripeWebhookSecret, time.Now(), "evt_browser_paid", "payment_intent.succeeded", ref)
	r := st.client(firefox).apiAs(map[string]string{"Content-Type": "application/json", "Stripe-Signature": sig}, "POST", "/api/v1/payments/webhook", body)
	if out := readAll(t, r); r.StatusCode != http.StatusOK {
		t.Fatalf("the notice answered %d: %s", r.StatusCode, out)
	}
	w.follow("#back-to-payments")
	if !w.has("#nothing-owed") || !w.has(`#fees tr[data-payment="paid"]`) {
		t.Errorf("after the notice her payments page says: %s", w.text("main"))
	}
	w.follow(`#fees a[id^="receipt-"]`)
	receipt := w.text("#receipt")
	for _, want := range []string{"Riverside Family Clinic", "$40.00", "Paid", ref} {
		if !strings.Contains(receipt, want) {
			t.Errorf("the receipt lacks %q:\n%s", want, receipt)
		}
	}
	for _, phi := range []string{"Maria", "Lopez", "Rivera", "Follow-up", "15 minutes"} {
		if strings.Contains(receipt, phi) {
			t.Errorf("the receipt says %q:\n%s", phi, receipt)
		}
	}
	// The same pages on a desktop.
	w.use(desktop)
	w.follow("#nav-payments")
	w.follow(`#fees a[id^="receipt-"]`)
	w.follow("#nav-visits")
	w.follow("#visits-payments")
	w.signOut()

	// The administrator refunds it, by its number, on her phone.
	w.use(phone)
	w.start()
	w.signIn(admin, secret)
	w.follow("#nav-payments")
	ledger := w.text("#ledger")
	if !strings.Contains(ledger, ref) || strings.Contains(ledger, "Maria") {
		t.Errorf("the ledger: %q", ledger)
	}
	w.follow(`#ledger tr[data-state="paid"] a`)
	w.press("#refund")
	if got := w.text("#payment-state"); got != "Refunded" {
		t.Errorf("after the refund the payment is %q", got)
	}
	w.use(desktop)
	w.follow("#back-to-ledger")
	w.signOut()

	// What the processor was told: amounts, a currency, references.
	if len(rec.Requests()) != 2 {
		t.Errorf("the processor got %d requests, want a charge and a refund", len(rec.Requests()))
	}
	for _, m := range []string{"Maria", "Lopez", patientEmail, "Follow-up video visit", "Rivera", "Riverside"} {
		if n := rec.Hits(m); n != 0 {
			t.Errorf("the processor was sent %q in %d requests", m, n)
		}
	}
}
