package service

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"haven"
	"haven/policy"
)

// Waiting-room messages: a short line between the care team and a patient
// about one visit while the patient waits for it or is in it ("running ten
// minutes late", "my camera will not start"). They are the visit's thread
// (its id is the visit's) in the one message model (threads.go), so they
// pass the same gate as every message (message.send, message.read: the
// patient on her own record, a clinician related to her, the front desk
// unless she keeps staff out of her messages), each body sealed under the
// patient's data key, and the patient's access history ties every send
// and read to the visit. What is the waiting room's own: a line of plain
// text, only while the patient waits or is in the call, and no email
// about it (she is on the waiting page).

// Limits of waiting-room messages.
const (
	// MaxVisitMessage is a message's length in characters, after trimming:
	// enough for a sentence or two, too little to be a consultation.
	MaxVisitMessage = 500
	// MaxVisitMessages caps one visit's thread, so a stuck script or a
	// flood cannot fill the database or the patient's screen.
	MaxVisitMessages = 200
)

// visitLine checks a waiting-room message and returns it trimmed. It is
// one line of plain text: no control characters (line breaks included,
// which a waiting-room line does not need), no Unicode line or paragraph
// separators, and no bidirectional overrides.
func visitLine(body string) (string, error) {
	b := strings.TrimSpace(body)
	if n := utf8.RuneCountInString(b); !utf8.ValidString(b) || n < 1 || n > MaxVisitMessage {
		return "", haven.Errorf(haven.EINVALID, "a message is 1 to %d characters", MaxVisitMessage)
	}
	if strings.ContainsFunc(b, func(r rune) bool { return hiddenRune(r, false) }) {
		return "", haven.Errorf(haven.EINVALID, "a message is one line of plain text, without control characters")
	}
	return b, nil
}

// mayReadThread tells whether a may read v's thread (message.read), asked
// of policy against freshly loaded facts like the gate, but without the
// gate's audit event. That is deliberate: WatchVisit asks it on every poll
// of a waiting page (every few seconds), the answer only decides whether
// the watch shows a count, and it opens nothing; reading the thread itself
// passes the gate and is audited. The visit.read that let the watcher in
// is audited once per watch.
func (s *Service) mayReadThread(ctx context.Context, a haven.Actor, v *haven.Visit) (bool, error) {
	res := policy.Resource{Kind: policy.KindMessage, ID: v.ID, PracticeID: v.PracticeID, PatientID: v.PatientID}
	facts, _, err := s.loadFacts(ctx, a, res)
	if err != nil {
		return false, err
	}
	return policy.Decide(a, policy.MessageRead, res, facts).Allow, nil
}

// SendVisitMessage sends a short message in a visit's thread: from the
// care team to the patient, or the patient's reply (Reply on the visit's
// thread). Before check-in, and once the visit is over or cancelled, the
// practice's ordinary conversations are the way.
func (s *Service) SendVisitMessage(ctx context.Context, visitID, body string) error {
	_, err := s.Reply(ctx, visitID, body, nil)
	return err
}

// VisitMessages returns a visit's thread, oldest first (ReadThread on the
// visit's thread: message.read, audited once).
func (s *Service) VisitMessages(ctx context.Context, visitID string) ([]haven.MessageView, error) {
	page, err := s.ReadThread(ctx, visitID)
	if err != nil {
		return nil, err
	}
	return page.Messages, nil
}

// workforceName opens a practice member's name for a record already
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
