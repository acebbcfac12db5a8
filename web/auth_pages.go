package web

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"haven"
	"haven/service"
)

// registerAuthRoutes adds identity's pages and API.
func (s *Server) registerAuthRoutes(a *authState) {
	h := &authHandlers{s: s, id: a.id}
	s.mux.HandleFunc("GET /login", h.loginPage)
	s.mux.HandleFunc("POST /login", h.login)
	s.mux.HandleFunc("POST /login/choose", h.choose)
	s.mux.HandleFunc("GET /login/mfa", h.mfaPage)
	s.mux.HandleFunc("POST /login/mfa", h.mfa)
	s.mux.HandleFunc("POST /login/enrol", h.enrol)
	s.mux.HandleFunc("GET /logout", h.logoutPage)
	s.mux.HandleFunc("POST /logout", h.logout)
	s.mux.HandleFunc("GET /reset", h.resetRequestPage)
	s.mux.HandleFunc("POST /reset", h.resetRequest)
	s.mux.HandleFunc("GET /reset/{token}", h.resetPage)
	s.mux.HandleFunc("POST /reset/{token}", h.reset)
	s.mux.HandleFunc("GET /invite/{token}", h.invitePage)
	s.mux.HandleFunc("POST /invite/{token}", h.acceptInvite)

	s.mux.HandleFunc("GET /app", h.app)
	s.mux.HandleFunc("GET /account", h.account)
	s.mux.HandleFunc("POST /account/password", h.changePassword)
	s.mux.HandleFunc("POST /account/sessions/{id}/revoke", h.revokeSession)
	s.mux.HandleFunc("POST /account/sessions/revoke-others", h.revokeOthers)
	s.mux.HandleFunc("GET /account/totp", h.totpPage)
	s.mux.HandleFunc("POST /account/totp", h.confirmTOTP)
	s.mux.HandleFunc("POST /account/totp/remove", h.removeTOTP)
	s.mux.HandleFunc("POST /account/recovery-codes", h.recoveryCodes)
	s.mux.HandleFunc("GET /account/step-up", h.stepUpPage)
	s.mux.HandleFunc("POST /account/step-up", h.stepUp)

	s.mux.HandleFunc("POST /api/v1/session", h.apiLogin)
	s.mux.HandleFunc("POST /api/v1/session/mfa", h.apiMFA)
	s.mux.HandleFunc("POST /api/v1/session/enrol", h.apiEnrol)
	s.mux.HandleFunc("POST /api/v1/session/enrol/confirm", h.apiEnrolConfirm)
	s.mux.HandleFunc("GET /api/v1/session", h.apiWhoAmI)
	s.mux.HandleFunc("DELETE /api/v1/session", h.apiLogout)
	s.mux.HandleFunc("GET /api/v1/session/status", h.apiStatus)
	s.mux.HandleFunc("POST /api/v1/session/keepalive", h.apiKeepAlive)
	s.mux.HandleFunc("POST /api/v1/session/step-up", h.apiStepUp)
	h.registerAdminRoutes(s)
	h.registerRegistrationRoutes(s) // a patient's own registration (auth_register.go)
}

type authHandlers struct {
	s  *Server
	id *service.Identity
}

// pendingToken is the browser's sign-in in progress, if any.
func pendingToken(r *http.Request) string {
	if c, err := r.Cookie(PendingCookie); err == nil {
		return c.Value
	}
	return ""
}

func (h *authHandlers) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := haven.ActorFromContext(r.Context()); ok {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	p := h.s.newAuthPage(r, "Sign in")
	p.Next = safeNext(r.URL.Query().Get("next"))
	q := r.URL.Query()
	switch {
	case q.Has("ended"):
		p.Flash = "Your session has ended. Please sign in again."
	case q.Has("signed_out"):
		p.Flash = "You have signed out."
	case q.Has("reset"):
		p.Flash = "Your password has been changed. Sign in with it now."
	}
	h.s.renderAuth(w, r, http.StatusOK, "auth_login.html", p)
}

// login checks the email and password. Every wrong answer, whether the
// email has an account or not, gets this same authPage, status and message.
func (h *authHandlers) login(w http.ResponseWriter, r *http.Request) {
	c := ensureDeviceCookie(w, r)
	next := safeNext(r.PostFormValue("next"))
	res, err := h.id.Login(r.Context(), r.PostFormValue("email"), r.PostFormValue("password"), c)
	if err != nil {
		h.loginFailed(w, r, err, next)
		return
	}
	h.afterLogin(w, r, res, next)
}

func (h *authHandlers) loginFailed(w http.ResponseWriter, r *http.Request, err error, next string) {
	code := haven.ErrorCode(err)
	if code != haven.EUNAUTHORIZED && code != haven.ETOOMANY && code != haven.EINVALID {
		h.s.authPageError(w, r, err)
		return
	}
	setRetryAfter(w, err)
	p := h.s.newAuthPage(r, "Sign in")
	p.Next = next
	p.Error = haven.ErrorMessage(err)
	h.s.renderAuth(w, r, statusByCode[code], "auth_login.html", p)
}

// afterLogin moves the browser to the sign-in's next step.
func (h *authHandlers) afterLogin(w http.ResponseWriter, r *http.Request, res *service.LoginResult, next string) {
	switch res.Stage {
	case service.StageDone:
		clearAuthCookie(w, PendingCookie)
		setSessionCookie(w, res.Session)
		if len(res.RecoveryCodes) > 0 {
			h.showCodes(w, r, res.RecoveryCodes, next)
			return
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
	case service.StageChoose:
		p := h.s.newAuthPage(r, "Choose your clinic")
		p.Next = next
		p.Data = res.Choices
		h.s.renderAuth(w, r, http.StatusOK, "auth_choose.html", p)
	default:
		setAuthCookie(w, PendingCookie, res.Pending, service.PendingLoginTTL, http.SameSiteStrictMode)
		http.Redirect(w, r, "/login/mfa?next="+url.QueryEscape(next), http.StatusSeeOther)
	}
}

func (h *authHandlers) choose(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	res, err := h.id.Continue(r.Context(), r.PostFormValue("pending"), clientFrom(r))
	if err != nil {
		h.loginFailed(w, r, err, next)
		return
	}
	if res.Stage != service.StageDone {
		res.Pending = r.PostFormValue("pending")
	}
	h.afterLogin(w, r, res, next)
}

// mfaView is the second-factor authPage's data.
type mfaView struct {
	Factors  []service.FactorKind
	Enrol    *service.TOTPEnrolment
	QR       template.URL
	Recovery bool // show the recovery-code form first
	Passkeys bool // passkeys are on: enrolment may choose one instead (auth_webauthn.go)
}

func (v mfaView) Has(k string) bool {
	for _, f := range v.Factors {
		if string(f) == k {
			return true
		}
	}
	return false
}

// SecretGroups is the secret in secretGroups of four, for typing by hand.
func (v mfaView) SecretGroups() string { return secretGroups(v.Enrol.Secret) }

func secretGroups(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (h *authHandlers) mfaPage(w http.ResponseWriter, r *http.Request) {
	h.renderMFA(w, r, http.StatusOK, "", r.URL.Query().Has("recovery"))
}

// renderMFA shows the second-factor form, or the enrolment for a user who
// must have MFA and has none.
func (h *authHandlers) renderMFA(w http.ResponseWriter, r *http.Request, status int, msg string, recovery bool) {
	ctx := r.Context()
	c := clientFrom(r)
	pending, err := h.id.Pending(ctx, pendingToken(r), c)
	if err != nil {
		clearAuthCookie(w, PendingCookie)
		http.Redirect(w, r, "/login?ended=1", http.StatusSeeOther)
		return
	}
	p := h.s.newAuthPage(r, "Confirm it is you")
	p.Next = safeNext(r.URL.Query().Get("next"))
	if v := r.PostFormValue("next"); v != "" {
		p.Next = safeNext(v)
	}
	p.Error = msg
	v := mfaView{Factors: pending.Factors, Recovery: recovery}
	if len(pending.Factors) == 0 {
		en, err := h.id.BeginPendingEnrolment(ctx, pendingToken(r), c)
		if err != nil {
			h.s.authPageError(w, r, err)
			return
		}
		if v.QR, err = qrDataURI(en.URI); err != nil {
			h.s.authPageError(w, r, err)
			return
		}
		v.Enrol = en
		_, v.Passkeys = passkeyStates.Load(h.s)
		p.Title = "Set up your second factor"
	}
	p.Data = v
	h.s.renderAuth(w, r, status, "auth_mfa.html", p)
}

func (h *authHandlers) mfa(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	kind := service.FactorKind(r.PostFormValue("kind"))
	res, err := h.id.SecondFactor(r.Context(), pendingToken(r), kind, r.PostFormValue("code"), clientFrom(r))
	if err != nil {
		code := haven.ErrorCode(err)
		if code != haven.EUNAUTHORIZED && code != haven.EINVALID && code != haven.ETOOMANY {
			h.s.authPageError(w, r, err)
			return
		}
		if _, perr := h.id.Pending(r.Context(), pendingToken(r), clientFrom(r)); perr != nil {
			// Too many wrong codes ended the sign-in: start again.
			clearAuthCookie(w, PendingCookie)
			http.Redirect(w, r, "/login?ended=1", http.StatusSeeOther)
			return
		}
		setRetryAfter(w, err)
		h.renderMFA(w, r, statusByCode[code], haven.ErrorMessage(err), kind == service.FactorRecovery)
		return
	}
	if kind == service.FactorRecovery && res.RecoveryLeft <= 3 {
		clearAuthCookie(w, PendingCookie)
		setSessionCookie(w, res.Session)
		p := h.s.newAuthPage(r, "Recovery codes running low")
		p.Next = next
		p.Flash = "You signed in with a recovery code."
		p.Data = res.RecoveryLeft
		h.s.renderAuth(w, r, http.StatusOK, "auth_low_codes.html", p)
		return
	}
	h.afterLogin(w, r, res, next)
}

func (h *authHandlers) enrol(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	res, err := h.id.ConfirmPendingEnrolment(r.Context(), pendingToken(r), r.PostFormValue("code"), clientFrom(r))
	if err != nil {
		code := haven.ErrorCode(err)
		if code != haven.EUNAUTHORIZED && code != haven.EINVALID && code != haven.ETOOMANY {
			h.s.authPageError(w, r, err)
			return
		}
		setRetryAfter(w, err)
		h.renderMFA(w, r, statusByCode[code], haven.ErrorMessage(err)+" Scan the new code below.", false)
		return
	}
	h.afterLogin(w, r, res, next)
}

// showCodes shows recovery codes, once.
func (h *authHandlers) showCodes(w http.ResponseWriter, r *http.Request, codes []string, next string) {
	p := h.s.newAuthPage(r, "Your recovery codes")
	p.Next = next
	p.Data = codes
	h.s.renderAuth(w, r, http.StatusOK, "auth_codes.html", p)
}

func (h *authHandlers) logoutPage(w http.ResponseWriter, r *http.Request) {
	h.s.renderAuth(w, r, http.StatusOK, "auth_logout.html", h.s.newAuthPage(r, "Sign out"))
}

func (h *authHandlers) logout(w http.ResponseWriter, r *http.Request) {
	if _, ok := haven.ActorFromContext(r.Context()); ok {
		if err := h.id.Logout(r.Context()); err != nil {
			h.s.authPageError(w, r, err)
			return
		}
	}
	clearAuthCookie(w, SessionCookie)
	clearAuthCookie(w, PendingCookie)
	http.Redirect(w, r, "/login?signed_out=1", http.StatusSeeOther)
}

func (h *authHandlers) resetRequestPage(w http.ResponseWriter, r *http.Request) {
	h.s.renderAuth(w, r, http.StatusOK, "auth_reset.html", h.s.newAuthPage(r, "Reset your password"))
}

// resetRequest answers the same whether or not the address has an account.
func (h *authHandlers) resetRequest(w http.ResponseWriter, r *http.Request) {
	p := h.s.newAuthPage(r, "Reset your password")
	if err := h.id.RequestPasswordReset(r.Context(), r.PostFormValue("email"), clientFrom(r)); err != nil {
		code := haven.ErrorCode(err)
		if code != haven.ETOOMANY && code != haven.EINVALID {
			h.s.authPageError(w, r, err)
			return
		}
		setRetryAfter(w, err)
		p.Error = haven.ErrorMessage(err)
		h.s.renderAuth(w, r, statusByCode[code], "auth_reset.html", p)
		return
	}
	p.Flash = "If an account uses that address, we have sent it a link to choose a new password. The link works once, within an hour."
	h.s.renderAuth(w, r, http.StatusOK, "auth_reset.html", p)
}

func (h *authHandlers) resetPage(w http.ResponseWriter, r *http.Request) {
	info, err := h.id.ResetInfo(r.Context(), r.PathValue("token"))
	if err != nil {
		h.s.authPageError(w, r, err)
		return
	}
	p := h.s.newAuthPage(r, "Choose a new password")
	p.Practice = info.PracticeName
	h.s.renderAuth(w, r, http.StatusOK, "auth_reset_new.html", p)
}

func (h *authHandlers) reset(w http.ResponseWriter, r *http.Request) {
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("confirm") {
		p := h.s.newAuthPage(r, "Choose a new password")
		p.Error = "The two passwords differ."
		h.s.renderAuth(w, r, http.StatusBadRequest, "auth_reset_new.html", p)
		return
	}
	if err := h.id.ResetPassword(r.Context(), r.PathValue("token"), pw, clientFrom(r)); err != nil {
		if haven.ErrorCode(err) == haven.EINVALID {
			p := h.s.newAuthPage(r, "Choose a new password")
			p.Error = haven.ErrorMessage(err)
			h.s.renderAuth(w, r, http.StatusBadRequest, "auth_reset_new.html", p)
			return
		}
		h.s.authPageError(w, r, err)
		return
	}
	clearAuthCookie(w, SessionCookie)
	http.Redirect(w, r, "/login?reset=1", http.StatusSeeOther)
}

func (h *authHandlers) invitePage(w http.ResponseWriter, r *http.Request) {
	info, err := h.id.InvitationInfo(r.Context(), r.PathValue("token"))
	if err != nil {
		h.s.authPageError(w, r, err)
		return
	}
	p := h.s.newAuthPage(r, "Join "+info.PracticeName)
	p.Data = info
	h.s.renderAuth(w, r, http.StatusOK, "auth_invite.html", p)
}

func (h *authHandlers) acceptInvite(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token := r.PathValue("token")
	fail := func(status int, msg string) {
		info, err := h.id.InvitationInfo(ctx, token)
		if err != nil {
			h.s.authPageError(w, r, err)
			return
		}
		p := h.s.newAuthPage(r, "Join "+info.PracticeName)
		p.Data = info
		p.Error = msg
		h.s.renderAuth(w, r, status, "auth_invite.html", p)
	}
	if r.PostFormValue("password") != r.PostFormValue("confirm") {
		fail(http.StatusBadRequest, "The two passwords differ.")
		return
	}
	c := ensureDeviceCookie(w, r)
	res, err := h.id.AcceptInvitation(ctx, token, r.PostFormValue("name"), r.PostFormValue("password"), c)
	if err != nil {
		if haven.ErrorCode(err) == haven.EINVALID {
			fail(http.StatusBadRequest, haven.ErrorMessage(err))
			return
		}
		h.s.authPageError(w, r, err)
		return
	}
	h.afterLogin(w, r, res, "/app")
}
