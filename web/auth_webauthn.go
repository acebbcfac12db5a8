package web

import (
	"encoding/json"
	"net/http"

	"haven"
	"haven/identity"
)

// This file serves passkeys and security keys (WebAuthn): the ceremony
// options a browser passes to navigator.credentials (JSON, fetched by
// static/webauthn.js), and the forms that carry the browser's answer
// back. The answer is posted as an ordinary same-origin form, so the
// page flow, cookies and error pages are those of the password sign-in.
// Nothing here checks a signature: package service does, with its own
// challenges, and the answer is only ever a credential for the one
// ceremony it was made for.

// writeOptions answers an options request: the JSON for
// navigator.credentials, or a JSON error (code "step_up" tells the page
// to send the user to step up first).
func (s *Server) writeOptions(w http.ResponseWriter, r *http.Request, opts json.RawMessage, err error) {
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(opts)
}

// passkeyLoginOptions begins a passwordless sign-in. It asks for nothing, so it
// says nothing about any account.
func (s *Server) passkeyLoginOptions(w http.ResponseWriter, r *http.Request) {
	c := ensureDeviceCookie(w, r) // the challenge is bound to this browser
	opts, err := s.passkeys.BeginPasswordless(r.Context(), c)
	s.writeOptions(w, r, opts, err)
}

// passkeyLogin finishes a passwordless sign-in. Every refusal shows the sign-in
// page with one message, whatever failed.
func (s *Server) passkeyLogin(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	res, err := s.passkeys.FinishPasswordless(r.Context(), r.PostFormValue("credential"), clientFrom(r))
	if err != nil {
		s.loginFailed(w, r, err, next)
		return
	}
	s.afterLogin(w, r, res, next)
}

func (s *Server) passkeyMFAOptions(w http.ResponseWriter, r *http.Request) {
	opts, err := s.passkeys.BeginSecondFactor(r.Context(), pendingToken(r), clientFrom(r))
	s.writeOptions(w, r, opts, err)
}

// passkeyMFA finishes the pending sign-in with a passkey, as the code form at
// /login/mfa does with a code.
func (s *Server) passkeyMFA(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	res, err := s.passkeys.SecondFactor(r.Context(), pendingToken(r), r.PostFormValue("credential"), clientFrom(r))
	if err != nil {
		code := haven.ErrorCode(err)
		if code != haven.EUNAUTHORIZED && code != haven.EINVALID && code != haven.ETOOMANY {
			s.pageError(w, r, err)
			return
		}
		if _, perr := s.id.Pending(r.Context(), pendingToken(r), clientFrom(r)); perr != nil {
			clearAuthCookie(w, PendingCookie)
			http.Redirect(w, r, "/login?ended=1", http.StatusSeeOther)
			return
		}
		status := s.errorStatus(w, r, err)
		s.renderMFA(w, r, status, haven.ErrorMessage(err), false)
		return
	}
	s.afterLogin(w, r, res, next)
}

// passkeyEnrolOptions begins registering a passkey as the first factor of the
// browser's pending sign-in (the enrolment page's other choice beside an
// authenticator app).
func (s *Server) passkeyEnrolOptions(w http.ResponseWriter, r *http.Request) {
	opts, err := s.passkeys.BeginEnrolment(r.Context(), pendingToken(r), clientFrom(r))
	s.writeOptions(w, r, opts, err)
}

// passkeyEnrol finishes that enrolment as the code form at /login/enrol does:
// recovery codes, shown once, then where the sign-in was going.
func (s *Server) passkeyEnrol(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	res, err := s.passkeys.FinishEnrolment(r.Context(), pendingToken(r), r.PostFormValue("credential"), r.PostFormValue("nickname"), clientFrom(r))
	if err != nil {
		code := haven.ErrorCode(err)
		if code != haven.EUNAUTHORIZED && code != haven.EINVALID {
			s.pageError(w, r, err)
			return
		}
		if _, perr := s.id.Pending(r.Context(), pendingToken(r), clientFrom(r)); perr != nil {
			clearAuthCookie(w, PendingCookie)
			http.Redirect(w, r, "/login?ended=1", http.StatusSeeOther)
			return
		}
		s.renderMFA(w, r, s.errorStatus(w, r, err), haven.ErrorMessage(err), false)
		return
	}
	s.afterLogin(w, r, res, next)
}

func (s *Server) passkeyStepUpOptions(w http.ResponseWriter, r *http.Request) {
	opts, err := s.passkeys.BeginStepUp(r.Context())
	s.writeOptions(w, r, opts, err)
}

// passkeyStepUp re-authenticates the session with a passkey (and the password,
// when the session was challenged).
func (s *Server) passkeyStepUp(w http.ResponseWriter, r *http.Request) {
	err := s.passkeys.StepUp(r.Context(), r.PostFormValue("password"), r.PostFormValue("credential"), clientFrom(r))
	if err != nil {
		code := haven.ErrorCode(err)
		if code == haven.EINVALID || code == haven.EUNAUTHORIZED || code == haven.ETOOMANY {
			status := s.errorStatus(w, r, err)
			s.renderStepUp(w, r, status, haven.ErrorMessage(err))
			return
		}
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// passkeysView is the passkeys page's data.
type passkeysView struct {
	Passkeys []identity.PasskeyView
	RPID     string
}

func (s *Server) passkeyList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	flash := ""
	switch {
	case q.Has("added"):
		flash = "Your passkey has been added. Every other session has been signed out."
	case q.Has("removed"):
		flash = "The passkey has been removed. Every other session has been signed out."
	}
	s.renderPasskeys(w, r, http.StatusOK, flash, "")
}

func (s *Server) renderPasskeys(w http.ResponseWriter, r *http.Request, status int, flash, msg string) {
	list, err := s.passkeys.List(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Passkeys and security keys")
	p.Flash, p.Error = flash, msg
	p.Data = passkeysView{Passkeys: list, RPID: s.passkeys.RPID()}
	s.render(w, r, status, "auth_passkeys.html", p)
}

func (s *Server) passkeyRegisterOptions(w http.ResponseWriter, r *http.Request) {
	opts, err := s.passkeys.BeginRegistration(r.Context())
	s.writeOptions(w, r, opts, err)
}

// passkeyRegister stores the passkey the browser created. It is an MFA change:
// this browser gets a new session cookie, every other session ends, and
// a first factor comes with recovery codes, shown once.
func (s *Server) passkeyRegister(w http.ResponseWriter, r *http.Request) {
	ch, err := s.passkeys.FinishRegistration(r.Context(), r.PostFormValue("credential"), r.PostFormValue("nickname"), clientFrom(r))
	if err != nil {
		if code := haven.ErrorCode(err); code == haven.EINVALID || code == haven.EUNAUTHORIZED {
			s.renderPasskeys(w, r, s.errorStatus(w, r, err), "", haven.ErrorMessage(err))
			return
		}
		s.pageError(w, r, err)
		return
	}
	setSessionCookie(w, ch.Session)
	if len(ch.RecoveryCodes) > 0 {
		s.showCodes(w, r, ch.RecoveryCodes, "/account/passkeys?added=1")
		return
	}
	http.Redirect(w, r, "/account/passkeys?added=1", http.StatusSeeOther)
}

func (s *Server) passkeyRemove(w http.ResponseWriter, r *http.Request) {
	ch, err := s.passkeys.Remove(r.Context(), r.PathValue("id"), clientFrom(r))
	if err != nil {
		if haven.ErrorCode(err) == haven.EFORBIDDEN {
			s.renderPasskeys(w, r, http.StatusForbidden, "", haven.ErrorMessage(err))
			return
		}
		s.pageError(w, r, err)
		return
	}
	setSessionCookie(w, ch.Session)
	http.Redirect(w, r, "/account/passkeys?removed=1", http.StatusSeeOther)
}
