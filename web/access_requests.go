package web

import (
	"net/http"
	"net/url"

	"haven"
	"haven/policy"
	"haven/service"
)

// Written requests for access: the front desk records one from the
// patient's chart, the practice's list shows each with its 30-day clock
// (to the front desk and the compliance officer), and the front desk
// produces the copy from the list, after a step-up.

var accessFlashes = map[string]string{
	"recorded": "The request is recorded. The practice has 30 days from the day it was received to answer it.",
	"confirm":  "You confirmed it is you: produce the copy now.",
}

func (s *Server) apiAccessRequests(w http.ResponseWriter, r *http.Request) {
	list, err := s.svc.AccessRequests(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": list})
}

func (s *Server) apiRecordAccessRequest(w http.ResponseWriter, r *http.Request) {
	var nr service.NewAccessRequest
	if err := decodeJSON(r, &nr); err != nil {
		s.apiError(w, r, err)
		return
	}
	v, err := s.svc.RecordAccessRequest(r.Context(), nr)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

// apiFulfilAccessRequest streams the copy a request asks for, as
// apiExport streams the patient's own.
func (s *Server) apiFulfilAccessRequest(w http.ResponseWriter, r *http.Request) {
	x, err := s.svc.FulfilAccessRequest(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.streamExport(w, r, x)
}

// accessRequestsView is the practice's list and whether the reader may
// produce copies.
type accessRequestsView struct {
	Requests  []*haven.AccessRequestView
	CanAnswer bool
}

func (s *Server) pageAccessRequests(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	list, err := s.svc.AccessRequests(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Requests for a copy of a record")
	p.Flash = accessFlashes[r.URL.Query().Get("done")]
	p.Data = accessRequestsView{Requests: list, CanAnswer: policy.Permits(a.Role, policy.ExportForRequest)}
	s.render(w, r, http.StatusOK, "access_requests.html", p)
}

// pageRecordAccessRequest takes the chart page's form.
func (s *Server) pageRecordAccessRequest(w http.ResponseWriter, r *http.Request) {
	_, err := s.svc.RecordAccessRequest(r.Context(), service.NewAccessRequest{PatientID: r.PathValue("id"),
		Received: r.PostFormValue("received"), Recipient: r.PostFormValue("recipient")})
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/access-requests?done=recorded", http.StatusSeeOther)
}

// pageFulfilAccessRequest produces the copy: a form's POST, so that no
// link prefetch answers a request. A session too old is sent to confirm
// it is its owner, and back to the list to press again.
func (s *Server) pageFulfilAccessRequest(w http.ResponseWriter, r *http.Request) {
	x, err := s.svc.FulfilAccessRequest(r.Context(), r.PathValue("id"))
	if haven.ErrorCode(err) == haven.ESTEPUP {
		http.Redirect(w, r, "/account/step-up?next="+url.QueryEscape("/app/access-requests?done=confirm"), http.StatusSeeOther)
		return
	}
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.streamExport(w, r, x)
}
