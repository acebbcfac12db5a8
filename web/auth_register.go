package web

import (
	"net/http"

	"haven"
	"haven/identity"
)

// This file serves a patient's own registration (identity/registration.go):
// the practice's public page /register/{practice} asks for an email
// address, and the emailed link /register/{practice}/{token} asks for the
// patient's name, date of birth and a password. The link carries its
// token in the path, as reset links do: the request log records the route
// pattern, never the path, and Referrer-Policy: no-referrer keeps it from
// other sites. Forms post same-origin only (CrossOriginProtection).

// registerList is the public list of the clinics that take registrations
// online, linked from the front page and the sign-in page.
func (s *Server) registerList(w http.ResponseWriter, r *http.Request) {
	open, err := s.id.RegistrationPractices(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Create an account")
	p.Data = open
	s.render(w, r, http.StatusOK, "auth_register_list.html", p)
}

// registerView is the registration pages' data.
type registerView struct {
	PracticeID string
	Sent       bool   // step 1 answered: "check your email"
	Email      string // step 2: the address the link was sent to
	Name       string // step 2, kept when the form is shown again
	DOB        string
}

// renderRegister shows step 1's form for an open practice (with msg as
// its error), or the page that says registration is not open here.
func (s *Server) renderRegister(w http.ResponseWriter, r *http.Request, status int, msg string) {
	practice := r.PathValue("practice")
	name, err := s.id.RegistrationPractice(r.Context(), practice)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Create your account")
	p.Practice, p.Error = name, msg
	p.Data = registerView{PracticeID: practice}
	s.render(w, r, status, "auth_register.html", p)
}

func (s *Server) registerPage(w http.ResponseWriter, r *http.Request) {
	s.renderRegister(w, r, http.StatusOK, "")
}

// registerRequest answers one page, with one status, whether the address
// is new, already has an account, or the practice does not take
// registrations at all: it names neither the practice nor the address.
func (s *Server) registerRequest(w http.ResponseWriter, r *http.Request) {
	err := s.id.RequestRegistration(r.Context(), r.PathValue("practice"), r.PostFormValue("email"), clientFrom(r))
	if err != nil {
		code := haven.ErrorCode(err)
		if code != haven.ETOOMANY && code != haven.EINVALID {
			s.pageError(w, r, err)
			return
		}
		status := s.errorStatus(w, r, err)
		s.renderRegister(w, r, status, haven.ErrorMessage(err))
		return
	}
	p := s.newPage(r, "Check your email")
	p.Data = registerView{Sent: true}
	s.render(w, r, http.StatusOK, "auth_register.html", p)
}

// renderRegisterLink shows step 2's form, or, for a link that is no
// longer good, step 1's form again with the reason, so a new link is one
// click away.
func (s *Server) renderRegisterLink(w http.ResponseWriter, r *http.Request, status int, msg string, v registerView) {
	info, err := s.id.RegistrationLinkInfo(r.Context(), r.PathValue("practice"), r.PathValue("token"), clientFrom(r))
	if err != nil {
		if haven.ErrorCode(err) == haven.ENOTFOUND {
			s.renderRegister(w, r, http.StatusNotFound, haven.ErrorMessage(err))
			return
		}
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Create your account")
	p.Practice, p.Error = info.PracticeName, msg
	v.Email = info.Email
	p.Data = v
	s.render(w, r, status, "auth_register_link.html", p)
}

func (s *Server) registerLinkPage(w http.ResponseWriter, r *http.Request) {
	s.renderRegisterLink(w, r, http.StatusOK, "", registerView{})
}

// registerComplete creates the account and continues as a sign-in does:
// into the app, or into enrolment when the practice requires MFA.
func (s *Server) registerComplete(w http.ResponseWriter, r *http.Request) {
	v := registerView{Name: r.PostFormValue("name"), DOB: r.PostFormValue("date_of_birth")}
	if r.PostFormValue("password") != r.PostFormValue("confirm") {
		s.renderRegisterLink(w, r, http.StatusBadRequest, "The two passwords differ.", v)
		return
	}
	c := ensureDeviceCookie(w, r)
	res, err := s.id.CompleteRegistration(r.Context(), r.PathValue("practice"), r.PathValue("token"),
		identity.SelfRegistration{Name: v.Name, DateOfBirth: v.DOB, Password: r.PostFormValue("password")}, c)
	if err != nil {
		switch haven.ErrorCode(err) {
		case haven.EINVALID:
			s.renderRegisterLink(w, r, http.StatusBadRequest, haven.ErrorMessage(err), v)
		case haven.ENOTFOUND:
			s.renderRegister(w, r, http.StatusNotFound, haven.ErrorMessage(err))
		case haven.ECONFLICT:
			p := s.newPage(r, "You already have an account")
			p.Error = haven.ErrorMessage(err)
			s.render(w, r, http.StatusConflict, "message.html", p)
		default:
			s.pageError(w, r, err)
		}
		return
	}
	s.afterLogin(w, r, res, "/app")
}
