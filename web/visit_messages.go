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

func (v *visits) apiMessages(w http.ResponseWriter, r *http.Request) {
	if !v.signedIn(w, r) {
		return
	}
	msgs, err := v.svc.VisitMessages(r.Context(), r.PathValue("id"))
	if err != nil {
		v.s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": msgs})
}

func (v *visits) apiSendMessage(w http.ResponseWriter, r *http.Request) {
	if !v.signedIn(w, r) {
		return
	}
	var req sendMessageRequest
	if err := decodeJSON(r, &req); err != nil {
		v.s.Error(w, r, err)
		return
	}
	if err := v.svc.SendVisitMessage(r.Context(), r.PathValue("id"), req.Body); err != nil {
		v.s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]bool{"sent": true})
}
