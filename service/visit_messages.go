package service

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"haven"
	"haven/keyring"
	"haven/policy"
)

// Waiting-room messages: a short line between the care team and a patient
// about one visit while the patient waits for it or is in it ("running ten
// minutes late", "my camera will not start"). They are PHI (a message can
// say anything), so they pass the same gate as secure messaging
// (message.send, message.read: the patient on their own record, a
// clinician related to the patient, the front desk unless the patient
// keeps staff out of their messages), each body sealed under the
// patient's data key. The gate's resource is the visit's thread: kind
// "message", id the visit's, so the patient's access history ties every
// send and read to the visit.

// Limits of waiting-room messages.
const (
	// MaxVisitMessage is a message's length in characters, after trimming:
	// enough for a sentence or two, too little to be a consultation.
	MaxVisitMessage = 500
	// MaxVisitMessages caps one visit's thread, so a stuck script or a
	// flood cannot fill the database or the patient's screen.
	MaxVisitMessages = 200
)

// visitMessageAD binds a body to its practice, patient and message: a body
// copied into another row, visit or patient does not open.
func visitMessageAD(practiceID, patientID, messageID string) keyring.AD {
	return keyring.AD{PracticeID: practiceID, PatientID: patientID, Kind: "visit_message", RecordID: messageID, Field: "body"}
}

// messageBody checks a message and returns it trimmed. It is one line of
// plain text: no control characters (line breaks included, which a
// waiting-room line does not need), no Unicode line or paragraph
// separators, and no bidirectional overrides, which can make a message
// display differently from what it says ("call 555…" reversed).
func messageBody(body string) (string, error) {
	b := strings.TrimSpace(body)
	if n := utf8.RuneCountInString(b); !utf8.ValidString(b) || n < 1 || n > MaxVisitMessage {
		return "", haven.Errorf(haven.EINVALID, "a message is 1 to %d characters", MaxVisitMessage)
	}
	for _, r := range b {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') {
			return "", haven.Errorf(haven.EINVALID, "a message is one line of plain text, without control characters")
		}
	}
	return b, nil
}

// threadResource is a visit's thread as the gate sees it.
func threadResource(v *haven.Visit) policy.Resource {
	return policy.Resource{Kind: policy.KindMessage, ID: v.ID, PracticeID: v.PracticeID, PatientID: v.PatientID}
}

// mayReadThread tells whether a may read v's thread (message.read), asked
// of policy against freshly loaded facts like the gate, but without the
// gate's audit event. That is deliberate: WatchVisit asks it on every poll
// of a waiting page (every few seconds), the answer only decides whether
// the watch shows a count, and it opens nothing; reading the thread itself
// passes the gate and is audited. The visit.read that let the watcher in
// is audited once per watch.
func (s *Service) mayReadThread(ctx context.Context, a haven.Actor, v *haven.Visit) (bool, error) {
	res := threadResource(v)
	facts, err := s.loadFacts(ctx, a, res)
	if err != nil {
		return false, err
	}
	return policy.Decide(a, policy.MessageRead, res, facts).Allow, nil
}

// messageVisit loads a visit and passes the gate for act on its thread.
// An unknown visit, or one of another practice, is "not found" and
// audited without naming anyone (the gate records the second like the
// first): an outsider's probe never writes another practice's patient
// into the outsider's log.
func (s *Service) messageVisit(ctx context.Context, act policy.Action, visitID string) (haven.Actor, *haven.Visit, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return a, nil, err
	}
	if !haven.PlausibleID(visitID) {
		return a, nil, s.refuseUnknown(ctx, a, act, policy.KindMessage, visitID)
	}
	v, err := s.db.FindVisit(ctx, visitID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return a, nil, s.refuseUnknown(ctx, a, act, policy.KindMessage, visitID)
	}
	if err != nil {
		return a, nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the visit")
	}
	if _, _, err := s.authorizeRecord(ctx, act, threadResource(v), visitID); err != nil {
		return a, nil, err
	}
	return a, v, nil
}

// SendVisitMessage sends a short message in a visit's thread: from the
// care team to the patient, or the patient's reply. It reaches the
// patient only while they wait for the visit or are in it; before
// check-in, and once the visit is over or cancelled, the practice's
// ordinary messages are the way. A refused message stores nothing.
func (s *Service) SendVisitMessage(ctx context.Context, visitID, body string) error {
	text, err := messageBody(body)
	if err != nil {
		return err
	}
	a, v, err := s.messageVisit(ctx, policy.MessageSend, visitID)
	if err != nil {
		return err
	}
	if v.State != haven.VisitWaiting && v.State != haven.VisitAdmitted {
		return haven.Errorf(haven.ECONFLICT, "the visit is %s: waiting-room messages go only to a patient who is waiting or in the call", v.State)
	}
	m := &haven.VisitMessage{ID: haven.NewID(), PracticeID: v.PracticeID, VisitID: v.ID, PatientID: v.PatientID, SenderID: a.UserID}
	if m.Body, err = s.keys.Seal(ctx, visitMessageAD(v.PracticeID, v.PatientID, m.ID), []byte(text)); err != nil {
		return err
	}
	if err := s.db.CreateVisitMessage(ctx, m, MaxVisitMessages); err != nil {
		if haven.ErrorCode(err) == haven.ETOOMANY {
			return err
		}
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot store the message")
	}
	return nil
}

// VisitMessages returns a visit's thread, oldest first (message.read,
// audited once for the thread). Each body opens only under the visit's own
// practice and patient, so a row edited to point elsewhere fails here.
func (s *Service) VisitMessages(ctx context.Context, visitID string) ([]haven.VisitMessageView, error) {
	_, v, err := s.messageVisit(ctx, policy.MessageRead, visitID)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.VisitMessages(ctx, v.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the messages")
	}
	names := map[string]string{}
	out := make([]haven.VisitMessageView, 0, len(rows))
	for _, row := range rows {
		body, err := s.keys.Open(ctx, visitMessageAD(v.PracticeID, v.PatientID, row.ID), row.Body)
		if err != nil {
			return nil, err
		}
		m := haven.VisitMessageView{ID: row.ID, VisitID: v.ID, SenderID: row.SenderID, FromPatient: row.SenderID == v.PatientID,
			Body: string(body), SentAt: time.UnixMicro(row.CreatedUS).UTC()}
		if !m.FromPatient {
			name, ok := names[row.SenderID]
			if !ok {
				name = s.workforceName(ctx, v.PracticeID, row.SenderID)
				names[row.SenderID] = name
			}
			m.SenderName = name
		}
		out = append(out, m)
	}
	return out, nil
}

// MessageCounts returns how many messages each of a patient's visits
// holds, by visit id (visits without any are left out): counts, never
// content, for her home page and her messages page. Reading them is
// decided and audited once, as message.read on her threads.
func (s *Service) MessageCounts(ctx context.Context, patientID string) (map[string]int, error) {
	row, err := s.patientRow(ctx, policy.MessageRead, policy.KindMessage, patientID)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.MessageRead, policy.Resource{Kind: policy.KindMessage, PracticeID: row.PracticeID, PatientID: row.ID}, patientID); err != nil {
		return nil, err
	}
	vs, err := s.db.PatientVisits(ctx, row.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load visits")
	}
	ids := make([]string, len(vs))
	for i, v := range vs {
		ids[i] = v.ID
	}
	counts, err := s.db.VisitMessageCounts(ctx, ids)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot count messages")
	}
	for id, n := range counts {
		if n == 0 {
			delete(counts, id)
		}
	}
	return counts, nil
}

// workforceName opens a practice member's name for a thread already
// authorized; "" if it cannot (a user since removed).
func (s *Service) workforceName(ctx context.Context, practiceID, userID string) string {
	u, err := s.db.FindUserByID(ctx, userID)
	if err != nil || u.PracticeID != practiceID || u.Role == haven.RolePatient {
		return ""
	}
	p, err := s.openUser(ctx, u)
	if err != nil {
		return ""
	}
	return p.Name
}

// VisitWatch is what the patient's waiting page watches: the visit's
// state, and how many messages its thread holds (a count, never content:
// the page then reads the thread through the gate).
type VisitWatch struct {
	State string `json:"state"`
	// Messages is -1 for a watcher who may read the visit but not its
	// thread (front-desk staff whom the patient keeps out of their
	// messages): even a count tells them that someone wrote.
	Messages int `json:"messages"`
}

// WatchVisit returns as soon as the visit's state differs from seen.State
// or its thread's length from seen.Messages (a negative seen.Messages
// watches the state alone), or what it is when wait has passed. It is
// decided and audited once per call (visit.read), not once per look. The
// thread's length is watched and returned only if policy would let the
// watcher read the thread (see mayReadThread); otherwise the watch is of
// the state alone and its count is -1.
func (s *Service) WatchVisit(ctx context.Context, visitID string, seen VisitWatch, wait time.Duration) (VisitWatch, error) {
	switch seen.State {
	case "", haven.VisitBooked, haven.VisitWaiting, haven.VisitAdmitted, haven.VisitEnded, haven.VisitCancelled:
	default:
		// A state no visit can be in would make the watch wait out its
		// whole time for nothing.
		return VisitWatch{}, haven.Errorf(haven.EINVALID, "the seen state must be one of %s, %s, %s, %s or %s",
			haven.VisitBooked, haven.VisitWaiting, haven.VisitAdmitted, haven.VisitEnded, haven.VisitCancelled)
	}
	a, v, err := s.visitFor(ctx, policy.VisitRead, visitID)
	if err != nil {
		return VisitWatch{}, err
	}
	counted, err := s.mayReadThread(ctx, a, v)
	if err != nil {
		return VisitWatch{}, err
	}
	if !counted {
		seen.Messages = -1
	}
	var cur VisitWatch
	look := func() error {
		var err error
		if cur.State, cur.Messages, err = s.db.VisitWatch(ctx, v.ID); err != nil {
			return haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the visit")
		}
		if !counted {
			cur.Messages = -1
		}
		return nil
	}
	if err := look(); err != nil {
		return VisitWatch{}, err
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(VisitStatePoll)
	defer tick.Stop()
	for cur.State == seen.State && (seen.Messages < 0 || cur.Messages == seen.Messages) {
		select {
		case <-ctx.Done():
			return cur, nil
		case <-deadline.C:
			return cur, nil
		case <-tick.C:
		}
		if err := look(); err != nil {
			return VisitWatch{}, err
		}
	}
	return cur, nil
}

// QueueEntry is a line of the clinician's waiting room with the length of
// its visit's message thread.
type QueueEntry struct {
	*haven.VisitView
	Messages int
}

// WaitingQueue is WaitingRoom with each visit's thread length, so the
// queue can show that a patient wrote. Counts are taken only for the
// visits WaitingRoom just decided and audited one by one.
func (s *Service) WaitingQueue(ctx context.Context) ([]QueueEntry, error) {
	vs, err := s.WaitingRoom(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(vs))
	for i, v := range vs {
		ids[i] = v.ID
	}
	counts, err := s.db.VisitMessageCounts(ctx, ids)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot count messages")
	}
	out := make([]QueueEntry, len(vs))
	for i, v := range vs {
		out[i] = QueueEntry{VisitView: v, Messages: counts[v.ID]}
	}
	return out, nil
}
