package web

import (
	"io"
	"net/http"
	"net/url"
	"time"

	"haven"
)

// A lab's results interface on the admin's pages: how the lab is
// recognised when it sends results (its client certificate for MLLP over
// mutual TLS, an integration token for POST /api/v1/hl7), what is
// registered now, and revoking either. Changes need the admin's recent
// step-up, as the vendor registry's do; the token is shown once, on the
// answer to the form that made it, and never kept.

// maxCertUpload bounds the certificate form: a PEM certificate is a few
// kilobytes.
const maxCertUpload = 64 << 10

// labInterfaceView is the page's data.
type labInterfaceView struct {
	Lab         *haven.Vendor
	Interface   *haven.LabInterface
	CertExpired bool
	Token       string // the token just made, shown this once
	FormToken   string
	HL7URL      string
}

var labInterfaceFlash = map[string]string{
	"cert":    "The lab's certificate is registered.",
	"revoked": "Revoked. The lab is no longer recognised that way.",
}

func labInterfacePath(id string) string {
	return "/app/admin/labs/" + url.PathEscape(id) + "/interface"
}

func (s *Server) pageLabInterface(w http.ResponseWriter, r *http.Request) {
	flash := labInterfaceFlash[r.URL.Query().Get("done")]
	if flash == "" && r.URL.Query().Get("confirm") != "" {
		flash = "You have confirmed it is you. Send the form again."
	}
	s.renderLabInterface(w, r, http.StatusOK, flash, "", "")
}

func (s *Server) renderLabInterface(w http.ResponseWriter, r *http.Request, status int, flash, msg, token string) {
	lab, li, err := s.svc.LabInterface(r.Context(), r.PathValue("id"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v := labInterfaceView{Lab: lab, Interface: li, Token: token, FormToken: formToken(w, r),
		CertExpired: !li.CertExpires.IsZero() && li.CertExpires.Before(time.Now()),
		HL7URL:      "https://" + r.Host + "/api/v1/hl7"}
	p := s.newPage(r, "Results interface: "+lab.Name)
	p.Flash, p.Error, p.Data = flash, msg, v
	s.render(w, r, status, "admin_lab_interface.html", p)
}

// pageSetLabInterface registers the certificate pasted or uploaded and/or
// makes a new token.
func (s *Server) pageSetLabInterface(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxCertUpload)
	if err := r.ParseMultipartForm(maxCertUpload); err != nil && err != http.ErrNotMultipart {
		s.renderLabInterface(w, r, http.StatusBadRequest, "", "The certificate is too large: a lab's certificate is a few kilobytes of text.", "")
		return
	}
	if !s.checkFormToken(w, r) {
		return
	}
	pemText := r.PostFormValue("certificate")
	if f, _, err := r.FormFile("certificate_file"); err == nil {
		b, err := io.ReadAll(io.LimitReader(f, maxCertUpload))
		f.Close()
		if err == nil && len(b) > 0 {
			pemText = string(b)
		}
	}
	token, err := s.svc.SetLabInterface(r.Context(), r.PathValue("id"), pemText, r.PostFormValue("token") != "")
	if err == nil && token != "" {
		// The one time the token is seen: answered here, not redirected to.
		s.renderLabInterface(w, r, http.StatusOK, "The token is made. Copy it now: it is not shown again.", "", token)
		return
	}
	s.labInterfaceAnswer(w, r, err, "cert")
}

func (s *Server) pageRevokeLabInterface(w http.ResponseWriter, r *http.Request) {
	if !s.checkFormToken(w, r) {
		return
	}
	what := r.PostFormValue("what")
	err := s.svc.RevokeLabInterface(r.Context(), r.PathValue("id"), what == "certificate", what == "token")
	s.labInterfaceAnswer(w, r, err, "revoked")
}

func (s *Server) labInterfaceAnswer(w http.ResponseWriter, r *http.Request, err error, done string) {
	back := labInterfacePath(r.PathValue("id"))
	switch haven.ErrorCode(err) {
	case "":
		http.Redirect(w, r, back+"?done="+done, http.StatusSeeOther)
	case haven.ESTEPUP:
		// Through the step-up and back to the form, to send it again: a
		// GET never changes the interface.
		http.Redirect(w, r, "/account/step-up?next="+url.QueryEscape(back+"?confirm=1"), http.StatusSeeOther)
	case haven.EINVALID, haven.ECONFLICT:
		s.renderLabInterface(w, r, s.errorStatus(w, r, err), "", haven.ErrorMessage(err), "")
	default:
		s.pageError(w, r, err)
	}
}
