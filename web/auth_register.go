package web

import (
	"net/http"

	"haven"
	"haven/service"
)

// This file serves a patient's own registration (service/identity_register.go):
// the practice's public page /register/{practice} asks for an email
// address, and the emailed link /register/{practice}/{token} asks for the
// patient's name, date of birth and a password. The link carries its
// token in the path, as reset links do: the request log records the route
// pattern, never the path, and Referrer-Policy: no-referrer keeps it from
// other sites. Forms post same-origin only (CrossOriginProtection).

func (h *authHandlers) registerRegistrationRoutes(s *Server) {
	s.mux.HandleFunc("GET /register/{practice}", h.registerPage)
	s.mux.HandleFunc("POST /register/{practice}", h.registerRequest)
	s.mux.HandleFunc("GET /register/{practice}/{token}", h.registerLinkPage)
	s.mux.HandleFunc("POST /register/{practice}/{token}", h.registerComplete)
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
func (h *authHandlers) renderRegister(w http.ResponseWriter, r *http.Request, status int, msg string) {
	practice := r.PathValue("practice")
	name, err := h.id.RegistrationPractice(r.Context(), practice)
	if err != nil {
		h.s.authPageError(w, r, err)
		return
	}
	p := h.s.newAuthPage(r, "Create your account")
	p.Practice, p.Error = name, msg
	p.Data = registerView{PracticeID: practice}
	h.s.renderAuth(w, r, status, "auth_register.html", p)
}

func (h *authHandlers) registerPage(w http.ResponseWriter, r *http.Request) {
	h.renderRegister(w, r, http.StatusOK, "")
}

// registerRequest answers one page, with one status, whether the address
// is new, already has an account, or the practice does not take
// registrations at all: it names neither the practice nor the address.
func (h *authHandlers) registerRequest(w http.ResponseWriter, r *http.Request) {
	err := h.id.RequestRegistration(r.Context(), r.PathValue("practice"), r.PostFormValue("email"), clientFrom(r))
	if err != nil {
		code := haven.ErrorCode(err)
		if code != haven.ETOOMANY && code != haven.EINVALID {
			h.s.authPageError(w, r, err)
			return
		}
		setRetryAfter(w, err)
		h.renderRegister(w, r, statusByCode[code], haven.ErrorMessage(err))
		return
	}
	p := h.s.newAuthPage(r, "Check your email")
	p.Data = registerView{Sent: true}
	h.s.renderAuth(w, r, http.StatusOK, "auth_register.html", p)
}

// renderRegisterLink shows step 2's form, or, for a link that is no
// longer good, step 1's form again with the reason, so a new link is one
// click away.
func (h *authHandlers) renderRegisterLink(w http.ResponseWriter, r *http.Request, status int, msg string, v registerView) {
	info, err := h.id.RegistrationLinkInfo(r.Context(), r.PathValue("practice"), r.PathValue("token"), clientFrom(r))
	if err != nil {
		if haven.ErrorCode(err) == haven.ENOTFOUND {
			h.renderRegister(w, r, http.StatusNotFound, haven.ErrorMessage(err))
			return
		}
		h.s.authPageError(w, r, err)
		return
	}
	p := h.s.newAuthPage(r, "Create your account")
	p.Practice, p.Error = info.PracticeName, msg
	v.Email = info.Email
	p.Data = v
	h.s.renderAuth(w, r, status, "auth_register_link.html", p)
}

func (h *authHandlers) registerLinkPage(w http.ResponseWriter, r *http.Request) {
	h.renderRegisterLink(w, r, http.StatusOK, "", registerView{})
}

// registerComplete creates the account and continues as a sign-in does:
// into the app, or into enrolment when the practice requires MFA.
func (h *authHandlers) registerComplete(w http.ResponseWriter, r *http.Request) {
	v := registerView{Name: r.PostFormValue("name"), DOB: r.PostFormValue("date_of_birth")}
	if r.PostFormValue("password") != r.PostFormValue("confirm") {
		h.renderRegisterLink(w, r, http.StatusBadRequest, "The two passwords differ.", v)
		return
	}
	c := ensureDeviceCookie(w, r)
	res, err := h.id.CompleteRegistration(r.Context(), r.PathValue("practice"), r.PathValue("token"),
		service.SelfRegistration{Name: v.Name, DateOfBirth: v.DOB, Password: r.PostFormValue("password")}, c)
	if err != nil {
		switch haven.ErrorCode(err) {
		case haven.EINVALID:
			h.renderRegisterLink(w, r, http.StatusBadRequest, haven.ErrorMessage(err), v)
		case haven.ENOTFOUND:
			h.renderRegister(w, r, http.StatusNotFound, haven.ErrorMessage(err))
		case haven.ECONFLICT:
			p := h.s.newAuthPage(r, "You already have an account")
			p.Error = haven.ErrorMessage(err)
			h.s.renderAuth(w, r, http.StatusConflict, "auth_message.html", p)
		default:
			h.s.authPageError(w, r, err)
		}
		return
	}
	h.afterLogin(w, r, res, "/app")
}
