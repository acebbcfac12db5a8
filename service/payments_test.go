package service_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	sg "github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"

	"haven"
	"haven/internal/testkit"
	"haven/internal/testkit/stack"
	"haven/service"
	"haven/stripe"
)

// webhookSecret signs the notices these tests deliver as the processor.
const webhookSecret = "whsec_service_test_secret"

// forEachDBPaying runs fn on a stack whose card processor is the Stripe
// adapter talking to stripe-mock through a recorder of every request.
func forEachDBPaying(t *testing.T, fn func(t *testing.T, e *env, rec *testkit.Recorder)) {
	mock := testkit.StripeMock(t)
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			rec := &testkit.Recorder{}
			proc, err := stripe.New(stripe.Config{Key: "sk_test_123", WebhookSecret: webhookSecret, URL: mock, ReturnURL: "https://clinic.example",
				HTTPClient: &http.Client{Transport: rec, Timeout: 10 * time.Second}})
			if err != nil {
				t.Fatal(err)
			}
			fn(t, envOf(t, stack.New(t, dsn, stack.Processor(proc))), rec)
		})
	}
}

// notice is a processor notice about the payment with reference ref,
// signed with secret at the time at: a Checkout Session's for the
// checkout.session.* types (paid, for a completed one), a
// PaymentIntent's otherwise. Each payment's processor ids are its own.
func notice(secret string, at time.Time, eventID, typ, ref string) ([]byte, string) {
	suffix := strings.TrimPrefix(ref, "hvp_")
	obj := fmt.Sprintf(`{"id":"pi_%s","object":"payment_intent","metadata":{"haven_ref":%q}}`, suffix, ref)
	if strings.HasPrefix(typ, "checkout.session.") {
		obj = fmt.Sprintf(`{"id":"cs_test_%s","object":"checkout.session","client_reference_id":%q,"payment_intent":"pi_%s","payment_status":"paid","metadata":{}}`, suffix, ref, suffix)
	}
	payload := fmt.Sprintf(`{"id":%q,"object":"event","api_version":%q,"created":%d,"type":%q,"data":{"object":%s}}`,
		eventID, sg.APIVersion, at.Unix(), typ, obj)
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(payload), Secret: secret, Timestamp: at})
	return sp.Payload, sp.Header
}

func TestPatientPaysForHerVisitAndTheProcessorLearnsNothingAboutHer(t *testing.T) {
	forEachDBPaying(t, func(t *testing.T, e *env, rec *testkit.Recorder) {
		p := e.seed("riverside", "pay1")
		q := e.seed("lakeshore", "pay2")
		if err := e.svc.SetAvailability(e.as(p.clinician), wednesdayAfternoon); err != nil {
			t.Fatal(err)
		}
		start := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)
		v, err := e.svc.BookVisit(e.as(p.patientA), p.chartA.PatientID, p.clinician.UserID, start, "reasonpay1 rash again")
		if err != nil {
			t.Fatal(err)
		}
		pt := e.as(p.patientA)

		fees, err := e.svc.VisitFees(pt, p.chartA.PatientID)
		if err != nil || len(fees.Visits) != 1 || fees.Visits[0].Owed || fees.OwedText != "" {
			t.Fatalf("fees before a price: %+v %v", fees, err)
		}
		if _, err := e.svc.PayVisit(pt, v.ID); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("paying a visit without a fee: %v", err)
		}
		if err := e.svc.SetPrice(pt, 30, 4000, haven.USD); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("a patient set a price: %v", err)
		}
		if err := e.svc.SetPrice(e.as(p.admin), 30, 4000, haven.USD); err != nil {
			t.Fatal(err)
		}
		if l, err := e.svc.Prices(e.as(q.admin)); err != nil || len(l.Prices) != 0 {
			t.Fatalf("another practice's prices: %+v %v", l, err)
		}
		if l, err := e.svc.Prices(e.as(p.admin)); err != nil || len(l.Prices) != 1 || len(l.Lengths) != 1 || l.Lengths[0] != 30 {
			t.Fatalf("prices: %+v %v", l, err)
		}
		fees, err = e.svc.VisitFees(pt, p.chartA.PatientID)
		if err != nil || !fees.Visits[0].Owed || fees.Visits[0].AmountText != "$40.00" || fees.OwedText != "$40.00" {
			t.Fatalf("fees: %+v %v", fees, err)
		}
		if _, err := e.svc.VisitFees(e.as(p.patientB), p.chartA.PatientID); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another patient's fees: %v", err)
		}

		// Only she pays for her visit.
		for who, a := range map[string]haven.Actor{"patient B": p.patientB, "another practice's patient": q.patientA} {
			if _, err := e.svc.PayVisit(e.as(a), v.ID); haven.ErrorCode(err) != haven.ENOTFOUND {
				t.Errorf("%s paid for her visit: %v", who, err)
			}
		}
		if _, err := e.svc.PayVisit(e.as(p.admin), v.ID); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Errorf("the admin paid for her visit: %v", err)
		}
		if n := len(rec.Requests()); n != 0 {
			t.Fatalf("%d requests reached the processor for refused payments", n)
		}

		pay, err := e.svc.PayVisit(pt, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if pay.State != haven.PaymentPending || pay.AmountText != "$40.00" || pay.PracticeName != "riverside" {
			t.Fatalf("payment %+v", pay)
		}
		// The processor says it is paid; said again, nothing changes.
		if !strings.HasPrefix(pay.CheckoutURL, stripe.CheckoutOrigin+"/") {
			t.Fatalf("she is not sent to the processor's page: %q", pay.CheckoutURL)
		}
		body, sig := notice(webhookSecret, time.Now(), "evt_paid_1", "checkout.session.completed", pay.Ref)
		if err := e.svc.PaymentNotice(t.Context(), body, sig); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.PayVisit(pt, v.ID); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("paying twice: %v", err)
		}
		r, err := e.svc.Receipt(pt, pay.ID)
		if err != nil || r.State != haven.PaymentPaid || r.PaidAt == nil {
			t.Fatalf("receipt %+v %v", r, err)
		}
		size := auditSize(t, e, p.id)
		if err := e.svc.PaymentNotice(t.Context(), body, sig); err != nil {
			t.Fatal(err)
		}
		if auditSize(t, e, p.id) != size {
			t.Error("a notice delivered twice was applied twice")
		}
		fees, _ = e.svc.VisitFees(pt, p.chartA.PatientID)
		if fees.Visits[0].Owed || fees.Visits[0].Payment == nil || fees.Visits[0].Payment.State != haven.PaymentPaid || fees.OwedText != "" {
			t.Fatalf("fees after paying: %+v", fees)
		}
		for who, a := range map[string]haven.Actor{"patient B": p.patientB, "another practice's patient": q.patientA} {
			if _, err := e.svc.Receipt(e.as(a), pay.ID); haven.ErrorCode(err) != haven.ENOTFOUND {
				t.Errorf("%s read her receipt: %v", who, err)
			}
		}

		// The administrator's ledger: by reference, no names.
		if l, err := e.svc.Ledger(e.as(q.admin)); err != nil || len(l) != 0 {
			t.Fatalf("another practice's ledger: %+v %v", l, err)
		}
		l, err := e.svc.Ledger(e.as(p.admin))
		if err != nil || len(l) != 1 || l[0].Ref != pay.Ref {
			t.Fatalf("ledger %+v %v", l, err)
		}

		// A refund needs the administrator's recent step-up.
		stale := e.as(p.admin)
		e.clock.Advance(10 * time.Minute)
		if _, err := e.svc.RefundPayment(stale, pay.ID, 0); haven.ErrorCode(err) != haven.ESTEPUP {
			t.Fatalf("refund without a recent step-up: %v", err)
		}
		if _, err := e.svc.RefundPayment(e.as(q.admin), pay.ID, 0); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another practice refunded: %v", err)
		}
		if _, err := e.svc.RefundPayment(pt, pay.ID, 0); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("the patient refunded herself: %v", err)
		}
		r, err = e.svc.RefundPayment(e.as(p.admin), pay.ID, 0)
		if err != nil || r.State != haven.PaymentRefunded || r.RefundedAt == nil || r.Refunded != 4000 {
			t.Fatalf("refund %+v %v", r, err)
		}
		if _, err := e.svc.RefundPayment(e.as(p.admin), pay.ID, 0); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("refunding twice: %v", err)
		}

		// What the processor was sent: amounts, currencies, references.
		if n := len(rec.Requests()); n != 2 {
			t.Fatalf("%d requests to the processor, want a checkout and a refund", n)
		}
		markers := []string{"Namepay1A", "MRN-pay1A", "555pay1A", "Streetpay1A", "ptA@riverside.example", "reasonpay1",
			p.chartA.PatientID, v.ID, pay.ID, "Worker doc@riverside.example", "riverside"}
		for _, m := range markers {
			if n := rec.Hits(m); n != 0 {
				t.Errorf("the processor was sent %q in %d requests", m, n)
			}
		}
		if rec.Hits(pay.Ref) == 0 {
			t.Error("the recorder did not see the reference: it proves nothing")
		}
		e.assertNotInTheClear(t, pay.Ref, "Namepay1A", "reasonpay1", "Streetpay1A")
	})
}

func TestForgedAndStaleNoticesChangeNothing(t *testing.T) {
	forEachDBPaying(t, func(t *testing.T, e *env, rec *testkit.Recorder) {
		p := e.seed("riverside", "pay3")
		if err := e.svc.SetAvailability(e.as(p.clinician), wednesdayAfternoon); err != nil {
			t.Fatal(err)
		}
		v, err := e.svc.BookVisit(e.as(p.patientA), p.chartA.PatientID, p.clinician.UserID, time.Date(2026, 11, 25, 15, 30, 0, 0, time.UTC), "check")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.SetPrice(e.as(p.admin), 30, 2500, haven.EUR); err != nil {
			t.Fatal(err)
		}
		pay, err := e.svc.PayVisit(e.as(p.patientA), v.ID)
		if err != nil {
			t.Fatal(err)
		}
		for name, n := range map[string]func() ([]byte, string){
			"forged": func() ([]byte, string) {
				return notice("whsec_not_ours", time.Now(), "evt_f", "payment_intent.succeeded", pay.Ref)
			},
			"stale": func() ([]byte, string) {
				return notice(webhookSecret, time.Now().Add(-stripe.DefaultTolerance-time.Minute), "evt_s", "payment_intent.succeeded", pay.Ref)
			},
		} {
			body, sig := n()
			if err := e.svc.PaymentNotice(t.Context(), body, sig); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
				t.Errorf("%s notice: %v", name, err)
			}
		}
		if r, _ := e.svc.Receipt(e.as(p.patientA), pay.ID); r.State != haven.PaymentPending {
			t.Fatalf("a refused notice moved the payment to %s", r.State)
		}
		// A failure notice frees the visit to be paid again.
		body, sig := notice(webhookSecret, time.Now(), "evt_fail", "checkout.session.expired", pay.Ref)
		if err := e.svc.PaymentNotice(t.Context(), body, sig); err != nil {
			t.Fatal(err)
		}
		fees, _ := e.svc.VisitFees(e.as(p.patientA), p.chartA.PatientID)
		if !fees.Visits[0].Owed || fees.OwedText != "€25.00" {
			t.Fatalf("fees after a failed payment: %+v", fees)
		}
		if _, err := e.svc.PayVisit(e.as(p.patientA), v.ID); err != nil {
			t.Fatalf("paying again after a failure: %v", err)
		}
	})
}

func TestPaymentsOffWithoutAProcessor(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "pay4")
		if err := e.svc.SetAvailability(e.as(p.clinician), wednesdayAfternoon); err != nil {
			t.Fatal(err)
		}
		v, err := e.svc.BookVisit(e.as(p.patientA), p.chartA.PatientID, p.clinician.UserID, time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC), "check")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.SetPrice(e.as(p.admin), 30, 2500, haven.USD); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.PayVisit(e.as(p.patientA), v.ID); haven.ErrorCode(err) != haven.EUNAVAILABLE {
			t.Fatalf("paying without a processor: %v", err)
		}
	})
}

// auditSize is the number of events in a practice's log.
func auditSize(t *testing.T, e *env, practiceID string) uint64 {
	t.Helper()
	n, err := e.log.Size(t.Context(), practiceID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPaymentsAskTheVendorRegistryFirst: a charge goes out only while the
// processor's entry in the vendor registry allows PHI level none. Retired,
// or with an agreement on file that has ended, it gets nothing: the
// refusal is audited and the practice alerted; a current entry of the
// practice's own lets payments through again.
func TestPaymentsAskTheVendorRegistryFirst(t *testing.T) {
	forEachDBPaying(t, func(t *testing.T, e *env, rec *testkit.Recorder) {
		p := e.seed("riverside", "pay5")
		if err := e.svc.SetAvailability(e.as(p.clinician), wednesdayAfternoon); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.SetPrice(e.as(p.admin), 30, 4000, haven.USD); err != nil {
			t.Fatal(err)
		}
		v, err := e.svc.BookVisit(e.as(p.patientA), p.chartA.PatientID, p.clinician.UserID, time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC), "check")
		if err != nil {
			t.Fatal(err)
		}
		platform, err := e.svc.OperatorVendors(t.Context(), "")
		if err != nil || len(platform) != 1 || platform[0].Kind != haven.VendorPayment {
			t.Fatalf("the processor is not in the platform's registry: %+v %v", platform, err)
		}
		if err := e.svc.OperatorRetireVendor(t.Context(), platform[0].ID); err != nil {
			t.Fatal(err)
		}
		refused := func(why string) {
			t.Helper()
			before := len(rec.Requests())
			if _, err := e.svc.PayVisit(e.as(p.patientA), v.ID); haven.ErrorCode(err) != haven.EUNAVAILABLE {
				t.Fatalf("paying with the processor %s: %v", why, err)
			}
			if len(rec.Requests()) != before {
				t.Fatalf("the processor %s was sent a request", why)
			}
			fees, _ := e.svc.VisitFees(e.as(p.patientA), p.chartA.PatientID)
			if !fees.Visits[0].Owed {
				t.Fatalf("after a refused charge (processor %s) the visit is not owed", why)
			}
		}
		refused("retired")
		var n int
		e.db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE log_id = $1 AND action = $2 AND decision = 'deny'`, p.id, service.ActVendorEgress).Scan(&n)
		if n != 1 {
			t.Errorf("%d refused egress events in the practice's log, want 1", n)
		}
		alerts, err := e.svc.Alerts(e.as(p.compliance), false)
		found := false
		for _, a := range alerts {
			found = found || a.Rule == service.RuleEgressRefused
		}
		if err != nil || !found {
			t.Errorf("no alert for the refused egress: %+v %v", alerts, err)
		}

		// The practice registers the processor itself: payments go through.
		own := &haven.Vendor{Name: "Stripe", Kind: haven.VendorPayment, Endpoint: platform[0].Endpoint, PHI: haven.PHINone, Contact: "baa@stripe.example"}
		if err := e.svc.AddVendor(e.as(p.admin), own); err != nil {
			t.Fatal(err)
		}
		pay, err := e.svc.PayVisit(e.as(p.patientA), v.ID)
		if err != nil {
			t.Fatal(err)
		}
		// Its agreement on file ends: nothing more goes out, not even a
		// refund.
		body, sig := notice(webhookSecret, time.Now(), "evt_reg_paid", "checkout.session.completed", pay.Ref)
		if err := e.svc.PaymentNotice(t.Context(), body, sig); err != nil {
			t.Fatal(err)
		}
		own.BAASigned = e.clock.Now().AddDate(-1, 0, -10).Truncate(24 * time.Hour)
		own.BAAExpires = e.clock.Now().AddDate(0, 0, -3).Truncate(24 * time.Hour)
		own.BAADocument = "contracts/stripe.pdf"
		if err := e.svc.UpdateVendor(e.as(p.admin), own); err != nil {
			t.Fatal(err)
		}
		before := len(rec.Requests())
		if _, err := e.svc.RefundPayment(e.as(p.admin), pay.ID, 0); haven.ErrorCode(err) != haven.EUNAVAILABLE {
			t.Fatalf("refunding through a processor whose agreement ended: %v", err)
		}
		if len(rec.Requests()) != before {
			t.Fatal("the processor whose agreement ended was sent a refund")
		}
	})
}

// paidVisit books a visit of p's patient A at 15:00 on 25 November, prices
// it at 40.00 and pays for it, settled by the processor's notice.
func paidVisit(t *testing.T, e *env, p *practice) *service.PaymentView {
	t.Helper()
	if err := e.svc.SetAvailability(e.as(p.clinician), wednesdayAfternoon); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SetPrice(e.as(p.admin), 30, 4000, haven.USD); err != nil {
		t.Fatal(err)
	}
	v, err := e.svc.BookVisit(e.as(p.patientA), p.chartA.PatientID, p.clinician.UserID, time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC), "check")
	if err != nil {
		t.Fatal(err)
	}
	pay, err := e.svc.PayVisit(e.as(p.patientA), v.ID)
	if err != nil {
		t.Fatal(err)
	}
	body, sig := notice(webhookSecret, time.Now(), "evt_paid_"+pay.Ref, "checkout.session.completed", pay.Ref)
	if err := e.svc.PaymentNotice(t.Context(), body, sig); err != nil {
		t.Fatal(err)
	}
	return pay
}

// TestAdminRefundsAPaymentInParts: refunds of part of a payment, each up to
// what remains, each with a recent step-up, each audited and listed on the
// payment's ledger page; the last part refunds the payment. Asking more
// than remains, or after all is refunded, sends the processor nothing.
func TestAdminRefundsAPaymentInParts(t *testing.T) {
	forEachDBPaying(t, func(t *testing.T, e *env, rec *testkit.Recorder) {
		p := e.seed("riverside", "pay6")
		q := e.seed("lakeshore", "pay7")
		pay := paidVisit(t, e, p)
		sent := len(rec.Requests())

		stale := e.as(p.admin)
		e.clock.Advance(10 * time.Minute)
		if _, err := e.svc.RefundPayment(stale, pay.ID, 1000); haven.ErrorCode(err) != haven.ESTEPUP {
			t.Fatalf("a partial refund without a recent step-up: %v", err)
		}
		if _, err := e.svc.RefundPayment(e.as(q.admin), pay.ID, 1000); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another practice refunded part: %v", err)
		}
		r, err := e.svc.RefundPayment(e.as(p.admin), pay.ID, 1000)
		if err != nil || r.State != haven.PaymentPaid || r.Refunded != 1000 || r.RemainingText != "$30.00" || r.RefundedText != "$10.00" {
			t.Fatalf("a first part: %+v %v", r, err)
		}
		for _, more := range []haven.Cents{3001, -5} {
			if _, err := e.svc.RefundPayment(e.as(p.admin), pay.ID, more); haven.ErrorCode(err) != haven.EINVALID {
				t.Fatalf("refunding %d of 30.00 remaining: %v", more, err)
			}
		}
		// The processor tells of the partial refund: nothing moves.
		body, _ := notice(webhookSecret, time.Now(), "evt_part", "charge.refunded", pay.Ref)
		body = []byte(strings.Replace(string(body), `"object":"payment_intent"`, `"object":"charge","amount_refunded":1000,"payment_intent":"pi_`+strings.TrimPrefix(pay.Ref, "hvp_")+`"`, 1))
		sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: webhookSecret, Timestamp: time.Now()})
		if err := e.svc.PaymentNotice(t.Context(), sp.Payload, sp.Header); err != nil {
			t.Fatal(err)
		}
		if l, _ := e.svc.LedgerPayment(e.as(p.admin), pay.ID); l.State != haven.PaymentPaid || l.Refunded != 1000 {
			t.Fatalf("a partial refund's notice moved the payment: %+v", l)
		}
		r, err = e.svc.RefundPayment(e.as(p.admin), pay.ID, 3000)
		if err != nil || r.State != haven.PaymentRefunded || r.Refunded != 4000 || r.RefundedAt == nil || r.RemainingText != "" {
			t.Fatalf("the rest: %+v %v", r, err)
		}
		if _, err := e.svc.RefundPayment(e.as(p.admin), pay.ID, 1); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("refunding beyond all: %v", err)
		}
		if n := len(rec.Requests()) - sent; n != 2 {
			t.Fatalf("%d refunds reached the processor, want 2", n)
		}
		l, err := e.svc.LedgerPayment(e.as(p.admin), pay.ID)
		if err != nil || len(l.Refunds) != 2 || l.Refunds[0].AmountText != "$10.00" || l.Refunds[1].AmountText != "$30.00" ||
			l.Refunds[0].ByName == "" || l.Refunds[0].Ref == l.Refunds[1].Ref {
			t.Fatalf("the ledger's refunds: %+v %v", l, err)
		}
		var n int
		e.db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE log_id = $1 AND action = $2 AND decision = 'allow'`, p.id, service.ActPaymentRefunded).Scan(&n)
		if n != 2 {
			t.Errorf("%d refunds in the audit log, want 2", n)
		}
		// The patient's receipt says what came back.
		if rc, err := e.svc.Receipt(e.as(p.patientA), pay.ID); err != nil || rc.RefundedText != "$40.00" || len(rc.Refunds) != 0 {
			t.Fatalf("receipt after refunds: %+v %v", rc, err)
		}
	})
}

// TestPayingAgainClosesTheAbandonedPage: she left the processor's page
// without paying and presses Pay again: the old page is closed at the
// processor (it can never take the money too) and a new one opened. A
// paid visit is not paid twice, and the processor is not asked.
func TestPayingAgainClosesTheAbandonedPage(t *testing.T) {
	forEachDBPaying(t, func(t *testing.T, e *env, rec *testkit.Recorder) {
		p := e.seed("riverside", "pay8")
		if err := e.svc.SetAvailability(e.as(p.clinician), wednesdayAfternoon); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.SetPrice(e.as(p.admin), 30, 4000, haven.USD); err != nil {
			t.Fatal(err)
		}
		v, err := e.svc.BookVisit(e.as(p.patientA), p.chartA.PatientID, p.clinician.UserID, time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC), "check")
		if err != nil {
			t.Fatal(err)
		}
		first, err := e.svc.PayVisit(e.as(p.patientA), v.ID)
		if err != nil {
			t.Fatal(err)
		}
		second, err := e.svc.PayVisit(e.as(p.patientA), v.ID)
		if err != nil {
			t.Fatalf("paying again after leaving the page: %v", err)
		}
		reqs := rec.Requests()
		if len(reqs) != 3 || !strings.Contains(string(reqs[1]), "/expire") {
			t.Fatalf("the processor got %d requests, want a page, its closing and a page", len(reqs))
		}
		if r, _ := e.svc.Receipt(e.as(p.patientA), first.ID); r.State != haven.PaymentFailed {
			t.Fatalf("the abandoned payment is %s", r.State)
		}
		// The old page's expiry notice arrives late: nothing moves.
		body, sig := notice(webhookSecret, time.Now(), "evt_old_expired", "checkout.session.expired", first.Ref)
		if err := e.svc.PaymentNotice(t.Context(), body, sig); err != nil {
			t.Fatal(err)
		}
		body, sig = notice(webhookSecret, time.Now(), "evt_new_paid", "checkout.session.completed", second.Ref)
		if err := e.svc.PaymentNotice(t.Context(), body, sig); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.PayVisit(e.as(p.patientA), v.ID); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("paying a paid visit: %v", err)
		}
		if len(rec.Requests()) != 3 {
			t.Fatal("paying a paid visit reached the processor")
		}
		fees, _ := e.svc.VisitFees(e.as(p.patientA), p.chartA.PatientID)
		if fees.Visits[0].Owed || fees.Visits[0].Payment.ID != second.ID || fees.Visits[0].Payment.State != haven.PaymentPaid {
			t.Fatalf("fees: %+v", fees.Visits[0])
		}
	})
}
