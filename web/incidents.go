package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"haven"
	"haven/service"
)

// Incidents and breach notification: the compliance officer's API and
// pages (service/incidents.go; containment is identity's). Every page of
// an incident shows its 60-day clock.

func (s *Server) apiIncidents(w http.ResponseWriter, r *http.Request) {
	list, err := s.svc.Incidents(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"incidents": list})
}

func (s *Server) apiOpenIncident(w http.ResponseWriter, r *http.Request) {
	var ni service.NewIncident
	if err := decodeJSON(r, &ni); err != nil {
		s.apiError(w, r, err)
		return
	}
	v, err := s.svc.OpenIncident(r.Context(), ni)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) apiIncident(w http.ResponseWriter, r *http.Request) {
	v, err := s.svc.Incident(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) apiScopeIncident(w http.ResponseWriter, r *http.Request) {
	var sc service.IncidentScope
	if err := decodeJSON(r, &sc); err != nil {
		s.apiError(w, r, err)
		return
	}
	v, err := s.svc.ScopeIncident(r.Context(), r.PathValue("id"), sc)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) apiIncidentAffected(w http.ResponseWriter, r *http.Request) {
	list, err := s.svc.IncidentAffected(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"patients": list})
}

func (s *Server) apiContainIncident(w http.ResponseWriter, r *http.Request) {
	done, err := s.id.ContainIncident(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"accounts": done})
}

func (s *Server) apiAssessIncident(w http.ResponseWriter, r *http.Request) {
	var as service.IncidentAssessment
	if err := decodeJSON(r, &as); err != nil {
		s.apiError(w, r, err)
		return
	}
	v, err := s.svc.AssessIncident(r.Context(), r.PathValue("id"), as)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

type incidentDecision struct {
	Breach bool   `json:"breach"`
	Reason string `json:"reason"`
}

func (s *Server) apiDecideIncident(w http.ResponseWriter, r *http.Request) {
	var d incidentDecision
	if err := decodeJSON(r, &d); err != nil {
		s.apiError(w, r, err)
		return
	}
	v, err := s.svc.DecideIncident(r.Context(), r.PathValue("id"), d.Breach, d.Reason)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) apiDraftIncidentLetters(w http.ResponseWriter, r *http.Request) {
	n, err := s.svc.DraftIncidentLetters(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"drafted": n})
}

func (s *Server) apiIncidentLetters(w http.ResponseWriter, r *http.Request) {
	list, err := s.svc.IncidentLetters(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"letters": list})
}

func (s *Server) apiIncidentLetter(w http.ResponseWriter, r *http.Request) {
	l, err := s.svc.IncidentLetter(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *Server) apiIncidentLetterState(w http.ResponseWriter, r *http.Request) {
	var st struct {
		State string `json:"state"`
	}
	if err := decodeJSON(r, &st); err != nil {
		s.apiError(w, r, err)
		return
	}
	if err := s.svc.SetLetterState(r.Context(), r.PathValue("id"), st.State); err != nil {
		s.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Pages.

var incidentFlashes = map[string]string{
	"opened":    "The incident is open. Pick the accounts and the time it covers, then look at who was affected.",
	"scoped":    "The scope is saved. The affected patients below are from the audit log.",
	"contained": "Contained: the accounts are disabled, signed out everywhere, and must reset their password and second factor.",
	"assessed":  "The risk assessment is saved.",
	"decided":   "The decision is recorded.",
	"drafted":   "The letters are drafted, one for each affected patient.",
	"confirm":   "You confirmed it is you: contain the incident now.",
	"letter":    "The letter's state is saved.",
}

func (s *Server) pageIncidents(w http.ResponseWriter, r *http.Request) {
	list, err := s.svc.Incidents(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Incidents")
	p.Data = list
	s.render(w, r, http.StatusOK, "incidents.html", p)
}

func (s *Server) pageOpenIncident(w http.ResponseWriter, r *http.Request) {
	v, err := s.svc.OpenIncident(r.Context(), service.NewIncident{AlertID: r.PostFormValue("alert_id"), Title: r.PostFormValue("title"),
		Summary: r.PostFormValue("summary"), Discovered: r.PostFormValue("discovered")})
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/incidents/"+v.ID+"?done=opened", http.StatusSeeOther)
}

// incidentPage is one incident with what its page offers.
type incidentPage struct {
	Incident   *service.IncidentView
	Accounts   []incidentAccount
	Affected   []affectedRow
	InScope    map[string]bool // patients the scope is narrowed to
	Kinds      []incidentKind
	Letters    []service.LetterView
	Since      string
	Until      string
	Breach     bool
	AnyLetters bool
}

// affectedRow is an affected patient with what was opened, in words.
type affectedRow struct {
	service.AffectedPatient
	What string
}

type incidentAccount struct {
	haven.Member
	Checked bool
}

type incidentKind struct {
	Code, Label string
	Checked     bool
}

var incidentKindLabels = map[string]string{"chart": "Charts", "file": "Files", "message": "Messages", "note": "Notes",
	"lab": "Lab orders and results", "prescription": "Prescriptions", "visit": "Visits", "export": "Record copies"}

func (s *Server) pageIncident(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	v, err := s.svc.Incident(ctx, id)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	d := incidentPage{Incident: v, Breach: v.Decision == haven.DecisionBreach}
	members, err := s.svc.IncidentAccounts(ctx)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	for _, m := range members {
		d.Accounts = append(d.Accounts, incidentAccount{Member: m, Checked: containsString(v.Scope.Accounts, m.UserID)})
	}
	for _, k := range service.IncidentKinds {
		d.Kinds = append(d.Kinds, incidentKind{Code: k, Label: incidentKindLabels[k], Checked: containsString(v.Scope.Kinds, k)})
	}
	aff, err := s.svc.IncidentAffected(ctx, id)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	for _, a := range aff {
		var what []string
		for _, k := range service.IncidentKinds {
			if n := a.Kinds[k]; n > 0 {
				what = append(what, fmt.Sprintf("%s: %d", incidentKindLabels[k], n))
			}
		}
		d.Affected = append(d.Affected, affectedRow{AffectedPatient: a, What: strings.Join(what, ", ")})
	}
	d.InScope = map[string]bool{}
	for _, p := range v.Scope.Patients {
		d.InScope[p] = true
	}
	if d.Letters, err = s.svc.IncidentLetters(ctx, id); err != nil {
		s.pageError(w, r, err)
		return
	}
	d.AnyLetters = len(d.Letters) > 0
	zone := zoneOf(r)
	d.Since, d.Until = v.Scope.Since.In(zone).Format("2006-01-02T15:04"), v.Scope.Until.In(zone).Format("2006-01-02T15:04")
	p := s.newPage(r, "Incident: "+v.Title)
	p.Flash = incidentFlashes[r.URL.Query().Get("done")]
	p.Data = d
	s.render(w, r, http.StatusOK, "incident.html", p)
}

func containsString(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func (s *Server) pageScopeIncident(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.pageError(w, r, errBadParam("form"))
		return
	}
	zone := zoneOf(r)
	since, err1 := time.ParseInLocation("2006-01-02T15:04", r.PostFormValue("since"), zone)
	until, err2 := time.ParseInLocation("2006-01-02T15:04", r.PostFormValue("until"), zone)
	if err1 != nil || err2 != nil {
		s.pageError(w, r, haven.Errorf(haven.EINVALID, "give the start and end of the time the incident covers"))
		return
	}
	sc := service.IncidentScope{Accounts: r.PostForm["account"], Since: since, Until: until, Kinds: r.PostForm["kind"], Patients: r.PostForm["patient"]}
	id := r.PathValue("id")
	if _, err := s.svc.ScopeIncident(r.Context(), id, sc); err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/incidents/"+id+"?done=scoped#affected", http.StatusSeeOther)
}

func (s *Server) pageContainIncident(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	_, err := s.id.ContainIncident(r.Context(), id)
	if haven.ErrorCode(err) == haven.ESTEPUP {
		http.Redirect(w, r, "/account/step-up?next="+url.QueryEscape("/app/incidents/"+id+"?done=confirm#contain"), http.StatusSeeOther)
		return
	}
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/incidents/"+id+"?done=contained#contain", http.StatusSeeOther)
}

func (s *Server) pageAssessIncident(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	as := service.IncidentAssessment{Nature: r.PostFormValue("nature"), Person: r.PostFormValue("person"),
		Acquired: r.PostFormValue("acquired"), Mitigated: r.PostFormValue("mitigated"), Probability: r.PostFormValue("probability")}
	if _, err := s.svc.AssessIncident(r.Context(), id, as); err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/incidents/"+id+"?done=assessed#decision", http.StatusSeeOther)
}

func (s *Server) pageDecideIncident(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	breach := r.PostFormValue("decision")
	if breach != "breach" && breach != "no_breach" {
		s.pageError(w, r, haven.Errorf(haven.EINVALID, "choose breach or not a breach"))
		return
	}
	if _, err := s.svc.DecideIncident(r.Context(), id, breach == "breach", r.PostFormValue("reason")); err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/incidents/"+id+"?done=decided#letters", http.StatusSeeOther)
}

func (s *Server) pageDraftIncidentLetters(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.svc.DraftIncidentLetters(r.Context(), id); err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/incidents/"+id+"?done=drafted#letters", http.StatusSeeOther)
}

// letterPage is one letter and its incident's clock.
type letterPage struct {
	Letter   *service.LetterView
	Incident *service.IncidentView
	Lines    []string
}

func (s *Server) pageIncidentLetter(w http.ResponseWriter, r *http.Request) {
	l, err := s.svc.IncidentLetter(r.Context(), r.PathValue("id"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v, err := s.svc.Incident(r.Context(), l.IncidentID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "A notification letter")
	p.Flash = incidentFlashes[r.URL.Query().Get("done")]
	p.Data = letterPage{Letter: l, Incident: v, Lines: strings.Split(l.Body, "\n")}
	s.render(w, r, http.StatusOK, "incident_letter.html", p)
}

func (s *Server) pageIncidentLetterState(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.svc.SetLetterState(r.Context(), id, r.PostFormValue("state")); err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/incident-letters/"+id+"?done=letter", http.StatusSeeOther)
}
