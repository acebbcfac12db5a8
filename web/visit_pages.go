package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"haven"
	"haven/service"
	"haven/video/token"
)

// The visit pages render on the server; the browser's part (device and
// network checks, the live queue, WebRTC) is in static/visit_*.js, loaded
// as modules, never inline.

// BookingWindow is how far ahead one page of free slots reaches.
const BookingWindow = 3 * 24 * time.Hour

// visitRow is one of the patient's visits with what they may do with it.
type visitRow struct {
	*haven.VisitView
	ClinicianName string
	CheckIn       bool // booked or waiting, not over: the pre-visit page
	Join          bool // admitted: the call
	Cancel        bool
	Reschedule    bool // booked: may move to another free slot
}

type visitListView struct {
	Visits     []visitRow
	Clinicians []haven.Member
	Clinician  string // chosen for booking
	Slots      []slotDay
	From, Next time.Time
	Reason     string

	// Patient is the patient whose list the front desk is looking at
	// (empty for a patient's own list), and PatientName her name; the
	// desk books, moves and cancels there on her behalf.
	Patient     string
	PatientName string
	Booking     bool
	// Moving is the visit being moved, with its clinician's free times.
	Moving             *visitRow
	MoveSlots          []slotDay
	MoveFrom, MoveNext time.Time
}

// slotDay is one day's free times, as the booking list groups them: a
// person picks a day, then a time, in their own time zone, named.
type slotDay struct {
	Label string // "Wednesday 25 November"
	Slots []slotOption
}

type slotOption struct {
	Value string // RFC 3339, what the form sends
	Label string // "15:00 CET"
}

// groupSlots groups slots by their day in zone.
func groupSlots(slots []service.Slot, zone *time.Location) []slotDay {
	var out []slotDay
	for _, sl := range slots {
		t := sl.Start.In(zone)
		day := t.Format("Monday 2 January")
		if len(out) == 0 || out[len(out)-1].Label != day {
			out = append(out, slotDay{Label: day})
		}
		last := &out[len(out)-1]
		last.Slots = append(last.Slots, slotOption{Value: sl.Start.Format(time.RFC3339), Label: t.Format("15:04 MST")})
	}
	return out
}

var visitFlashes = map[string]string{
	"booked":      "The visit is booked. Check-in opens 30 minutes before it starts.",
	"cancelled":   "The visit is cancelled.",
	"rescheduled": "The visit is moved to its new time.",
}

// pageVisits is the patient's visits and booking, or for the front desk
// one patient's visits (?patient=). A clinician's visits live in the
// waiting room.
func (s *Server) pageVisits(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	if a.Role == haven.RoleClinician {
		http.Redirect(w, r, "/app/waiting-room", http.StatusSeeOther)
		return
	}
	s.renderVisits(w, r, http.StatusOK, visitFlashes[r.URL.Query().Get("done")], "", "")
}

func (s *Server) renderVisits(w http.ResponseWriter, r *http.Request, status int, flash, msg, reason string) {
	a, _ := haven.ActorFromContext(r.Context())
	ctx := r.Context()
	p := s.newPage(r, "Your visits")
	p.Flash, p.Error = flash, msg
	patientID := a.UserID
	view := visitListView{Clinician: r.FormValue("clinician"), Reason: reason, Booking: true}
	switch {
	case a.Role == haven.RoleStaff && r.FormValue("patient") != "":
		patientID = r.FormValue("patient")
		view.Patient = patientID
		ch, err := s.svc.Chart(ctx, patientID)
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		view.PatientName = ch.Demographics.Name
		p.Title = ch.Demographics.Name + "'s visits"
	case a.Role == haven.RoleStaff:
		// The desk books for someone: the patient list leads here.
		http.Redirect(w, r, "/app/patients", http.StatusSeeOther)
		return
	case a.Role != haven.RolePatient:
		http.Redirect(w, r, "/app", http.StatusSeeOther)
		return
	}
	var err error
	if view.Clinicians, err = s.svc.Clinicians(ctx); err != nil {
		s.pageError(w, r, err)
		return
	}
	names := map[string]string{}
	for _, c := range view.Clinicians {
		names[c.UserID] = c.Name
	}
	vs, err := s.svc.Visits(ctx, patientID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	now := s.now()
	for i := len(vs) - 1; i >= 0; i-- { // newest first
		x := vs[i]
		live := x.State == "booked" || x.State == "waiting"
		view.Visits = append(view.Visits, visitRow{VisitView: x, ClinicianName: names[x.ClinicianID],
			CheckIn: live && now.Before(x.End) && view.Booking, Join: x.State == "admitted" && view.Booking, Cancel: live,
			Reschedule: movable(x)})
	}
	if err := s.moveView(ctx, r, &view, now); err != nil {
		if haven.ErrorCode(err) != haven.ECONFLICT {
			s.pageError(w, r, err)
			return
		}
		p.Error = haven.ErrorMessage(err)
	}
	if view.Clinician != "" {
		view.From = now
		if f, err := time.Parse(time.RFC3339, r.FormValue("from")); err == nil && f.After(now) {
			view.From = f
		}
		view.Next = view.From.Add(BookingWindow)
		slots, err := s.svc.Slots(ctx, view.Clinician, view.From, view.Next)
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		view.Slots = groupSlots(slots, p.zone())
	}
	p.Data = view
	s.render(w, r, status, "visit_list.html", p)
}

// pageBook books the chosen slot: for the patient herself, or for the
// front desk on the behalf of the patient whose list it is (the service
// decides whether it may).
func (s *Server) pageBook(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	start, err := time.Parse(time.RFC3339, r.PostFormValue("start"))
	if err != nil {
		s.renderVisits(w, r, http.StatusBadRequest, "", "Choose a time for the visit.", r.PostFormValue("reason"))
		return
	}
	patient := a.UserID
	if a.Role == haven.RoleStaff {
		patient = r.PostFormValue("patient")
	}
	if _, err := s.svc.BookVisit(r.Context(), patient, r.PostFormValue("clinician"), start, r.PostFormValue("reason")); err != nil {
		switch haven.ErrorCode(err) {
		case haven.EINVALID, haven.ECONFLICT:
			s.renderVisits(w, r, s.errorStatus(w, r, err), "", haven.ErrorMessage(err), r.PostFormValue("reason"))
		default:
			s.pageError(w, r, err)
		}
		return
	}
	http.Redirect(w, r, visitListURL(r, "booked"), http.StatusSeeOther)
}

func (s *Server) pageCancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.svc.CancelVisit(r.Context(), id); err != nil {
		s.pageError(w, r, err)
		return
	}
	s.closeRoom(id)
	http.Redirect(w, r, visitListURL(r, "cancelled"), http.StatusSeeOther)
}

type checkInView struct {
	Visit         *haven.VisitView
	ClinicianName string
	Opens         time.Time
}

// pageCheckIn is the pre-visit page: device and network checks, the
// security checklist, then the waiting room.
func (s *Server) pageCheckIn(w http.ResponseWriter, r *http.Request) {
	vis, err := s.svc.Visit(r.Context(), r.PathValue("id"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	view := checkInView{Visit: vis, Opens: vis.Start.Add(-service.CheckInWindow)}
	if docs, err := s.svc.Clinicians(r.Context()); err == nil {
		for _, d := range docs {
			if d.UserID == vis.ClinicianID {
				view.ClinicianName = d.Name
			}
		}
	}
	p := s.newPage(r, "Before your visit")
	p.Data = view
	s.render(w, r, http.StatusOK, "visit_checkin.html", p)
}

func (s *Server) pageWaitingRoom(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	p := s.newPage(r, "Waiting room")
	if a.Role != haven.RoleClinician {
		p.Error = "The waiting room is the clinician's."
		s.render(w, r, http.StatusForbidden, "visit_waiting.html", p)
		return
	}
	p.Data = map[string]string{"StepUp": "/account/step-up?next=" + url.QueryEscape("/app/waiting-room")}
	s.render(w, r, http.StatusOK, "visit_waiting.html", p)
}

type callView struct {
	VisitID string
	Signal  string // the WebSocket's path
	Back    string // where "leave" goes
	Seat    *service.CallSeat
	Names   string // Seat.Names as JSON, for the tiles' labels
	// Note is the visit's note for its clinician's side panel (nil for
	// everyone else, and when it cannot be opened).
	Note *haven.NoteView
}

// Clinician reports whether the reader is the visit's clinician: only
// they are offered to end the visit and to invite someone.
func (v callView) Clinician() bool { return v.Seat.Part == token.Clinician }

// PatientName is the visit's patient's name, for its clinician's way to
// her prescribe form.
func (v callView) PatientName() string { return v.Seat.Names[v.Seat.PatientID] }

// Over reports whether the visit can no longer be joined.
func (v callView) Over() bool { return v.Seat.State == "ended" || v.Seat.State == "cancelled" }

// pageCall is the call page: the reader's part in the call decides its
// controls, on the server (a patient or a guest is never sent the
// clinician's). Joining still takes a join token, which the service
// grants only to the visit's patient and clinician, or a guest the
// clinician invited, and only while it is admitted.
func (s *Server) pageCall(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	id := r.PathValue("id")
	seat, err := s.svc.CallSeat(r.Context(), id)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	back := "/app"
	if a.Role == haven.RolePatient {
		back = "/app/visits"
	} else if seat.Part == token.Clinician {
		back = "/app/waiting-room"
	}
	names, err := json.Marshal(seat.Names)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Video visit")
	v := callView{VisitID: id, Signal: strings.Replace(CallPath, "{visit}", id, 1), Back: back, Seat: seat, Names: string(names)}
	if seat.Part == token.Clinician {
		if nv, err := s.svc.VisitNote(r.Context(), id); err == nil {
			v.Note = nv
		}
	}
	p.Data = v
	if s.livekit != nil {
		// The page meets the others on the LiveKit server: its signaling
		// connection is the one other place this page may connect to.
		w.Header().Set("Content-Security-Policy", strings.Replace(ContentSecurityPolicy, "connect-src 'self'", "connect-src 'self' "+s.livekit.Origin(), 1))
	}
	s.render(w, r, http.StatusOK, "visit_call.html", p)
}

// apiCallPeople names the people of a visit's call for its page: those
// taking part, or, with ?q=, those its clinician may invite (by name,
// never by id).
func (s *Server) apiCallPeople(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if q := r.URL.Query().Get("q"); q != "" {
		people, err := s.svc.Invitees(r.Context(), id, q)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"people": listJSON(people)})
		return
	}
	seat, err := s.svc.CallSeat(r.Context(), id)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, seat)
}
