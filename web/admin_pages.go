package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"time"

	"haven"
	"haven/identity"
)

// The practice admin's people pages: the workforce with each account's
// status, second factors and last sign-in; pending invitations and the
// form to invite; one account's page with disable and re-enable, the
// reset of a lost second factor and, for a patient who has no password
// yet, the account-setup link. A patient's account is reached by the
// exact email the patient gives, never from a list (service/
// identity_accounts.go says why).
//
// Every decision is the service's: the pages show what policy allows and
// turn its answers into pages. A factor reset, and inviting an admin or
// compliance officer, need the admin's recent step-up: the service
// answers ESTEPUP, and the page sends the admin to the step-up page,
// which returns them to the action to confirm it.
//
// Cross-origin posts are refused for every page (withIdentity). These
// forms also carry a token the browser holds in a __Host- cookie and
// sends back in the form, because a forged post here could mint an
// administrator or lock staff out: the check does not depend on request
// headers that a proxy or an old browser might not send.

// FormCookie holds the admin forms' token.
const FormCookie = "__Host-haven_form"

// formTokenAge outlives any session (12 hours at most), so a page loaded
// in a live session always posts a token that is still there.
const formTokenAge = 13 * time.Hour

// formToken returns the browser's form token, giving it one if it has
// none (or a malformed one).
func formToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(FormCookie); err == nil && validCookieValue(c.Value) {
		return c.Value
	}
	var b [32]byte
	rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	setAuthCookie(w, FormCookie, v, formTokenAge, http.SameSiteStrictMode)
	return v
}

// checkFormToken refuses (403) a post whose form token is missing or is
// not the one in the browser's cookie.
func (s *Server) checkFormToken(w http.ResponseWriter, r *http.Request) bool {
	c, err := r.Cookie(FormCookie)
	sent := r.PostFormValue("form_token")
	if err == nil && validCookieValue(c.Value) && subtle.ConstantTimeCompare([]byte(c.Value), []byte(sent)) == 1 {
		return true
	}
	s.Logger.Warn("admin form without a valid token refused", "request_id", RequestID(r.Context()), "client", clientAddr(r))
	s.pageError(w, r, haven.Errorf(haven.EFORBIDDEN, "this form has expired; reload the page and try again"))
	return false
}

// The per-account actions.
const (
	adminDisable  = "disabled"
	adminEnable   = "enabled"
	adminMFAReset = "mfa-reset"
	adminSetup    = "setup-sent"
)

// adminFlash is what the page says after an action, by its ?done= value;
// only these fixed texts are ever shown.
var adminFlash = map[string]string{
	adminDisable:  "The account is disabled. Every session it had has ended.",
	adminEnable:   "The account is enabled again. Its owner signs in as before.",
	adminMFAReset: "The second factor is reset and every session has ended. At their next sign-in they set up a new authenticator.",
	adminSetup:    "The account-setup link is on its way. It works once, within 3 days.",
	"invited":     "The invitation is on its way. It works once, within 7 days.",
}

// adminUsersView is the people page's data.
type adminUsersView struct {
	Workforce   []identity.Account
	Invitations []identity.Invitation
	Roles       []haven.Role // what this admin may invite someone as
	FormToken   string
	// ConfirmInvite is set on return from the step-up an invitation asked
	// for: the form's contents were not kept (an address does not belong
	// in a URL), so the page asks for them again.
	ConfirmInvite bool
}

// adminUserView is one account's page data.
type adminUserView struct {
	Account   *identity.Account
	FormToken string
	// ConfirmReset is set on return from the step-up a reset asked for.
	ConfirmReset bool
}

func (s *Server) adminUsers(w http.ResponseWriter, r *http.Request) {
	s.renderAdminUsers(w, r, http.StatusOK, adminFlash[r.URL.Query().Get("done")], "")
}

func (s *Server) renderAdminUsers(w http.ResponseWriter, r *http.Request, status int, flash, msg string) {
	ctx := r.Context()
	v := adminUsersView{ConfirmInvite: r.URL.Query().Get("confirm") == "invite"}
	var err error
	if v.Workforce, err = s.id.WorkforceAccounts(ctx); err != nil {
		s.pageError(w, r, err)
		return
	}
	if v.Invitations, err = s.id.Invitations(ctx); err != nil {
		s.pageError(w, r, err)
		return
	}
	v.Roles = s.id.GrantableRoles(ctx)
	v.FormToken = formToken(w, r)
	p := s.newPage(r, "People")
	p.Flash, p.Error, p.Data = flash, msg, v
	if v.ConfirmInvite && flash == "" && msg == "" {
		p.Flash = "You have confirmed it is you. Send the invitation again."
	}
	s.render(w, r, status, "admin_users.html", p)
}

func (s *Server) adminUser(w http.ResponseWriter, r *http.Request) {
	s.renderAdminUser(w, r, nil, http.StatusOK, adminFlash[r.URL.Query().Get("done")], "")
}

// renderAdminUser shows one account: acc if the caller has it already
// (decided and audited), else the one the path names.
func (s *Server) renderAdminUser(w http.ResponseWriter, r *http.Request, acc *identity.Account, status int, flash, msg string) {
	if acc == nil {
		var err error
		if acc, err = s.id.Account(r.Context(), r.PathValue("id")); err != nil {
			s.pageError(w, r, err)
			return
		}
	}
	v := adminUserView{Account: acc, FormToken: formToken(w, r), ConfirmReset: r.URL.Query().Get("confirm") == adminMFAReset}
	p := s.newPage(r, "Account")
	p.Flash, p.Error, p.Data = flash, msg, v
	s.render(w, r, status, "admin_user.html", p)
}

// adminAction carries out one action on the account the path names, then
// returns to where the form was: the people list or the account's page.
func (s *Server) adminAction(w http.ResponseWriter, r *http.Request, op string) {
	if !s.checkFormToken(w, r) {
		return
	}
	ctx := r.Context()
	id := r.PathValue("id")
	var err error
	switch op {
	case adminDisable:
		err = s.id.SetDisabled(ctx, id, true)
	case adminEnable:
		err = s.id.SetDisabled(ctx, id, false)
	case adminMFAReset:
		err = s.id.ResetMFA(ctx, id)
	case adminSetup:
		err = s.id.SendAccountSetup(ctx, id, clientFrom(r))
	}
	back := "/app/admin/users/" + url.PathEscape(id)
	switch haven.ErrorCode(err) {
	case "":
	case haven.ESTEPUP:
		// Through the step-up page and back to this account, where the
		// admin confirms the action: a GET never carries it out.
		http.Redirect(w, r, "/account/step-up?next="+url.QueryEscape(back+"?confirm="+op), http.StatusSeeOther)
		return
	case haven.EINVALID, haven.ECONFLICT:
		s.renderAdminUser(w, r, nil, s.errorStatus(w, r, err), "", haven.ErrorMessage(err))
		return
	default:
		s.pageError(w, r, err)
		return
	}
	if r.PostFormValue("from") == "list" {
		back = "/app/admin/users"
	}
	http.Redirect(w, r, back+"?done="+op, http.StatusSeeOther)
}

func (s *Server) adminDisableUser(w http.ResponseWriter, r *http.Request) {
	s.adminAction(w, r, adminDisable)
}
func (s *Server) adminEnableUser(w http.ResponseWriter, r *http.Request) {
	s.adminAction(w, r, adminEnable)
}
func (s *Server) adminResetMFA(w http.ResponseWriter, r *http.Request) {
	s.adminAction(w, r, adminMFAReset)
}
func (s *Server) adminSendSetup(w http.ResponseWriter, r *http.Request) {
	s.adminAction(w, r, adminSetup)
}

func (s *Server) adminInvite(w http.ResponseWriter, r *http.Request) {
	if !s.checkFormToken(w, r) {
		return
	}
	err := s.id.Invite(r.Context(), r.PostFormValue("email"), haven.Role(r.PostFormValue("role")), clientFrom(r))
	switch haven.ErrorCode(err) {
	case "":
		http.Redirect(w, r, "/app/admin/users?done=invited", http.StatusSeeOther)
	case haven.ESTEPUP:
		http.Redirect(w, r, "/account/step-up?next="+url.QueryEscape("/app/admin/users?confirm=invite"), http.StatusSeeOther)
	case haven.EINVALID, haven.ECONFLICT:
		s.renderAdminUsers(w, r, s.errorStatus(w, r, err), "", haven.ErrorMessage(err))
	default:
		s.pageError(w, r, err)
	}
}

// adminFindPatient opens the account of the patient with the email in
// the form. It answers with the account's page directly: the address
// travels in the body, never in a URL.
func (s *Server) adminFindPatient(w http.ResponseWriter, r *http.Request) {
	if !s.checkFormToken(w, r) {
		return
	}
	acc, err := s.id.FindPatientAccount(r.Context(), r.PostFormValue("email"))
	switch haven.ErrorCode(err) {
	case "":
		s.renderAdminUser(w, r, acc, http.StatusOK, "", "")
	case haven.EINVALID, haven.ENOTFOUND:
		s.renderAdminUsers(w, r, s.errorStatus(w, r, err), "", haven.ErrorMessage(err))
	default:
		s.pageError(w, r, err)
	}
}
