package web

import (
	"crypto/x509"
	"io"
	"net/http"
	"strings"

	"haven"
	"haven/service"
)

// Lab orders and the lab catalogue: the API. A clinician related to the
// patient orders tests from the practice's catalogue from one of its labs;
// the order goes to the lab through the service's outbox. Every decision
// is the service's.

func (s *Server) apiLabCatalogue(w http.ResponseWriter, r *http.Request) {
	tests, err := s.svc.SearchLabCatalogue(r.Context(), r.URL.Query().Get("q"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	type test struct {
		LOINC string `json:"loinc"`
		Name  string `json:"name"`
	}
	out := make([]test, 0, len(tests))
	for _, t := range tests {
		out = append(out, test{t.LOINC, t.Name})
	}
	writeJSON(w, http.StatusOK, map[string]any{"tests": out})
}

func (s *Server) apiImportLabCatalogue(w http.ResponseWriter, r *http.Request) {
	n, err := s.svc.ImportLabCatalogue(r.Context(), io.LimitReader(r.Body, 4<<20))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"tests": n})
}

func (s *Server) apiLabs(w http.ResponseWriter, r *http.Request) {
	vs, err := s.svc.Labs(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	type lab struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	out := make([]lab, 0, len(vs))
	for _, v := range vs {
		out = append(out, lab{v.ID, v.Name})
	}
	writeJSON(w, http.StatusOK, map[string]any{"labs": out})
}

func (s *Server) apiOrderLabs(w http.ResponseWriter, r *http.Request) {
	var n service.NewLabOrder
	if err := decodeJSON(r, &n); err != nil {
		s.apiError(w, r, err)
		return
	}
	v, err := s.svc.OrderLabs(r.Context(), n)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) apiLabOrder(w http.ResponseWriter, r *http.Request) {
	v, err := s.svc.LabOrder(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) apiCancelLabOrder(w http.ResponseWriter, r *http.Request) {
	v, err := s.svc.CancelLabOrder(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) apiPatientLabOrders(w http.ResponseWriter, r *http.Request) {
	vs, err := s.svc.PatientLabOrders(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"lab_orders": vs})
}

// Results: the API.

// maxHL7Body bounds a message posted to /api/v1/hl7, as the MLLP listener
// bounds a frame.
const maxHL7Body = 4 << 20

// apiReceiveHL7 takes one HL7 v2 message from a lab posting over HTTPS
// with its integration token (Authorization: Bearer …) and answers with
// the ACK, in ER7. An unknown token, or the token of a lab registered
// with a client certificate posted without that certificate (on the
// integration listener, integration.go), gets 401 and an AR: the message
// is not read.
func (s *Server) apiReceiveHL7(w http.ResponseWriter, r *http.Request) {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	var peer *x509.Certificate
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		peer = r.TLS.PeerCertificates[0]
	}
	lab, why := s.svc.LabPosting(r.Context(), strings.TrimSpace(token), peer)
	body, err := io.ReadAll(io.LimitReader(r.Body, maxHL7Body+1))
	if err != nil || len(body) > maxHL7Body {
		s.apiError(w, r, haven.Errorf(haven.EINVALID, "the message is unreadable or too large"))
		return
	}
	status := http.StatusOK
	if lab == "" {
		s.Logger.Warn("lab message refused", "why", why, "request_id", RequestID(r.Context()), "client", clientAddr(r))
		status = http.StatusUnauthorized
		body = nil // not read: the sender is no one's
	}
	ack := s.svc.ReceiveHL7(r.Context(), lab, body)
	w.Header().Set("Content-Type", "x-application/hl7-v2+er7; charset=utf-8")
	w.WriteHeader(status)
	w.Write(ack)
}

func (s *Server) apiSetLabInterface(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Certificate string `json:"certificate"`
		Token       bool   `json:"token"`
	}
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	token, err := s.svc.SetLabInterface(r.Context(), r.PathValue("id"), req.Certificate, req.Token)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": token})
}

// apiResults answers the patient with her released results, and a
// clinician with the results waiting for their review.
func (s *Server) apiResults(w http.ResponseWriter, r *http.Request) {
	a, err := haven.SignedIn(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	var vs []*haven.LabResultView
	if a.Role == haven.RolePatient {
		vs, err = s.svc.Results(r.Context(), a.UserID)
	} else {
		vs, err = s.svc.ResultsToReview(r.Context())
	}
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": vs})
}

func (s *Server) apiPatientResults(w http.ResponseWriter, r *http.Request) {
	vs, err := s.svc.Results(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": vs})
}

func (s *Server) apiResult(w http.ResponseWriter, r *http.Request) {
	v, err := s.svc.LabResult(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) apiReviewResult(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Comment string `json:"comment"`
		Release bool   `json:"release"`
	}
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	v, err := s.svc.ReviewResult(r.Context(), r.PathValue("id"), req.Comment, req.Release)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) apiUnmatchedResults(w http.ResponseWriter, r *http.Request) {
	vs, err := s.svc.UnmatchedResults(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"unmatched": vs})
}

func (s *Server) apiMatchResult(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OrderID string `json:"order_id"`
	}
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	vs, err := s.svc.MatchResult(r.Context(), r.PathValue("id"), req.OrderID)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": vs})
}
