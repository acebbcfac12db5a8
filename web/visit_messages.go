package web

import (
	"net/http"
)

// Waiting-room messages over the API: the clinician's queue sends them,
// the patient's waiting page reads them (and replies). The service
// decides who may and audits every send and read; these handlers only
// carry JSON.

// sendMessageRequest is the body of a POST to a visit's messages.
type sendMessageRequest struct {
	Body string `json:"body"`
}

func (s *Server) apiMessages(w http.ResponseWriter, r *http.Request) {
	msgs, err := s.svc.VisitMessages(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": msgs})
}

func (s *Server) apiSendMessage(w http.ResponseWriter, r *http.Request) {
	var req sendMessageRequest
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	if err := s.svc.SendVisitMessage(r.Context(), r.PathValue("id"), req.Body); err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]bool{"sent": true})
}
