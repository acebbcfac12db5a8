package web

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"haven"
)

// Moving a booked visit to another free slot of the same clinician: the
// API route, and on the visit list a "Reschedule" link that opens the
// clinician's free times and a form to pick one. The service decides who
// may move which visit; after a move the visit's call room is closed as
// after a cancel, so nothing opened for the old time carries over.

// rescheduleRequest is the API's body: the new start, which must be one
// of the visit's clinician's free slots.
type rescheduleRequest struct {
	Start string `json:"start"` // RFC 3339
}

// rescheduled is the API's answer: the visit's new times and state, and
// nothing else of it (the reason stays where it is).
type rescheduled struct {
	ID    string    `json:"id"`
	State string    `json:"state"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

func (s *Server) apiReschedule(w http.ResponseWriter, r *http.Request) {
	var req rescheduleRequest
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	start, err := time.Parse(time.RFC3339, req.Start)
	if err != nil {
		s.apiError(w, r, haven.Errorf(haven.EINVALID, "start must be an RFC 3339 time, such as 2026-11-26T09:30:00Z"))
		return
	}
	id := r.PathValue("id")
	vis, err := s.svc.RescheduleVisit(r.Context(), id, start)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.closeRoom(id)
	writeJSON(w, http.StatusOK, rescheduled{ID: vis.ID, State: vis.State, Start: vis.Start, End: vis.End})
}

// pageReschedule is the visit list's move form. A refused time shows the
// list again with the reason and the same visit's free times.
func (s *Server) pageReschedule(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	again := func(status int, msg string) {
		r.Form.Set("reschedule", id)
		s.renderVisits(w, r, status, "", msg, "")
	}
	start, err := time.Parse(time.RFC3339, r.PostFormValue("start"))
	if err != nil {
		again(http.StatusBadRequest, "Choose a new time for the visit.")
		return
	}
	if _, err := s.svc.RescheduleVisit(r.Context(), id, start); err != nil {
		switch code := haven.ErrorCode(err); code {
		case haven.EINVALID, haven.ECONFLICT:
			again(s.errorStatus(w, r, err), haven.ErrorMessage(err))
		default:
			s.pageError(w, r, err)
		}
		return
	}
	s.closeRoom(id)
	http.Redirect(w, r, visitListURL(r, "rescheduled"), http.StatusSeeOther)
}

// visitListURL is where a form on the visit list returns to: the list,
// with what was done, and for the front desk the patient whose list it
// was. The patient id is only ever an id (the service decides whether the
// desk may see that list).
func visitListURL(r *http.Request, done string) string {
	q := url.Values{"done": {done}}
	if p := r.PostFormValue("patient"); p != "" && haven.PlausibleID(p) {
		q.Set("patient", p)
	}
	return "/app/visits?" + q.Encode()
}

// moveView fills in the move section of the visit list for the visit
// named by the reschedule parameter: the visit (one of the rows already
// listed, so nothing is read that the list did not read) and its
// clinician's free times from the from parameter on.
func (s *Server) moveView(ctx context.Context, r *http.Request, view *visitListView, now time.Time) error {
	id := r.FormValue("reschedule")
	if id == "" {
		return nil
	}
	for i := range view.Visits {
		if view.Visits[i].ID == id && view.Visits[i].Reschedule {
			view.Moving = &view.Visits[i]
		}
	}
	if view.Moving == nil {
		return haven.Errorf(haven.ECONFLICT, "that visit cannot be moved")
	}
	view.MoveFrom = now
	if f, err := time.Parse(time.RFC3339, r.FormValue("from")); err == nil && f.After(now) {
		view.MoveFrom = f
	}
	view.MoveNext = view.MoveFrom.Add(BookingWindow)
	slots, err := s.svc.Slots(ctx, view.Moving.ClinicianID, view.MoveFrom, view.MoveNext)
	view.MoveSlots = groupSlots(slots, zoneOf(r))
	return err
}

// movable reports whether the list offers to move x: only a booked visit
// moves (the service says so too).
func movable(x *haven.VisitView) bool { return x.State == "booked" }
