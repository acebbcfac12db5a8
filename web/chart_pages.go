package web

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"haven"
	"haven/audit"
	"haven/policy"
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
	"allergy":    "The allergy list is updated.",
	"lab-order":  "The lab order is on its way to the lab.",
	"lab-cancel": "The lab order is cancelled. If it had reached the lab, the lab is told.",
	"reviewed":   "Your comment is saved. The result waits for you to release it.",
	"released":   "The result is released to the patient.",
	"matched":    "The result is matched and waits for its clinician's review.",
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
	CareTeam []haven.Member
	// Denied is set when the clinician may not open the chart; the page then
	// offers break-glass instead of content.
	Denied    bool
	PatientID string
	// Allergies and Prescriptions are shown to whoever may read them.
	Allergies     []haven.AllergyView
	Prescriptions []*haven.PrescriptionView
	RxStatus      map[haven.PrescriptionStatus]string
	// LabOrders are the patient's lab orders, for her clinicians.
	LabOrders []*haven.LabOrderView
	LabStatus map[haven.LabOrderStatus]string
	// Files is set when policy lets the reader open the patient's files:
	// the page links to them.
	Files bool
	// Notes and Amendments are the record's visit notes and amendment
	// requests, for the patient and her clinicians (nil for others).
	Notes      []service.NoteSummary
	Amendments []haven.AmendmentView
	// Apps are the practice's SMART apps a clinician may open the chart
	// in (EHR launch, smart.go).
	Apps []appLink
	// Vitals are the vital signs the patient recorded from her apps and
	// devices (FHIR Observation create), for her and her clinicians.
	Vitals []service.VitalView
}

type appLink struct{ ID, Name string }

func (s *Server) pageChart(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ch, err := s.svc.Chart(r.Context(), id)
	a, _ := haven.ActorFromContext(r.Context())
	if haven.ErrorCode(err) == haven.EFORBIDDEN && a.Role == haven.RoleClinician && !trainingLapsed(err) {
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
	v := chartView{Chart: ch, CareTeam: team, PatientID: id}
	if v.Files, err = s.svc.MayReadFiles(r.Context(), id); err != nil {
		s.pageError(w, r, err)
		return
	}
	v.RxStatus = rxStatusWords
	if v.Allergies, err = s.svc.Allergies(r.Context(), id); err != nil && haven.ErrorCode(err) != haven.EFORBIDDEN {
		s.pageError(w, r, err)
		return
	}
	if v.Prescriptions, err = s.svc.PatientPrescriptions(r.Context(), id); err != nil && haven.ErrorCode(err) != haven.EFORBIDDEN {
		s.pageError(w, r, err)
		return
	}
	if a.Role == haven.RoleClinician {
		v.LabStatus = labStatusWords
		if v.LabOrders, err = s.svc.PatientLabOrders(r.Context(), id); err != nil && haven.ErrorCode(err) != haven.EFORBIDDEN {
			s.pageError(w, r, err)
			return
		}
	}
	// Her own readings, for her and her clinicians (the roles that read
	// her results; the front desk would only collect refusals).
	if a.Role == haven.RolePatient || a.Role == haven.RoleClinician {
		if v.Vitals, err = s.svc.PatientVitals(r.Context(), id); err != nil && haven.ErrorCode(err) != haven.EFORBIDDEN {
			s.pageError(w, r, err)
			return
		}
	}
	// Only the roles that read notes and requests by their role ask: a
	// refusal is audited, and front-desk staff would collect one for
	// every chart they open.
	if a.Role == haven.RolePatient || a.Role == haven.RoleClinician {
		if v.Notes, err = s.svc.PatientNotes(r.Context(), id); err != nil {
			s.pageError(w, r, err)
			return
		}
		if v.Amendments, err = s.svc.PatientAmendments(r.Context(), id); err != nil {
			s.pageError(w, r, err)
			return
		}
	}
	if a.Role == haven.RoleClinician && s.smart != nil {
		apps, err := s.smart.LaunchableApps(r.Context())
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		for _, c := range apps {
			v.Apps = append(v.Apps, appLink{ID: c.ID, Name: c.Name})
		}
	}
	s.show(w, r, "chart_view.html", "Chart", v)
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

// AuditPage is how many events the compliance page shows at a time.
const AuditPage = 50

// complianceView is the compliance officer's page: open alerts, the
// break-glass review queue and one page of the audit search, every
// person in it by name.
type complianceView struct {
	Alerts  []*haven.Alert
	Queue   []haven.BreakGlassGrantView
	Events  []service.AuditRow
	Query   haven.AuditQuery
	Names   map[string]string // user and patient ids on the page → names
	Roster  []haven.Member    // whose accesses: the workforce, by name
	Actions []actionChoice
	Older   template.URL // the next page, if there is one (built here from ids and codes)
	// Matches are the patients a name and date of birth found, when more
	// than one did.
	Matches []haven.Member
	// Incidents: the reader may open an incident from an alert.
	Incidents bool
	// Drill is the last restore drill against the practice's recovery
	// target (the contingency plan's evidence).
	Drill service.DrillStatus
}

// actionChoice is one entry of the action filter.
type actionChoice struct{ Code, Label string }

// actionChoices are the actions the search offers, in words.
func actionChoices() []actionChoice {
	var out []actionChoice
	for _, a := range policy.Actions() {
		out = append(out, actionChoice{string(a), actionLabel(string(a))})
	}
	for _, code := range []string{"auth.login", "visit.join_refused", "visit.leave", "visit.invite", "visit.cut", "visit.remind", "mfa.enrol", "mfa.reset", "user.disable"} {
		out = append(out, actionChoice{code, actionLabel(code)})
	}
	slices.SortFunc(out, func(x, y actionChoice) int { return strings.Compare(x.Label, y.Label) })
	return out
}

func (s *Server) pageCompliance(w http.ResponseWriter, r *http.Request) {
	s.renderCompliance(w, r, http.StatusOK, chartFlashes[r.URL.Query().Get("done")], "", nil)
}

func (s *Server) renderCompliance(w http.ResponseWriter, r *http.Request, status int, flash, msg string, matches []haven.Member) {
	ctx := r.Context()
	q := r.URL.Query()
	v := complianceView{Actions: actionChoices(), Matches: matches}
	if a, ok := haven.ActorFromContext(ctx); ok {
		v.Incidents = policy.Permits(a.Role, policy.IncidentManage)
	}
	var err error
	if v.Alerts, err = s.svc.Alerts(ctx, false); err != nil {
		s.pageError(w, r, err)
		return
	}
	if v.Queue, err = s.svc.BreakGlassQueue(ctx); err != nil {
		s.pageError(w, r, err)
		return
	}
	if v.Roster, err = s.svc.Roster(ctx); err != nil {
		s.pageError(w, r, err)
		return
	}
	if v.Drill, err = s.svc.RestoreDrillStatus(ctx); err != nil {
		s.pageError(w, r, err)
		return
	}
	v.Query = haven.AuditQuery{PatientID: q.Get("patient"), ActorID: q.Get("actor"), Action: q.Get("action"), Decision: q.Get("decision"), Limit: AuditPage + 1}
	if b := q.Get("before"); b != "" {
		if v.Query.BeforeSeq, err = strconv.ParseUint(b, 10, 64); err != nil {
			s.pageError(w, r, errBadParam("before"))
			return
		}
	}
	if v.Events, err = s.svc.SearchAudit(ctx, v.Query); err != nil {
		s.pageError(w, r, err)
		return
	}
	if len(v.Events) > AuditPage {
		v.Events = v.Events[:AuditPage]
		older := url.Values{}
		for _, k := range []string{"patient", "actor", "action", "decision"} {
			if x := q.Get(k); x != "" {
				older.Set(k, x)
			}
		}
		older.Set("before", strconv.FormatUint(v.Events[AuditPage-1].Seq, 10))
		v.Older = template.URL("/app/compliance?" + older.Encode() + "#audit")
	}
	ids := []string{v.Query.PatientID}
	for _, a := range v.Alerts {
		ids = append(ids, a.ActorID, a.PatientID)
	}
	for _, g := range v.Queue {
		ids = append(ids, g.PatientID)
	}
	for _, e := range v.Events {
		ids = append(ids, e.PatientID)
	}
	if v.Names, err = s.svc.Names(ctx, ids); err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Alerts and audit")
	p.Flash, p.Error = flash, msg
	p.Data = v
	s.render(w, r, status, "chart_compliance.html", p)
}

// pageCompliancePatient finds the patient the officer names (full name
// and date of birth, posted: a name never goes in a URL) and filters the
// audit search to them; with no match or several, the page says so.
func (s *Server) pageCompliancePatient(w http.ResponseWriter, r *http.Request) {
	found, err := s.svc.FindPatient(r.Context(), r.PostFormValue("name"), r.PostFormValue("date_of_birth"))
	if err != nil {
		if haven.ErrorCode(err) == haven.EINVALID {
			r.URL.RawQuery = ""
			s.renderCompliance(w, r, http.StatusBadRequest, "", haven.ErrorMessage(err), nil)
			return
		}
		s.pageError(w, r, err)
		return
	}
	switch len(found) {
	case 0:
		r.URL.RawQuery = ""
		s.renderCompliance(w, r, http.StatusOK, "", "No patient of the practice has that name and date of birth.", nil)
	case 1:
		http.Redirect(w, r, "/app/compliance?"+url.Values{"patient": {found[0].UserID}}.Encode()+"#audit", http.StatusSeeOther)
	default:
		r.URL.RawQuery = ""
		s.renderCompliance(w, r, http.StatusOK, "", "", found)
	}
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
	Team      []haven.Member
	Workforce []haven.Member
	Matches   []haven.Member // several patients matched the name and date of birth
}

// pageCareTeams lets a practice admin manage one patient's care team. The
// admin finds the patient by full name and date of birth (posted, so no
// name is ever in a URL; pageCareTeamFind) and then sees the team by
// workforce names only, never the chart, nor the patient's name again.
func (s *Server) pageCareTeams(w http.ResponseWriter, r *http.Request) {
	s.renderCareTeams(w, r, http.StatusOK, "", strings.TrimSpace(r.URL.Query().Get("patient")), nil)
}

func (s *Server) renderCareTeams(w http.ResponseWriter, r *http.Request, status int, msg, patientID string, matches []haven.Member) {
	v := careTeamsView{PatientID: patientID, Matches: matches}
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
	p := s.newPage(r, "Care teams")
	p.Flash, p.Error = chartFlashes[r.URL.Query().Get("done")], msg
	p.Data = v
	s.render(w, r, status, "chart_careteams.html", p)
}

// pageCareTeamFind finds the patient whose care team the admin opens.
func (s *Server) pageCareTeamFind(w http.ResponseWriter, r *http.Request) {
	found, err := s.svc.FindPatient(r.Context(), r.PostFormValue("name"), r.PostFormValue("date_of_birth"))
	switch {
	case haven.ErrorCode(err) == haven.EINVALID:
		s.renderCareTeams(w, r, http.StatusBadRequest, haven.ErrorMessage(err), "", nil)
	case err != nil:
		s.pageError(w, r, err)
	case len(found) == 0:
		s.renderCareTeams(w, r, http.StatusOK, "No patient of the practice has that name and date of birth.", "", nil)
	case len(found) == 1:
		http.Redirect(w, r, "/app/care-teams?"+url.Values{"patient": {found[0].UserID}}.Encode(), http.StatusSeeOther)
	default:
		s.renderCareTeams(w, r, http.StatusOK, "", "", found)
	}
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
