package web

import (
	"encoding/json"
	"net/http"
	"sync"

	"haven"
	"haven/service"
)

// This file serves passkeys and security keys (WebAuthn): the ceremony
// options a browser passes to navigator.credentials (JSON, fetched by
// static/webauthn.js), and the forms that carry the browser's answer
// back. The answer is posted as an ordinary same-origin form, so the
// page flow, cookies and error pages are those of the password sign-in.
// Nothing here checks a signature: package service does, with its own
// challenges, and the answer is only ever a credential for the one
// ceremony it was made for.

// passkeyStates maps each Server to its passkey service, beside
// identities (auth.go).
var passkeyStates sync.Map // *Server → *passkeyHandlers

type passkeyHandlers struct {
	s    *Server
	p    *service.Passkeys
	auth *authHandlers
}

// UsePasskeys turns on passkeys: registration and removal at
// /account/passkeys, "Sign in with a passkey" at /login, a passkey as the
// second factor at /login/mfa and at step-up. UseIdentity must come first.
func (s *Server) UsePasskeys(p *service.Passkeys) {
	a := s.identity()
	if a == nil {
		panic("web: UsePasskeys needs UseIdentity first")
	}
	h := &passkeyHandlers{s: s, p: p, auth: &authHandlers{s: s, id: a.id}}
	passkeyStates.Store(s, h)
	s.mux.HandleFunc("POST /login/passkey/options", h.loginOptions)
	s.mux.HandleFunc("POST /login/passkey", h.login)
	s.mux.HandleFunc("POST /login/mfa/webauthn/options", h.mfaOptions)
	s.mux.HandleFunc("POST /login/mfa/webauthn", h.mfa)
	s.mux.HandleFunc("POST /login/enrol/passkey/options", h.enrolOptions)
	s.mux.HandleFunc("POST /login/enrol/passkey", h.enrol)
	s.mux.HandleFunc("POST /account/step-up/webauthn/options", h.stepUpOptions)
	s.mux.HandleFunc("POST /account/step-up/webauthn", h.stepUp)
	s.mux.HandleFunc("GET /account/passkeys", h.list)
	s.mux.HandleFunc("POST /account/passkeys/options", h.registerOptions)
	s.mux.HandleFunc("POST /account/passkeys", h.register)
	s.mux.HandleFunc("POST /account/passkeys/{id}/remove", h.remove)
}

// usePasskeysAt turns passkeys on for the public URL browsers use, or
// says in the log why they stay off (an IP address cannot scope a
// passkey; a host name such as localhost can).
func (s *Server) usePasskeysAt(id *service.Identity, publicURL string) {
	p, err := service.NewPasskeys(id, service.PasskeyConfig{PublicURL: publicURL})
	if err != nil {
		s.Logger.Warn("passkeys are off", "reason", haven.ErrorMessage(err))
		return
	}
	s.UsePasskeys(p)
}

// writeOptions answers an options request: the JSON for
// navigator.credentials, or a JSON error (code "step_up" tells the page
// to send the user to step up first).
func (h *passkeyHandlers) writeOptions(w http.ResponseWriter, r *http.Request, opts json.RawMessage, err error) {
	if err != nil {
		code := haven.ErrorCode(err)
		status, ok := statusByCode[code]
		if !ok {
			status = http.StatusInternalServerError
		}
		if status >= 500 {
			h.s.Logger.Error("passkey options", "request_id", RequestID(r.Context()), "code", code, "err", err)
		}
		setRetryAfter(w, err)
		writeError(w, r, &code, status, haven.ErrorMessage(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(opts)
}

// loginOptions begins a passwordless sign-in. It asks for nothing, so it
// says nothing about any account.
func (h *passkeyHandlers) loginOptions(w http.ResponseWriter, r *http.Request) {
	c := ensureDeviceCookie(w, r) // the challenge is bound to this browser
	opts, err := h.p.BeginPasswordless(r.Context(), c)
	h.writeOptions(w, r, opts, err)
}

// login finishes a passwordless sign-in. Every refusal shows the sign-in
// page with one message, whatever failed.
func (h *passkeyHandlers) login(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	res, err := h.p.FinishPasswordless(r.Context(), r.PostFormValue("credential"), clientFrom(r))
	if err != nil {
		h.auth.loginFailed(w, r, err, next)
		return
	}
	h.auth.afterLogin(w, r, res, next)
}

func (h *passkeyHandlers) mfaOptions(w http.ResponseWriter, r *http.Request) {
	opts, err := h.p.BeginSecondFactor(r.Context(), pendingToken(r), clientFrom(r))
	h.writeOptions(w, r, opts, err)
}

// mfa finishes the pending sign-in with a passkey, as the code form at
// /login/mfa does with a code.
func (h *passkeyHandlers) mfa(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	res, err := h.p.SecondFactor(r.Context(), pendingToken(r), r.PostFormValue("credential"), clientFrom(r))
	if err != nil {
		code := haven.ErrorCode(err)
		if code != haven.EUNAUTHORIZED && code != haven.EINVALID && code != haven.ETOOMANY {
			h.s.authPageError(w, r, err)
			return
		}
		if _, perr := h.auth.id.Pending(r.Context(), pendingToken(r), clientFrom(r)); perr != nil {
			clearAuthCookie(w, PendingCookie)
			http.Redirect(w, r, "/login?ended=1", http.StatusSeeOther)
			return
		}
		setRetryAfter(w, err)
		h.auth.renderMFA(w, r, statusByCode[code], haven.ErrorMessage(err), false)
		return
	}
	h.auth.afterLogin(w, r, res, next)
}

// enrolOptions begins registering a passkey as the first factor of the
// browser's pending sign-in (the enrolment page's other choice beside an
// authenticator app).
func (h *passkeyHandlers) enrolOptions(w http.ResponseWriter, r *http.Request) {
	opts, err := h.p.BeginEnrolment(r.Context(), pendingToken(r), clientFrom(r))
	h.writeOptions(w, r, opts, err)
}

// enrol finishes that enrolment as the code form at /login/enrol does:
// recovery codes, shown once, then where the sign-in was going.
func (h *passkeyHandlers) enrol(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	res, err := h.p.FinishEnrolment(r.Context(), pendingToken(r), r.PostFormValue("credential"), r.PostFormValue("nickname"), clientFrom(r))
	if err != nil {
		code := haven.ErrorCode(err)
		if code != haven.EUNAUTHORIZED && code != haven.EINVALID {
			h.s.authPageError(w, r, err)
			return
		}
		if _, perr := h.auth.id.Pending(r.Context(), pendingToken(r), clientFrom(r)); perr != nil {
			clearAuthCookie(w, PendingCookie)
			http.Redirect(w, r, "/login?ended=1", http.StatusSeeOther)
			return
		}
		h.auth.renderMFA(w, r, statusByCode[code], haven.ErrorMessage(err), false)
		return
	}
	h.auth.afterLogin(w, r, res, next)
}

func (h *passkeyHandlers) stepUpOptions(w http.ResponseWriter, r *http.Request) {
	if _, ok := haven.ActorFromContext(r.Context()); !ok {
		h.writeOptions(w, r, nil, haven.Errorf(haven.EUNAUTHORIZED, "please sign in"))
		return
	}
	opts, err := h.p.BeginStepUp(r.Context())
	h.writeOptions(w, r, opts, err)
}

// stepUp re-authenticates the session with a passkey (and the password,
// when the session was challenged).
func (h *passkeyHandlers) stepUp(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.s.requireSignIn(w, r); !ok {
		return
	}
	err := h.p.StepUp(r.Context(), r.PostFormValue("password"), r.PostFormValue("credential"), clientFrom(r))
	if err != nil {
		code := haven.ErrorCode(err)
		if code == haven.EINVALID || code == haven.EUNAUTHORIZED || code == haven.ETOOMANY {
			setRetryAfter(w, err)
			h.auth.renderStepUp(w, r, statusByCode[code], haven.ErrorMessage(err))
			return
		}
		h.s.authPageError(w, r, err)
		return
	}
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// passkeysView is the passkeys page's data.
type passkeysView struct {
	Passkeys []service.PasskeyView
	RPID     string
}

func (h *passkeyHandlers) list(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.s.requireSignIn(w, r); !ok {
		return
	}
	q := r.URL.Query()
	flash := ""
	switch {
	case q.Has("added"):
		flash = "Your passkey has been added. Every other session has been signed out."
	case q.Has("removed"):
		flash = "The passkey has been removed. Every other session has been signed out."
	}
	h.renderList(w, r, http.StatusOK, flash, "")
}

func (h *passkeyHandlers) renderList(w http.ResponseWriter, r *http.Request, status int, flash, msg string) {
	list, err := h.p.List(r.Context())
	if err != nil {
		h.s.authPageError(w, r, err)
		return
	}
	p := h.s.newAuthPage(r, "Passkeys and security keys")
	p.Flash, p.Error = flash, msg
	p.Data = passkeysView{Passkeys: list, RPID: h.p.RPID()}
	h.s.renderAuth(w, r, status, "auth_passkeys.html", p)
}

func (h *passkeyHandlers) registerOptions(w http.ResponseWriter, r *http.Request) {
	if _, ok := haven.ActorFromContext(r.Context()); !ok {
		h.writeOptions(w, r, nil, haven.Errorf(haven.EUNAUTHORIZED, "please sign in"))
		return
	}
	opts, err := h.p.BeginRegistration(r.Context())
	h.writeOptions(w, r, opts, err)
}

// register stores the passkey the browser created. It is an MFA change:
// this browser gets a new session cookie, every other session ends, and
// a first factor comes with recovery codes, shown once.
func (h *passkeyHandlers) register(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.s.requireSignIn(w, r); !ok {
		return
	}
	ch, err := h.p.FinishRegistration(r.Context(), r.PostFormValue("credential"), r.PostFormValue("nickname"), clientFrom(r))
	if err != nil {
		if code := haven.ErrorCode(err); code == haven.EINVALID || code == haven.EUNAUTHORIZED {
			h.renderList(w, r, statusByCode[code], "", haven.ErrorMessage(err))
			return
		}
		h.s.authPageError(w, r, err)
		return
	}
	setSessionCookie(w, ch.Session)
	if len(ch.RecoveryCodes) > 0 {
		h.auth.showCodes(w, r, ch.RecoveryCodes, "/account/passkeys?added=1")
		return
	}
	http.Redirect(w, r, "/account/passkeys?added=1", http.StatusSeeOther)
}

func (h *passkeyHandlers) remove(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.s.requireSignIn(w, r); !ok {
		return
	}
	ch, err := h.p.Remove(r.Context(), r.PathValue("id"), clientFrom(r))
	if err != nil {
		if haven.ErrorCode(err) == haven.EFORBIDDEN {
			h.renderList(w, r, http.StatusForbidden, "", haven.ErrorMessage(err))
			return
		}
		h.s.authPageError(w, r, err)
		return
	}
	setSessionCookie(w, ch.Session)
	http.Redirect(w, r, "/account/passkeys?removed=1", http.StatusSeeOther)
}
