package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"haven"
	"haven/service"
)

// The payment pages: a patient's fees and receipts; the administrator's
// prices, ledger and refunds.

// paymentFlashes are what the payment pages say after an action, by their
// ?done= value; only these fixed texts are ever shown.
var paymentFlashes = map[string]string{
	"sent":      "Thank you. Your payment is with the card processor; it shows as paid here as soon as the processor confirms it, usually within a minute.",
	"cancelled": "You came back from the card processor's page without paying. Nothing was charged; you can pay whenever you are ready.",
	"price":     "The price is saved. Patients see it on their next visit of that length.",
	"refunded":  "The refund is made. The patient's card is credited by the card processor, usually within 5 to 10 days.",
}

// pagePayments is the patient's payments page: what she owes, visit by
// visit, in plain words, with a button to pay each.
func (s *Server) pagePayments(w http.ResponseWriter, r *http.Request) {
	s.renderPayments(w, r, http.StatusOK, "")
}

func (s *Server) renderPayments(w http.ResponseWriter, r *http.Request, status int, msg string) {
	a, _ := haven.ActorFromContext(r.Context())
	f, err := s.svc.VisitFees(r.Context(), a.UserID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Payments")
	p.Flash, p.Error = paymentFlashes[r.URL.Query().Get("done")], msg
	p.Data = f
	// The Pay buttons' form leads, by a redirect, to the processor's
	// hosted page: this page's policy lets its forms go there and
	// nowhere else.
	if o := s.svc.CheckoutOrigin(); o != "" {
		w.Header().Set("Content-Security-Policy", strings.Replace(ContentSecurityPolicy, "form-action 'self'", "form-action 'self' "+o, 1))
	}
	s.render(w, r, status, "payments.html", p)
}

// pagePay opens the processor's hosted payment page for the visit in the
// form and sends the patient there: she enters her card on the
// processor's site, never on Haven's, and comes back to her payments page.
func (s *Server) pagePay(w http.ResponseWriter, r *http.Request) {
	pay, err := s.svc.PayVisit(r.Context(), r.PostFormValue("visit"))
	switch c := haven.ErrorCode(err); {
	case err == nil && pay.CheckoutURL != "":
		http.Redirect(w, r, pay.CheckoutURL, http.StatusSeeOther)
	case err == nil:
		http.Redirect(w, r, "/app/payments/"+url.PathEscape(pay.ID), http.StatusSeeOther)
	case c == haven.EINVALID || c == haven.ECONFLICT || c == haven.EUNAVAILABLE:
		s.renderPayments(w, r, s.errorStatus(w, r, err), haven.ErrorMessage(err))
	default:
		s.pageError(w, r, err)
	}
}

// pageReceipt is one payment's receipt: the practice, the amount, the
// dates and the reference, and nothing about the visit.
func (s *Server) pageReceipt(w http.ResponseWriter, r *http.Request) {
	pay, err := s.svc.Receipt(r.Context(), r.PathValue("id"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Receipt")
	p.Flash = paymentFlashes[r.URL.Query().Get("done")]
	if pay.State != haven.PaymentPending {
		p.Flash = ""
	}
	p.Data = pay
	s.render(w, r, http.StatusOK, "payments_receipt.html", p)
}

// adminPaymentsView is the administrator's payments page.
type adminPaymentsView struct {
	Prices     *service.PriceList
	Ledger     []*service.PaymentView
	Currencies []string
	FormToken  string
}

// adminPayments is the administrator's page: prices per visit type and
// the ledger, by reference.
func (s *Server) adminPayments(w http.ResponseWriter, r *http.Request) {
	s.renderAdminPayments(w, r, http.StatusOK, "")
}

func (s *Server) renderAdminPayments(w http.ResponseWriter, r *http.Request, status int, msg string) {
	prices, err := s.svc.Prices(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	ledger, err := s.svc.Ledger(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v := adminPaymentsView{Prices: prices, Ledger: ledger, FormToken: formToken(w, r)}
	for _, c := range haven.Currencies {
		v.Currencies = append(v.Currencies, strings.ToUpper(c.String()))
	}
	p := s.newPage(r, "Prices and payments")
	p.Flash, p.Error = paymentFlashes[r.URL.Query().Get("done")], msg
	p.Data = v
	s.render(w, r, status, "admin_payments.html", p)
}

// adminSetPrice takes the price form: a visit length, an amount as a
// person writes it ("40" or "40.00") and a currency.
func (s *Server) adminSetPrice(w http.ResponseWriter, r *http.Request) {
	if !s.checkFormToken(w, r) {
		return
	}
	minutes, err := strconv.Atoi(r.PostFormValue("minutes"))
	if err != nil {
		s.renderAdminPayments(w, r, http.StatusBadRequest, "Choose the visit length, in minutes.")
		return
	}
	amount, ok := parseAmount(r.PostFormValue("amount"))
	if !ok {
		s.renderAdminPayments(w, r, http.StatusBadRequest, "Write the price as a number, like 40 or 40.00 (0 for no fee).")
		return
	}
	cur, err := haven.ParseCurrency(r.PostFormValue("currency"))
	if err == nil {
		err = s.svc.SetPrice(r.Context(), minutes, amount, cur)
	}
	switch haven.ErrorCode(err) {
	case "":
		http.Redirect(w, r, "/app/admin/payments?done=price", http.StatusSeeOther)
	case haven.EINVALID:
		s.renderAdminPayments(w, r, http.StatusBadRequest, haven.ErrorMessage(err))
	default:
		s.pageError(w, r, err)
	}
}

// parseAmount reads "40", "40.5" or "40.50" as cents; anything else (a
// sign, a third decimal, letters) is refused.
func parseAmount(s string) (haven.Cents, bool) {
	s = strings.TrimSpace(s)
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || len(whole) > 7 || dot && (len(frac) < 1 || len(frac) > 2) {
		return 0, false
	}
	for _, c := range whole + frac {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	var f int64
	if frac != "" {
		f, _ = strconv.ParseInt(frac, 10, 64)
		if len(frac) == 1 {
			f *= 10
		}
	}
	return haven.Cents(w*100 + f), true
}

// adminPaymentView is one payment of the ledger, with its refund form.
type adminPaymentView struct {
	*service.PaymentView
	FormToken string
	Confirm   bool   // back from the step-up a refund asked for
	Amount    string // the refund's amount as written, kept across the step-up
}

// adminPayment is one payment of the ledger: its amount, dates, state and
// reference, and the refund button.
func (s *Server) adminPayment(w http.ResponseWriter, r *http.Request) {
	s.renderAdminPayment(w, r, http.StatusOK, "")
}

func (s *Server) renderAdminPayment(w http.ResponseWriter, r *http.Request, status int, msg string) {
	pay, err := s.svc.LedgerPayment(r.Context(), r.PathValue("id"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Payment "+pay.Ref)
	p.Flash, p.Error = paymentFlashes[r.URL.Query().Get("done")], msg
	v := adminPaymentView{PaymentView: pay, FormToken: formToken(w, r), Confirm: r.URL.Query().Get("confirm") == "refund", Amount: r.FormValue("amount")}
	if _, ok := parseAmount(v.Amount); !ok {
		left := pay.Amount - pay.Refunded
		v.Amount = fmt.Sprintf("%d.%02d", left/100, left%100)
	}
	p.Data = v
	s.render(w, r, status, "admin_payment.html", p)
}

// adminRefund refunds the amount in the form (all of it, or a part) of a
// payment. Without a recent step-up it goes through the step-up page and
// back to the payment, the amount kept, where the administrator confirms:
// a GET never refunds.
func (s *Server) adminRefund(w http.ResponseWriter, r *http.Request) {
	if !s.checkFormToken(w, r) {
		return
	}
	id := r.PathValue("id")
	back := "/app/admin/payments/" + url.PathEscape(id)
	written := strings.TrimSpace(r.PostFormValue("amount"))
	amount, ok := parseAmount(written)
	if !ok || amount == 0 {
		s.renderAdminPayment(w, r, http.StatusBadRequest, "Write the amount to refund as a number, like 10 or 10.50.")
		return
	}
	_, err := s.svc.RefundPayment(r.Context(), id, amount)
	switch haven.ErrorCode(err) {
	case "":
		http.Redirect(w, r, back+"?done=refunded", http.StatusSeeOther)
	case haven.ESTEPUP:
		http.Redirect(w, r, "/account/step-up?next="+url.QueryEscape(back+"?confirm=refund&amount="+url.QueryEscape(written)), http.StatusSeeOther)
	case haven.ECONFLICT, haven.EINVALID, haven.EUNAVAILABLE:
		s.renderAdminPayment(w, r, s.errorStatus(w, r, err), haven.ErrorMessage(err))
	default:
		s.pageError(w, r, err)
	}
}
