package web

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"haven"
	"haven/service"
)

// The messaging pages: a patient's conversations and the form to write
// to her care team or the front desk; the practice's inbox, where the
// workforce sees its patients' conversations and gives each to a person
// or marks it done; one conversation's page, for everyone who may read
// it; and a patient's privacy limits (/account/restrictions). They work
// as plain forms; static/messages.js adds what arrives while a page is
// open, without a reload. Every list, thread and change passes the
// service's gate and is in the patient's access history.

var messageFlashes = map[string]string{
	"sent":       "Your message is sent.",
	"started":    "Your message is sent. The answer will appear here, and on your home page.",
	"assigned":   "The conversation is given to the person you chose.",
	"unassigned": "The conversation is no longer given to anyone.",
	"done":       "The conversation is marked done. A new message from the patient reopens it.",
	"reopened":   "The conversation is open again.",
}

// audienceWords say whom a conversation is with, from the patient's side
// and from the practice's.
var audienceWords = map[string][2]string{
	haven.AudienceCareTeam:  {"your care team", "Care team"},
	haven.AudienceFrontDesk: {"the front desk", "Front desk"},
	haven.AudienceVisit:     {"your care team, in the waiting room", "Waiting room"},
}

// patientMessagesView is a patient's list of conversations.
type patientMessagesView struct {
	Threads []haven.ThreadView
	Changed int64
}

// pageMessages lists the patient's conversations; the workforce's are
// the practice's inbox.
func (s *Server) pageMessages(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	if a.Role != haven.RolePatient {
		http.Redirect(w, r, "/app/inbox", http.StatusSeeOther)
		return
	}
	ts, err := s.svc.PatientThreads(r.Context(), a.UserID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	l := patientThreadList(ts)
	p := s.newPage(r, "Messages")
	p.Flash = messageFlashes[r.URL.Query().Get("done")]
	p.Data = patientMessagesView{Threads: l.Threads, Changed: l.Changed}
	s.render(w, r, http.StatusOK, "messages_list.html", p)
}

// composeView is the form for a new conversation.
type composeView struct {
	PatientID   string // the workforce's: whom they write to
	PatientName string
	Audience    string
	Subject     string
	Body        string
	// Files are the patient's files the writer may attach (none for a
	// writer who may not open them); Chosen those ticked.
	Files  []haven.FileView
	Chosen []string
}

// Picked reports whether file id was ticked.
func (v composeView) Picked(id string) bool { return slices.Contains(v.Chosen, id) }

// pageNewMessage is the form to start a conversation: a patient's to her
// care team or the front desk, or a clinician's or the front desk's to
// the patient named by ?patient= (they come from her record's page).
func (s *Server) pageNewMessage(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	cv := composeView{Audience: r.URL.Query().Get("to")}
	if a.Role != haven.RolePatient {
		cv.PatientID = r.URL.Query().Get("patient")
	}
	s.renderCompose(w, r, http.StatusOK, "", cv)
}

func (s *Server) renderCompose(w http.ResponseWriter, r *http.Request, status int, msg string, cv composeView) {
	ctx := r.Context()
	a, _ := haven.ActorFromContext(ctx)
	whose := a.UserID
	if a.Role != haven.RolePatient {
		if cv.PatientID == "" {
			http.Redirect(w, r, "/app/patients", http.StatusSeeOther)
			return
		}
		ch, err := s.svc.Chart(ctx, cv.PatientID)
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		whose, cv.PatientName = ch.PatientID, ch.Demographics.Name
	}
	if !haven.ValidAudience(cv.Audience) {
		cv.Audience = haven.AudienceCareTeam
	}
	files, err := s.attachable(r, whose)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	cv.Files = files
	p := s.newPage(r, "New message")
	p.Error = msg
	p.Data = cv
	s.render(w, r, status, "messages_new.html", p)
}

// attachable lists the patient's files the reader may attach: none, and
// nothing recorded, when policy would not let them open her files (the
// front desk without the practice's clinical grant).
func (s *Server) attachable(r *http.Request, patientID string) ([]haven.FileView, error) {
	return s.svc.AttachableFiles(r.Context(), patientID)
}

// pageStartThread takes the new-conversation form. A refused form comes
// back filled in, with the reason.
func (s *Server) pageStartThread(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.pageError(w, r, haven.Errorf(haven.EINVALID, "the form could not be read"))
		return
	}
	nt := service.NewThread{PatientID: r.PostFormValue("patient"), Audience: r.PostFormValue("audience"),
		Subject: r.PostFormValue("subject"), Body: r.PostFormValue("body"), FileIDs: r.PostForm["file"]}
	tv, err := s.svc.StartThread(r.Context(), nt)
	if err != nil {
		if c := haven.ErrorCode(err); c == haven.EINVALID || c == haven.ECONFLICT {
			s.renderCompose(w, r, s.errorStatus(w, r, err), haven.ErrorMessage(err), composeView{PatientID: nt.PatientID,
				Audience: nt.Audience, Subject: nt.Subject, Body: nt.Body, Chosen: nt.FileIDs})
			return
		}
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/messages/"+url.PathEscape(tv.ID)+"?done=started", http.StatusSeeOther)
}

// threadPageView is one conversation's page.
type threadPageView struct {
	*service.ThreadPage
	// Assignees are whom triage may give it to (the workforce's page).
	Assignees []haven.Member
	// Files the reader may attach to a reply; Body a reply refused, to
	// type again.
	Files []haven.FileView
	Body  string
	// CanUpload offers a new file (a photo taken now) with the reply:
	// for a writer who may open the patient's files, outside a visit's
	// waiting room.
	CanUpload bool
}

// Mine reports whether the reader wrote m.
func (v threadPageView) Mine(m haven.MessageView, a *haven.Actor) bool {
	return a != nil && m.SenderID == a.UserID
}

func (s *Server) pageThread(w http.ResponseWriter, r *http.Request) {
	s.renderThread(w, r, http.StatusOK, messageFlashes[r.URL.Query().Get("done")], "", "")
}

func (s *Server) renderThread(w http.ResponseWriter, r *http.Request, status int, flash, msg, body string) {
	ctx := r.Context()
	page, err := s.svc.ReadThread(ctx, r.PathValue("id"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v := threadPageView{ThreadPage: page, Body: body}
	if page.CanTriage {
		if v.Assignees, err = s.svc.Assignees(ctx, page.Thread.ID); err != nil {
			s.pageError(w, r, err)
			return
		}
	}
	if page.CanReply && page.Thread.VisitID == "" {
		if v.Files, err = s.attachable(r, page.Thread.PatientID); err != nil {
			s.pageError(w, r, err)
			return
		}
		if v.CanUpload, err = s.svc.MayReadFiles(ctx, page.Thread.PatientID); err != nil {
			s.pageError(w, r, err)
			return
		}
	}
	title := page.Thread.Subject
	if page.Thread.VisitID != "" {
		title = "Waiting room"
	}
	p := s.newPage(r, title)
	p.Flash, p.Error = flash, msg
	p.Data = v
	s.render(w, r, status, "messages_thread.html", p)
}

// pageReply takes a conversation's reply form: its text, files of the
// record ticked, and perhaps a new file (a photo taken now), which is
// streamed from the multipart body into the service (the form puts it
// last, after the fields it goes with) and never buffered whole here.
func (s *Server) pageReply(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, files, err := "", []string(nil), error(nil)
	sent := false
	if mr, merr := r.MultipartReader(); merr == nil {
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(TransferTimeout))
		for {
			part, perr := mr.NextPart()
			if errors.Is(perr, io.EOF) {
				break
			}
			if perr != nil {
				s.renderThread(w, r, http.StatusBadRequest, "", "The message was cut short; try again.", body)
				return
			}
			switch part.FormName() {
			case "body", "file":
				b, _ := io.ReadAll(io.LimitReader(part, 4*service.MaxMessage+1))
				if part.FormName() == "body" {
					body = string(b)
				} else {
					files = append(files, string(b))
				}
			case "upload":
				if name := partName(part); name != "" && !sent {
					_, err = s.svc.UploadToThread(r.Context(), id, body, files, name, part)
					sent = true
				}
			}
			part.Close()
			if sent && err != nil {
				break
			}
		}
	} else {
		if perr := r.ParseForm(); perr != nil {
			s.pageError(w, r, haven.Errorf(haven.EINVALID, "the form could not be read"))
			return
		}
		body, files = r.PostFormValue("body"), r.PostForm["file"]
	}
	if !sent {
		_, err = s.svc.Reply(r.Context(), id, body, files)
	}
	if err != nil {
		if c := haven.ErrorCode(err); c == haven.EINVALID || c == haven.ECONFLICT || c == haven.ETOOMANY {
			s.renderThread(w, r, s.errorStatus(w, r, err), "", haven.ErrorMessage(err), body)
			return
		}
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/messages/"+url.PathEscape(id)+"?done=sent#reply", http.StatusSeeOther)
}

// pageAssign gives a conversation to the person chosen by name (or to
// nobody).
func (s *Server) pageAssign(w http.ResponseWriter, r *http.Request) {
	id, who := r.PathValue("id"), r.PostFormValue("user")
	if err := s.svc.AssignThread(r.Context(), id, who); err != nil {
		if haven.ErrorCode(err) == haven.EINVALID || haven.ErrorCode(err) == haven.ECONFLICT {
			s.renderThread(w, r, s.errorStatus(w, r, err), "", haven.ErrorMessage(err), "")
			return
		}
		s.pageError(w, r, err)
		return
	}
	done := "assigned"
	if who == "" {
		done = "unassigned"
	}
	http.Redirect(w, r, "/app/messages/"+url.PathEscape(id)+"?done="+done, http.StatusSeeOther)
}

// pageDone marks a conversation done (done=1) or open again.
func (s *Server) pageDone(w http.ResponseWriter, r *http.Request) {
	id, done := r.PathValue("id"), r.PostFormValue("done") == "1"
	if err := s.svc.SetThreadDone(r.Context(), id, done); err != nil {
		if haven.ErrorCode(err) == haven.ECONFLICT {
			s.renderThread(w, r, s.errorStatus(w, r, err), "", haven.ErrorMessage(err), "")
			return
		}
		s.pageError(w, r, err)
		return
	}
	if done {
		http.Redirect(w, r, "/app/inbox?done=done", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/app/messages/"+url.PathEscape(id)+"?done=reopened", http.StatusSeeOther)
}

// inboxTab is one of the inbox's views, as a link.
type inboxTab struct {
	View, Label string
	Current     bool
}

type inboxView struct {
	*service.Inbox
	Tabs []inboxTab
}

// pageInbox is the practice's inbox: ?view=open (the default), mine or
// done, and ?after= for the next page.
func (s *Server) pageInbox(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	in, err := s.svc.Inbox(r.Context(), q.Get("view"), q.Get("after"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v := inboxView{Inbox: in}
	for _, t := range []inboxTab{{service.InboxOpen, "Open", false}, {service.InboxMine, "Given to me", false}, {service.InboxDone, "Done", false}} {
		t.Current = t.View == in.View
		v.Tabs = append(v.Tabs, t)
	}
	p := s.newPage(r, "Inbox")
	p.Flash = messageFlashes[q.Get("done")]
	p.Data = v
	s.render(w, r, http.StatusOK, "messages_inbox.html", p)
}

var restrictionFlashes = map[string]string{
	"saved": "Your privacy limits are saved. They apply from now on, on every page of the practice.",
}

// restrictionsPageView is the patient's privacy limits page.
type restrictionsPageView struct {
	*service.RestrictionsView
	Query string
	Found []haven.Member // people found by name, to bar
}

// Barring reports whether id is among those barred.
func (v restrictionsPageView) Barring(id string) bool {
	return slices.ContainsFunc(v.Barred, func(m haven.Member) bool { return m.UserID == id })
}

func (s *Server) pageRestrictions(w http.ResponseWriter, r *http.Request) {
	s.renderRestrictions(w, r, http.StatusOK, restrictionFlashes[r.URL.Query().Get("done")], "", "", nil)
}

func (s *Server) renderRestrictions(w http.ResponseWriter, r *http.Request, status int, flash, msg, query string, found []haven.Member) {
	a, _ := haven.ActorFromContext(r.Context())
	rv, err := s.svc.Restrictions(r.Context(), a.UserID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Privacy limits")
	p.Flash, p.Error = flash, msg
	p.Data = restrictionsPageView{RestrictionsView: rv, Query: query, Found: found}
	s.render(w, r, status, "account_restrictions.html", p)
}

// pageSetRestrictions takes the privacy limits form: whether the front
// desk is kept out of her messages, who stays barred (bar=id, ticked),
// and whom to add (add=id, from a search by name).
func (s *Server) pageSetRestrictions(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	if err := r.ParseForm(); err != nil {
		s.pageError(w, r, haven.Errorf(haven.EINVALID, "the form could not be read"))
		return
	}
	cur, err := s.svc.Restrictions(r.Context(), a.UserID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	version, err := strconv.Atoi(r.PostFormValue("version"))
	if err != nil {
		version = cur.Version
	}
	ch := service.RestrictionsChange{Version: version, StaffFromMessages: r.PostFormValue("staff_from_messages") == "1",
		BarredUsers: r.PostForm["bar"], Categories: cur.Categories, Consents: cur.Consents}
	if add := r.PostFormValue("add"); add != "" {
		ch.BarredUsers = append(ch.BarredUsers, add)
	}
	if _, err := s.svc.SetRestrictions(r.Context(), a.UserID, ch); err != nil {
		if c := haven.ErrorCode(err); c == haven.EINVALID || c == haven.ECONFLICT {
			s.renderRestrictions(w, r, s.errorStatus(w, r, err), "", haven.ErrorMessage(err), "", nil)
			return
		}
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account/restrictions?done=saved", http.StatusSeeOther)
}

// pageFindRestrictable finds the practice's people by name, for the
// patient to bar one. The name travels in the form's body, never a URL.
func (s *Server) pageFindRestrictable(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	q := r.PostFormValue("name")
	found, err := s.svc.RestrictablePeople(r.Context(), a.UserID, q)
	switch {
	case haven.ErrorCode(err) == haven.EINVALID:
		s.renderRestrictions(w, r, http.StatusBadRequest, "", haven.ErrorMessage(err), q, nil)
	case err != nil:
		s.pageError(w, r, err)
	case len(found) == 0:
		s.renderRestrictions(w, r, http.StatusOK, "", "Nobody of the practice's clinicians and front desk has that name.", q, nil)
	default:
		s.renderRestrictions(w, r, http.StatusOK, "", "", q, found)
	}
}

// WhenAt is When for a time that may be absent.
func (p *page) WhenAt(t *time.Time) string {
	if t == nil {
		return ""
	}
	return p.When(*t)
}

// Audience is whom a conversation is with, in the reader's words.
func (p *page) Audience(code string) string {
	w := audienceWords[code]
	if p.Actor != nil && p.Actor.Role == haven.RolePatient {
		return w[0]
	}
	return w[1]
}
