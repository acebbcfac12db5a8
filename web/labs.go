package web

import (
	"io"
	"net/http"

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

func (s *Server) apiPatientLabOrders(w http.ResponseWriter, r *http.Request) {
	vs, err := s.svc.PatientLabOrders(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"lab_orders": vs})
}
