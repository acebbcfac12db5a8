package web

import (
	"net/http"

	"haven"
)

// The visit note and amendment API: a visit's SOAP note (read, draft
// saved as its clinician types, signed, addenda), a patient's notes, and
// amendment requests with their answers, extension and statement of
// disagreement. Every call is the service's to decide and audit.

func (s *Server) apiNote(w http.ResponseWriter, r *http.Request) {
	nv, err := s.svc.VisitNote(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nv)
}

func (s *Server) apiSaveNote(w http.ResponseWriter, r *http.Request) {
	var req haven.SOAP
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	nv, err := s.svc.SaveNoteDraft(r.Context(), r.PathValue("id"), req)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nv)
}

func (s *Server) apiSignNote(w http.ResponseWriter, r *http.Request) {
	nv, err := s.svc.SignNote(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nv)
}

// textRequest is a body of one text: an addendum, a reason, a statement.
type textRequest struct {
	Text string `json:"text"`
}

func (s *Server) apiAddendum(w http.ResponseWriter, r *http.Request) {
	var req textRequest
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	nv, err := s.svc.AddAddendum(r.Context(), r.PathValue("id"), req.Text)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, nv)
}

func (s *Server) apiPatientNotes(w http.ResponseWriter, r *http.Request) {
	notes, err := s.svc.PatientNotes(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"notes": notes})
}

func (s *Server) apiAmendments(w http.ResponseWriter, r *http.Request) {
	list, err := s.svc.PracticeAmendments(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"amendments": list})
}

func (s *Server) apiPatientAmendments(w http.ResponseWriter, r *http.Request) {
	list, err := s.svc.PatientAmendments(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"amendments": list})
}

// amendmentRequest asks to amend part of the patient's record.
type amendmentRequest struct {
	Part     string `json:"part"`
	RecordID string `json:"record_id"`
	Reason   string `json:"reason"`
}

func (s *Server) apiRequestAmendment(w http.ResponseWriter, r *http.Request) {
	var req amendmentRequest
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	av, err := s.svc.RequestAmendment(r.Context(), req.Part, req.RecordID, req.Reason)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, av)
}

func (s *Server) apiAmendment(w http.ResponseWriter, r *http.Request) {
	av, err := s.svc.Amendment(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, av)
}

// decisionRequest accepts (with the amendment's text) or denies (with the
// reason) a request.
type decisionRequest struct {
	Accept bool   `json:"accept"`
	Text   string `json:"text"`
}

func (s *Server) apiDecideAmendment(w http.ResponseWriter, r *http.Request) {
	var req decisionRequest
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	av, err := s.svc.DecideAmendment(r.Context(), r.PathValue("id"), req.Accept, req.Text)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, av)
}

func (s *Server) apiExtendAmendment(w http.ResponseWriter, r *http.Request) {
	var req textRequest
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	av, err := s.svc.ExtendAmendment(r.Context(), r.PathValue("id"), req.Text)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, av)
}

func (s *Server) apiDisagree(w http.ResponseWriter, r *http.Request) {
	var req textRequest
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	av, err := s.svc.DisagreeAmendment(r.Context(), r.PathValue("id"), req.Text)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, av)
}
