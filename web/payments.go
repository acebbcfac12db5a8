package web

import (
	"io"
	"net/http"

	"haven"
)

// The payments API: a patient's fees and her payments, the
// administrator's prices, ledger and refunds, and the card processor's
// notices (webhooks). What a payment is for never appears in an answer to
// the administrator, and nothing about a patient ever goes to the
// processor (see package stripe).

// apiFees answers the signed-in patient's visits with their fees.
func (s *Server) apiFees(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	f, err := s.svc.VisitFees(r.Context(), a.UserID)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

type payRequest struct {
	VisitID string `json:"visit_id"`
}

// apiPay pays for one of the signed-in patient's visits.
func (s *Server) apiPay(w http.ResponseWriter, r *http.Request) {
	var req payRequest
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	p, err := s.svc.PayVisit(r.Context(), req.VisitID)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, p)
}

// apiReceipt answers one of the signed-in patient's payments.
func (s *Server) apiReceipt(w http.ResponseWriter, r *http.Request) {
	p, err := s.svc.Receipt(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// apiLedger answers the practice's newest payments (administrator).
func (s *Server) apiLedger(w http.ResponseWriter, r *http.Request) {
	l, err := s.svc.Ledger(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"payments": l})
}

type refundRequest struct {
	// Amount is how much to give back, in the currency's smallest unit;
	// 0 or absent is all that remains.
	Amount int64 `json:"amount"`
}

// apiRefund refunds a paid payment, in part or all that remains
// (administrator, recent step-up). The body may be empty.
func (s *Server) apiRefund(w http.ResponseWriter, r *http.Request) {
	var req refundRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &req); err != nil {
			s.apiError(w, r, err)
			return
		}
	}
	p, err := s.svc.RefundPayment(r.Context(), r.PathValue("id"), haven.Cents(req.Amount))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// apiPrices answers the practice's prices and offered visit lengths.
func (s *Server) apiPrices(w http.ResponseWriter, r *http.Request) {
	l, err := s.svc.Prices(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

type priceRequest struct {
	Minutes  int    `json:"minutes"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// apiSetPrice sets (or, with amount 0, removes) the price of a visit
// length.
func (s *Server) apiSetPrice(w http.ResponseWriter, r *http.Request) {
	var req priceRequest
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	cur, err := haven.ParseCurrency(req.Currency)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	if err := s.svc.SetPrice(r.Context(), req.Minutes, haven.Cents(req.Amount), cur); err != nil {
		s.apiError(w, r, err)
		return
	}
	s.apiPrices(w, r)
}

// maxNoticeBytes bounds a processor notice: Stripe's events are a few
// kilobytes.
const maxNoticeBytes = 256 << 10

// paymentWebhook takes a notice from the card processor. It needs no
// session: the notice is trusted only if its signature verifies under the
// webhook secret and its signed time is recent (service.PaymentNotice). A
// refused notice is 400 with nothing of why beyond the code; an accepted
// one, new or seen before, is 200.
func (s *Server) paymentWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxNoticeBytes+1))
	if err != nil || len(body) > maxNoticeBytes {
		s.apiError(w, r, haven.Errorf(haven.EINVALID, "the notice is unreadable or too large"))
		return
	}
	if err := s.svc.PaymentNotice(r.Context(), body, r.Header.Get("Stripe-Signature")); err != nil {
		if haven.ErrorCode(err) == haven.EUNAUTHORIZED {
			s.Logger.Warn("payment notice refused", "request_id", RequestID(r.Context()), "client", clientAddr(r), "why", haven.ErrorMessage(err))
		}
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"received": true})
}
