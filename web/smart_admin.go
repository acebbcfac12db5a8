package web

import (
	"net/http"
	"net/url"
	"strings"

	"haven"
	"haven/smart"
)

// The practice admin's page of SMART apps and backend systems
// (/app/admin/apps, linked from the admin's home): register one, see the
// practice's, revoke one. Registering and revoking change who may read
// the practice's records, so each asks for the admin's recent step-up, as
// the other admin changes do, and each is in the audit log (package smart
// records it). The secret of a confidential app is shown once, on the
// page that answers the registration, and never again.

type appsView struct {
	Apps      []appRow
	FormToken string
	Secret    string // a just-registered app's secret, shown once
	SecretFor string
	Form      url.Values // what the admin typed, kept on a refusal
}

type appRow struct {
	ID, Name, Kind, Scopes, Redirects, Networks string
	Cert                                        string // a backend system's certificate: its subject and end
	Revoked                                     bool
}

func appRowOf(c smart.RegisteredClient) appRow {
	kind := "App with a secret"
	switch {
	case c.JWKS != "" && c.CertThumbprint != "":
		kind = "Backend system (signed with its keys, and its client certificate)"
	case c.CertThumbprint != "":
		kind = "Backend system (its client certificate)"
	case c.JWKS != "":
		kind = "Backend system (signed with its keys)"
	case c.Public:
		kind = "App without a secret (PKCE)"
	}
	return appRow{ID: c.ID, Name: c.Name, Kind: kind, Scopes: strings.Join(c.Scopes, " "), Redirects: strings.Join(c.RedirectURIs, " "),
		Networks: strings.Join(c.Networks, " "), Revoked: !c.RevokedAt.IsZero(), Cert: certWords(c)}
}

// certWords names a backend system's certificate for the page: its
// subject and the day it ends.
func certWords(c smart.RegisteredClient) string {
	if c.CertThumbprint == "" {
		return ""
	}
	return c.CertSubject + ", until " + c.CertExpires.Format("2 January 2006")
}

func (s *Server) renderApps(w http.ResponseWriter, r *http.Request, status int, v appsView, flash, errMsg string) {
	cs, err := s.smart.Clients(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	for _, c := range cs {
		v.Apps = append(v.Apps, appRowOf(c))
	}
	v.FormToken = formToken(w, r)
	p := s.newPage(r, "Apps and integrations")
	p.Flash, p.Error, p.Data = flash, errMsg, v
	s.render(w, r, status, "admin_apps.html", p)
}

func (s *Server) pageApps(w http.ResponseWriter, r *http.Request) {
	flash := ""
	switch r.URL.Query().Get("done") {
	case "revoked":
		flash = "The app is revoked: its tokens no longer work."
	}
	s.renderApps(w, r, http.StatusOK, appsView{}, flash, "")
}

// splitList reads a text field of values separated by spaces, commas or
// lines.
func splitList(v string) []string {
	return strings.FieldsFunc(v, func(c rune) bool { return c == ' ' || c == ',' || c == '\n' || c == '\r' || c == '\t' })
}

func (s *Server) pageAddApp(w http.ResponseWriter, r *http.Request) {
	if !s.checkFormToken(w, r) {
		return
	}
	ctx := r.Context()
	if err := s.id.RequireFreshAuth(ctx); haven.ErrorCode(err) == haven.ESTEPUP {
		http.Redirect(w, r, "/account/step-up?next="+url.QueryEscape("/app/admin/apps"), http.StatusSeeOther)
		return
	} else if err != nil {
		s.pageError(w, r, err)
		return
	}
	nc := smart.NewClient{Name: r.PostFormValue("name"), RedirectURIs: splitList(r.PostFormValue("redirect_uris")), LaunchURL: r.PostFormValue("launch_url"),
		Scopes: splitList(r.PostFormValue("scopes")), JWKS: r.PostFormValue("jwks"), Networks: splitList(r.PostFormValue("networks")),
		TLSCert: r.PostFormValue("tls_cert")}
	switch r.PostFormValue("kind") {
	case "public":
		nc.Public = true
	case "backend":
		if strings.TrimSpace(nc.JWKS) == "" && strings.TrimSpace(nc.TLSCert) == "" {
			s.renderApps(w, r, http.StatusBadRequest, appsView{Form: r.PostForm}, "", "A backend system needs its public keys or its client certificate.")
			return
		}
	default:
		nc.JWKS, nc.TLSCert = "", ""
	}
	reg, err := s.smart.AddClient(ctx, nc)
	switch haven.ErrorCode(err) {
	case "":
		s.renderApps(w, r, http.StatusOK, appsView{Secret: reg.Secret, SecretFor: reg.Client.Name},
			reg.Client.Name+" is registered. Its client id is "+reg.Client.ID+".", "")
	case haven.EINVALID, haven.ECONFLICT:
		s.renderApps(w, r, s.errorStatus(w, r, err), appsView{Form: r.PostForm}, "", haven.ErrorMessage(err))
	default:
		s.pageError(w, r, err)
	}
}

func (s *Server) pageRevokeApp(w http.ResponseWriter, r *http.Request) {
	if !s.checkFormToken(w, r) {
		return
	}
	ctx := r.Context()
	if err := s.id.RequireFreshAuth(ctx); haven.ErrorCode(err) == haven.ESTEPUP {
		http.Redirect(w, r, "/account/step-up?next="+url.QueryEscape("/app/admin/apps"), http.StatusSeeOther)
		return
	} else if err != nil {
		s.pageError(w, r, err)
		return
	}
	if err := s.smart.RevokeClient(ctx, r.PathValue("id")); err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/admin/apps?done=revoked", http.StatusSeeOther)
}
