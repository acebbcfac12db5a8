package service

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"haven"
	"haven/keyring"
	"haven/policy"
	"haven/store/sqlstore"
)

// Secure messaging: threads between a patient and her practice. A patient
// writes to her care team or to the front desk; a clinician or the front
// desk writes to a patient; the workforce works the practice's inbox
// (inbox.go). A visit's waiting-room lines are that visit's thread, in the
// same model (visit_messages.go).
//
// Every path is the spine's: the thread's record is decided by policy
// (message.read, message.send, message.triage: the patient on her own,
// her related clinicians, the front desk unless she keeps it out) and the
// decision is audited before anything is opened or sealed. Subjects and
// bodies are sealed under the patient's data key, each bound to its
// practice, patient and record id, so a ciphertext moved to another row,
// thread or patient does not open.

// Limits of threads and messages.
const (
	// MaxMessage is a message's length in characters, after trimming: a
	// letter, not a document (documents are attached as files).
	MaxMessage = 5000
	// MaxSubject is a subject's length in characters.
	MaxSubject = 150
	// MaxThreadMessages caps one thread, so a stuck script or a flood
	// cannot fill the database or a page; past it, a new thread.
	MaxThreadMessages = 1000
	// MaxAttachments is how many files one message may carry.
	MaxAttachments = 5
)

// Record kinds named in the associated data of messaging's ciphertexts.
const (
	sealedMessage      = "message"
	sealedVisitMessage = "visit_message" // a waiting-room line written before threads existed
)

// messageAD binds a message body to its practice, patient and message:
// copied into another row, thread or patient, it does not open.
func messageAD(m *haven.Message) (keyring.AD, error) {
	if m.SealedAs != sealedMessage && m.SealedAs != sealedVisitMessage {
		return keyring.AD{}, haven.Errorf(haven.EINTERNAL, "message %s is sealed as an unknown kind", m.ID)
	}
	return keyring.AD{PracticeID: m.PracticeID, PatientID: m.PatientID, Kind: m.SealedAs, RecordID: m.ID, Field: "body"}, nil
}

// subjectAD binds a thread's subject to its practice, patient and thread.
func subjectAD(t *haven.Thread) keyring.AD {
	return keyring.AD{PracticeID: t.PracticeID, PatientID: t.PatientID, Kind: "thread", RecordID: t.ID, Field: "subject"}
}

// threadResource is a thread as policy sees it: a message record of its
// patient.
func threadResource(t *haven.Thread) policy.Resource {
	return policy.Resource{Kind: policy.KindMessage, ID: t.ID, PracticeID: t.PracticeID, PatientID: t.PatientID}
}

// hiddenRune reports runes no message may hold: control characters other
// than a line break or a tab, Unicode line and paragraph separators, and
// bidirectional overrides and isolates, which make a text display
// differently from what it says ("call 555…" reversed).
func hiddenRune(r rune, lines bool) bool {
	if r == '\n' || r == '\t' {
		return !lines
	}
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}

// messageText checks a message body and returns it trimmed, its line
// breaks as "\n": 1 to MaxMessage characters of plain text.
func messageText(body string) (string, error) {
	b := strings.TrimSpace(strings.ReplaceAll(body, "\r\n", "\n"))
	if n := utf8.RuneCountInString(b); !utf8.ValidString(b) || n < 1 || n > MaxMessage {
		return "", haven.Errorf(haven.EINVALID, "a message is 1 to %d characters", MaxMessage)
	}
	if strings.ContainsFunc(b, func(r rune) bool { return hiddenRune(r, true) }) {
		return "", haven.Errorf(haven.EINVALID, "a message is plain text, without control characters")
	}
	return b, nil
}

// subjectText checks a subject and returns it trimmed: one line of 1 to
// MaxSubject characters.
func subjectText(subject string) (string, error) {
	s := strings.TrimSpace(subject)
	if n := utf8.RuneCountInString(s); !utf8.ValidString(s) || n < 1 || n > MaxSubject {
		return "", haven.Errorf(haven.EINVALID, "a subject is 1 to %d characters", MaxSubject)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return hiddenRune(r, false) }) {
		return "", haven.Errorf(haven.EINVALID, "a subject is one line of plain text, without control characters")
	}
	return s, nil
}

// attachmentIDs checks the shape of a message's file ids before anything
// is looked up: at most MaxAttachments, each a plausible id, none twice.
func attachmentIDs(ids []string) error {
	if len(ids) > MaxAttachments {
		return haven.Errorf(haven.EINVALID, "a message may carry at most %d files", MaxAttachments)
	}
	for i, id := range ids {
		if !haven.PlausibleID(id) || slices.Contains(ids[:i], id) {
			return haven.Errorf(haven.EINVALID, "attach files of the patient's record, each once")
		}
	}
	return nil
}

// attach checks that every file is in the thread's patient's record and
// that the sender may open that record's files (file.read, decided and
// audited once): a file is attached only by someone who could read it,
// and only to its own patient's thread. Unknown ids and other patients'
// files get the same answer.
func (s *Service) attach(ctx context.Context, t *haven.Thread, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if s.blobs == nil {
		return haven.Errorf(haven.EUNAVAILABLE, "file storage is not configured")
	}
	for _, id := range ids {
		f, err := s.db.FindFile(ctx, id)
		if haven.ErrorCode(err) == haven.ENOTFOUND || err == nil && (f.PatientID != t.PatientID || f.PracticeID != t.PracticeID) {
			return haven.Errorf(haven.EINVALID, "attach files of the patient's record, each once")
		}
		if err != nil {
			return haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the file")
		}
	}
	_, _, err := s.authorize(ctx, policy.FileRead, policy.Resource{Kind: policy.KindFile, PracticeID: t.PracticeID, PatientID: t.PatientID})
	return err
}

// threadFor loads a thread and passes the gate for act on it. A visit's
// thread exists once its first message does; before, a visit's id names
// its empty thread (not stored). An unknown id, or one of another
// practice, is "not found" and audited as such (see refuseUnknown and
// gate). It returns the thread's visit when it is a visit's.
func (s *Service) threadFor(ctx context.Context, act policy.Action, id string) (haven.Actor, *haven.Thread, *haven.Visit, policy.Facts, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return a, nil, nil, policy.Facts{}, err
	}
	if !haven.PlausibleID(id) {
		return a, nil, nil, policy.Facts{}, s.refuseUnknown(ctx, a, act, policy.KindMessage, id)
	}
	t, err := s.db.FindThread(ctx, id)
	var v *haven.Visit
	switch {
	case haven.ErrorCode(err) == haven.ENOTFOUND:
		v, err = s.db.FindVisit(ctx, id)
		if haven.ErrorCode(err) == haven.ENOTFOUND {
			return a, nil, nil, policy.Facts{}, s.refuseUnknown(ctx, a, act, policy.KindMessage, id)
		}
		if err != nil {
			return a, nil, nil, policy.Facts{}, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the visit")
		}
		t = &haven.Thread{ID: v.ID, PracticeID: v.PracticeID, PatientID: v.PatientID, VisitID: v.ID, Audience: haven.AudienceVisit}
	case err != nil:
		return a, nil, nil, policy.Facts{}, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the conversation")
	case t.VisitID != "":
		if v, err = s.db.FindVisit(ctx, t.VisitID); err != nil {
			return a, nil, nil, policy.Facts{}, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the visit")
		}
	}
	_, _, facts, err := s.gateFacts(ctx, act, threadResource(t), id, true)
	if err != nil {
		return a, nil, nil, facts, err
	}
	return a, t, v, facts, nil
}

// NewThread is a new conversation: its first message, and for a patient
// whom it goes to.
type NewThread struct {
	// PatientID is whose conversation it is: the workforce names the
	// patient; a patient's is her own ("" means her own).
	PatientID string `json:"patient_id,omitempty"`
	// Audience is whom a patient writes to: care_team or front_desk. A
	// clinician's thread is the care team's and the front desk's the
	// front desk's, whatever is sent.
	Audience string   `json:"audience,omitempty"`
	Subject  string   `json:"subject"`
	Body     string   `json:"body"`
	FileIDs  []string `json:"file_ids,omitempty"`
}

// StartThread starts a conversation with its first message
// (message.send on the patient's record, audited). A thread the
// workforce starts is given to the person who started it, so the
// patient's answer reaches them. A patient who keeps the front desk out
// of her messages cannot write to it (her care team, yes). A refused
// thread stores nothing.
func (s *Service) StartThread(ctx context.Context, nt NewThread) (*haven.ThreadView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	subject, err := subjectText(nt.Subject)
	if err != nil {
		return nil, err
	}
	body, err := messageText(nt.Body)
	if err != nil {
		return nil, err
	}
	if err := attachmentIDs(nt.FileIDs); err != nil {
		return nil, err
	}
	audience := nt.Audience
	switch a.Role {
	case haven.RolePatient:
		if nt.PatientID == "" {
			nt.PatientID = a.UserID
		}
		if !haven.ValidAudience(audience) {
			return nil, haven.Errorf(haven.EINVALID, "write to your care team (%s) or the front desk (%s)", haven.AudienceCareTeam, haven.AudienceFrontDesk)
		}
	case haven.RoleStaff:
		audience = haven.AudienceFrontDesk
	default:
		audience = haven.AudienceCareTeam
	}
	row, err := s.patientRow(ctx, policy.MessageSend, policy.KindMessage, nt.PatientID)
	if err != nil {
		return nil, err
	}
	t := &haven.Thread{ID: haven.NewID(), PracticeID: row.PracticeID, PatientID: row.ID, Audience: audience, StartedBy: a.UserID}
	if a.Role.Workforce() {
		t.AssigneeID = a.UserID
	}
	_, _, facts, err := s.gateFacts(ctx, policy.MessageSend, threadResource(t), nt.PatientID, true)
	if err != nil {
		return nil, err
	}
	if audience == haven.AudienceFrontDesk && facts.Patient.Restrictions.StaffFromMessages {
		return nil, haven.Errorf(haven.ECONFLICT, "you keep the front desk out of your messages: write to your care team, or change that in your privacy limits")
	}
	if err := s.attach(ctx, t, nt.FileIDs); err != nil {
		return nil, err
	}
	if t.Subject, err = s.keys.Seal(ctx, subjectAD(t), []byte(subject)); err != nil {
		return nil, err
	}
	m, err := s.sealMessage(ctx, t, a, body, nt.FileIDs)
	if err != nil {
		return nil, err
	}
	if err := s.storeMessage(ctx, sqlstore.NewMessage{Thread: t, Message: m, Max: MaxThreadMessages, Notify: s.recipients(ctx, a, t, facts)}); err != nil {
		return nil, err
	}
	return &haven.ThreadView{ID: t.ID, PatientID: t.PatientID, Audience: t.Audience, Subject: subject, AssigneeID: t.AssigneeID,
		Messages: 1, LastAt: time.UnixMicro(m.CreatedUS).UTC(), LastFromPatient: a.UserID == t.PatientID}, nil
}

// sealMessage makes a's message of thread t, its body sealed.
func (s *Service) sealMessage(ctx context.Context, t *haven.Thread, a haven.Actor, body string, files []string) (*haven.Message, error) {
	m := &haven.Message{ID: haven.NewID(), ThreadID: t.ID, PracticeID: t.PracticeID, PatientID: t.PatientID, SenderID: a.UserID,
		SealedAs: sealedMessage, FileIDs: files}
	ad, err := messageAD(m)
	if err != nil {
		return nil, err
	}
	if m.Body, err = s.keys.Seal(ctx, ad, []byte(body)); err != nil {
		return nil, err
	}
	return m, nil
}

// storeMessage stores a sealed message and wakes the notice sender when
// someone is to be told.
func (s *Service) storeMessage(ctx context.Context, nm sqlstore.NewMessage) error {
	if err := s.db.AddMessage(ctx, nm); err != nil {
		if c := haven.ErrorCode(err); c == haven.ETOOMANY || c == haven.ENOTFOUND {
			return err
		}
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot store the message")
	}
	if len(nm.Notify) > 0 {
		s.wakeNotices()
	}
	return nil
}

// Reply adds a message to a thread (message.send, audited): the patient's
// answer reopens a thread the practice marked done. A visit's thread
// takes one line at a time, and only while its patient waits or is in
// the call. A refused message stores nothing.
func (s *Service) Reply(ctx context.Context, threadID, body string, fileIDs []string) (*haven.MessageView, error) {
	// What any message must be is checked before the thread is looked at;
	// what a visit's thread asks beyond that, only after the gate, so the
	// answer to a stranger's id never depends on the thread's kind.
	text, err := messageText(body)
	if err != nil {
		return nil, err
	}
	if err := attachmentIDs(fileIDs); err != nil {
		return nil, err
	}
	a, t, v, facts, err := s.threadFor(ctx, policy.MessageSend, threadID)
	if err != nil {
		return nil, err
	}
	nm := sqlstore.NewMessage{Max: MaxThreadMessages, Reopen: a.UserID == t.PatientID}
	if v != nil {
		if text, err = visitLine(body); err != nil {
			return nil, err
		}
		if len(fileIDs) > 0 {
			return nil, haven.Errorf(haven.EINVALID, "files go in a conversation of their own, not the waiting room's")
		}
		if v.State != haven.VisitWaiting && v.State != haven.VisitAdmitted {
			return nil, haven.Errorf(haven.ECONFLICT, "the visit is %s: waiting-room messages go only to a patient who is waiting or in the call", v.State)
		}
		th := *t
		th.StartedBy = a.UserID
		nm.Thread, nm.Max = &th, MaxVisitMessages
	}
	if err := s.attach(ctx, t, fileIDs); err != nil {
		return nil, err
	}
	if nm.Message, err = s.sealMessage(ctx, t, a, text, fileIDs); err != nil {
		return nil, err
	}
	nm.Notify = s.recipients(ctx, a, t, facts)
	if err := s.storeMessage(ctx, nm); err != nil {
		return nil, err
	}
	m := nm.Message
	out := &haven.MessageView{ID: m.ID, ThreadID: t.ID, SenderID: a.UserID, FromPatient: a.UserID == t.PatientID, Body: text,
		SentAt: time.UnixMicro(m.CreatedUS).UTC()}
	for _, f := range fileIDs {
		out.Attachments = append(out.Attachments, haven.AttachmentView{FileID: f})
	}
	return out, nil
}

// UploadToThread adds a file to the record of a thread's patient and
// sends it in a new message of the thread, with fileIDs already in her
// record: a patient photographs a rash and sends it to her care team in
// one step. The writer must be able to write to the thread
// (message.send) and add to the patient's files (file.upload), each
// decided and audited before anything is read of content; the message
// then goes as Reply sends it, which checks the writer may open the file.
// The file is cleaned and sealed as UploadFile does. A message refused
// after the upload leaves the file in her record, where she sees it.
func (s *Service) UploadToThread(ctx context.Context, threadID, body string, fileIDs []string, name string, content io.Reader) (*haven.MessageView, error) {
	if _, err := messageText(body); err != nil {
		return nil, err
	}
	if err := attachmentIDs(append(slices.Clone(fileIDs), haven.NewID())); err != nil {
		return nil, err
	}
	_, t, v, _, err := s.threadFor(ctx, policy.MessageSend, threadID)
	if err != nil {
		return nil, err
	}
	if v != nil {
		return nil, haven.Errorf(haven.EINVALID, "files go in a conversation of their own, not the waiting room's")
	}
	f, err := s.UploadFile(ctx, t.PatientID, name, content)
	if err != nil {
		return nil, err
	}
	return s.Reply(ctx, threadID, body, append(slices.Clone(fileIDs), f.ID))
}

// recipients are whom a's new message in t should be announced to by
// email: the patient, for the workforce's messages; for hers, the person
// the thread is given to, or else its audience (her care team's
// clinicians, or the front desk; the front desk when she has no care
// team). Each must be someone policy lets read the thread now (her bars
// and restrictions hold here too), decided on the facts the gate loaded,
// and nothing is recorded: deciding whom to tell opens nothing. A visit's
// lines announce nothing: its patient is on the waiting page, and its
// clinician at the queue.
func (s *Service) recipients(ctx context.Context, a haven.Actor, t *haven.Thread, facts policy.Facts) []string {
	if t.Audience == haven.AudienceVisit {
		return nil
	}
	if a.UserID != t.PatientID {
		return []string{t.PatientID}
	}
	var people []string
	switch {
	case t.AssigneeID != "":
		people = []string{t.AssigneeID}
	case t.Audience == haven.AudienceCareTeam && len(facts.Patient.CareTeam) > 0:
		people = facts.Patient.CareTeam
	}
	members, err := s.workforce(ctx, t.PracticeID)
	if err != nil {
		return nil // no one told now; the message is stored and the inbox shows it
	}
	if len(people) == 0 {
		for _, m := range members {
			if m.Role == haven.RoleStaff {
				people = append(people, m.UserID)
			}
		}
	}
	var out []string
	factsOf := s.memberFacts(ctx, t.PracticeID, facts)
	for _, id := range people {
		i := slices.IndexFunc(members, func(m haven.Member) bool { return m.UserID == id })
		if i >= 0 && id != a.UserID && policy.Decide(memberActor(t.PracticeID, members[i]), policy.MessageRead, threadResource(t), factsOf(id)).Allow {
			out = append(out, id)
		}
	}
	return out
}

// workforce returns the practice's active clinicians and front desk, the
// people who may hold a thread, with their roles (names unopened).
func (s *Service) workforce(ctx context.Context, practiceID string) ([]haven.Member, error) {
	users, err := s.db.ListUsers(ctx, practiceID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list the workforce")
	}
	var out []haven.Member
	for _, u := range users {
		if !u.Disabled && u.PracticeID == practiceID && (u.Role == haven.RoleClinician || u.Role == haven.RoleStaff) {
			out = append(out, haven.Member{UserID: u.ID, Role: u.Role})
		}
	}
	return out, nil
}

// memberActor is a workforce member as policy would see them signed in
// (every workforce session has passed a second factor), for asking what
// they could do without them asking.
func memberActor(practiceID string, m haven.Member) haven.Actor {
	return haven.Actor{UserID: m.UserID, PracticeID: practiceID, Role: m.Role, MFA: true}
}

// ThreadPage is a thread opened for its reader: the thread, its messages
// oldest first, and what the reader may do with it.
type ThreadPage struct {
	Thread   haven.ThreadView    `json:"thread"`
	Messages []haven.MessageView `json:"messages"`
	// CanReply: policy lets the reader write here now (a visit's thread,
	// only while its patient waits or is in the call).
	CanReply bool `json:"can_reply"`
	// CanTriage: the reader may give the thread to someone and mark it
	// done.
	CanTriage bool `json:"can_triage"`
}

// ReadThread opens a thread for its reader (message.read, audited once for
// the thread) and marks it read by them. Each body opens only under the
// thread's own practice and patient, so a row edited to point elsewhere
// fails here. Attached files are named only to a reader policy lets open
// the patient's files (file.read, audited); others see that a file is
// there.
func (s *Service) ReadThread(ctx context.Context, threadID string) (*ThreadPage, error) {
	a, t, v, facts, err := s.threadFor(ctx, policy.MessageRead, threadID)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.ThreadMessages(ctx, t.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the messages")
	}
	if ctx, err = s.keys.Checked(ctx); err != nil { // one key-state read for every field below
		return nil, err
	}
	res := threadResource(t)
	page := &ThreadPage{Messages: []haven.MessageView{},
		CanReply:  policy.Decide(a, policy.MessageSend, res, facts).Allow && (v == nil || v.State == haven.VisitWaiting || v.State == haven.VisitAdmitted),
		CanTriage: a.Role.Workforce() && policy.Decide(a, policy.MessageTriage, res, facts).Allow}
	seen := 0
	if len(rows) > 0 {
		seen = rows[len(rows)-1].Seq
	}
	tv, err := s.threadView(ctx, a, t, v, seen, nil)
	if err != nil {
		return nil, err
	}
	page.Thread = *tv
	files, err := s.attachments(ctx, a, t, rows, facts)
	if err != nil {
		return nil, err
	}
	names := s.senderNames(t.PracticeID)
	for _, row := range rows {
		ad, err := messageAD(row)
		if err != nil {
			return nil, err
		}
		body, err := s.keys.Open(ctx, ad, row.Body)
		if err != nil {
			return nil, err
		}
		m := haven.MessageView{ID: row.ID, ThreadID: t.ID, SenderID: row.SenderID, FromPatient: row.SenderID == t.PatientID,
			Body: string(body), SentAt: time.UnixMicro(row.CreatedUS).UTC()}
		if !m.FromPatient {
			m.SenderName = names(ctx, row.SenderID)
		}
		for _, f := range row.FileIDs {
			m.Attachments = append(m.Attachments, files[f])
		}
		page.Messages = append(page.Messages, m)
	}
	if seen > 0 {
		if err := s.db.MarkRead(ctx, t.ID, a.UserID, seen); err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot record that the conversation was read")
		}
	}
	page.Thread.Unread = 0
	return page, nil
}

// attachments describes the files attached to rows for reader a: named,
// once a file.read on the patient's record is decided and audited, if
// policy allows it (asked first without a record, so a reader who may
// not open files, like the front desk, is not logged refusing at every
// thread they read); otherwise hidden.
func (s *Service) attachments(ctx context.Context, a haven.Actor, t *haven.Thread, rows []*haven.Message, facts policy.Facts) (map[string]haven.AttachmentView, error) {
	out := map[string]haven.AttachmentView{}
	var ids []string
	for _, row := range rows {
		ids = append(ids, row.FileIDs...)
	}
	if len(ids) == 0 {
		return out, nil
	}
	res := policy.Resource{Kind: policy.KindFile, PracticeID: t.PracticeID, PatientID: t.PatientID}
	if !policy.Decide(a, policy.FileRead, res, facts).Allow {
		for _, id := range ids {
			out[id] = haven.AttachmentView{FileID: id, Hidden: true}
		}
		return out, nil
	}
	if _, _, err := s.authorize(ctx, policy.FileRead, res); err != nil {
		return nil, err
	}
	rs, err := s.db.FileRenditions(ctx, ids...)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the attached files")
	}
	for _, id := range ids {
		f, err := s.db.FindFile(ctx, id)
		if err != nil || f.PatientID != t.PatientID || f.PracticeID != t.PracticeID {
			out[id] = haven.AttachmentView{FileID: id, Hidden: true}
			continue
		}
		name, err := s.keys.Open(ctx, fileAD(f.PracticeID, f.PatientID, f.ID, "name"), f.Name)
		if err != nil {
			return nil, err
		}
		v := haven.AttachmentView{FileID: id, Name: string(name), ContentType: f.ContentType, Size: f.Size}
		for _, r := range rs[id] {
			v.Thumbnail = v.Thumbnail || r.Kind == haven.RenditionThumbnail
		}
		out[id] = v
	}
	return out, nil
}

// AttachableFiles lists the patient's files the signed-in writer may
// attach to a message: her files (file.read, audited) if policy lets the
// writer open them, and otherwise none, asked of policy first without a
// record (see MayReadFiles), so a page offering attachments does not log
// the front desk refused at every view.
func (s *Service) AttachableFiles(ctx context.Context, patientID string) ([]haven.FileView, error) {
	ok, err := s.MayReadFiles(ctx, patientID)
	if err != nil || !ok {
		return nil, err
	}
	return s.Files(ctx, patientID)
}

// senderNames opens workforce senders' names for a thread already
// authorized, once each.
func (s *Service) senderNames(practiceID string) func(context.Context, string) string {
	names := map[string]string{}
	return func(ctx context.Context, id string) string {
		if id == "" {
			return ""
		}
		name, ok := names[id]
		if !ok {
			name = s.workforceName(ctx, practiceID, id)
			names[id] = name
		}
		return name
	}
}

// threadView opens t for reader a, who has read it up to seen: its
// subject (a visit's thread has the visit's time instead), and for the
// workforce the patient's and the assignee's names. names, when given,
// caches workforce names across a list. Call only after the gate.
func (s *Service) threadView(ctx context.Context, a haven.Actor, t *haven.Thread, v *haven.Visit, seen int, names func(context.Context, string) string) (*haven.ThreadView, error) {
	tv := &haven.ThreadView{ID: t.ID, PatientID: t.PatientID, VisitID: t.VisitID, Audience: t.Audience, Done: t.DoneUS != 0,
		Messages: t.Messages, Unread: max(0, t.Messages-seen), LastFromPatient: t.Messages > 0 && t.LastSender == t.PatientID, Changed: t.ChangedUS}
	if t.LastUS != 0 {
		tv.LastAt = time.UnixMicro(t.LastUS).UTC()
	}
	if v != nil {
		start := v.Start
		tv.VisitStart = &start
	}
	if len(t.Subject) > 0 {
		subject, err := s.keys.Open(ctx, subjectAD(t), t.Subject)
		if err != nil {
			return nil, err
		}
		tv.Subject = string(subject)
	}
	if a.Role.Workforce() {
		if names == nil {
			names = s.senderNames(t.PracticeID)
		}
		tv.AssigneeID = t.AssigneeID
		tv.AssigneeName = names(ctx, t.AssigneeID)
		if row, err := s.db.FindPatient(ctx, t.PatientID); err == nil && row.PracticeID == t.PracticeID {
			tv.PatientName = patientName(ctx, s, row)
		}
	}
	return tv, nil
}

// PatientThreads lists a patient's conversations, the most recently
// active first, with what she has not read (message.read on her record,
// decided and audited once for the list).
func (s *Service) PatientThreads(ctx context.Context, patientID string) ([]haven.ThreadView, error) {
	a, row, ts, err := s.patientThreads(ctx, patientID)
	if err != nil {
		return nil, err
	}
	reads, err := s.db.ThreadReads(ctx, a.UserID, threadIDs(ts))
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load what was read")
	}
	visits, err := s.db.PatientVisits(ctx, row.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load visits")
	}
	if ctx, err = s.keys.Checked(ctx); err != nil {
		return nil, err
	}
	names := s.senderNames(row.PracticeID)
	out := make([]haven.ThreadView, 0, len(ts))
	for _, t := range ts {
		var v *haven.Visit
		if t.VisitID != "" {
			if i := slices.IndexFunc(visits, func(x *haven.Visit) bool { return x.ID == t.VisitID }); i >= 0 {
				v = visits[i]
			}
		}
		tv, err := s.threadView(ctx, a, t, v, reads[t.ID], names)
		if err != nil {
			return nil, err
		}
		out = append(out, *tv)
	}
	return out, nil
}

// patientThreads loads a patient's threads past the gate (message.read on
// her record).
func (s *Service) patientThreads(ctx context.Context, patientID string) (haven.Actor, *haven.Patient, []*haven.Thread, error) {
	row, err := s.patientRow(ctx, policy.MessageRead, policy.KindMessage, patientID)
	if err != nil {
		return haven.Actor{}, nil, nil, err
	}
	a, _, err := s.authorizeRecord(ctx, policy.MessageRead, policy.Resource{Kind: policy.KindMessage, PracticeID: row.PracticeID, PatientID: row.ID}, patientID)
	if err != nil {
		return a, nil, nil, err
	}
	ts, err := s.db.PatientThreads(ctx, row.ID)
	if err != nil {
		return a, nil, nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the conversations")
	}
	return a, row, ts, nil
}

func threadIDs(ts []*haven.Thread) []string {
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	return ids
}

// Assignees are whom a thread may be given to: the practice's active
// clinicians and front desk whom policy lets answer it now (message.send
// decided for each, without a record: the patient's bars and
// restrictions, a clinician's relationship to her). Asking is triage
// (message.triage, audited).
func (s *Service) Assignees(ctx context.Context, threadID string) ([]haven.Member, error) {
	_, t, _, facts, err := s.threadFor(ctx, policy.MessageTriage, threadID)
	if err != nil {
		return nil, err
	}
	return s.assignees(ctx, t, facts)
}

func (s *Service) assignees(ctx context.Context, t *haven.Thread, facts policy.Facts) ([]haven.Member, error) {
	members, err := s.workforce(ctx, t.PracticeID)
	if err != nil {
		return nil, err
	}
	out := []haven.Member{}
	factsOf := s.memberFacts(ctx, t.PracticeID, facts)
	for _, m := range members {
		if !policy.Decide(memberActor(t.PracticeID, m), policy.MessageSend, threadResource(t), factsOf(m.UserID)).Allow {
			continue
		}
		m.Name = s.workforceName(ctx, t.PracticeID, m.UserID)
		out = append(out, m)
	}
	slices.SortFunc(out, func(x, y haven.Member) int { return strings.Compare(x.Name, y.Name) })
	return out, nil
}

// AssignThread gives a thread to one of its Assignees, or to nobody with
// an empty userID (message.triage, audited).
func (s *Service) AssignThread(ctx context.Context, threadID, userID string) error {
	if userID != "" && !haven.PlausibleID(userID) {
		return haven.Errorf(haven.EINVALID, "choose someone who can answer this conversation")
	}
	_, t, _, facts, err := s.threadFor(ctx, policy.MessageTriage, threadID)
	if err != nil {
		return err
	}
	if t.Messages == 0 {
		return haven.Errorf(haven.ECONFLICT, "there is nothing to give anyone yet")
	}
	if userID != "" {
		people, err := s.assignees(ctx, t, facts)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(people, func(m haven.Member) bool { return m.UserID == userID }) {
			return haven.Errorf(haven.EINVALID, "choose someone who can answer this conversation")
		}
	}
	if err := s.db.AssignThread(ctx, t.ID, userID); err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot change the conversation")
	}
	return nil
}

// SetThreadDone marks a thread done, or open again (message.triage,
// audited). A patient's next message reopens it by itself.
func (s *Service) SetThreadDone(ctx context.Context, threadID string, done bool) error {
	a, t, _, _, err := s.threadFor(ctx, policy.MessageTriage, threadID)
	if err != nil {
		return err
	}
	if t.Messages == 0 {
		return haven.Errorf(haven.ECONFLICT, "there is nothing to mark yet")
	}
	if err := s.db.SetThreadDone(ctx, t.ID, a.UserID, done); err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot change the conversation")
	}
	return nil
}

// ThreadPoll is how often a watch looks at the database while it waits:
// one indexed read of a number.
const ThreadPoll = 500 * time.Millisecond

// MaxWatch bounds how long one watch waits.
const MaxWatch = 55 * time.Second

// WatchThreads returns as soon as the reader's list of conversations
// changed since the stamp since (a message, an assignment, done), or the
// current stamp when wait has passed: a patient's own threads
// (message.read on her record), the practice's for the workforce
// (message.inbox). It is decided and audited once per call, not once per
// look, and it opens nothing: the page then reads the list through the
// gate. (The practice's stamp moves with any of its threads, so the front
// desk's watch also wakes for a thread it may not see, and its list then
// shows nothing new.)
func (s *Service) WatchThreads(ctx context.Context, since int64, wait time.Duration) (int64, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return 0, err
	}
	patient := ""
	if a.Role == haven.RolePatient {
		if _, _, err := s.authorizeRecord(ctx, policy.MessageRead, policy.Resource{Kind: policy.KindMessage, PracticeID: a.PracticeID, PatientID: a.UserID}, a.UserID); err != nil {
			return 0, err
		}
		patient = a.UserID
	} else if _, _, err := s.authorize(ctx, policy.MessageInbox, policy.Resource{Kind: policy.KindMessage, PracticeID: a.PracticeID}); err != nil {
		return 0, err
	}
	return s.watch(ctx, since, wait, func() (int64, error) { return s.db.ThreadsChanged(ctx, a.PracticeID, patient) })
}

// WatchThread returns as soon as one thread changed since the stamp since,
// or its current stamp when wait has passed (message.read, audited once
// per call). A visit's thread with no message yet has the stamp 0.
func (s *Service) WatchThread(ctx context.Context, threadID string, since int64, wait time.Duration) (int64, error) {
	_, t, _, _, err := s.threadFor(ctx, policy.MessageRead, threadID)
	if err != nil {
		return 0, err
	}
	return s.watch(ctx, since, wait, func() (int64, error) {
		n, err := s.db.ThreadChanged(ctx, t.ID)
		if haven.ErrorCode(err) == haven.ENOTFOUND {
			return 0, nil
		}
		return n, err
	})
}

func (s *Service) watch(ctx context.Context, since int64, wait time.Duration, look func() (int64, error)) (int64, error) {
	wait = min(max(wait, 0), MaxWatch)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(ThreadPoll)
	defer tick.Stop()
	for {
		cur, err := look()
		if err != nil {
			if ctx.Err() != nil {
				return since, nil
			}
			return 0, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the conversations")
		}
		if cur != since {
			return cur, nil
		}
		select {
		case <-ctx.Done():
			return cur, nil
		case <-deadline.C:
			return cur, nil
		case <-tick.C:
		}
	}
}

// errKeyDestroyed reports whether err says a patient was erased.
func errKeyDestroyed(err error) bool { return errors.Is(err, keyring.ErrKeyDestroyed) }
