package web

import (
	"net/http"
	"strconv"

	"haven"
	"haven/service"
)

// Secure messaging over the API: conversations between a patient and her
// practice, the practice's inbox and its triage, the watches that let a
// page update as messages arrive, and a patient's restrictions. The
// service decides who may and audits every request; these handlers only
// carry JSON. A visit's waiting-room thread is the thread with the
// visit's id.

// threadList is what GET /api/v1/threads answers a patient: her
// conversations and the stamp to watch them from.
type threadList struct {
	Threads []haven.ThreadView `json:"threads"`
	Changed int64              `json:"changed"`
}

// apiThreads lists the reader's conversations: a patient's own, or a page
// of the practice's inbox for the workforce (?view=open|mine|done,
// ?after= a page's next).
func (s *Server) apiThreads(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	q := r.URL.Query()
	if a.Role == haven.RolePatient {
		ts, err := s.svc.PatientThreads(r.Context(), a.UserID)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, patientThreadList(ts))
		return
	}
	in, err := s.svc.Inbox(r.Context(), q.Get("view"), q.Get("after"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, in)
}

func patientThreadList(ts []haven.ThreadView) threadList {
	out := threadList{Threads: listJSON(ts)}
	for _, t := range ts {
		out.Changed = max(out.Changed, t.Changed)
	}
	return out
}

func (s *Server) apiStartThread(w http.ResponseWriter, r *http.Request) {
	var nt service.NewThread
	if err := decodeJSON(r, &nt); err != nil {
		s.apiError(w, r, err)
		return
	}
	tv, err := s.svc.StartThread(r.Context(), nt)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, tv)
}

func (s *Server) apiThread(w http.ResponseWriter, r *http.Request) {
	page, err := s.svc.ReadThread(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// replyRequest is the body of a POST to a thread's messages.
type replyRequest struct {
	Body    string   `json:"body"`
	FileIDs []string `json:"file_ids,omitempty"`
}

func (s *Server) apiReply(w http.ResponseWriter, r *http.Request) {
	var req replyRequest
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	m, err := s.svc.Reply(r.Context(), r.PathValue("id"), req.Body, req.FileIDs)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, m)
}

func (s *Server) apiAssignees(w http.ResponseWriter, r *http.Request) {
	people, err := s.svc.Assignees(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"people": listJSON(people)})
}

// assignRequest gives a thread to a person ("" for nobody).
type assignRequest struct {
	UserID string `json:"user_id"`
}

func (s *Server) apiAssign(w http.ResponseWriter, r *http.Request) {
	var req assignRequest
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	if err := s.svc.AssignThread(r.Context(), r.PathValue("id"), req.UserID); err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"assignee_id": req.UserID})
}

// doneRequest marks a thread done, or open again.
type doneRequest struct {
	Done bool `json:"done"`
}

func (s *Server) apiDone(w http.ResponseWriter, r *http.Request) {
	var req doneRequest
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	if err := s.svc.SetThreadDone(r.Context(), r.PathValue("id"), req.Done); err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"done": req.Done})
}

// sinceParam reads ?since=, the change stamp a page last saw (0 when
// absent).
func sinceParam(r *http.Request) (int64, error) {
	v := r.URL.Query().Get("since")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errBadParam("since")
	}
	return n, nil
}

// apiWatchThreads answers when the reader's conversations (a patient's,
// or the practice's inbox) changed since ?since=, or after StateWait with
// the stamp unchanged; the page then reads the list, or asks again.
func (s *Server) apiWatchThreads(w http.ResponseWriter, r *http.Request) {
	since, err := sinceParam(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	n, err := s.svc.WatchThreads(r.Context(), since, StateWait)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"changed": n})
}

// apiWatchThread is apiWatchThreads for one thread.
func (s *Server) apiWatchThread(w http.ResponseWriter, r *http.Request) {
	since, err := sinceParam(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	n, err := s.svc.WatchThread(r.Context(), r.PathValue("id"), since, StateWait)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"changed": n})
}

// apiRestrictions returns the signed-in patient's restrictions.
func (s *Server) apiRestrictions(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	v, err := s.svc.Restrictions(r.Context(), a.UserID)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// apiSetRestrictions replaces the signed-in patient's restrictions.
func (s *Server) apiSetRestrictions(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	var ch service.RestrictionsChange
	if err := decodeJSON(r, &ch); err != nil {
		s.apiError(w, r, err)
		return
	}
	v, err := s.svc.SetRestrictions(r.Context(), a.UserID, ch)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// apiRestrictablePeople finds the practice's clinicians and front desk
// by name (?q=, three letters at least), for a patient choosing whom to
// bar.
func (s *Server) apiRestrictablePeople(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	people, err := s.svc.RestrictablePeople(r.Context(), a.UserID, r.URL.Query().Get("q"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"people": listJSON(people)})
}
