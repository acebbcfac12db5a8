package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	sg "github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"

	"haven"
	"haven/auth/totp"
	"haven/internal/testkit"
	"haven/stripe"
)

// stripeWebhookSecret signs the notices these tests send as the processor.
const stripeWebhookSecret = "whsec_web_test_secret"

// stripeMock is the Stripe adapter talking to the stripe-mock at mock,
// through rec when one is given.
func stripeMock(t *testing.T, mock string, rec *testkit.Recorder) *stripe.Processor {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	if rec != nil {
		hc.Transport = rec
	}
	p, err := stripe.New(stripe.Config{Key: "sk_test_123", WebhookSecret: stripeWebhookSecret, URL: mock, ReturnURL: "https://clinic.example", HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// signedNotice is a Stripe event about the payment with reference ref,
// signed with secret at at: a Checkout Session's (paid, when completed)
// for the checkout.session.* types, a PaymentIntent's otherwise. Each
// payment's processor ids are its own.
func signedNotice(secret string, at time.Time, eventID, typ, ref string) (string, string) {
	suffix := strings.TrimPrefix(ref, "hvp_")
	obj := fmt.Sprintf(`{"id":"pi_%s","object":"payment_intent","metadata":{"haven_ref":%q}}`, suffix, ref)
	if strings.HasPrefix(typ, "checkout.session.") {
		obj = fmt.Sprintf(`{"id":"cs_test_%s","object":"checkout.session","client_reference_id":%q,"payment_intent":"pi_%s","payment_status":"paid","metadata":{}}`, suffix, ref, suffix)
	}
	payload := fmt.Sprintf(`{"id":%q,"object":"event","api_version":%q,"created":%d,"type":%q,"data":{"object":%s}}`,
		eventID, sg.APIVersion, at.Unix(), typ, obj)
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(payload), Secret: secret, Timestamp: at})
	return string(sp.Payload), sp.Header
}

// TestPaymentWebhookIsVerifiedFreshAndIdempotent sends the processor's
// notices over HTTPS as Stripe would: a forged, a stale and an unsigned one
// are refused and change nothing; a good one settles the payment, and the
// same one again changes nothing.
func TestPaymentWebhookIsVerifiedFreshAndIdempotent(t *testing.T) {
	testkit.StripeMock(t)
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			own := ts[0]
			pc := st.client(firefox)
			pAuth := pc.signInAny(own.pEmail[0])
			receipt := func() map[string]any {
				var r map[string]any
				json.NewDecoder(pc.apiAs(pAuth, "GET", "/api/v1/payments/"+own.payments[0], "").Body).Decode(&r)
				return r
			}
			ref, _ := receipt()["reference"].(string)
			if ref == "" || receipt()["state"] != haven.PaymentPending {
				t.Fatalf("receipt before the notice: %v", receipt())
			}
			hook := st.client(firefox)
			send := func(body, sig string) int {
				h := map[string]string{"Content-Type": "application/json"}
				if sig != "" {
					h["Stripe-Signature"] = sig
				}
				r := hook.apiAs(h, "POST", "/api/v1/payments/webhook", body)
				readAll(t, r)
				return r.StatusCode
			}
			now := time.Now()
			for name, n := range map[string][2]string{
				"forged":   pair(signedNotice("whsec_someone_else", now, "evt_a", "payment_intent.succeeded", ref)),
				"stale":    pair(signedNotice(stripeWebhookSecret, now.Add(-stripe.DefaultTolerance-time.Minute), "evt_b", "payment_intent.succeeded", ref)),
				"unsigned": {`{"id":"evt_c","type":"payment_intent.succeeded"}`, ""},
			} {
				if got := send(n[0], n[1]); got != http.StatusUnauthorized {
					t.Errorf("%s notice answered %d, want 401", name, got)
				}
			}
			if s := receipt()["state"]; s != haven.PaymentPending {
				t.Fatalf("a refused notice moved the payment to %v", s)
			}
			body, sig := signedNotice(stripeWebhookSecret, now, "evt_good", "payment_intent.succeeded", ref)
			if got := send(body, sig); got != http.StatusOK {
				t.Fatalf("good notice answered %d", got)
			}
			if s := receipt()["state"]; s != haven.PaymentPaid {
				t.Fatalf("after the notice the payment is %v", s)
			}
			var n int
			count := func() int {
				st.db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE action = 'payment.notice'`).Scan(&n)
				return n
			}
			before := count()
			if got := send(body, sig); got != http.StatusOK {
				t.Fatalf("the same notice again answered %d", got)
			}
			if count() != before {
				t.Error("a notice delivered twice was applied twice")
			}
		})
	}
}

func pair(a, b string) [2]string { return [2]string{a, b} }

// TestPatientCannotPayForAnotherPatientsVisit: the visit id travels in the
// body, which the sweep does not fill; another patient's visit, of this
// practice or another, is an id that exists nowhere.
func TestPatientCannotPayForAnotherPatientsVisit(t *testing.T) {
	testkit.StripeMock(t)
	st, ts := newChartStack(t, testkit.SQLite(t))
	own, other := ts[0], ts[1]
	c := st.client(firefox)
	auth := c.signInAny(own.pEmail[0])
	for _, id := range []string{own.visits[1], other.visits[0], haven.NewID()} {
		r := c.apiAs(auth, "POST", "/api/v1/payments", `{"visit_id":"`+id+`"}`)
		if out := readAll(t, r); r.StatusCode != http.StatusNotFound || strings.Contains(out, own.marker) || strings.Contains(out, other.marker) {
			t.Errorf("paying visit %s answered %d: %s", id, r.StatusCode, out)
		}
	}
	// Her own visit, once the processor says it is paid: 409, not a second
	// charge.
	var rc map[string]any
	json.NewDecoder(c.apiAs(auth, "GET", "/api/v1/payments/"+own.payments[0], "").Body).Decode(&rc)
	ref, _ := rc["reference"].(string)
	body, sig := signedNotice(stripeWebhookSecret, time.Now(), "evt_paid_other", "checkout.session.completed", ref)
	if resp := st.client(firefox).apiAs(map[string]string{"Content-Type": "application/json", "Stripe-Signature": sig}, "POST", "/api/v1/payments/webhook", body); resp.StatusCode != http.StatusOK {
		t.Fatalf("notice: %d", resp.StatusCode)
	}
	r := c.apiAs(auth, "POST", "/api/v1/payments", `{"visit_id":"`+own.visits[0]+`"}`)
	if out := readAll(t, r); r.StatusCode != http.StatusConflict {
		t.Errorf("paying her paid visit again answered %d: %s", r.StatusCode, out)
	}
}

// TestAdministratorsLedgerHoldsNoPHI: the ledger and a payment's page name
// references and amounts, never the patient or the visit.
func TestAdministratorsLedgerHoldsNoPHI(t *testing.T) {
	testkit.StripeMock(t)
	st, ts := newChartStack(t, testkit.SQLite(t))
	own := ts[0]
	c := st.client(firefox)
	auth, _ := c.apiSignIn(own.emails[haven.RolePracticeAdmin])
	r := c.apiAs(auth, "GET", "/api/v1/payments/ledger", "")
	out := readAll(t, r)
	if r.StatusCode != http.StatusOK || strings.Count(out, `"reference"`) != 2 {
		t.Fatalf("ledger %d: %s", r.StatusCode, out)
	}
	for _, leak := range []string{own.marker, own.patient[0], own.patient[1], own.visits[0], own.visits[1]} {
		if strings.Contains(out, leak) {
			t.Errorf("the ledger holds %q: %s", leak, out)
		}
	}
	r = c.apiAs(auth, "GET", "/api/v1/payments/"+own.payments[0], "")
	if out := readAll(t, r); r.StatusCode != http.StatusForbidden {
		t.Errorf("the administrator read a patient's receipt: %d %s", r.StatusCode, out)
	}
}

// TestRefundNeedsARecentStepUp: a refund asked for after the step-up
// window sends the administrator to the step-up page and refunds nothing
// (the refusal audited); back from it, she confirms on the payment's page
// and the payment is refunded, audited.
func TestRefundNeedsARecentStepUp(t *testing.T) {
	testkit.StripeMock(t)
	st, ts := newChartStack(t, testkit.SQLite(t))
	a := ts[0]
	pt := st.client(firefox)
	pAuth := pt.signInAny(a.pEmail[0])
	var r map[string]any
	json.NewDecoder(pt.apiAs(pAuth, "GET", "/api/v1/payments/"+a.payments[0], "").Body).Decode(&r)
	ref, _ := r["reference"].(string)
	body, sig := signedNotice(stripeWebhookSecret, time.Now(), "evt_step_up", "checkout.session.completed", ref)
	if resp := st.client(firefox).apiAs(map[string]string{"Content-Type": "application/json", "Stripe-Signature": sig}, "POST", "/api/v1/payments/webhook", body); resp.StatusCode != http.StatusOK {
		t.Fatalf("notice: %d", resp.StatusCode)
	}

	adm := st.client(firefox)
	secret := adm.signIn(a.emails[haven.RolePracticeAdmin], "")
	admID := st.users[a.emails[haven.RolePracticeAdmin]]
	st.clock.Advance(6 * time.Minute)
	page := "/app/admin/payments/" + a.payments[0]
	html, tok := adm.adminPage(page)
	if !strings.Contains(html, `id="refund"`) || strings.Contains(html, a.marker) {
		t.Fatalf("the payment's page offers no refund, or names the patient:\n%s", html)
	}
	if !strings.Contains(html, `value="40.00"`) {
		t.Fatalf("the refund form does not offer what remains:\n%s", html)
	}
	part := url.Values{"amount": {"10"}}
	next := page + "?confirm=refund&amount=10"
	expectRedirect(t, adm.adminPost(page+"/refund", tok, part), "/account/step-up?next="+url.QueryEscape(next))
	if auditCount(t, st, a.id, admID, "payment.refund", a.payments[0], "deny") != 1 {
		t.Fatal("the refused refund is not in the audit log")
	}
	code, _ := totp.Code(secret, st.clock.Now())
	expectRedirect(t, adm.post("/account/step-up", url.Values{"kind": {"totp"}, "code": {code}, "next": {next}}), next)
	html, tok = adm.adminPage(next)
	if !strings.Contains(html, "Confirm the refund") || !strings.Contains(html, `value="10"`) {
		t.Fatal("back from the step-up, the page does not ask to confirm the refund of 10")
	}
	expectRedirect(t, adm.adminPost(page+"/refund", tok, part), page+"?done=refunded")
	if auditCount(t, st, a.id, admID, "payment.refunded", a.payments[0], "allow") != 1 {
		t.Fatal("the refund is not in the audit log")
	}
	json.NewDecoder(pt.apiAs(pAuth, "GET", "/api/v1/payments/"+a.payments[0], "").Body).Decode(&r)
	if r["state"] != haven.PaymentPaid || r["refunded_text"] != "$10.00" {
		t.Fatalf("after a part refunded her receipt says %v", r)
	}
	// More than remains is refused, with the page's words; the rest is not.
	html, tok = adm.adminPage(page)
	if !strings.Contains(html, `value="30.00"`) || !strings.Contains(html, `id="refunds"`) {
		t.Fatalf("the page does not list the refund and offer what remains:\n%s", html)
	}
	resp := adm.adminPost(page+"/refund", tok, url.Values{"amount": {"30.01"}})
	if out := readAll(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(out, "at most $30.00") {
		t.Fatalf("refunding more than remains answered %d", resp.StatusCode)
	}
	expectRedirect(t, adm.adminPost(page+"/refund", tok, url.Values{"amount": {"30"}}), page+"?done=refunded")
	json.NewDecoder(pt.apiAs(pAuth, "GET", "/api/v1/payments/"+a.payments[0], "").Body).Decode(&r)
	if r["state"] != haven.PaymentRefunded || r["refunded_text"] != "$40.00" {
		t.Fatalf("after the rest her receipt says %v", r)
	}
}

// TestPaymentsPageLetsItsFormLeadToTheProcessorOnly: the payments page's
// policy lets its forms go to the processor's hosted page, and no page
// else's does; back from that page without paying, she is told nothing
// was charged.
func TestPaymentsPageLetsItsFormLeadToTheProcessorOnly(t *testing.T) {
	testkit.StripeMock(t)
	st, ts := newChartStack(t, testkit.SQLite(t))
	c := st.client(firefox)
	c.signInAny(ts[0].pEmail[0])
	r := c.get("/app/payments?done=cancelled")
	out := readAll(t, r)
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' "+stripe.CheckoutOrigin+";") {
		t.Errorf("the payments page's policy: %s", csp)
	}
	if !strings.Contains(out, "Nothing was charged") {
		t.Errorf("back from the processor without paying, the page says:\n%s", out)
	}
	r = c.get("/app/visits")
	readAll(t, r)
	if csp := r.Header.Get("Content-Security-Policy"); strings.Contains(csp, stripe.CheckoutOrigin) {
		t.Errorf("another page's forms may lead to the processor: %s", csp)
	}
}
