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

// chartFlashes are what a chart page says after a form, by its ?done=
// value; only these fixed texts are ever shown.
var chartFlashes = map[string]string{
	"alert":      "The alert is closed.",
	"review":     "The break-glass review is recorded.",
	"registered": "The patient is registered. Book their first visit below.",
}

// show renders a chart page with data.
func (s *Server) show(w http.ResponseWriter, r *http.Request, tmpl, title string, data any) {
	p := s.newPage(r, title)
	p.Flash = chartFlashes[r.URL.Query().Get("done")]
	p.Data = data
	s.render(w, r, http.StatusOK, tmpl, p)
}

func (s *Server) pagePatients(w http.ResponseWriter, r *http.Request) {
	ps, err := s.svc.Patients(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.show(w, r, "chart_patients.html", "Patients", ps)
}

// pageNewPatient is the front desk's form to register a patient.
func (s *Server) pageNewPatient(w http.ResponseWriter, r *http.Request) {
	s.renderNewPatient(w, r, http.StatusOK, "", service.NewPatient{})
}

func (s *Server) renderNewPatient(w http.ResponseWriter, r *http.Request, status int, msg string, np service.NewPatient) {
	p := s.newPage(r, "Register a patient")
	p.Error = msg
	p.Data = np
	s.render(w, r, status, "chart_new.html", p)
}

// pageRegisterPatient registers the patient and opens their chart, from
// which the desk books their first visit. A refused form comes back
// filled in, with the reason.
func (s *Server) pageRegisterPatient(w http.ResponseWriter, r *http.Request) {
	np := service.NewPatient{MRN: r.PostFormValue("mrn"),
		Demographics: service.Demographics{Name: r.PostFormValue("name"), DateOfBirth: r.PostFormValue("date_of_birth")},
		Contact:      service.Contact{Email: r.PostFormValue("email"), Phone: r.PostFormValue("phone")}}
	ch, err := s.svc.RegisterPatient(r.Context(), np)
	if err != nil {
		if c := haven.ErrorCode(err); c == haven.EINVALID || c == haven.ECONFLICT {
			s.renderNewPatient(w, r, s.errorStatus(w, r, err), haven.ErrorMessage(err), np)
			return
		}
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/patients/"+url.PathEscape(ch.PatientID)+"?done=registered", http.StatusSeeOther)
}

type chartView struct {
	Chart    *service.Chart
	CareTeam []service.CareTeamMember
	// Denied is set when the clinician may not open the chart; the page then
	// offers break-glass instead of content.
	Denied    bool
	PatientID string
}

func (s *Server) pageChart(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ch, err := s.svc.Chart(r.Context(), id)
	a, _ := haven.ActorFromContext(r.Context())
	if haven.ErrorCode(err) == haven.EFORBIDDEN && a.Role == haven.RoleClinician {
		s.show(w, r, "chart_view.html", "Chart", chartView{Denied: true, PatientID: id})
		return
	}
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	team, err := s.svc.CareTeam(r.Context(), id)
	if err != nil && haven.ErrorCode(err) != haven.EFORBIDDEN {
		s.pageError(w, r, err)
		return
	}
	s.show(w, r, "chart_view.html", "Chart", chartView{Chart: ch, CareTeam: team, PatientID: id})
}

func (s *Server) pageBreakGlass(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	minutes, _ := strconv.Atoi(r.PostFormValue("minutes"))
	if _, err := s.svc.RequestBreakGlass(r.Context(), id, r.PostFormValue("reason"), time.Duration(minutes)*time.Minute); err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/patients/"+url.PathEscape(id), http.StatusSeeOther)
}

func (s *Server) pageHistory(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	h, err := s.svc.AccessHistory(r.Context(), a.UserID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	// The practice's log signs its checkpoints under its own origin
	// (c2sp.org/tlog-checkpoint); the browser checks that key.
	vkey, err := audit.LogVerifierKey(s.auditKey, a.PracticeID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v := historyView{AccessHistory: h, VerifierKey: vkey}
	for _, e := range h.Events {
		line := historyRow{AccessEvent: e, Line: historyLine(e), Refused: e.Decision != "allow"}
		if e.Self {
			v.Mine = append(v.Mine, line)
		} else {
			v.Others = append(v.Others, line)
		}
	}
	s.show(w, r, "chart_history.html", "Who saw my record", v)
}

// historyView is the access history as the page shows it: other people's
// accesses first, the patient's own actions folded away below, each line
// in words with its proof.
type historyView struct {
	*service.AccessHistory
	VerifierKey  string
	Others, Mine []historyRow
}

type historyRow struct {
	service.AccessEvent
	Line    string
	Refused bool
}

type complianceView struct {
	Alerts []*service.Alert
	Queue  []service.BreakGlassGrant
	Events []service.AuditRow
	Query  service.AuditQuery
}

func (s *Server) pageCompliance(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	var v complianceView
	var err error
	if v.Alerts, err = s.svc.Alerts(ctx, false); err != nil {
		s.pageError(w, r, err)
		return
	}
	if v.Queue, err = s.svc.BreakGlassQueue(ctx); err != nil {
		s.pageError(w, r, err)
		return
	}
	v.Query = service.AuditQuery{PatientID: q.Get("patient"), ActorID: q.Get("actor"), Action: q.Get("action"), Decision: q.Get("decision")}
	if v.Events, err = s.svc.SearchAudit(ctx, v.Query); err != nil {
		s.pageError(w, r, err)
		return
	}
	s.show(w, r, "chart_compliance.html", "Compliance", v)
}

func (s *Server) pageCloseAlert(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.CloseAlert(r.Context(), r.PathValue("id")); err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/compliance?done=alert", http.StatusSeeOther)
}

func (s *Server) pageReview(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.ReviewBreakGlass(r.Context(), r.PathValue("id"), r.PostFormValue("note")); err != nil {
		s.pageError(w, r, err)
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
func (s *Server) pageCareTeams(w http.ResponseWriter, r *http.Request) {
	v := careTeamsView{PatientID: strings.TrimSpace(r.URL.Query().Get("patient"))}
	var err error
	if v.Workforce, err = s.svc.Workforce(r.Context()); err != nil {
		s.pageError(w, r, err)
		return
	}
	if v.PatientID != "" {
		if v.Team, err = s.svc.CareTeam(r.Context(), v.PatientID); err != nil {
			s.pageError(w, r, err)
			return
		}
	}
	s.show(w, r, "chart_careteams.html", "Care teams", v)
}

func (s *Server) pageCareTeamChange(w http.ResponseWriter, r *http.Request) {
	patient, user := r.PostFormValue("patient"), r.PostFormValue("user")
	var err error
	if r.PostFormValue("op") == "remove" {
		err = s.svc.RemoveFromCareTeam(r.Context(), patient, user)
	} else {
		err = s.svc.AddToCareTeam(r.Context(), patient, user)
	}
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/care-teams?patient="+url.QueryEscape(patient), http.StatusSeeOther)
}
