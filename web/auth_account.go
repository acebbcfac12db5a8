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

// appView is the landing authPage's data. Invitations and the rest of
// account administration live on the People pages (admin_pages.go).
type appView struct {
	Who *service.WhoAmI
}

// app is the signed-in landing authPage. It shows who you are and where to go;
// the clinical areas add themselves as they are built.
func (h *authHandlers) app(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.s.requireSignIn(w, r); !ok {
		return
	}
	h.renderApp(w, r, http.StatusOK, "", "")
}

func (h *authHandlers) renderApp(w http.ResponseWriter, r *http.Request, status int, flash, msg string) {
	ctx := r.Context()
	who, err := h.id.Who(ctx)
	if err != nil {
		h.s.authPageError(w, r, err)
		return
	}
	v := appView{Who: who}
	p := h.s.newAuthPage(r, "Haven")
	p.Practice = who.PracticeName
	p.Flash, p.Error = flash, msg
	p.Data = v
	h.s.renderAuth(w, r, status, "app.html", p)
}

// accountView is the account authPage's data.
type accountView struct {
	Profile  *service.UserProfile
	Who      *service.WhoAmI
	Sessions []service.SessionView
	TOTP     bool
	Codes    bool
}

func (h *authHandlers) account(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.s.requireSignIn(w, r); !ok {
		return
	}
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
	h.renderAccount(w, r, http.StatusOK, flash, "")
}

func (h *authHandlers) renderAccount(w http.ResponseWriter, r *http.Request, status int, flash, msg string) {
	ctx := r.Context()
	v := accountView{}
	var err error
	if v.Who, err = h.id.Who(ctx); err != nil {
		h.s.authPageError(w, r, err)
		return
	}
	if v.Profile, err = h.id.Profile(ctx); err != nil {
		h.s.authPageError(w, r, err)
		return
	}
	if v.Sessions, err = h.id.Sessions(ctx); err != nil {
		h.s.authPageError(w, r, err)
		return
	}
	for _, f := range v.Who.Factors {
		v.TOTP = v.TOTP || f == service.FactorTOTP
		v.Codes = v.Codes || f == service.FactorRecovery
	}
	p := h.s.newAuthPage(r, "Your account")
	p.Practice = v.Who.PracticeName
	p.Flash, p.Error = flash, msg
	p.Data = v
	h.s.renderAuth(w, r, status, "account.html", p)
}

func (h *authHandlers) changePassword(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.s.requireSignIn(w, r); !ok {
		return
	}
	next := r.PostFormValue("new_password")
	if next != r.PostFormValue("confirm") {
		h.renderAccount(w, r, http.StatusBadRequest, "", "The two new passwords differ.")
		return
	}
	ns, err := h.id.ChangePassword(r.Context(), r.PostFormValue("current_password"), next, clientFrom(r))
	if err != nil {
		code := haven.ErrorCode(err)
		if code == haven.EINVALID || code == haven.EUNAUTHORIZED || code == haven.ETOOMANY {
			setRetryAfter(w, err)
			h.renderAccount(w, r, statusByCode[code], "", haven.ErrorMessage(err))
			return
		}
		h.s.authPageError(w, r, err)
		return
	}
	setSessionCookie(w, ns)
	http.Redirect(w, r, "/account?password=1", http.StatusSeeOther)
}

func (h *authHandlers) revokeSession(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.s.requireSignIn(w, r); !ok {
		return
	}
	if err := h.id.RevokeSession(r.Context(), r.PathValue("id")); err != nil {
		h.s.authPageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account?revoked=1", http.StatusSeeOther)
}

func (h *authHandlers) revokeOthers(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.s.requireSignIn(w, r); !ok {
		return
	}
	if _, err := h.id.RevokeOtherSessions(r.Context()); err != nil {
		h.s.authPageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account?revoked=1", http.StatusSeeOther)
}

// totpView is the enrolment authPage's data.
type totpView struct {
	Enrol   *service.TOTPEnrolment
	QR      template.URL
	Replace bool
}

func (v totpView) SecretGroups() string { return secretGroups(v.Enrol.Secret) }

func (h *authHandlers) totpPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.s.requireSignIn(w, r); !ok {
		return
	}
	h.renderTOTP(w, r, http.StatusOK, "")
}

// renderTOTP starts (again) an enrolment and shows it; changing factors
// needs a recent step-up, so a stale session is sent there first.
func (h *authHandlers) renderTOTP(w http.ResponseWriter, r *http.Request, status int, msg string) {
	ctx := r.Context()
	en, err := h.id.BeginTOTP(ctx)
	if err != nil {
		h.s.authPageError(w, r, err)
		return
	}
	v := totpView{Enrol: en}
	if v.QR, err = qrDataURI(en.URI); err != nil {
		h.s.authPageError(w, r, err)
		return
	}
	if who, err := h.id.Who(ctx); err == nil {
		for _, f := range who.Factors {
			v.Replace = v.Replace || f == service.FactorTOTP
		}
	}
	p := h.s.newAuthPage(r, "Set up an authenticator app")
	p.Error = msg
	p.Data = v
	h.s.renderAuth(w, r, status, "account_totp.html", p)
}

func (h *authHandlers) confirmTOTP(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.s.requireSignIn(w, r); !ok {
		return
	}
	ch, err := h.id.ConfirmTOTP(r.Context(), r.PostFormValue("code"), clientFrom(r))
	if err != nil {
		code := haven.ErrorCode(err)
		if code == haven.EINVALID || code == haven.EUNAUTHORIZED || code == haven.ETOOMANY {
			setRetryAfter(w, err)
			h.renderTOTP(w, r, statusByCode[code], haven.ErrorMessage(err)+" Scan the new code below.")
			return
		}
		h.s.authPageError(w, r, err)
		return
	}
	setSessionCookie(w, ch.Session)
	h.showCodes(w, r, ch.RecoveryCodes, "/account")
}

func (h *authHandlers) removeTOTP(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.s.requireSignIn(w, r); !ok {
		return
	}
	ch, err := h.id.RemoveTOTP(r.Context(), clientFrom(r))
	if err != nil {
		if haven.ErrorCode(err) == haven.EFORBIDDEN {
			h.renderAccount(w, r, http.StatusForbidden, "", haven.ErrorMessage(err))
			return
		}
		h.s.authPageError(w, r, err)
		return
	}
	setSessionCookie(w, ch.Session)
	http.Redirect(w, r, "/account?totp_removed=1", http.StatusSeeOther)
}

func (h *authHandlers) recoveryCodes(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.s.requireSignIn(w, r); !ok {
		return
	}
	codes, err := h.id.RegenerateRecoveryCodes(r.Context())
	if err != nil {
		h.s.authPageError(w, r, err)
		return
	}
	h.showCodes(w, r, codes, "/account")
}

// stepUpView is the step-up authPage's data.
type stepUpView struct {
	Challenged bool
	Password   bool // ask for the password
	TOTP       bool
	Recovery   bool
	WebAuthn   bool // offer a passkey (auth_webauthn.go)
}

func (h *authHandlers) stepUpPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.s.requireSignIn(w, r); !ok {
		return
	}
	h.renderStepUp(w, r, http.StatusOK, "")
}

func (h *authHandlers) renderStepUp(w http.ResponseWriter, r *http.Request, status int, msg string) {
	who, err := h.id.Who(r.Context())
	if err != nil {
		h.s.authPageError(w, r, err)
		return
	}
	v := stepUpView{}
	if cur := sessionFromContext(r.Context()); cur != nil {
		v.Challenged = cur.Challenged
	}
	for _, f := range who.Factors {
		v.TOTP = v.TOTP || f == service.FactorTOTP
		v.Recovery = v.Recovery || f == service.FactorRecovery
		v.WebAuthn = v.WebAuthn || f == service.FactorWebAuthn
	}
	v.Password = v.Challenged || len(who.Factors) == 0
	p := h.s.newAuthPage(r, "Confirm it is you")
	p.Next = safeNext(r.URL.Query().Get("next"))
	if n := r.PostFormValue("next"); n != "" {
		p.Next = safeNext(n)
	}
	p.Error = msg
	p.Data = v
	h.s.renderAuth(w, r, status, "auth_stepup.html", p)
}

func (h *authHandlers) stepUp(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.s.requireSignIn(w, r); !ok {
		return
	}
	req := service.StepUpRequest{Password: r.PostFormValue("password"), Factor: service.FactorKind(r.PostFormValue("kind")),
		Proof: r.PostFormValue("code")}
	if err := h.id.StepUp(r.Context(), req, clientFrom(r)); err != nil {
		code := haven.ErrorCode(err)
		if code == haven.EINVALID || code == haven.EUNAUTHORIZED || code == haven.ETOOMANY {
			setRetryAfter(w, err)
			h.renderStepUp(w, r, statusByCode[code], haven.ErrorMessage(err))
			return
		}
		h.s.authPageError(w, r, err)
		return
	}
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}
