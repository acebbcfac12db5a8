package web

import (
	"net/http"
	"net/url"
	"time"

	"haven"
	"haven/identity"
	"haven/service"
)

// The signed-in home, /app: one page per role that says what is waiting
// for them and links to everything they do. A patient sees her next visit
// and her record's parts; a clinician today's schedule and the waiting
// room; the front desk the practice's schedule for a day, with check-in
// and moving visits on a patient's behalf; the administrator and the
// compliance officer their work queues, counted.

// homeView is the home page's data; each role fills its part.
type homeView struct {
	Who *identity.WhoAmI

	// The patient's.
	Next     *visitRow // the next visit not over, if any
	Upcoming int       // booked visits after Next
	// SecondFactor is whether she has an authenticator or a passkey (her
	// security checklist says how to turn one on).
	SecondFactor bool

	// Unread is how many of the reader's conversations hold messages
	// they have not read: a patient's own, the inbox's for the clinician
	// and the front desk.
	Unread int

	// The clinician's and the front desk's: one day's schedule.
	Day              time.Time // its midnight, in the reader's zone
	Today            bool
	PrevDay, NextDay string // ?day= values
	Schedule         []scheduleRow
	Counts           scheduleCounts

	// Calls under way the reader is invited to (any workforce role).
	Calls []service.CallInvitation

	// The administrator's.
	Invited, NoFactor, Disabled, Invitations int

	// The compliance officer's: open alerts, break-glass uses to review,
	// written requests for a copy not yet answered and those past their
	// 30 days.
	Alerts, Reviews        int
	OpenCopies, LateCopies int
	// Incidents not yet decided, and breaches whose patients are not all
	// sent their letters yet.
	OpenIncidents, NoticesDue int
}

// scheduleRow is one visit of a schedule, with what the reader may do.
type scheduleRow struct {
	*haven.VisitView
	Status  string // in words (words.go)
	CheckIn bool   // the front desk may check the patient in now
	Move    bool   // the front desk may move it
	Join    bool   // the clinician's call is open
	Waiting bool   // the patient waits: the clinician admits from the waiting room
}

// scheduleCounts are a day's visits by state, for the schedule's heading.
type scheduleCounts struct{ Booked, CheckedIn, InCall, Ended int }

var homeFlashes = map[string]string{
	"checked-in": "The patient is checked in and waiting for their clinician.",
}

func (s *Server) app(w http.ResponseWriter, r *http.Request) {
	s.renderApp(w, r, http.StatusOK, homeFlashes[r.URL.Query().Get("done")], "")
}

func (s *Server) renderApp(w http.ResponseWriter, r *http.Request, status int, flash, msg string) {
	ctx := r.Context()
	who, err := s.id.Who(ctx)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Home")
	p.Practice = who.PracticeName
	p.Flash, p.Error = flash, msg
	v := homeView{Who: who}
	if s.svc != nil {
		switch who.Role {
		case haven.RolePatient:
			err = s.patientHome(r, &v)
		case haven.RoleClinician, haven.RoleStaff:
			p.Title = "Schedule"
			if err = s.scheduleHome(r, p, &v); err == nil {
				v.Unread, err = s.svc.UnreadThreads(ctx)
			}
		case haven.RolePracticeAdmin:
			err = s.adminHome(r, &v)
		case haven.RoleComplianceOfficer:
			err = s.complianceHome(r, &v)
		}
		if err == nil && who.Role.Workforce() && s.has(visits) {
			v.Calls, err = s.svc.CallInvitations(ctx)
		}
		if err != nil {
			s.pageError(w, r, err)
			return
		}
	}
	p.Data = v
	s.render(w, r, status, "app.html", p)
}

// patientHome finds the patient's next visit and counts her unread
// conversations.
func (s *Server) patientHome(r *http.Request, v *homeView) error {
	ctx := r.Context()
	for _, f := range v.Who.Factors {
		v.SecondFactor = v.SecondFactor || f == identity.FactorTOTP || f == identity.FactorWebAuthn
	}
	vs, err := s.svc.Visits(ctx, v.Who.UserID)
	if err != nil {
		return err
	}
	now := s.now()
	for _, x := range vs { // oldest first
		live := x.State == "booked" || x.State == "waiting" || x.State == "admitted"
		if !live || !now.Before(x.End) {
			continue
		}
		if v.Next == nil {
			row := visitRow{VisitView: x, CheckIn: x.State != "admitted", Join: x.State == "admitted", Reschedule: movable(x), Cancel: x.State != "admitted"}
			v.Next = &row
		} else if x.State == "booked" {
			v.Upcoming++
		}
	}
	if v.Next != nil {
		v.Next.ClinicianName = s.clinicianName(r, v.Next.ClinicianID)
	}
	v.Unread, err = s.svc.UnreadThreads(ctx)
	return err
}

// clinicianName is a clinician's name from the practice's roster.
func (s *Server) clinicianName(r *http.Request, id string) string {
	docs, err := s.svc.Clinicians(r.Context())
	if err != nil {
		return ""
	}
	for _, d := range docs {
		if d.UserID == id {
			return d.Name
		}
	}
	return ""
}

// scheduleHome is a day's schedule: the clinician's own, or the
// practice's for the front desk. ?day=YYYY-MM-DD picks the day, in the
// reader's time zone; today by default.
func (s *Server) scheduleHome(r *http.Request, p *page, v *homeView) error {
	zone := p.zone()
	now := s.now().In(zone)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, zone)
	v.Day = today
	if d, err := time.ParseInLocation("2006-01-02", r.URL.Query().Get("day"), zone); err == nil {
		v.Day = d
	}
	v.Today = v.Day.Equal(today)
	end := v.Day.AddDate(0, 0, 1)
	v.PrevDay, v.NextDay = v.Day.AddDate(0, 0, -1).Format("2006-01-02"), end.Format("2006-01-02")
	vs, err := s.svc.Schedule(r.Context(), v.Day, end)
	if err != nil {
		return err
	}
	desk := v.Who.Role == haven.RoleStaff
	for _, x := range vs {
		row := scheduleRow{VisitView: x, Status: visitStateWords[x.State]}
		open := !s.now().Before(x.Start.Add(-service.CheckInWindow)) && s.now().Before(x.End)
		switch x.State {
		case "booked":
			v.Counts.Booked++
			row.CheckIn, row.Move = desk && open, desk
		case "waiting":
			v.Counts.CheckedIn++
			row.Waiting = !desk
		case "admitted":
			v.Counts.InCall++
			row.Join = !desk
		case "ended":
			v.Counts.Ended++
		}
		v.Schedule = append(v.Schedule, row)
	}
	return nil
}

// adminHome counts the administrator's work: invitations not yet
// accepted, accounts without a second factor, disabled accounts.
func (s *Server) adminHome(r *http.Request, v *homeView) error {
	ctx := r.Context()
	accounts, err := s.id.WorkforceAccounts(ctx)
	if err != nil {
		return err
	}
	for _, a := range accounts {
		switch {
		case a.Disabled:
			v.Disabled++
		case !a.SetUp:
			v.Invited++
		case !a.SecondFactor():
			v.NoFactor++
		}
	}
	inv, err := s.id.Invitations(ctx)
	if err != nil {
		return err
	}
	v.Invitations = len(inv)
	return nil
}

// complianceHome counts open alerts and break-glass uses to review.
func (s *Server) complianceHome(r *http.Request, v *homeView) error {
	ctx := r.Context()
	alerts, err := s.svc.Alerts(ctx, false)
	if err != nil {
		return err
	}
	queue, err := s.svc.BreakGlassQueue(ctx)
	if err != nil {
		return err
	}
	v.Alerts, v.Reviews = len(alerts), len(queue)
	copies, err := s.svc.AccessRequests(ctx)
	if err != nil {
		return err
	}
	for _, c := range copies {
		if c.Fulfilled == nil {
			v.OpenCopies++
			if c.DaysLeft < 0 {
				v.LateCopies++
			}
		}
	}
	incidents, err := s.svc.Incidents(ctx)
	if err != nil {
		return err
	}
	for _, i := range incidents {
		switch {
		case i.State != haven.IncidentDecided:
			v.OpenIncidents++
		case i.Decision == haven.DecisionBreach && i.LettersSent < i.Affected:
			v.NoticesDue++
		}
	}
	return nil
}

// pageCheckInFor is the front desk checking a patient in on their behalf
// (visit.checkin; the service decides and audits it), back to the day's
// schedule it came from.
func (s *Server) pageCheckInFor(w http.ResponseWriter, r *http.Request) {
	if _, err := s.svc.CheckIn(r.Context(), r.PathValue("id")); err != nil {
		s.pageError(w, r, err)
		return
	}
	q := url.Values{"done": {"checked-in"}}
	if d := r.PostFormValue("day"); d != "" {
		if _, err := time.Parse("2006-01-02", d); err == nil {
			q.Set("day", d)
		}
	}
	http.Redirect(w, r, "/app?"+q.Encode(), http.StatusSeeOther)
}
