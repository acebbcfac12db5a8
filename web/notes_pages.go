package web

import (
	"net/http"
	"net/url"

	"haven"
)

// The visit note and amendment pages. A visit's note page is its
// clinician's editor while it is a draft (saved as she types by
// static/note.js, or with the Save button), with Sign, which asks for a
// fresh confirmation when the last one is old (the service answers
// ESTEPUP and pageError sends her to the step-up page, which returns her
// here); once signed, it shows the note, its signature check, its addenda
// and the amendment requests about it, with a statement of disagreement
// where the patient made one. The patient reads it from her record and
// asks for a correction there; the practice's list of requests shows
// clinicians and the compliance officer each request's deadline.

var noteFlashes = map[string]string{
	"saved":     "The draft is saved.",
	"signed":    "The note is signed. It can no longer be changed; add an addendum instead.",
	"addendum":  "The addendum is signed and added to the note.",
	"requested": "Your request is sent. The practice answers within 60 days, and you get an email when it does.",
	"decided":   "Your answer is recorded, and the patient is told by email that there is an update.",
	"extended":  "The deadline is extended by 30 days, and the patient is told by email.",
	"disagreed": "Your statement is attached. It is shown with this part of your record from now on.",
}

// noteView is a note page.
type noteView struct {
	*haven.NoteView
}

func (s *Server) pageNote(w http.ResponseWriter, r *http.Request) {
	nv, err := s.svc.VisitNote(r.Context(), r.PathValue("id"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Visit note")
	p.Flash = noteFlashes[r.URL.Query().Get("done")]
	p.Data = noteView{NoteView: nv}
	s.render(w, r, http.StatusOK, "note.html", p)
}

// soapForm reads a note's four parts from a form.
func soapForm(r *http.Request) haven.SOAP {
	return haven.SOAP{Subjective: r.PostFormValue("subjective"), Objective: r.PostFormValue("objective"),
		Assessment: r.PostFormValue("assessment"), Plan: r.PostFormValue("plan")}
}

// noteError answers a note form's failure: a stale authentication goes
// through the step-up page and back to back, where the clinician signs
// again (a GET never signs); anything else is the error page.
func (s *Server) noteError(w http.ResponseWriter, r *http.Request, err error, back string) {
	if haven.ErrorCode(err) == haven.ESTEPUP && s.id != nil {
		http.Redirect(w, r, "/account/step-up?next="+url.QueryEscape(back), http.StatusSeeOther)
		return
	}
	s.pageError(w, r, err)
}

func notePath(visitID string) string { return "/app/visits/" + url.PathEscape(visitID) + "/note" }

func (s *Server) pageSaveNote(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.svc.SaveNoteDraft(r.Context(), id, soapForm(r)); err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, notePath(id)+"?done=saved", http.StatusSeeOther)
}

// pageSignNote saves what the form holds, then signs it: what is signed
// is what the clinician sees.
func (s *Server) pageSignNote(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if r.ParseForm() == nil && r.PostForm.Has("plan") {
		if _, err := s.svc.SaveNoteDraft(r.Context(), id, soapForm(r)); err != nil {
			s.pageError(w, r, err)
			return
		}
	}
	if _, err := s.svc.SignNote(r.Context(), id); err != nil {
		s.noteError(w, r, err, notePath(id))
		return
	}
	http.Redirect(w, r, notePath(id)+"?done=signed", http.StatusSeeOther)
}

func (s *Server) pageAddendum(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.svc.AddAddendum(r.Context(), id, r.PostFormValue("text")); err != nil {
		s.noteError(w, r, err, notePath(id))
		return
	}
	http.Redirect(w, r, notePath(id)+"?done=addendum", http.StatusSeeOther)
}

// pageRecord is where an update email leads: a patient's own record.
func (s *Server) pageRecord(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	to := "/app"
	if a.Role == haven.RolePatient {
		to = "/app/patients/" + url.PathEscape(a.UserID)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func amendmentPath(id string) string { return "/app/amendments/" + url.PathEscape(id) }

func (s *Server) pageAmendments(w http.ResponseWriter, r *http.Request) {
	list, err := s.svc.PracticeAmendments(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Amendment requests")
	p.Data = list
	s.render(w, r, http.StatusOK, "amendments.html", p)
}

func (s *Server) pageRequestAmendment(w http.ResponseWriter, r *http.Request) {
	av, err := s.svc.RequestAmendment(r.Context(), r.PostFormValue("part"), r.PostFormValue("record"), r.PostFormValue("reason"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, amendmentPath(av.ID)+"?done=requested", http.StatusSeeOther)
}

func (s *Server) pageAmendment(w http.ResponseWriter, r *http.Request) {
	av, err := s.svc.Amendment(r.Context(), r.PathValue("id"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Amendment request")
	p.Flash = noteFlashes[r.URL.Query().Get("done")]
	p.Data = av
	s.render(w, r, http.StatusOK, "amendment.html", p)
}

func (s *Server) pageDecideAmendment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.svc.DecideAmendment(r.Context(), id, r.PostFormValue("decision") == "accept", r.PostFormValue("text")); err != nil {
		s.noteError(w, r, err, amendmentPath(id))
		return
	}
	http.Redirect(w, r, amendmentPath(id)+"?done=decided", http.StatusSeeOther)
}

func (s *Server) pageExtendAmendment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.svc.ExtendAmendment(r.Context(), id, r.PostFormValue("text")); err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, amendmentPath(id)+"?done=extended", http.StatusSeeOther)
}

func (s *Server) pageDisagree(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.svc.DisagreeAmendment(r.Context(), id, r.PostFormValue("text")); err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, amendmentPath(id)+"?done=disagreed", http.StatusSeeOther)
}
