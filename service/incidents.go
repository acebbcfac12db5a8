package service

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"haven"
	"haven/audit"
	"haven/keyring"
	"haven/policy"
)

// Incidents and breach notification (HIPAA 164.308(a)(6), 164.402-410):
// the compliance officer's alone (policy's incident.* rows). An incident
// is opened from an alert or by hand, scoped (accounts picked by name, a
// time window, kinds of access, optionally some patients), and the audit
// log names every patient whose chart, files, messages, notes or other
// records the scoped accounts opened in that window, with counts.
// Containment (identity.ContainIncident) shuts the accounts out in one
// step. The four-factor assessment (164.402(2)) and the decision follow;
// a breach gets one letter per affected patient, each sealed under that
// patient's key and naming her alone, and the 60-day clock from discovery
// (164.404(b)). Nothing here deletes: incidents are kept six years.

// IncidentKinds are the kinds of access a scope may select, as the audit
// log names them (the part of an action before its dot).
var IncidentKinds = []string{"chart", "file", "message", "note", "lab", "prescription", "visit", "export"}

// incidentKindWords are the kinds in plain words, for pages and letters.
var incidentKindWords = map[string]string{
	"chart": "your chart (name, date of birth, contact details)", "file": "files in your record",
	"message": "your messages", "note": "your visit notes", "lab": "your lab orders and results",
	"prescription": "your prescriptions", "visit": "your appointments", "export": "a copy of your record",
}

// IncidentScope is what an incident covers.
type IncidentScope struct {
	Accounts []string  `json:"accounts"`           // workforce accounts whose accesses are in scope
	Since    time.Time `json:"since"`              // the window, from
	Until    time.Time `json:"until"`              // to (exclusive)
	Kinds    []string  `json:"kinds"`              // kinds of access; empty means every kind
	Patients []string  `json:"patients,omitempty"` // only these patients; empty means every patient
}

// IncidentAssessment is the four-factor risk assessment of 164.402(2).
type IncidentAssessment struct {
	Nature      string     `json:"nature"`      // (i) nature and extent of the PHI, identifiers, likelihood of re-identification
	Person      string     `json:"person"`      // (ii) the unauthorized person who used it or to whom it was disclosed
	Acquired    string     `json:"acquired"`    // (iii) whether the PHI was actually acquired or viewed
	Mitigated   string     `json:"mitigated"`   // (iv) the extent to which the risk has been mitigated
	Probability string     `json:"probability"` // "low" or "not_low": the probability that PHI was compromised
	AssessedBy  string     `json:"assessed_by,omitempty"`
	AssessedAt  *time.Time `json:"assessed_at,omitempty"`
}

// ContainedAccount is what containment did to one account.
type ContainedAccount struct {
	UserID          string `json:"user_id"`
	Name            string `json:"name,omitempty"`
	Disabled        bool   `json:"disabled"`
	SessionsEnded   int    `json:"sessions_ended"`
	TokensEnded     int    `json:"tokens_ended"`
	PasswordCleared bool   `json:"password_cleared"`
	FactorsCleared  bool   `json:"factors_cleared"`
	Note            string `json:"note,omitempty"`
}

// incidentDetail is what an incident says, sealed under the practice's key.
type incidentDetail struct {
	Title          string              `json:"title"`
	Summary        string              `json:"summary,omitempty"`
	Scope          IncidentScope       `json:"scope"`
	Assessment     *IncidentAssessment `json:"assessment,omitempty"`
	DecisionReason string              `json:"decision_reason,omitempty"`
	Contained      []ContainedAccount  `json:"contained,omitempty"`
}

func incidentAD(i *haven.Incident) keyring.AD {
	return keyring.AD{PracticeID: keyPractice(i.PracticeID), Kind: "incident", RecordID: i.ID, Field: "detail"}
}

func letterAD(l *haven.IncidentLetter) keyring.AD {
	return keyring.AD{PracticeID: l.PracticeID, PatientID: l.PatientID, Kind: "incident_letter", RecordID: l.ID, Field: "body"}
}

// IncidentView is an incident as its pages show it.
type IncidentView struct {
	ID          string     `json:"id"`
	Title       string     `json:"title"`
	Summary     string     `json:"summary,omitempty"`
	State       string     `json:"state"`
	AlertID     string     `json:"alert_id,omitempty"`
	AlertRule   string     `json:"alert_rule,omitempty"`
	Discovered  time.Time  `json:"discovered"`
	OpenedBy    string     `json:"opened_by"`
	ContainedAt *time.Time `json:"contained_at,omitempty"`
	Decision    string     `json:"decision,omitempty"`
	DecidedAt   *time.Time `json:"decided_at,omitempty"`
	Reason      string     `json:"decision_reason,omitempty"`
	// The 60-day clock, shown on every page of a breach (and of an
	// incident not yet decided: it runs from discovery either way).
	Deadline time.Time `json:"notice_deadline"`
	DaysLeft int       `json:"days_left"`
	// Affected is the count of patients, fixed at the decision; Media is
	// whether it reaches 500 (media and immediate notice to the Secretary).
	Affected    int                 `json:"affected"`
	Media       bool                `json:"media_notice"`
	Scope       IncidentScope       `json:"scope"`
	Accounts    []haven.Member      `json:"accounts"`
	Assessment  *IncidentAssessment `json:"assessment,omitempty"`
	Contained   []ContainedAccount  `json:"contained,omitempty"`
	KeepUntil   time.Time           `json:"keep_until"`
	CreatedAt   time.Time           `json:"created_at"`
	UpdatedAt   time.Time           `json:"updated_at"`
	Letters     int                 `json:"letters"`
	LettersSent int                 `json:"letters_sent"`
}

// AffectedPatient is one patient the scoped accounts opened, by name.
type AffectedPatient struct {
	PatientID string         `json:"patient_id"`
	Name      string         `json:"name"`
	Accesses  int            `json:"accesses"`
	Kinds     map[string]int `json:"kinds"`
	First     time.Time      `json:"first"`
	Last      time.Time      `json:"last"`
}

// LetterView is one letter as the incident's letters page lists it.
type LetterView struct {
	ID          string     `json:"id"`
	IncidentID  string     `json:"incident_id"`
	PatientID   string     `json:"patient_id"`
	PatientName string     `json:"patient_name"`
	State       string     `json:"state"`
	SentAt      *time.Time `json:"sent_at,omitempty"`
	ReturnedAt  *time.Time `json:"returned_at,omitempty"`
	Body        string     `json:"body,omitempty"`
}

// NewIncident is what opening an incident takes.
type NewIncident struct {
	AlertID string `json:"alert_id,omitempty"` // open from this alert
	Title   string `json:"title,omitempty"`
	Summary string `json:"summary,omitempty"`
	// Discovered is the day the incident became known (YYYY-MM-DD; the
	// alert's time when opened from one, today when empty).
	Discovered string `json:"discovered,omitempty"`
}

const (
	maxIncidentText  = 4000
	maxIncidents     = 500
	maxScopeAccounts = 50
)

// maxScopeEvents bounds the audit events one affected-patients list reads.
// A scope that covers more is refused, never cut short: a list that
// silently stopped at the bound would leave patients out of the breach
// letters. A variable so a test can reach the bound without writing
// 200,000 events.
var maxScopeEvents = 200000

func incidentText(s string, max int, what string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > max || !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return "", haven.Errorf(haven.EINVALID, "the %s is at most %d characters", what, max)
	}
	return s, nil
}

// incidentGate passes the gate for act on the practice's incidents.
func (s *Service) incidentGate(ctx context.Context, act policy.Action) (haven.Actor, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return a, err
	}
	_, _, err = s.authorize(ctx, act, policy.Resource{Kind: policy.KindIncident, PracticeID: a.PracticeID})
	return a, err
}

// incidentFor loads the incident id names and passes the gate for act on
// it. An id that exists nowhere, or in another practice, is refused the
// same way (and the other practice hears of the probe).
func (s *Service) incidentFor(ctx context.Context, act policy.Action, id string) (haven.Actor, *haven.Incident, *incidentDetail, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return a, nil, nil, err
	}
	if !haven.PlausibleID(id) {
		return a, nil, nil, s.refuseUnknown(ctx, a, act, policy.KindIncident, id)
	}
	inc, err := s.db.FindIncident(ctx, id)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return a, nil, nil, s.refuseUnknown(ctx, a, act, policy.KindIncident, id)
	}
	if err != nil {
		return a, nil, nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the incident")
	}
	if _, _, err := s.authorizeRecord(ctx, act, policy.Resource{Kind: policy.KindIncident, ID: inc.ID, PracticeID: inc.PracticeID}, id); err != nil {
		return a, nil, nil, err
	}
	if inc.PracticeID != a.PracticeID {
		return a, nil, nil, errNotFound // policy refuses another practice's; never reached
	}
	var d incidentDetail
	if err := s.openJSON(ctx, incidentAD(inc), inc.Detail, &d); err != nil {
		return a, nil, nil, err
	}
	return a, inc, &d, nil
}

func (s *Service) saveIncident(ctx context.Context, inc *haven.Incident, d *incidentDetail) error {
	var err error
	if inc.Detail, err = s.sealJSON(ctx, incidentAD(inc), d); err != nil {
		return err
	}
	return s.db.UpdateIncident(ctx, inc)
}

// OpenIncident opens an incident, from an alert of the practice or by hand.
// From an alert, the alert's account is in scope and the window starts a
// day before the alert; discovery is the alert's time.
func (s *Service) OpenIncident(ctx context.Context, ni NewIncident) (*IncidentView, error) {
	title, err := incidentText(ni.Title, 200, "title")
	if err != nil || !oneLine(title) {
		return nil, haven.Errorf(haven.EINVALID, "the title is one line of at most 200 characters")
	}
	summary, err := incidentText(ni.Summary, maxIncidentText, "summary")
	if err != nil {
		return nil, err
	}
	var al *haven.Alert
	if ni.AlertID != "" {
		a, err := haven.SignedIn(ctx)
		if err != nil {
			return nil, err
		}
		if !haven.PlausibleID(ni.AlertID) {
			return nil, s.refuseUnknown(ctx, a, policy.AlertReview, policy.KindAlert, ni.AlertID)
		}
		al, err = s.db.FindAlert(ctx, ni.AlertID)
		if haven.ErrorCode(err) == haven.ENOTFOUND {
			return nil, s.refuseUnknown(ctx, a, policy.AlertReview, policy.KindAlert, ni.AlertID)
		}
		if err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the alert")
		}
		if _, _, err := s.authorizeRecord(ctx, policy.AlertReview, policy.Resource{Kind: policy.KindAlert, ID: al.ID, PracticeID: al.PracticeID}, ni.AlertID); err != nil {
			return nil, err
		}
	}
	a, err := s.incidentGate(ctx, policy.IncidentManage)
	if err != nil {
		return nil, err
	}
	now := s.now()
	discovered := now
	if al != nil && al.CreatedAt.Before(now) {
		discovered = al.CreatedAt
	}
	if v := strings.TrimSpace(ni.Discovered); v != "" {
		day, err := time.Parse(time.DateOnly, v)
		if err != nil || day.After(now.Add(14*time.Hour)) || day.Before(now.AddDate(-1, 0, 0)) {
			return nil, haven.Errorf(haven.EINVALID, "give the day the incident was discovered (YYYY-MM-DD), today or in the past year")
		}
		discovered = day.UTC()
	}
	inc := &haven.Incident{ID: haven.NewID(), PracticeID: a.PracticeID, State: haven.IncidentOpen, Discovered: discovered, OpenedBy: a.UserID}
	d := &incidentDetail{Title: title, Summary: summary, Scope: IncidentScope{Since: discovered.AddDate(0, 0, -1), Until: now.Add(time.Minute)}}
	if al != nil {
		inc.AlertID = al.ID
		if d.Title == "" {
			d.Title = "Alert: " + ruleWords(al.Rule)
		}
		if al.ActorID != "" {
			d.Scope.Accounts = []string{al.ActorID}
		}
		d.Scope.Since = discovered.Add(-24 * time.Hour)
	}
	if d.Title == "" {
		return nil, haven.Errorf(haven.EINVALID, "give the incident a title")
	}
	if inc.Detail, err = s.sealJSON(ctx, incidentAD(inc), d); err != nil {
		return nil, err
	}
	if err := s.db.CreateIncident(ctx, inc); err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot open the incident")
	}
	return s.incidentView(ctx, inc, d)
}

// ruleWords is an alert rule in plain words.
func ruleWords(rule string) string {
	switch rule {
	case RuleBulkAccess:
		return "many patients opened quickly"
	case RuleDenials:
		return "repeated refusals"
	case RuleAfterHours:
		return "access outside working hours"
	case RuleBreakGlass:
		return "emergency access"
	case RuleProbe:
		return "another practice asked for our records"
	}
	return rule
}

// incidentView opens what the pages show of inc, for a caller decided.
func (s *Service) incidentView(ctx context.Context, inc *haven.Incident, d *incidentDetail) (*IncidentView, error) {
	v := &IncidentView{ID: inc.ID, Title: d.Title, Summary: d.Summary, State: inc.State, AlertID: inc.AlertID, Discovered: inc.Discovered,
		ContainedAt: inc.ContainedAt, Decision: inc.Decision, DecidedAt: inc.DecidedAt, Reason: d.DecisionReason, Affected: inc.Affected,
		Scope: d.Scope, Assessment: d.Assessment, Contained: d.Contained, CreatedAt: inc.CreatedAt, UpdatedAt: inc.UpdatedAt}
	v.Deadline = noticeDeadline(inc.Discovered)
	v.DaysLeft = int(v.Deadline.Sub(s.now()).Hours() / 24)
	if v.Deadline.Before(s.now()) {
		v.DaysLeft = -int(s.now().Sub(v.Deadline).Hours()/24) - 1
	}
	v.Media = mediaNotice(inc.Affected)
	v.KeepUntil = inc.CreatedAt.AddDate(haven.IncidentRetentionYears, 0, 0)
	if inc.DecidedAt != nil {
		v.KeepUntil = inc.DecidedAt.AddDate(haven.IncidentRetentionYears, 0, 0)
	}
	if u, err := s.db.FindUserByID(ctx, inc.OpenedBy); err == nil {
		if p, err := s.openUser(ctx, u); err == nil {
			v.OpenedBy = p.Name
		}
	}
	if inc.AlertID != "" {
		if al, err := s.db.FindAlert(ctx, inc.AlertID); err == nil && al.PracticeID == inc.PracticeID {
			v.AlertRule = ruleWords(al.Rule)
		}
	}
	for _, id := range d.Scope.Accounts {
		u, err := s.db.FindUserByID(ctx, id)
		if err != nil || u.PracticeID != inc.PracticeID {
			continue
		}
		p, err := s.openUser(ctx, u)
		if err != nil {
			return nil, err
		}
		v.Accounts = append(v.Accounts, haven.Member{UserID: u.ID, Name: p.Name, Role: u.Role})
	}
	ls, err := s.db.IncidentLetters(ctx, inc.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the letters")
	}
	for _, l := range ls {
		v.Letters++
		if l.State != haven.LetterDrafted {
			v.LettersSent++
		}
	}
	return v, nil
}

// mediaNotice reports whether a breach of n patients must also be told
// to the media (164.406) and to the Secretary at once (164.408(b)).
func mediaNotice(n int) bool { return n >= haven.BreachMediaThreshold }

// noticeDeadline is the last day to notify patients of a breach
// discovered at discovered (164.404(b)).
func noticeDeadline(discovered time.Time) time.Time {
	return discovered.AddDate(0, 0, haven.BreachNoticeDays)
}

// Incidents lists the practice's incidents, newest first.
func (s *Service) Incidents(ctx context.Context) ([]*IncidentView, error) {
	a, err := s.incidentGate(ctx, policy.IncidentManage)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.PracticeIncidents(ctx, a.PracticeID, maxIncidents)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list the incidents")
	}
	out := []*IncidentView{}
	for _, inc := range rows {
		if inc.PracticeID != a.PracticeID {
			continue
		}
		var d incidentDetail
		if err := s.openJSON(ctx, incidentAD(inc), inc.Detail, &d); err != nil {
			return nil, err
		}
		v, err := s.incidentView(ctx, inc, &d)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Incident returns one incident of the practice.
func (s *Service) Incident(ctx context.Context, id string) (*IncidentView, error) {
	_, inc, d, err := s.incidentFor(ctx, policy.IncidentManage, id)
	if err != nil {
		return nil, err
	}
	return s.incidentView(ctx, inc, d)
}

// IncidentAccounts is the practice's workforce by name, to pick the
// accounts an incident covers (disabled ones too: an insider may already
// be shut out).
func (s *Service) IncidentAccounts(ctx context.Context) ([]haven.Member, error) {
	a, err := s.incidentGate(ctx, policy.IncidentManage)
	if err != nil {
		return nil, err
	}
	users, err := s.db.ListUsers(ctx, a.PracticeID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list the workforce")
	}
	out := []haven.Member{}
	for _, u := range users {
		if !u.Role.Workforce() || u.PracticeID != a.PracticeID {
			continue
		}
		p, err := s.openUser(ctx, u)
		if err != nil {
			return nil, err
		}
		out = append(out, haven.Member{UserID: u.ID, Name: p.Name, Role: u.Role})
	}
	slices.SortFunc(out, func(x, y haven.Member) int { return strings.Compare(x.Name, y.Name) })
	return out, nil
}

// ScopeIncident sets what an incident covers. Accounts must be the
// practice's workforce; patients, the practice's patients; the window at
// most a year, ending no later than now.
func (s *Service) ScopeIncident(ctx context.Context, id string, sc IncidentScope) (*IncidentView, error) {
	a, inc, d, err := s.incidentFor(ctx, policy.IncidentManage, id)
	if err != nil {
		return nil, err
	}
	if inc.State == haven.IncidentDecided {
		return nil, haven.Errorf(haven.ECONFLICT, "the incident is decided; its scope is kept as it was decided")
	}
	if len(sc.Accounts) == 0 || len(sc.Accounts) > maxScopeAccounts {
		return nil, haven.Errorf(haven.EINVALID, "pick between 1 and %d accounts", maxScopeAccounts)
	}
	seen := map[string]bool{}
	accounts := []string{}
	for _, uid := range sc.Accounts {
		if seen[uid] {
			continue
		}
		seen[uid] = true
		if !haven.PlausibleID(uid) {
			return nil, s.refuseUnknown(ctx, a, policy.IncidentManage, policy.KindUser, uid)
		}
		u, err := s.db.FindUserByID(ctx, uid)
		if haven.ErrorCode(err) == haven.ENOTFOUND || (err == nil && (u.PracticeID != a.PracticeID || !u.Role.Workforce())) {
			return nil, s.refuseUnknown(ctx, a, policy.IncidentManage, policy.KindUser, uid)
		}
		if err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the account")
		}
		accounts = append(accounts, uid)
	}
	now := s.now()
	if sc.Since.IsZero() || sc.Until.IsZero() || !sc.Since.Before(sc.Until) || sc.Until.Sub(sc.Since) > 366*24*time.Hour || sc.Since.After(now) {
		return nil, haven.Errorf(haven.EINVALID, "the window starts before it ends and spans at most a year")
	}
	kinds := []string{}
	for _, k := range sc.Kinds {
		if !slices.Contains(IncidentKinds, k) {
			return nil, haven.Errorf(haven.EINVALID, "a kind of access is one of %s", strings.Join(IncidentKinds, ", "))
		}
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	patients := []string{}
	for _, pid := range sc.Patients {
		if slices.Contains(patients, pid) {
			continue
		}
		if !haven.PlausibleID(pid) {
			return nil, s.refuseUnknown(ctx, a, policy.IncidentManage, policy.KindPatient, pid)
		}
		row, err := s.db.FindPatient(ctx, pid)
		if haven.ErrorCode(err) == haven.ENOTFOUND || (err == nil && row.PracticeID != a.PracticeID) {
			return nil, s.refuseUnknown(ctx, a, policy.IncidentManage, policy.KindPatient, pid)
		}
		if err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the patient")
		}
		patients = append(patients, pid)
	}
	d.Scope = IncidentScope{Accounts: accounts, Since: sc.Since.UTC(), Until: sc.Until.UTC(), Kinds: kinds, Patients: patients}
	if err := s.saveIncident(ctx, inc, d); err != nil {
		return nil, err
	}
	return s.incidentView(ctx, inc, d)
}

// IncidentAffected lists the patients the audit log shows the scoped
// accounts opened in the window (allowed accesses of the chosen kinds to
// a patient's records, the patient's own actions aside), by name, most
// accesses first. The names are opened after one audited decision
// (incident.manage), as the officer's alert screens open them.
func (s *Service) IncidentAffected(ctx context.Context, id string) ([]AffectedPatient, error) {
	_, inc, d, err := s.incidentFor(ctx, policy.IncidentManage, id)
	if err != nil {
		return nil, err
	}
	return s.affected(ctx, inc, d)
}

func (s *Service) affected(ctx context.Context, inc *haven.Incident, d *incidentDetail) ([]AffectedPatient, error) {
	byPatient := map[string]*AffectedPatient{}
	read := 0
	for _, actor := range d.Scope.Accounts {
		q := haven.AuditQuery{LogID: inc.PracticeID, ActorID: actor, Decision: haven.DecisionAllow, Since: d.Scope.Since, Until: d.Scope.Until, Limit: min(1000, maxScopeEvents+1)}
		for {
			evs, err := s.db.SearchAudit(ctx, q)
			if err != nil {
				return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot search the audit log")
			}
			for _, e := range evs {
				if !inScope(e.Event, d.Scope) {
					continue
				}
				p := byPatient[e.PatientID]
				if p == nil {
					p = &AffectedPatient{PatientID: e.PatientID, Kinds: map[string]int{}, First: e.Time, Last: e.Time}
					byPatient[e.PatientID] = p
				}
				p.Accesses++
				p.Kinds[kindOf(e.Action)]++
				if e.Time.Before(p.First) {
					p.First = e.Time
				}
				if e.Time.After(p.Last) {
					p.Last = e.Time
				}
			}
			read += len(evs)
			if read > maxScopeEvents {
				return nil, haven.Errorf(haven.EINVALID, "the scope covers more than %d audit events; narrow the window, the accounts or the kinds of access", maxScopeEvents)
			}
			if len(evs) < q.Limit {
				break
			}
			q.BeforeSeq = evs[len(evs)-1].Seq
		}
	}
	out := make([]AffectedPatient, 0, len(byPatient))
	for _, p := range byPatient {
		row, err := s.db.FindPatient(ctx, p.PatientID)
		if err != nil || row.PracticeID != inc.PracticeID {
			continue
		}
		p.Name = patientName(ctx, s, row)
		if p.Name == "" {
			p.Name = "(record erased)"
		}
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Accesses != out[j].Accesses {
			return out[i].Accesses > out[j].Accesses
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// kindOf is the kind of access an action is: the part before its dot.
func kindOf(action string) string { return openedKinds[action] }

// openedKinds are the actions that open a patient's records (rather than,
// say, triaging an inbox line or booking), what a breach is about, and
// the kind of access each is.
var openedKinds = map[string]string{
	string(policy.ChartRead): "chart", string(policy.FileRead): "file", string(policy.MessageRead): "message",
	string(policy.NoteRead): "note", string(policy.AmendmentRead): "note", string(policy.LabRead): "lab",
	string(policy.PrescriptionRead): "prescription", string(policy.VisitRead): "visit", string(policy.ExportForRequest): "export",
}

func inScope(e audit.Event, sc IncidentScope) bool {
	if e.PatientID == "" || e.PatientID == e.ActorID || e.Decision != haven.DecisionAllow || kindOf(e.Action) == "" {
		return false
	}
	if len(sc.Kinds) > 0 && !slices.Contains(sc.Kinds, kindOf(e.Action)) {
		return false
	}
	return len(sc.Patients) == 0 || slices.Contains(sc.Patients, e.PatientID)
}

// AssessIncident records the four-factor risk assessment (164.402(2)).
func (s *Service) AssessIncident(ctx context.Context, id string, as IncidentAssessment) (*IncidentView, error) {
	a, inc, d, err := s.incidentFor(ctx, policy.IncidentManage, id)
	if err != nil {
		return nil, err
	}
	if inc.State == haven.IncidentDecided {
		return nil, haven.Errorf(haven.ECONFLICT, "the incident is decided; its assessment is kept as it was decided")
	}
	for _, f := range []struct {
		v    *string
		what string
	}{{&as.Nature, "nature and extent of the information"}, {&as.Person, "person who used or received it"},
		{&as.Acquired, "whether it was actually acquired or viewed"}, {&as.Mitigated, "extent the risk was mitigated"}} {
		if *f.v, err = incidentText(*f.v, maxIncidentText, f.what); err != nil {
			return nil, err
		}
		if *f.v == "" {
			return nil, haven.Errorf(haven.EINVALID, "answer every factor: the %s is missing", f.what)
		}
	}
	if as.Probability != "low" && as.Probability != "not_low" {
		return nil, haven.Errorf(haven.EINVALID, "say whether the probability that the information was compromised is low")
	}
	now := s.now()
	as.AssessedBy, as.AssessedAt = a.UserID, &now
	d.Assessment = &as
	if err := s.saveIncident(ctx, inc, d); err != nil {
		return nil, err
	}
	return s.incidentView(ctx, inc, d)
}

// DecideIncident records whether the incident is a breach, with its
// reason, after the assessment. The affected count is fixed then (it sets
// the 500-or-more flag); a decision is final (a later finding is a new
// incident), so the record the regulator may ask for never changes.
func (s *Service) DecideIncident(ctx context.Context, id string, breach bool, reason string) (*IncidentView, error) {
	a, inc, d, err := s.incidentFor(ctx, policy.IncidentManage, id)
	if err != nil {
		return nil, err
	}
	if inc.State == haven.IncidentDecided {
		return nil, haven.Errorf(haven.ECONFLICT, "the incident is already decided")
	}
	if d.Assessment == nil {
		return nil, haven.Errorf(haven.ECONFLICT, "complete the risk assessment first")
	}
	if reason, err = incidentText(reason, maxIncidentText, "reason"); err != nil {
		return nil, err
	}
	if reason == "" {
		return nil, haven.Errorf(haven.EINVALID, "give the reason for the decision")
	}
	if !breach && d.Assessment.Probability != "low" {
		return nil, haven.Errorf(haven.EINVALID, "an incident is presumed a breach unless the assessment shows a low probability that the information was compromised")
	}
	ps, err := s.affected(ctx, inc, d)
	if err != nil {
		return nil, err
	}
	now := s.now()
	inc.State, inc.DecidedAt, inc.DecidedBy, inc.Affected = haven.IncidentDecided, &now, a.UserID, len(ps)
	inc.Decision = haven.DecisionNoBreach
	if breach {
		inc.Decision = haven.DecisionBreach
	}
	d.DecisionReason = reason
	if err := s.saveIncident(ctx, inc, d); err != nil {
		return nil, err
	}
	return s.incidentView(ctx, inc, d)
}

// DraftIncidentLetters drafts a letter for every affected patient of a
// breach who has none yet; each names only her and what of hers was
// opened, sealed under her key. The decision to open each patient's
// details is recorded in her access history (incident.letter).
func (s *Service) DraftIncidentLetters(ctx context.Context, id string) (int, error) {
	a, inc, d, err := s.incidentFor(ctx, policy.IncidentManage, id)
	if err != nil {
		return 0, err
	}
	if inc.Decision != haven.DecisionBreach {
		return 0, haven.Errorf(haven.ECONFLICT, "letters are for a breach: decide the incident first")
	}
	ps, err := s.affected(ctx, inc, d)
	if err != nil {
		return 0, err
	}
	have, err := s.db.IncidentLetters(ctx, inc.ID)
	if err != nil {
		return 0, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the letters")
	}
	practice := "your practice"
	if p, err := s.db.FindPracticeByID(ctx, inc.PracticeID); err == nil {
		practice = p.Name
	}
	n := 0
	for _, p := range ps {
		if slices.ContainsFunc(have, func(l *haven.IncidentLetter) bool { return l.PatientID == p.PatientID }) {
			continue
		}
		row, err := s.db.FindPatient(ctx, p.PatientID)
		if err != nil || row.PracticeID != inc.PracticeID {
			continue
		}
		l := &haven.IncidentLetter{ID: haven.NewID(), IncidentID: inc.ID, PracticeID: inc.PracticeID, PatientID: row.ID, State: haven.LetterDrafted}
		if _, _, err := s.authorize(ctx, policy.IncidentLetter, policy.Resource{Kind: policy.KindIncident, ID: l.ID, PracticeID: a.PracticeID, PatientID: row.ID}); err != nil {
			return n, err
		}
		var dem Demographics
		var c Contact
		if err := s.openJSON(ctx, chartAD(row.PracticeID, row.ID, "demographics"), row.Demographics, &dem); err != nil {
			if errKeyDestroyed(err) {
				continue // an erased patient gets no letter
			}
			return n, err
		}
		if err := s.openJSON(ctx, chartAD(row.PracticeID, row.ID, "contact"), row.Contact, &c); err != nil {
			return n, err
		}
		body := letterText(practice, inc, p, dem, c)
		if l.Body, err = s.keys.Seal(ctx, letterAD(l), []byte(body)); err != nil {
			return n, err
		}
		if err := s.db.CreateIncidentLetter(ctx, l); err != nil {
			if haven.ErrorCode(err) == haven.ECONFLICT {
				continue
			}
			return n, haven.Wrap(haven.EUNAVAILABLE, err, "cannot store the letter")
		}
		n++
	}
	return n, nil
}

// letterText is one patient's notification (164.404(c)): what happened
// and when, what of hers was involved, what she can do, what the practice
// is doing, and how to reach it. It names her alone.
func letterText(practice string, inc *haven.Incident, p AffectedPatient, dem Demographics, c Contact) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", dem.Name)
	if c.Address != "" {
		fmt.Fprintf(&b, "%s\n", c.Address)
	}
	fmt.Fprintf(&b, "\nDear %s,\n\n", dem.Name)
	fmt.Fprintf(&b, "We are writing to tell you about an incident at %s that involved some of your health information.\n\n", practice)
	fmt.Fprintf(&b, "What happened: between %s and %s, your records were opened by an account of our practice outside its proper use. We discovered this on %s.\n\n",
		p.First.Format("2 January 2006"), p.Last.Format("2 January 2006"), inc.Discovered.Format("2 January 2006"))
	kinds := make([]string, 0, len(p.Kinds))
	for k := range p.Kinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	b.WriteString("What was involved: the following parts of your record were opened:\n")
	for _, k := range kinds {
		w := incidentKindWords[k]
		if w == "" {
			w = k
		}
		fmt.Fprintf(&b, "  - %s (%d times)\n", w, p.Kinds[k])
	}
	b.WriteString("\nWhat we are doing: we shut the account out, ended its sessions and are reviewing every access it made.\n\n")
	b.WriteString("What you can do: review your access history in your account, and tell us about anything you do not recognise. We will never ask for your password.\n\n")
	fmt.Fprintf(&b, "How to reach us: contact %s through your account or by telephone at the number on your last statement.\n", practice)
	return b.String()
}

// IncidentLetters lists a breach's letters by patient name and state.
func (s *Service) IncidentLetters(ctx context.Context, id string) ([]LetterView, error) {
	_, inc, _, err := s.incidentFor(ctx, policy.IncidentManage, id)
	if err != nil {
		return nil, err
	}
	ls, err := s.db.IncidentLetters(ctx, inc.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the letters")
	}
	out := []LetterView{}
	for _, l := range ls {
		if l.PracticeID != inc.PracticeID {
			continue
		}
		v := LetterView{ID: l.ID, IncidentID: l.IncidentID, PatientID: l.PatientID, State: l.State, SentAt: l.SentAt, ReturnedAt: l.ReturnedAt}
		if row, err := s.db.FindPatient(ctx, l.PatientID); err == nil && row.PracticeID == inc.PracticeID {
			v.PatientName = patientName(ctx, s, row)
		}
		out = append(out, v)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].PatientName < out[j].PatientName })
	return out, nil
}

// letterFor loads a letter of the practice and passes the gate for it,
// naming its patient, so that opening or moving it is in her history.
func (s *Service) letterFor(ctx context.Context, letterID string) (*haven.IncidentLetter, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if !haven.PlausibleID(letterID) {
		return nil, s.refuseUnknown(ctx, a, policy.IncidentLetter, policy.KindIncident, letterID)
	}
	l, err := s.db.FindIncidentLetter(ctx, letterID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return nil, s.refuseUnknown(ctx, a, policy.IncidentLetter, policy.KindIncident, letterID)
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the letter")
	}
	if _, _, err := s.authorizeRecord(ctx, policy.IncidentLetter, policy.Resource{Kind: policy.KindIncident, ID: l.ID,
		PracticeID: l.PracticeID, PatientID: l.PatientID}, letterID); err != nil {
		return nil, err
	}
	if l.PracticeID != a.PracticeID {
		return nil, errNotFound
	}
	return l, nil
}

// IncidentLetter opens one letter, to read and print.
func (s *Service) IncidentLetter(ctx context.Context, letterID string) (*LetterView, error) {
	l, err := s.letterFor(ctx, letterID)
	if err != nil {
		return nil, err
	}
	body, err := s.keys.Open(ctx, letterAD(l), l.Body)
	if err != nil {
		return nil, err
	}
	v := &LetterView{ID: l.ID, IncidentID: l.IncidentID, PatientID: l.PatientID, State: l.State, SentAt: l.SentAt, ReturnedAt: l.ReturnedAt, Body: string(body)}
	if row, err := s.db.FindPatient(ctx, l.PatientID); err == nil {
		v.PatientName = patientName(ctx, s, row)
	}
	return v, nil
}

// SetLetterState records that a letter was sent, or came back: drafted to
// sent, sent to returned, returned to sent (sent again).
func (s *Service) SetLetterState(ctx context.Context, letterID, state string) error {
	l, err := s.letterFor(ctx, letterID)
	if err != nil {
		return err
	}
	switch state {
	case haven.LetterSent:
		return s.db.SetIncidentLetterState(ctx, l.ID, state, haven.LetterDrafted, haven.LetterReturned)
	case haven.LetterReturned:
		return s.db.SetIncidentLetterState(ctx, l.ID, state, haven.LetterSent)
	}
	return haven.Errorf(haven.EINVALID, "a letter is marked sent or returned")
}

// IncidentToContain is what containment needs of an incident, for
// identity (which holds the accounts): the scoped account ids, after the
// gate decided incident.contain (a fresh authentication) on it.
func (g *Gate) IncidentToContain(ctx context.Context, id string) ([]string, error) {
	_, inc, d, err := g.s.incidentFor(ctx, policy.IncidentContain, id)
	if err != nil {
		return nil, err
	}
	if inc.State == haven.IncidentDecided {
		return nil, haven.Errorf(haven.ECONFLICT, "the incident is decided")
	}
	if len(d.Scope.Accounts) == 0 {
		return nil, haven.Errorf(haven.EINVALID, "pick the accounts the incident covers first")
	}
	return slices.Clone(d.Scope.Accounts), nil
}

// IncidentContained records what containment did to each account of an
// incident of the actor's practice. It decides nothing: identity calls it
// only after IncidentToContain passed the gate for the same incident.
func (g *Gate) IncidentContained(ctx context.Context, id string, done []ContainedAccount) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	inc, err := g.s.db.FindIncident(ctx, id)
	if err != nil || inc.PracticeID != a.PracticeID {
		return errNotFound
	}
	var d incidentDetail
	if err := g.s.openJSON(ctx, incidentAD(inc), inc.Detail, &d); err != nil {
		return err
	}
	now := g.s.now()
	d.Contained = done
	if inc.State == haven.IncidentOpen {
		inc.State = haven.IncidentContained
	}
	inc.ContainedAt, inc.ContainedBy = &now, a.UserID
	return g.s.saveIncident(ctx, inc, &d)
}
