package web

import (
	"net/http"

	"haven"
	"haven/service"
)

// Verifying a contact (service/contact.go): a patient enters the code an
// email carries to learn whether her practice sent it, and reports a
// message she doubts, which raises an alert for the compliance officer.
// The code goes in a form's body, never in a URL.

// contactView is the check page's data.
type contactView struct {
	Checked  bool
	Reported bool
	Check    *service.ContactCheck
	Code     string // as typed, normalized when it is a code
}

func (s *Server) pageCheckMessage(w http.ResponseWriter, r *http.Request) {
	if !patientPage(w, r, s) {
		return
	}
	p := s.newPage(r, "Check a message")
	p.Data = contactView{}
	s.render(w, r, http.StatusOK, "contact.html", p)
}

func (s *Server) pagePostCheckMessage(w http.ResponseWriter, r *http.Request) {
	code := r.PostFormValue("code")
	chk, err := s.svc.CheckContactCode(r.Context(), code)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Check a message")
	v := contactView{Checked: true, Check: chk}
	if n, ok := service.NormalizeContactCode(code); ok {
		v.Code = service.FormatContactCode(n)
	}
	p.Data = v
	s.render(w, r, http.StatusOK, "contact.html", p)
}

func (s *Server) pageReportMessage(w http.ResponseWriter, r *http.Request) {
	chk, err := s.svc.ReportSuspiciousMessage(r.Context(), r.PostFormValue("code"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Check a message")
	p.Flash = "Thank you. The practice's compliance officer has been told and will look into it. Do not answer the message, open its links or attachments, or call a number it gives."
	p.Data = contactView{Reported: true, Check: chk}
	s.render(w, r, http.StatusOK, "contact.html", p)
}

func contactCheckJSON(chk *service.ContactCheck) map[string]any {
	out := map[string]any{"genuine": chk.Genuine}
	if chk.Genuine {
		out["sent_at"], out["kind"], out["about"] = chk.SentAt, chk.Kind, chk.About
	}
	return out
}

type contactCodeBody struct {
	Code string `json:"code"`
}

func (s *Server) apiCheckContactCode(w http.ResponseWriter, r *http.Request) {
	var body contactCodeBody
	if err := decodeJSON(r, &body); err != nil {
		s.apiError(w, r, err)
		return
	}
	chk, err := s.svc.CheckContactCode(r.Context(), body.Code)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, contactCheckJSON(chk))
}

func (s *Server) apiReportMessage(w http.ResponseWriter, r *http.Request) {
	var body contactCodeBody
	if err := decodeJSON(r, &body); err != nil {
		s.apiError(w, r, err)
		return
	}
	if len(body.Code) > 64 {
		s.apiError(w, r, haven.Errorf(haven.EINVALID, "a code is eight letters and digits"))
		return
	}
	chk, err := s.svc.ReportSuspiciousMessage(r.Context(), body.Code)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := contactCheckJSON(chk)
	out["reported"] = true
	writeJSON(w, http.StatusAccepted, out)
}
