package web_test

import (
	"context"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"net/http"
	"strings"
	"testing"
	"time"

	"haven/demo"
	"haven/internal/testkit"
	"haven/internal/testkit/stack"
	"haven/stripe"
)

// TestBrowserPatientPaysForAVisit: the demo practice's administrator sets
// the price of a 15-minute visit from her home; Maria Lopez sees what she
// owes for her demo visit on her payments page and presses Pay, and her
// browser is sent to the processor's hosted page (the walk stops at that
// redirect: the processor is stripe-mock, whose page is not a real one);
// the processor's signed notice says she paid, she comes back to her
// payments page, which says paid, and her receipt says so without a word
// about her care; the administrator finds the payment in the ledger by its
// number and refunds part of it, then the rest. Pages are reached by
// links, on a desktop and on a phone. Every request the processor
// received is searched for her name, email and visit reason.
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
	checkout := w.toProcessor(`#fees button[id^="pay-"]`)
	if !strings.HasPrefix(checkout, stripe.CheckoutOrigin+"/") {
		t.Fatalf("Pay sent her to %q", checkout)
	}
	// What opened the page: an amount, a currency, the reference and the
	// way back to her payments page.
	opened := string(rec.Requests()[0])
	if !strings.Contains(opened, "POST ") || !strings.Contains(opened, "/v1/checkout/sessions") ||
		!strings.Contains(opened, "unit_amount]=4000") || !strings.Contains(opened, "Visit+fee") ||
		!strings.Contains(opened, "success_url=https%3A%2F%2Fclinic.example%2Fapp%2Fpayments%3Fdone%3Dsent") {
		t.Errorf("the hosted page was opened with\n%s", opened)
	}
	ref := rec.Field(0, "client_reference_id")

	// The processor confirms, by its signed notice, and sends her back.
	body, sig := signedNotice(stripeWebhookSecret, time.Now(), "evt_browser_paid", "checkout.session.completed", ref)
	r := st.client(firefox).apiAs(map[string]string{"Content-Type": "application/json", "Stripe-Signature": sig}, "POST", "/api/v1/payments/webhook", body)
	if out := readAll(t, r); r.StatusCode != http.StatusOK {
		t.Fatalf("the notice answered %d: %s", r.StatusCode, out)
	}
	w.back("/app/payments?done=sent")
	if got := w.text(".flash"); !strings.Contains(got, "Thank you") {
		t.Errorf("back from the processor the page says %q", got)
	}
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
	w.fill(map[string]string{"refund-amount": "15"})
	w.press("#refund")
	if got, left := w.text("#payment-state"), w.text("#payment-refunded-amount"); got != "Paid" || left != "$15.00" {
		t.Errorf("after refunding a part the payment is %q, %q refunded", got, left)
	}
	if got := w.text("#refunds tbody"); !strings.Contains(got, "$15.00") || !strings.Contains(got, "hvp_") {
		t.Errorf("the refunds listed: %q", got)
	}
	w.press("#refund") // the rest, which the form offers
	if got := w.text("#payment-state"); got != "Refunded" {
		t.Errorf("after the refund the payment is %q", got)
	}
	w.use(desktop)
	w.follow("#back-to-ledger")
	w.signOut()

	// What the processor was told: amounts, a currency, references.
	if len(rec.Requests()) != 3 {
		t.Errorf("the processor got %d requests, want a hosted page and two refunds", len(rec.Requests()))
	}
	for _, m := range []string{"Maria", "Lopez", patientEmail, "Follow-up video visit", "Rivera", "Riverside"} {
		if n := rec.Hits(m); n != 0 {
			t.Errorf("the processor was sent %q in %d requests", m, n)
		}
	}
}

// toProcessor presses sel, a button whose form leads to the card
// processor's hosted page, and reports the address the browser was sent
// to. The walk stops there: the page is the processor's, not Haven's.
// The address is read from the request the browser makes, so a page
// policy that kept the form from leading there fails the walk.
func (w *walker) toProcessor(sel string) string {
	w.t.Helper()
	sent := make(chan string, 1)
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok && strings.HasPrefix(e.Request.URL, stripe.CheckoutOrigin) {
			select {
			case sent <- e.Request.URL:
			default:
			}
		}
	})
	click(w.t, w.ctx, sel)
	select {
	case u := <-sent:
		chromedp.Do(w.ctx, chromedp.Stop())
		return u
	case <-time.After(30 * time.Second):
		w.t.Fatalf("at %s, %s sent the browser nowhere near the processor", w.at(), sel)
		return ""
	}
}

// back opens path on Haven, as the processor's page does when it sends
// the patient back, and checks the page.
func (w *walker) back(path string) {
	w.t.Helper()
	if err := chromedp.Do(w.ctx, chromedp.Navigate(w.base+path)); err != nil {
		w.t.Fatal(err)
	}
	w.check()
}
