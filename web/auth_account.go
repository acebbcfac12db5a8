package web

import (
	"bytes"
	"encoding/base64"
	"html/template"
	"image/png"
	"net/http"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"

	"haven"
	"haven/identity"
	"haven/service"
)

// qrDataURI draws an otpauth URI as a PNG QR code, inline as a data: URL.
// It is drawn here, on the server: the URI holds the TOTP secret, so it
// must never be sent to a QR-drawing service or appear in a URL.
func qrDataURI(uri string) (template.URL, error) {
	code, err := qr.Encode(uri, qr.M, qr.Auto)
	if err != nil {
		return "", haven.Wrap(haven.EINTERNAL, err, "cannot draw the QR code")
	}
	side := code.Bounds().Dx() * 6
	scaled, err := barcode.Scale(code, side, side)
	if err != nil {
		return "", haven.Wrap(haven.EINTERNAL, err, "cannot draw the QR code")
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, scaled); err != nil {
		return "", haven.Wrap(haven.EINTERNAL, err, "cannot draw the QR code")
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())), nil
}

// accountView is the account page's data.
type accountView struct {
	Profile  *service.UserProfile
	Who      *identity.WhoAmI
	Sessions []identity.SessionView
	TOTP     bool
	Codes    bool
}

func (s *Server) account(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	flash := ""
	switch {
	case q.Has("password"):
		flash = "Your password has been changed. Every other session has been signed out."
	case q.Has("revoked"):
		flash = "The session has been signed out."
	case q.Has("totp_removed"):
		flash = "Your authenticator has been removed. Every other session has been signed out."
	}
	s.renderAccount(w, r, http.StatusOK, flash, "")
}

func (s *Server) renderAccount(w http.ResponseWriter, r *http.Request, status int, flash, msg string) {
	ctx := r.Context()
	v := accountView{}
	var err error
	if v.Who, err = s.id.Who(ctx); err != nil {
		s.pageError(w, r, err)
		return
	}
	if v.Profile, err = s.id.Profile(ctx); err != nil {
		s.pageError(w, r, err)
		return
	}
	if v.Sessions, err = s.id.Sessions(ctx); err != nil {
		s.pageError(w, r, err)
		return
	}
	for _, f := range v.Who.Factors {
		v.TOTP = v.TOTP || f == identity.FactorTOTP
		v.Codes = v.Codes || f == identity.FactorRecovery
	}
	p := s.newPage(r, "Your account")
	p.Practice = v.Who.PracticeName
	p.Flash, p.Error = flash, msg
	p.Data = v
	s.render(w, r, status, "account.html", p)
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) {
	next := r.PostFormValue("new_password")
	if next != r.PostFormValue("confirm") {
		s.renderAccount(w, r, http.StatusBadRequest, "", "The two new passwords differ.")
		return
	}
	ns, err := s.id.ChangePassword(r.Context(), r.PostFormValue("current_password"), next, clientFrom(r))
	if err != nil {
		code := haven.ErrorCode(err)
		if code == haven.EINVALID || code == haven.EUNAUTHORIZED || code == haven.ETOOMANY {
			status := s.errorStatus(w, r, err)
			s.renderAccount(w, r, status, "", haven.ErrorMessage(err))
			return
		}
		s.pageError(w, r, err)
		return
	}
	setSessionCookie(w, ns)
	http.Redirect(w, r, "/account?password=1", http.StatusSeeOther)
}

func (s *Server) revokeSession(w http.ResponseWriter, r *http.Request) {
	if err := s.id.RevokeSession(r.Context(), r.PathValue("id")); err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account?revoked=1", http.StatusSeeOther)
}

func (s *Server) revokeOthers(w http.ResponseWriter, r *http.Request) {
	if _, err := s.id.RevokeOtherSessions(r.Context()); err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account?revoked=1", http.StatusSeeOther)
}

// totpView is the enrolment page's data.
type totpView struct {
	Enrol   *identity.TOTPEnrolment
	QR      template.URL
	Replace bool
}

func (v totpView) SecretGroups() string { return secretGroups(v.Enrol.Secret) }

func (s *Server) totpPage(w http.ResponseWriter, r *http.Request) {
	s.renderTOTP(w, r, http.StatusOK, "")
}

// TOTPEnrolCookie names, for this browser, the authenticator secret it is
// enrolling (identity.TOTPEnrolment.Binding), so the enrolment pages show
// the same secret on a reload or after a mistyped code: an app that has
// scanned it keeps working. It holds a hash, never the secret.
const TOTPEnrolCookie = "__Host-totp-enrol"

// enrolBinding is the enrolment this browser was shown, if any.
func enrolBinding(r *http.Request) string {
	if c, err := r.Cookie(TOTPEnrolCookie); err == nil {
		return c.Value
	}
	return ""
}

// keepEnrolment remembers en in this browser until it expires.
func (s *Server) keepEnrolment(w http.ResponseWriter, en *identity.TOTPEnrolment) {
	setAuthCookie(w, TOTPEnrolCookie, en.Binding, en.Expires.Sub(s.now()), http.SameSiteStrictMode)
}

// renderTOTP starts (again) an enrolment and shows it; changing factors
// needs a recent step-up, so a stale session is sent there first.
func (s *Server) renderTOTP(w http.ResponseWriter, r *http.Request, status int, msg string) {
	ctx := r.Context()
	en, err := s.id.BeginTOTP(ctx, enrolBinding(r))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.keepEnrolment(w, en)
	v := totpView{Enrol: en}
	if v.QR, err = qrDataURI(en.URI); err != nil {
		s.pageError(w, r, err)
		return
	}
	if who, err := s.id.Who(ctx); err == nil {
		for _, f := range who.Factors {
			v.Replace = v.Replace || f == identity.FactorTOTP
		}
	}
	p := s.newPage(r, "Set up an authenticator app")
	p.Error = msg
	p.Data = v
	s.render(w, r, status, "account_totp.html", p)
}

func (s *Server) confirmTOTP(w http.ResponseWriter, r *http.Request) {
	ch, err := s.id.ConfirmTOTP(r.Context(), r.PostFormValue("code"), clientFrom(r))
	if err != nil {
		code := haven.ErrorCode(err)
		if code == haven.EINVALID || code == haven.EUNAUTHORIZED || code == haven.ETOOMANY {
			status := s.errorStatus(w, r, err)
			s.renderTOTP(w, r, status, haven.ErrorMessage(err)+" The key below has not changed: check the code your app shows now and try again.")
			return
		}
		s.pageError(w, r, err)
		return
	}
	clearAuthCookie(w, TOTPEnrolCookie)
	setSessionCookie(w, ch.Session)
	s.showCodes(w, r, ch.RecoveryCodes, "/account")
}

func (s *Server) removeTOTP(w http.ResponseWriter, r *http.Request) {
	ch, err := s.id.RemoveTOTP(r.Context(), clientFrom(r))
	if err != nil {
		if haven.ErrorCode(err) == haven.EFORBIDDEN {
			s.renderAccount(w, r, http.StatusForbidden, "", haven.ErrorMessage(err))
			return
		}
		s.pageError(w, r, err)
		return
	}
	setSessionCookie(w, ch.Session)
	http.Redirect(w, r, "/account?totp_removed=1", http.StatusSeeOther)
}

func (s *Server) recoveryCodes(w http.ResponseWriter, r *http.Request) {
	codes, err := s.id.RegenerateRecoveryCodes(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.showCodes(w, r, codes, "/account")
}

// stepUpView is the step-up page's data.
type stepUpView struct {
	Challenged bool
	Password   bool // ask for the password
	TOTP       bool
	Recovery   bool
	WebAuthn   bool // offer a passkey (auth_webauthn.go)
}

func (s *Server) stepUpPage(w http.ResponseWriter, r *http.Request) {
	s.renderStepUp(w, r, http.StatusOK, "")
}

func (s *Server) renderStepUp(w http.ResponseWriter, r *http.Request, status int, msg string) {
	who, err := s.id.Who(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v := stepUpView{}
	if cur := sessionFromContext(r.Context()); cur != nil {
		v.Challenged = cur.Challenged
	}
	for _, f := range who.Factors {
		v.TOTP = v.TOTP || f == identity.FactorTOTP
		v.Recovery = v.Recovery || f == identity.FactorRecovery
		v.WebAuthn = v.WebAuthn || f == identity.FactorWebAuthn
	}
	v.Password = v.Challenged || len(who.Factors) == 0
	p := s.newPage(r, "Confirm it is you")
	p.Next = safeNext(r.URL.Query().Get("next"))
	if n := r.PostFormValue("next"); n != "" {
		p.Next = safeNext(n)
	}
	p.Error = msg
	p.Data = v
	s.render(w, r, status, "auth_stepup.html", p)
}

func (s *Server) stepUp(w http.ResponseWriter, r *http.Request) {
	req := identity.StepUpRequest{Password: r.PostFormValue("password"), Factor: identity.FactorKind(r.PostFormValue("kind")),
		Proof: r.PostFormValue("code")}
	if err := s.id.StepUp(r.Context(), req, clientFrom(r)); err != nil {
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
