package web

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"haven"
	"haven/identity"
)

// pendingToken is the browser's sign-in in progress, if any.
func pendingToken(r *http.Request) string {
	if c, err := r.Cookie(PendingCookie); err == nil {
		return c.Value
	}
	return ""
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := haven.ActorFromContext(r.Context()); ok {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	p := s.newPage(r, "Sign in")
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
	s.render(w, r, http.StatusOK, "auth_login.html", p)
}

// login checks the email and password. Every wrong answer, whether the
// email has an account or not, gets this same page, status and message.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	c := ensureDeviceCookie(w, r)
	next := safeNext(r.PostFormValue("next"))
	res, err := s.id.Login(r.Context(), r.PostFormValue("email"), r.PostFormValue("password"), c)
	if err != nil {
		s.loginFailed(w, r, err, next)
		return
	}
	s.afterLogin(w, r, res, next)
}

func (s *Server) loginFailed(w http.ResponseWriter, r *http.Request, err error, next string) {
	code := haven.ErrorCode(err)
	if code != haven.EUNAUTHORIZED && code != haven.ETOOMANY && code != haven.EINVALID {
		s.pageError(w, r, err)
		return
	}
	status := s.errorStatus(w, r, err)
	p := s.newPage(r, "Sign in")
	p.Next = next
	p.Error = haven.ErrorMessage(err)
	s.render(w, r, status, "auth_login.html", p)
}

// afterLogin moves the browser to the sign-in's next step.
func (s *Server) afterLogin(w http.ResponseWriter, r *http.Request, res *identity.LoginResult, next string) {
	switch res.Stage {
	case identity.StageDone:
		clearAuthCookie(w, PendingCookie)
		setSessionCookie(w, res.Session)
		if len(res.RecoveryCodes) > 0 {
			s.showCodes(w, r, res.RecoveryCodes, next)
			return
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
	case identity.StageChoose:
		p := s.newPage(r, "Choose your clinic")
		p.Next = next
		p.Data = res.Choices
		s.render(w, r, http.StatusOK, "auth_choose.html", p)
	default:
		setAuthCookie(w, PendingCookie, res.Pending, identity.PendingLoginTTL, http.SameSiteStrictMode)
		http.Redirect(w, r, "/login/mfa?next="+url.QueryEscape(next), http.StatusSeeOther)
	}
}

func (s *Server) choose(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	res, err := s.id.Continue(r.Context(), r.PostFormValue("pending"), clientFrom(r))
	if err != nil {
		s.loginFailed(w, r, err, next)
		return
	}
	if res.Stage != identity.StageDone {
		res.Pending = r.PostFormValue("pending")
	}
	s.afterLogin(w, r, res, next)
}

// mfaView is the second-factor page's data.
type mfaView struct {
	Factors  []identity.FactorKind
	Enrol    *identity.TOTPEnrolment
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

func (s *Server) mfaPage(w http.ResponseWriter, r *http.Request) {
	s.renderMFA(w, r, http.StatusOK, "", r.URL.Query().Has("recovery"))
}

// renderMFA shows the second-factor form, or the enrolment for a user who
// must have MFA and has none.
func (s *Server) renderMFA(w http.ResponseWriter, r *http.Request, status int, msg string, recovery bool) {
	ctx := r.Context()
	c := clientFrom(r)
	pending, err := s.id.Pending(ctx, pendingToken(r), c)
	if err != nil {
		clearAuthCookie(w, PendingCookie)
		http.Redirect(w, r, "/login?ended=1", http.StatusSeeOther)
		return
	}
	p := s.newPage(r, "Confirm it is you")
	p.Next = safeNext(r.URL.Query().Get("next"))
	if v := r.PostFormValue("next"); v != "" {
		p.Next = safeNext(v)
	}
	p.Error = msg
	v := mfaView{Factors: pending.Factors, Recovery: recovery}
	if len(pending.Factors) == 0 {
		en, err := s.id.BeginPendingEnrolment(ctx, pendingToken(r), c, enrolBinding(r))
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		s.keepEnrolment(w, en)
		if v.QR, err = qrDataURI(en.URI); err != nil {
			s.pageError(w, r, err)
			return
		}
		v.Enrol = en
		v.Passkeys = s.passkeys != nil
		p.Title = "Set up your second factor"
	}
	p.Data = v
	s.render(w, r, status, "auth_mfa.html", p)
}

func (s *Server) mfa(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	kind := identity.FactorKind(r.PostFormValue("kind"))
	res, err := s.id.SecondFactor(r.Context(), pendingToken(r), kind, r.PostFormValue("code"), clientFrom(r))
	if err != nil {
		code := haven.ErrorCode(err)
		if code != haven.EUNAUTHORIZED && code != haven.EINVALID && code != haven.ETOOMANY {
			s.pageError(w, r, err)
			return
		}
		if _, perr := s.id.Pending(r.Context(), pendingToken(r), clientFrom(r)); perr != nil {
			// Too many wrong codes ended the sign-in: start again.
			clearAuthCookie(w, PendingCookie)
			http.Redirect(w, r, "/login?ended=1", http.StatusSeeOther)
			return
		}
		status := s.errorStatus(w, r, err)
		s.renderMFA(w, r, status, haven.ErrorMessage(err), kind == identity.FactorRecovery)
		return
	}
	if kind == identity.FactorRecovery && res.RecoveryLeft <= 3 {
		clearAuthCookie(w, PendingCookie)
		setSessionCookie(w, res.Session)
		p := s.newPage(r, "Recovery codes running low")
		p.Next = next
		p.Flash = "You signed in with a recovery code."
		p.Data = res.RecoveryLeft
		s.render(w, r, http.StatusOK, "auth_low_codes.html", p)
		return
	}
	s.afterLogin(w, r, res, next)
}

func (s *Server) enrol(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	res, err := s.id.ConfirmPendingEnrolment(r.Context(), pendingToken(r), r.PostFormValue("code"), clientFrom(r))
	if err != nil {
		code := haven.ErrorCode(err)
		if code != haven.EUNAUTHORIZED && code != haven.EINVALID && code != haven.ETOOMANY {
			s.pageError(w, r, err)
			return
		}
		status := s.errorStatus(w, r, err)
		s.renderMFA(w, r, status, haven.ErrorMessage(err)+" The key below has not changed: check the code your app shows now and try again.", false)
		return
	}
	clearAuthCookie(w, TOTPEnrolCookie)
	s.afterLogin(w, r, res, next)
}

// codesView is the recovery codes page's data: the codes, one a line,
// and the same as a text file to download (a data: URL made here, so the
// codes never travel again).
type codesView struct {
	Codes    []string
	Download template.URL
}

// showCodes shows recovery codes, once.
func (s *Server) showCodes(w http.ResponseWriter, r *http.Request, codes []string, next string) {
	p := s.newPage(r, "Your recovery codes")
	p.Next = next
	file := "Haven recovery codes. Each signs you in once if you lose your authenticator.\n\n" + strings.Join(codes, "\n") + "\n"
	p.Data = codesView{Codes: codes, Download: template.URL("data:text/plain;charset=utf-8," + url.PathEscape(file))}
	s.render(w, r, http.StatusOK, "auth_codes.html", p)
}

func (s *Server) logoutPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "auth_logout.html", s.newPage(r, "Sign out"))
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if _, ok := haven.ActorFromContext(r.Context()); ok {
		if err := s.id.Logout(r.Context()); err != nil {
			s.pageError(w, r, err)
			return
		}
	}
	clearAuthCookie(w, SessionCookie)
	clearAuthCookie(w, PendingCookie)
	http.Redirect(w, r, "/login?signed_out=1", http.StatusSeeOther)
}

func (s *Server) resetRequestPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "auth_reset.html", s.newPage(r, "Reset your password"))
}

// resetRequest answers the same whether or not the address has an account.
func (s *Server) resetRequest(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Reset your password")
	if err := s.id.RequestPasswordReset(r.Context(), r.PostFormValue("email"), clientFrom(r)); err != nil {
		code := haven.ErrorCode(err)
		if code != haven.ETOOMANY && code != haven.EINVALID {
			s.pageError(w, r, err)
			return
		}
		status := s.errorStatus(w, r, err)
		p.Error = haven.ErrorMessage(err)
		s.render(w, r, status, "auth_reset.html", p)
		return
	}
	p.Flash = "If an account uses that address, we have sent it a link to choose a new password. The link works once, within an hour."
	s.render(w, r, http.StatusOK, "auth_reset.html", p)
}

func (s *Server) resetPage(w http.ResponseWriter, r *http.Request) {
	info, err := s.id.ResetInfo(r.Context(), r.PathValue("token"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Choose a new password")
	p.Practice = info.PracticeName
	s.render(w, r, http.StatusOK, "auth_reset_new.html", p)
}

func (s *Server) reset(w http.ResponseWriter, r *http.Request) {
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("confirm") {
		p := s.newPage(r, "Choose a new password")
		p.Error = "The two passwords differ."
		s.render(w, r, http.StatusBadRequest, "auth_reset_new.html", p)
		return
	}
	if err := s.id.ResetPassword(r.Context(), r.PathValue("token"), pw, clientFrom(r)); err != nil {
		if haven.ErrorCode(err) == haven.EINVALID {
			p := s.newPage(r, "Choose a new password")
			p.Error = haven.ErrorMessage(err)
			s.render(w, r, http.StatusBadRequest, "auth_reset_new.html", p)
			return
		}
		s.pageError(w, r, err)
		return
	}
	clearAuthCookie(w, SessionCookie)
	http.Redirect(w, r, "/login?reset=1", http.StatusSeeOther)
}

func (s *Server) invitePage(w http.ResponseWriter, r *http.Request) {
	info, err := s.id.InvitationInfo(r.Context(), r.PathValue("token"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Join "+info.PracticeName)
	p.Data = info
	s.render(w, r, http.StatusOK, "auth_invite.html", p)
}

func (s *Server) acceptInvite(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token := r.PathValue("token")
	fail := func(status int, msg string) {
		info, err := s.id.InvitationInfo(ctx, token)
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		p := s.newPage(r, "Join "+info.PracticeName)
		p.Data = info
		p.Error = msg
		s.render(w, r, status, "auth_invite.html", p)
	}
	if r.PostFormValue("password") != r.PostFormValue("confirm") {
		fail(http.StatusBadRequest, "The two passwords differ.")
		return
	}
	c := ensureDeviceCookie(w, r)
	res, err := s.id.AcceptInvitation(ctx, token, r.PostFormValue("name"), r.PostFormValue("password"), c)
	if err != nil {
		if haven.ErrorCode(err) == haven.EINVALID {
			fail(http.StatusBadRequest, haven.ErrorMessage(err))
			return
		}
		s.pageError(w, r, err)
		return
	}
	s.afterLogin(w, r, res, "/app")
}
