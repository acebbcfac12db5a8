package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"haven"
	"haven/audit"
	"haven/service"
)

// Pages for charts, care teams, the patient's access history and the
// compliance officer's screens. They render on the server; the only script
// is the access-history proof checker (static/proof.js).

func (c *chartAPI) registerPages() {
	c.s.Handle("GET /app/patients", http.HandlerFunc(c.pagePatients))
	c.s.Handle("GET /app/patients/{id}", http.HandlerFunc(c.pageChart))
	c.s.Handle("POST /app/patients/{id}/break-glass", http.HandlerFunc(c.pageBreakGlass))
	c.s.Handle("GET /app/history", http.HandlerFunc(c.pageHistory))
	c.s.Handle("GET /app/compliance", http.HandlerFunc(c.pageCompliance))
	c.s.Handle("POST /app/compliance/alerts/{id}/close", http.HandlerFunc(c.pageCloseAlert))
	c.s.Handle("POST /app/compliance/break-glass/{id}/review", http.HandlerFunc(c.pageReview))
	c.s.Handle("GET /app/care-teams", http.HandlerFunc(c.pageCareTeams))
	c.s.Handle("POST /app/care-teams", http.HandlerFunc(c.pageCareTeamChange))
}

// page is what every chart page template gets.
type page struct {
	Title  string
	Actor  haven.Actor
	Flash  string
	Data   any
	Status int
}

func (c *chartAPI) show(w http.ResponseWriter, r *http.Request, tmpl, title string, data any) {
	a, _ := haven.ActorFromContext(r.Context())
	c.s.render(w, r, tmpl, page{Title: title, Actor: a, Data: data, Flash: r.URL.Query().Get("done")})
}

// pageError renders err as a page: the sign-in page for a missing session,
// a step-up prompt for ESTEPUP, else the status and client-safe message.
func (c *chartAPI) pageError(w http.ResponseWriter, r *http.Request, err error) {
	code := haven.ErrorCode(err)
	switch code {
	case haven.EUNAUTHORIZED:
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	case haven.ESTEPUP:
		http.Redirect(w, r, "/account/step-up?next="+urlPathOnly(r.URL.Path), http.StatusSeeOther)
		return
	}
	if statusByCode[code] >= 500 || code == "" {
		c.s.Logger.Error("page failed", "request_id", RequestID(r.Context()), "err", err)
	}
	a, _ := haven.ActorFromContext(r.Context())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	status := statusByCode[code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	w.WriteHeader(status)
	templates.ExecuteTemplate(w, "chart_error.html", page{Title: "Not available", Actor: a, Status: status,
		Data: map[string]string{"Message": haven.ErrorMessage(err), "RequestID": RequestID(r.Context())}})
}

// urlPathOnly keeps a redirect target on this site: a path, nothing else.
func urlPathOnly(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return "/app"
	}
	return p
}

func (c *chartAPI) pagePatients(w http.ResponseWriter, r *http.Request) {
	ps, err := c.svc.Patients(r.Context())
	if err != nil {
		c.pageError(w, r, err)
		return
	}
	c.show(w, r, "chart_patients.html", "Patients", ps)
}

type chartView struct {
	Chart    *service.Chart
	CareTeam []service.CareTeamMember
	// Denied is set when the clinician may not open the chart; the page then
	// offers break-glass instead of content.
	Denied    bool
	PatientID string
}

func (c *chartAPI) pageChart(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ch, err := c.svc.Chart(r.Context(), id)
	a, _ := haven.ActorFromContext(r.Context())
	if haven.ErrorCode(err) == haven.EFORBIDDEN && a.Role == haven.RoleClinician {
		c.show(w, r, "chart_view.html", "Chart", chartView{Denied: true, PatientID: id})
		return
	}
	if err != nil {
		c.pageError(w, r, err)
		return
	}
	team, err := c.svc.CareTeam(r.Context(), id)
	if err != nil && haven.ErrorCode(err) != haven.EFORBIDDEN {
		c.pageError(w, r, err)
		return
	}
	c.show(w, r, "chart_view.html", "Chart", chartView{Chart: ch, CareTeam: team, PatientID: id})
}

func (c *chartAPI) pageBreakGlass(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	minutes, _ := strconv.Atoi(r.PostFormValue("minutes"))
	if _, err := c.svc.RequestBreakGlass(r.Context(), id, r.PostFormValue("reason"), time.Duration(minutes)*time.Minute); err != nil {
		c.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/patients/"+url.PathEscape(id), http.StatusSeeOther)
}

func (c *chartAPI) pageHistory(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	h, err := c.svc.AccessHistory(r.Context(), a.UserID)
	if err != nil {
		c.pageError(w, r, err)
		return
	}
	// The practice's log signs its checkpoints under its own origin
	// (c2sp.org/tlog-checkpoint); the browser checks that key.
	vkey, err := audit.LogVerifierKey(c.auditKey, a.PracticeID)
	if err != nil {
		c.pageError(w, r, err)
		return
	}
	c.show(w, r, "chart_history.html", "Who accessed my record", struct {
		*service.AccessHistory
		VerifierKey string
	}{h, vkey})
}

type complianceView struct {
	Alerts []*service.Alert
	Queue  []service.BreakGlassGrant
	Events []service.AuditRow
	Query  service.AuditQuery
}

func (c *chartAPI) pageCompliance(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	var v complianceView
	var err error
	if v.Alerts, err = c.svc.Alerts(ctx, false); err != nil {
		c.pageError(w, r, err)
		return
	}
	if v.Queue, err = c.svc.BreakGlassQueue(ctx); err != nil {
		c.pageError(w, r, err)
		return
	}
	v.Query = service.AuditQuery{PatientID: q.Get("patient"), ActorID: q.Get("actor"), Action: q.Get("action"), Decision: q.Get("decision")}
	if v.Events, err = c.svc.SearchAudit(ctx, v.Query); err != nil {
		c.pageError(w, r, err)
		return
	}
	c.show(w, r, "chart_compliance.html", "Compliance", v)
}

func (c *chartAPI) pageCloseAlert(w http.ResponseWriter, r *http.Request) {
	if err := c.svc.CloseAlert(r.Context(), r.PathValue("id")); err != nil {
		c.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/compliance?done=alert", http.StatusSeeOther)
}

func (c *chartAPI) pageReview(w http.ResponseWriter, r *http.Request) {
	if err := c.svc.ReviewBreakGlass(r.Context(), r.PathValue("id"), r.PostFormValue("note")); err != nil {
		c.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/compliance?done=review", http.StatusSeeOther)
}

type careTeamsView struct {
	PatientID string
	Team      []service.CareTeamMember
	Workforce []service.Member
}

// pageCareTeams lets a practice admin manage one patient's care team by
// patient id. The admin sees no chart content: the id comes from the front
// desk, and the page shows only workforce names.
func (c *chartAPI) pageCareTeams(w http.ResponseWriter, r *http.Request) {
	v := careTeamsView{PatientID: strings.TrimSpace(r.URL.Query().Get("patient"))}
	var err error
	if v.Workforce, err = c.svc.Workforce(r.Context()); err != nil {
		c.pageError(w, r, err)
		return
	}
	if v.PatientID != "" {
		if v.Team, err = c.svc.CareTeam(r.Context(), v.PatientID); err != nil {
			c.pageError(w, r, err)
			return
		}
	}
	c.show(w, r, "chart_careteams.html", "Care teams", v)
}

func (c *chartAPI) pageCareTeamChange(w http.ResponseWriter, r *http.Request) {
	patient, user := r.PostFormValue("patient"), r.PostFormValue("user")
	var err error
	if r.PostFormValue("op") == "remove" {
		err = c.svc.RemoveFromCareTeam(r.Context(), patient, user)
	} else {
		err = c.svc.AddToCareTeam(r.Context(), patient, user)
	}
	if err != nil {
		c.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/care-teams?patient="+url.QueryEscape(patient), http.StatusSeeOther)
}
